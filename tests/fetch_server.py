"""A fake web server for the dataset fetchers: files with Range support, JSON routes, faults.

``FetchServer`` runs ``http.server`` in a thread on 127.0.0.1 (a free port). Routes are exact
paths; a JSON route is a function of the query string (a dict of single values). Faults are
queued per path and used up one request at a time:

* an int status (429, 500, ...) answered instead of the content, with ``Retry-After`` if given;
* ``("drop", n)``: the headers of the full answer, ``n`` bytes of the body, then the connection
  is closed (an interrupted download).

Every request is recorded as (path, query, headers) in ``requests``.

The museum helpers build answers shaped like the real APIs (field names from their docs):
``met_routes``, ``aic_routes``, ``cleveland_routes``.

Usage::

    with FetchServer() as server:
        server.add_file("/data.zip", blob); server.fault("/data.zip", ("drop", 1000))
        HttpClient().download(server.url + "/data.zip", tmp_path / "data.zip")
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class FetchServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.routes: dict[str, Callable[[dict[str, str]], Any]] = {}
        self.faults: dict[str, deque] = defaultdict(deque)
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_file(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def add_json(self, path: str, answer: Callable[[dict[str, str]], Any]) -> None:
        self.routes[path] = answer

    def fault(self, path: str, *faults: Any, retry_after: str | None = None) -> None:
        for fault in faults:
            self.faults[path].append((fault, retry_after))

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def __enter__(self) -> FetchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                server.requests.append((parts.path, query, dict(self.headers)))
                queue = server.faults.get(parts.path)
                fault, retry_after = queue.popleft() if queue else (None, None)
                if isinstance(fault, int):
                    extra = {"Retry-After": retry_after} if retry_after else {}
                    self._send(fault, b'{"error": "scripted fault"}', extra)
                    return
                if parts.path in server.routes:
                    body = json.dumps(server.routes[parts.path](query)).encode()
                    self._send(200, body, {"Content-Type": "application/json"})
                    return
                data = server.files.get(parts.path)
                if data is None:
                    self._send(404, b"not found", {})
                    return
                self._serve_file(data, fault)

            def _serve_file(self, data: bytes, fault: Any) -> None:
                start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                        return
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                body = data[start:]
                if isinstance(fault, tuple) and fault[0] == "drop":
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body[: fault[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(status, body, headers)

        return Handler


# ----------------------------------------------------------------------------- museum answers
# An artwork here is a dict: id, title, artist, culture, date, public (bool), image (path on the
# server or None).


def met_routes(server: FetchServer, artworks: list[dict], prefix: str = "/met") -> None:
    def search(query: dict[str, str]) -> dict:
        ids = [a["id"] for a in artworks]
        return {"total": len(ids), "objectIDs": ids}

    server.add_json(f"{prefix}/search", search)
    for art in artworks:
        image = server.url + art["image"] if art.get("image") and art["public"] else ""
        record = {
            "objectID": art["id"], "isPublicDomain": art["public"], "primaryImage": image,
            "primaryImageSmall": image, "title": art["title"],
            "artistDisplayName": art.get("artist", ""), "culture": art.get("culture", ""),
            "objectDate": art.get("date", ""), "medium": "Woodblock print; ink and color",
            "classification": "Prints",
        }  # fmt: skip
        server.add_json(f"{prefix}/objects/{art['id']}", lambda q, r=record: r)


def aic_routes(server: FetchServer, artworks: list[dict], prefix: str = "/aic") -> None:
    def search(query: dict[str, str]) -> dict:
        limit, page = int(query["limit"]), int(query["page"])
        chunk = artworks[(page - 1) * limit : page * limit]
        data = [
            {
                "id": a["id"],
                "title": a["title"],
                "artist_display": a.get("artist", ""),
                "place_of_origin": a.get("culture", ""),
                "date_display": a.get("date", ""),
                "medium_display": "Color woodblock print",
                "classification_title": "print",
                "is_public_domain": a["public"],
                "image_id": f"im{a['id']}" if a.get("image") else None,
            }  # fmt: skip
            for a in chunk
        ]
        pages = -(-len(artworks) // limit)
        return {
            "pagination": {"total": len(artworks), "limit": limit, "total_pages": pages,
                           "current_page": page},
            "data": data,
            "config": {"iiif_url": f"{server.url}/iiif/2", "website_url": "http://www.artic.edu"},
        }  # fmt: skip

    server.add_json(f"{prefix}/artworks/search", search)


def cleveland_routes(server: FetchServer, artworks: list[dict], prefix: str = "/cma") -> None:
    def search(query: dict[str, str]) -> dict:
        limit, skip = int(query["limit"]), int(query["skip"])
        data = [
            {
                "id": a["id"],
                "title": a["title"],
                "share_license_status": "CC0" if a["public"] else "Copyrighted",
                "creators": [{"description": a.get("artist", "")}],
                "culture": [a.get("culture", "")],
                "creation_date": a.get("date", ""),
                "technique": "color woodblock print",
                "type": "Print",
                "images": {"web": {"url": server.url + a["image"]}} if a.get("image") else None,
            }  # fmt: skip
            for a in artworks[skip : skip + limit]
        ]
        return {"info": {"total": len(artworks), "parameters": query}, "data": data}

    server.add_json(f"{prefix}/artworks/", search)
