"""Share model folders on the Hugging Face Hub: download them by repo id, push them with a card.

A culturegan model folder (``config.json`` + ``model.safetensors``, optionally a ``README.md``
card) is stored as one Hub model repo: ``push_to_hub`` uploads a folder (writing a card when it
has none), ``download_model`` brings it back. Everything goes through ``huggingface_hub``, so its
conventions apply unchanged: the cache (``HF_HOME`` / ``HF_HUB_CACHE``), offline mode
(``HF_HUB_OFFLINE=1``), the endpoint (``HF_ENDPOINT``), tokens (``hf auth login`` / ``HF_TOKEN``)
and revisions (branch, tag or commit sha). Only the config, safetensors weights and the card are
ever downloaded: a repo with pickled weights only is refused before anything is fetched.

Needs the optional extra: ``pip install 'culturegan[hub]'``.

Usage::

    folder = download_model("org/ukiyoe-cyclegan")  # or "org/ukiyoe-cyclegan@<revision>"
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from culturegan import __version__

log = logging.getLogger("culturegan.hub")

# The files of a model folder; nothing else is downloaded or uploaded.
ALLOW_PATTERNS = ("config.json", "*.safetensors", "README.md")
# Seconds. A Hub that cannot be reached is reported (or the cache used) within 2 s; once
# connected, a slow answer to the first request is given READ_TIMEOUT.
CONNECT_TIMEOUT = 1.5
READ_TIMEOUT = 30.0
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Endings that make "org/name" a file path rather than a repo id ("runs/config.json").
_FILE_SUFFIXES = frozenset(
    {".json", ".yaml", ".yml", ".txt", ".md", ".csv", ".safetensors", ".onnx", ".npz", ".npy"}
    | {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".heic"}
    | {".zip", ".tar", ".gz", ".tgz", *PICKLE_SUFFIXES}
)
# Hub names: ASCII letters, digits, "_", "-", "."; 1-96 characters; starting and ending with a
# letter, digit or "_". A revision is a branch, tag, commit sha or "refs/pr/N".
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(
    rf"(?P<repo>{_PART}/{_PART})(?:@(?P<revision>[A-Za-z0-9_.][A-Za-z0-9_./-]*))?"
)


class HubError(RuntimeError):
    """The Hub could not give or take a model; the message says why and what to do."""


# ----------------------------------------------------------------------------- repo ids


def _match_repo_id(text: str) -> re.Match[str] | None:
    match = _REPO_ID.fullmatch(text)
    if match is None:
        return None
    repo = match["repo"]
    if "--" in repo or ".." in repo or repo.endswith(".git"):  # refused by the Hub too
        return None
    return match


def is_repo_id(text: str) -> bool:
    """Whether ``text`` names a Hub model ("org/name" or "org/name@revision") and not a local path.

    Anything that exists on disk, or looks like a path (starts with ".", "/" or "~", holds a
    backslash, ends with a file suffix such as ".json"), is a path.
    """
    if not text or text.startswith((".", "/", "~")) or "\\" in text:
        return False
    match = _match_repo_id(text)
    if match is None or Path(match["repo"]).suffix.lower() in _FILE_SUFFIXES:
        return False
    return not (Path(text).exists() or Path(match["repo"]).exists())


def _split_revision(repo_id: str, revision: str | None) -> tuple[str, str | None]:
    """("org/name@rev", None) -> ("org/name", "rev"); a bad id is a ValueError."""
    match = _match_repo_id(repo_id)
    if match is None:
        raise ValueError(
            f"'{repo_id}' is not a Hub model id: expected 'org/name' or 'org/name@revision' "
            "(letters, digits, '-', '_' and '.')"
        )
    if match["revision"] and revision and match["revision"] != revision:
        raise ValueError(
            f"two revisions for '{match['repo']}': '{match['revision']}' in the id and "
            f"revision='{revision}'; give one"
        )
    return match["repo"], match["revision"] or revision


# ----------------------------------------------------------------------------- huggingface_hub


def _hub() -> ModuleType:
    """The ``huggingface_hub`` module, or a HubError saying how to install it."""
    try:
        import huggingface_hub
        from huggingface_hub import constants, utils  # noqa: F401  (attributes used below)
    except ImportError:
        raise HubError(
            "Hugging Face Hub support needs the optional extra: pip install 'culturegan[hub]'"
        ) from None
    return huggingface_hub


def _connect_failure(endpoint: str) -> str | None:
    """Why no TCP connection to ``endpoint`` (or to the proxy the environment names for it)
    opens within CONNECT_TIMEOUT; None when one does (the fetchers' probe, with no grace)."""
    from culturegan.data.fetch.http import connect_failure

    return connect_failure(endpoint, CONNECT_TIMEOUT, grace=0.0)


def _network_errors(hub: ModuleType) -> tuple[type[BaseException], ...]:
    """Connection failures and timeouts (HTTP error answers are the Hub's own exceptions)."""
    # huggingface_hub 0.x talks through requests, 1.x through httpx, 2.x through httpx2: its
    # shared session says which, and so which exceptions mean "no connection".
    lib = sys.modules[type(hub.utils.get_session()).__module__.split(".")[0]]
    if lib.__name__ == "requests":
        return (lib.ConnectionError, lib.Timeout, hub.utils.OfflineModeIsEnabled)
    return (lib.TransportError, hub.utils.OfflineModeIsEnabled)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _http_answer(exc: Any) -> str:
    """A HfHubHTTPError as "HTTP <status>: <what the server said>"."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    said = getattr(exc, "server_message", None) or _first_line(exc)
    return f"HTTP {status}: {said}" if status else said


# ----------------------------------------------------------------------------- download


def _check_repo_files(names: list[str], where: str) -> None:
    from culturegan.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    if not any(name.endswith(".safetensors") for name in names):
        pickles = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
        found = f" (it has pickled weights: {', '.join(pickles)})" if pickles else ""
        raise HubError(
            f"{where} has no safetensors weights{found}; culturegan loads weights only from "
            "safetensors, never from pickles, so nothing was downloaded"
        )
    for needed in (CONFIG_NAME, WEIGHTS_NAME):
        if needed not in names:
            raise HubError(
                f"{where} is not a culturegan model: it has no {needed} "
                f"(files: {', '.join(sorted(names)) or 'none'})"
            )


def _checked_folder(folder: Path, where: str) -> Path:
    from culturegan.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    for needed in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / needed).is_file():
            raise HubError(f"the download of {where} in '{folder}' lacks {needed}")
    return folder


class _Unreachable(Exception):
    """The Hub did not answer usefully (no connection, offline, 5xx): try the cache instead."""


def _ask(hub: ModuleType, call: Callable[[], Any], repo_id: str, revision: str | None) -> Any:
    """``call()`` with the Hub's refusals as HubErrors and its absence as _Unreachable."""
    errors, endpoint, network_errors = hub.utils, hub.constants.ENDPOINT, _network_errors(hub)
    try:
        return call()
    except errors.RevisionNotFoundError:
        raise HubError(
            f"model '{repo_id}' has no revision '{revision}' on {endpoint} "
            "(give a branch, tag or commit sha)"
        ) from None
    except errors.RepositoryNotFoundError:  # also private and gated repos without access
        raise HubError(
            f"no model '{repo_id}' on {endpoint}: check the name; for a private or gated repo, "
            "log in with `hf auth login` or set HF_TOKEN"
        ) from None
    except errors.HfHubHTTPError as exc:  # e.g. the Hub is down (5xx)
        raise _Unreachable(f"the Hub at {endpoint} answered {_http_answer(exc)}") from exc
    except errors.LocalEntryNotFoundError as exc:  # huggingface_hub's own fallback found nothing
        raise _Unreachable(f"the download from {endpoint} failed ({_first_line(exc)})") from exc
    except network_errors as exc:
        raise _Unreachable(f"cannot reach the Hub at {endpoint} ({_first_line(exc)})") from exc


def _from_cache(
    hub: ModuleType, repo_id: str, revision: str | None, cache_dir: str | Path | None, why: str
) -> Path:
    """The cached snapshot of ``repo_id`` at ``revision``, without any network call."""
    try:
        folder = hub.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=list(ALLOW_PATTERNS),
            local_files_only=True,
        )
    except hub.utils.LocalEntryNotFoundError:
        cache = cache_dir or hub.constants.HF_HUB_CACHE
        raise HubError(
            f"{why}, and '{repo_id}'{_at(revision)} is not in the cache '{cache}'. Download it "
            "once while online, or check HF_ENDPOINT and your connection"
        ) from None
    return Path(folder)


