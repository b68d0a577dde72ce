"""A fake Hugging Face Hub for tests: the endpoints huggingface_hub calls to download and to push.

``FakeHub`` runs ``http.server`` in a thread on 127.0.0.1 (a free port) and keeps repos in
memory: a repo has branches pointing at commits, and a commit is the full {path: file} tree, so
any old commit can still be downloaded. It answers what ``snapshot_download`` and
``HfApi.upload_folder`` send (as read in huggingface_hub 2.4's source):

    GET      /api/models/{repo}[/revision/{rev}]   info: commit sha + siblings
    GET      /api/models/{repo}/tree/{rev}          files: size, git oid, lfs sha256 (flat repos)
    HEAD|GET /{repo}/resolve/{rev}/{path}           the file; ETag, X-Repo-Commit, Content-Length
    POST     /api/repos/create                      a repo with a first .gitattributes commit
    POST     /api/models/{repo}/branch/{branch}     a branch from main (or startingPoint)
    POST     /api/validate-yaml                     README.md front matter must be a YAML mapping
    POST     /api/models/{repo}/preupload/{rev}     upload mode per file: "lfs" for weights
    POST     /{repo}.git/info/lfs/objects/batch     where to PUT each LFS object ("basic")
    PUT      /lfs-upload/{sha256}                   an LFS object; its sha256 is checked
    POST     /api/models/{repo}/commit/{branch}     NDJSON: header, file, lfsFile, deleted*

Refusals carry the X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound) that
huggingface_hub turns into its typed exceptions. Any other request is a 404 naming it.

Xet: the fake never announces Xet (no X-Xet-* headers, no xetHash in trees), so downloads use
plain HTTP. Uploads are another matter: huggingface_hub >= 1.0 depends on hf-xet (1.8.0 here)
and uploads through Xet whenever ``hf_xet`` is importable, without asking the server first;
``HF_HUB_DISABLE_XET=1`` makes it fall back to the preupload / LFS batch / commit protocol above.
``use_hub`` sets it.

Usage::

    with FakeHub() as hub:
        use_hub(monkeypatch, hub.url, tmp_path / "hf")
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# Stored through LFS, as the .gitattributes of a new Hub repo says.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx")
GITATTRIBUTES = b"".join(
    b"*%s filter=lfs diff=lfs merge=lfs -text\n" % s.encode() for s in LFS_SUFFIXES
)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The LFS pointer file git stores in place of the content."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {len(self.data)}\n"
        ).encode()

    @property
    def git_oid(self) -> str:
        return git_blob_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        # The Hub's ETag, also the "oid" preupload reports: sha256 for LFS files, git's blob id
        # for the others. The client compares it with its own hash to skip unchanged files.
        return self.sha256 if self.lfs else git_blob_oid(self.data)


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    commits: dict[str, dict[str, Blob]] = field(default_factory=dict)  # sha -> full tree

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class Refusal(Exception):
    """An HTTP error answer, with the headers huggingface_hub reads."""

    def __init__(self, status: int, message: str, code: str | None = None, **headers: str):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"X-Error-Message": message, **headers}
        if code is not None:
            self.headers["X-Error-Code"] = code


Answer = tuple[int, dict[str, str], bytes]


def _json(data: object, content_type: str = "application/json") -> Answer:
    return 200, {"Content-Type": content_type}, json.dumps(data).encode()


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.requests: list[tuple[str, str]] = []  # (method, path), in arrival order
        self.deny_writes = False  # True: answer every write with 403, as for a stranger's namespace
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Create ``repo_id`` holding ``files`` (as if someone else pushed it); return its sha."""
        tree = {path: Blob(data, path.endswith(LFS_SUFFIXES)) for path, data in files.items()}
        with self._lock:
            return self._commit(self.repos.setdefault(repo_id, Repo()), "main", tree, "add")

    def _commit(self, repo: Repo, branch: str, tree: dict[str, Blob], summary: str) -> str:
        parent = repo.branches.get(branch, "")
        files = sorted((path, blob.git_oid) for path, blob in tree.items())
        sha = hashlib.sha1(json.dumps([parent, summary, len(repo.commits), files]).encode())
        repo.commits[sha.hexdigest()] = tree
        repo.branches[branch] = sha.hexdigest()
        return sha.hexdigest()

    # ------------------------------------------------------------------------- routing

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Answer:
        # Revisions come quoted as one segment ("refs%2Fpr%2F1"): split first, then unquote.
        parts = [unquote(part) for part in path.strip("/").split("/")]
        with self._lock:
            self.requests.append((method, path))
            if self.deny_writes and method in ("POST", "PUT") and parts != ["api", "validate-yaml"]:
                raise Refusal(403, "You don't have the rights to write to this namespace")
            match parts:
                case ["api", "repos", "create"] if method == "POST":
                    return self._create_repo(json.loads(body))
                case ["api", "validate-yaml"] if method == "POST":
                    return self._validate_yaml(json.loads(body)["content"])
                case ["api", "models", ns, name] if method == "GET":
                    return self._info(f"{ns}/{name}", "main")
                case ["api", "models", ns, name, "revision", rev] if method == "GET":
                    return self._info(f"{ns}/{name}", rev)
                case ["api", "models", ns, name, "tree", rev, *sub] if method == "GET":
                    return self._tree(f"{ns}/{name}", rev, "/".join(sub))
                case ["api", "models", ns, name, "branch", branch] if method == "POST":
                    return self._branch(f"{ns}/{name}", branch, json.loads(body or b"{}"))
                case ["api", "models", ns, name, "preupload", rev] if method == "POST":
                    return self._preupload(f"{ns}/{name}", rev, json.loads(body))
                case ["api", "models", ns, name, "commit", rev] if method == "POST":
                    if query.get("create_pr"):
                        raise Refusal(400, "the fake Hub does not open pull requests")
                    return self._commit_ndjson(f"{ns}/{name}", rev, body)
                case [ns, name, "info", "lfs", "objects", "batch"] if method == "POST":
                    return self._lfs_batch(f"{ns}/{name.removesuffix('.git')}", json.loads(body))
                case ["lfs-upload", oid] if method == "PUT":
                    if hashlib.sha256(body).hexdigest() != oid:
                        raise Refusal(400, f"LFS object does not hash to {oid}")
                    self.lfs_objects[oid] = body
                    return 200, {}, b""
                case [ns, name, "resolve", rev, *file] if method in ("GET", "HEAD"):
                    return self._resolve(f"{ns}/{name}", rev, "/".join(file))
            raise Refusal(404, f"the fake Hub does not serve {method} {path}")

    # ------------------------------------------------------------------------- endpoints

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise Refusal(404, f"Repository {repo_id} not found", "RepoNotFound")
        return self.repos[repo_id]

    def _sha(self, repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise Refusal(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _create_repo(self, payload: dict) -> Answer:
        if payload.get("type", "model") != "model" or not payload.get("organization"):
            raise Refusal(400, "the fake Hub creates model repos named 'org/name' only")
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:  # create_repo(exist_ok=True) reads the url from this answer
            return (
                409,
                {},
                json.dumps(
                    {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
                ).encode(),
            )
        repo = self.repos[repo_id] = Repo(private=payload.get("visibility") == "private")
        self._commit(repo, "main", {".gitattributes": Blob(GITATTRIBUTES, False)}, "initial commit")
        return _json({"url": f"{self.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, content: str) -> Answer:
        if content.startswith("---\n"):
            front = content[4:].split("\n---", 1)[0]
            try:
                data = yaml.safe_load(front)
            except yaml.YAMLError as exc:
                data = exc
            if not isinstance(data, dict):
                errors = [{"message": f"front matter is not a YAML mapping: {data!r}"}]
                return (
                    400,
                    {"Content-Type": "application/json"},
                    json.dumps({"errors": errors}).encode(),
                )
        return _json({"errors": [], "warnings": []})

    def _info(self, repo_id: str, revision: str) -> Answer:
        repo = self._repo(repo_id)
        sha = self._sha(repo, revision)
        siblings = [{"rfilename": path} for path in sorted(repo.commits[sha])]
        return _json({"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})

    def _tree(self, repo_id: str, revision: str, folder: str) -> Answer:
        repo = self._repo(repo_id)
        entries = []
        for path, blob in sorted(repo.commits[self._sha(repo, revision)].items()):
            if folder and not path.startswith(folder + "/"):
                continue
            entry = {"type": "file", "oid": blob.git_oid, "size": len(blob.data), "path": path}
            if blob.lfs:
                size, pointer = len(blob.data), len(blob.pointer)
                entry["lfs"] = {"oid": blob.sha256, "size": size, "pointerSize": pointer}
            entries.append(entry)
        return _json(entries)

    def _resolve(self, repo_id: str, revision: str, path: str) -> Answer:
        repo = self._repo(repo_id)
        sha = self._sha(repo, revision)
        blob = repo.commits[sha].get(path)
        if blob is None:
            raise Refusal(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": sha})
        headers = {"ETag": f'"{blob.etag}"', "X-Repo-Commit": sha}
        return 200, {**headers, "Content-Type": "application/octet-stream"}, blob.data

    def _branch(self, repo_id: str, branch: str, payload: dict) -> Answer:
        repo = self._repo(repo_id)
        if branch in repo.branches:
            raise Refusal(409, f"Branch {branch} already exists")
        repo.branches[branch] = self._sha(repo, payload.get("startingPoint") or "main")
        return _json({})

    def _preupload(self, repo_id: str, revision: str, payload: dict) -> Answer:
        repo = self._repo(repo_id)
        tree = repo.commits[self._sha(repo, revision)]
        files = []
        for file in payload["files"]:
            path = file["path"]
            remote = tree.get(path)
            files.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if path.endswith(LFS_SUFFIXES) else "regular",
                    "shouldIgnore": False,
                    "oid": remote.etag if remote is not None else None,
                }
            )
        return _json({"files": files})

    def _lfs_batch(self, repo_id: str, payload: dict) -> Answer:
        self._repo(repo_id)
        if payload.get("operation") != "upload":
            raise Refusal(400, "the fake Hub serves LFS uploads only")
        objects = []
        for obj in payload["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs_objects:  # no "actions": already stored
                href = f"{self.url}/lfs-upload/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href}}
            objects.append(answer)
        return _json({"transfer": "basic", "objects": objects}, "application/vnd.git-lfs+json")

    def _commit_ndjson(self, repo_id: str, branch: str, body: bytes) -> Answer:
        repo = self._repo(repo_id)
        if branch not in repo.branches:
            raise Refusal(404, f"Invalid rev id: {branch} is not a branch", "RevisionNotFound")
        head = repo.branches[branch]
        tree = dict(repo.commits[head])
        summary = ""
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
                parent = value.get("parentCommit")
                if parent is not None and not head.startswith(parent):
                    raise Refusal(412, f"{branch} is at {head}, not at the parent {parent}")
            elif key == "file":
                tree[value["path"]] = Blob(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None:
                    raise Refusal(422, f"LFS object {value['oid']} was never uploaded")
                tree[value["path"]] = Blob(data, True)
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise Refusal(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                tree = {path: blob for path, blob in tree.items() if not path.startswith(prefix)}
            else:
                raise Refusal(400, f"unknown commit operation '{key}'")
        sha = self._commit(repo, branch, tree, summary)
        url = f"{self.url}/{repo_id}/commit/{sha}"
        return _json({"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client pools its connections

        def log_message(self, format: str, *args: object) -> None:
            pass  # the tests read hub.requests instead

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []  # an upload of a file object of unknown length comes chunked
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self._body()
            try:
                status, headers, content = hub.answer(
                    self.command, url.path, parse_qs(url.query), body
                )
            except Refusal as refusal:
                status, headers = refusal.status, refusal.headers
                content = json.dumps({"error": refusal.message}).encode()
                headers["Content-Type"] = "application/json"
            self.send_response(status)
            for name, value in {"Content-Length": str(len(content)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_HEAD = do_POST = do_PUT = _serve

    return Handler


# ----------------------------------------------------------------------------- client side


def use_hub(monkeypatch, endpoint: str, home: Path, *, offline: bool = False) -> None:
    """Point huggingface_hub at ``endpoint``, with its cache and token files under ``home``.

    huggingface_hub reads its environment once, into ``huggingface_hub.constants``, when it is
    first imported: setting the variables during a test comes too late. So the variables are set
    (for whatever reads them later), the constants module is run again into a scratch module
    under the new environment, and every value that differs is patched onto the real module, so
    that everything derived from them (HF_HUB_CACHE from HF_HOME, the token path, the endpoint's
    URL template, ...) follows without a hand-kept list. monkeypatch undoes it all.
    """
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HUGGINGFACE_HUB_CACHE",
        "HUGGINGFACE_CO_STAGING",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_HUB_DISABLE_XET": "1",  # uploads through preupload / LFS / commit (see the top)
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",  # the fake's traffic never goes through a proxy
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    spec = importlib.util.find_spec("huggingface_hub.constants")
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    for name, value in vars(fresh).items():
        if name.startswith("__") or callable(value) or isinstance(value, ModuleType):
            continue
        if getattr(constants, name, None) != value:
            monkeypatch.setattr(constants, name, value, raising=False)
    close_session()  # the shared HTTP client is rebuilt with the proxy settings above


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: every connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_url() -> Iterator[str]:
    """A URL whose TCP handshake never completes, like a Hub behind a dead route.

    A listener with a backlog of 0 holds one connection in its accept queue; once that is
    taken, Linux drops further SYNs and connecting hangs until the client's connect timeout.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        with socket.create_connection((host, port), timeout=1):  # fills the queue
            yield f"http://{host}:{port}"