def _at(revision: str | None) -> str:
    return f" at revision '{revision}'" if revision else ""


def download_model(
    repo_id: str,
    *,
    revision: str | None = None,  # branch, tag or commit sha; default: the repo's main branch
    cache_dir: str | Path | None = None,  # default: huggingface_hub's (HF_HUB_CACHE)
) -> Path:
    """Fetch a model folder from the Hub (or its cache) and return the local folder.

    ``repo_id`` may carry the revision: "org/name@v1". Only ``config.json``, ``*.safetensors``
    and ``README.md`` are fetched. When the Hub cannot be reached, a cached copy is used (with a
    warning); with ``HF_HUB_OFFLINE=1`` only the cache is looked at.
    """
    hub = _hub()
    repo_id, revision = _split_revision(repo_id, revision)
    where = f"'{repo_id}'{_at(revision)}"
    if hub.constants.HF_HUB_OFFLINE:
        folder = _from_cache(hub, repo_id, revision, cache_dir, "HF_HUB_OFFLINE is set")
        log.info("HF_HUB_OFFLINE is set: using the cached %s in %s", where, folder)
        return _checked_folder(folder, where)
    endpoint = hub.constants.ENDPOINT
    try:
        failure = _connect_failure(endpoint)
        if failure is not None:
            raise _Unreachable(f"cannot reach the Hub at {endpoint} ({failure})")
        # A first, small call lists the files, so a repo without safetensors is refused before
        # anything is downloaded.
        info = _ask(
            hub,
            lambda: hub.HfApi().model_info(repo_id, revision=revision, timeout=READ_TIMEOUT),
            repo_id,
            revision,
        )
        _check_repo_files([sibling.rfilename for sibling in info.siblings or []], where)
        # The revision as given (not info.sha), so that the cache records the branch -> commit
        # ref that later offline calls resolve.
        folder = _ask(
            hub,
            lambda: hub.snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir,
                allow_patterns=list(ALLOW_PATTERNS),
                library_name="culturegan",
                library_version=__version__,
            ),
            repo_id,
            revision,
        )
    except _Unreachable as exc:
        folder = _from_cache(hub, repo_id, revision, cache_dir, str(exc))
        log.warning("%s; using the cached %s in %s", exc, where, folder)
    return _checked_folder(Path(folder), where)


# ----------------------------------------------------------------------------- push


def _describe_network(net_config: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in net_config.items() if k != "name")
    return f"{net_config.get('name', 'network')} ({params})" if params else str(net_config)


def model_card(config: dict[str, Any], *, repo_id: str) -> str:
    """A README.md for the Hub: YAML front matter, what the model maps, how to use it."""
    front: dict[str, Any] = {
        "library_name": "culturegan",
        "tags": ["culturegan", "style-transfer", "gan"],
    }
    if config.get("license"):
        front["license"] = str(config["license"]).lower()  # Hub licence ids are lower case
    domains = [str(d) for d in config.get("domains", [])]
    directions: dict[str, str] = dict(config.get("directions", {}))
    networks: dict[str, Any] = dict(config.get("networks", {}))
    listed = " and ".join([", ".join(domains[:-1]), domains[-1]] if domains[1:] else domains)
    listed = listed or "its domains"
    first = next(iter(directions), None)  # "photo->ukiyoe": the usage example's target
    target = first.split("->")[-1] if first else (domains[-1] if domains else "art")

    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {repo_id}",
        "",
        f"A culturegan style-transfer model between {listed}.",
        "",
        f"- **Domains:** {', '.join(domains) or 'not given'}",
        f"- **Kind:** {config.get('kind', 'not given')}",
        f"- **Recipe:** {config.get('recipe', 'not given')}",
        "- **Directions:**",
        *[f"  - {direction}: network `{name}`" for direction, name in directions.items()],
        "- **Networks:**",
        *[f"  - `{name}`: {_describe_network(net)}" for name, net in networks.items()],
        "",
        "## Usage",
        "",
        "```bash",
        "pip install 'culturegan[hub]'",
        "```",
        "",
        "```python",
        "from culturegan import Stylizer",
        "",
        f'stylizer = Stylizer.from_pretrained("{repo_id}")',
        f'result = stylizer("photo.jpg", target="{target}")',
        f'result.images[0].save("photo_{target}.png")',
        "```",
        "",
        "or from the command line:",
        "",
        "```bash",
        f"culturegan stylize photo.jpg --model {repo_id} --out out/",
        "```",
        "",
        "`config.json` holds the architecture, domains and normalisation; `model.safetensors` the "
        "weights (tensors only, no code).",
        "",
    ]
    return "\n".join(lines)


def _stage(model_dir: Path, staging: Path, config: dict[str, Any], repo_id: str) -> None:
    """Put the folder's model files, and a card if it has none, in ``staging``."""
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and any(fnmatch(path.name, pattern) for pattern in ALLOW_PATTERNS):
            try:  # a hard link costs nothing for large weights; copy across file systems
                os.link(path, staging / path.name)
            except OSError:
                shutil.copyfile(path, staging / path.name)
    if not (staging / "README.md").exists():
        card = model_card(config, repo_id=repo_id)
        (staging / "README.md").write_text(card, encoding="utf-8")


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,  # "org/name"; created (public unless private=True) if it does not exist
    *,
    token: str | None = None,  # default: the saved login (`hf auth login`) or HF_TOKEN
    private: bool = False,
    revision: str | None = None,  # branch to commit to (created from main if missing)
    commit_message: str | None = None,
) -> str:
    """Upload a model folder as one commit and return the commit's URL.

    The folder must load (:func:`culturegan.checkpoint.load_pretrained`; a CheckpointError says
    what is wrong otherwise). Its ``config.json``, ``*.safetensors`` and ``README.md`` are
    uploaded; a folder without a card gets one from :func:`model_card`. The folder is not changed.
    """
    hub = _hub()
    from culturegan.checkpoint import load_pretrained

    match = _match_repo_id(repo_id)
    if match is None or match["revision"]:
        raise ValueError(
            f"'{repo_id}' is not a Hub model id to push to: expected 'org/name' "
            "(give a branch with revision=...)"
        )
    model_dir = Path(model_dir)
    config, _ = load_pretrained(model_dir)
    endpoint, errors, network_errors = hub.constants.ENDPOINT, hub.utils, _network_errors(hub)
    api = hub.HfApi(token=token, library_name="culturegan", library_version=__version__)
    domains = ", ".join(str(d) for d in config.get("domains", []))
    message = commit_message or f"Upload culturegan {config.get('recipe', '')} model ({domains})"
    with tempfile.TemporaryDirectory(prefix="culturegan-push-") as tmp:
        staging = Path(tmp)
        _stage(model_dir, staging, config, repo_id)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None and not revision.startswith("refs/"):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=staging, revision=revision, commit_message=message
            )
        except errors.RevisionNotFoundError:
            raise HubError(f"'{repo_id}' has no revision '{revision}' to push to") from None
        except errors.HfHubHTTPError as exc:  # includes RepositoryNotFoundError
            raise HubError(
                f"the Hub at {endpoint} refused the push to '{repo_id}' ({_http_answer(exc)}). "
                "Check that you are logged in (`hf auth login`, HF_TOKEN or token=) with write "
                "access to that namespace"
            ) from exc
        except network_errors as exc:
            raise HubError(f"cannot reach the Hub at {endpoint}: {_first_line(exc)}") from exc
    log.info("pushed %s to %s", model_dir, commit.commit_url)
    return str(commit.commit_url)
