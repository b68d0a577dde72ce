"""HTTP for the dataset fetchers: a reachability probe, polite retried requests, resumable files.

Only the standard library (``urllib.request``), so the core install needs nothing new. What it
follows:

* Retries (RFC 9110 section 10.2.3, RFC 6585 section 4): a 429 or 5xx answer, a dropped
  connection or a read timeout is retried up to ``retries`` times after an exponentially growing
  wait (``backoff * 2**attempt``, capped at ``max_wait``); a ``Retry-After`` header (seconds or
  an HTTP date) is honoured instead when the server sends one, within the same cap.
* Resumable downloads (RFC 9110 section 14, range requests): the bytes go to ``NAME.part``; a
  later attempt, in this process or after the process was killed, asks for
  ``Range: bytes=N-`` and appends the ``206 Partial Content`` answer. A server that ignores the
  range (plain ``200``) restarts the file; ``416`` with a matching ``Content-Range: bytes */N``
  means the part file is already whole. The SHA-256 covers the whole file, old bytes included.
* Offline: before the first request to a host, a TCP connection to it (or to the proxy the
  environment names for it) must open within ``connect_timeout`` seconds, or
  :class:`OfflineError` says "cannot reach HOST: ...". Name resolution has no timeout of its
  own, so the probe runs on a thread and the deadline is kept by waiting on it.

Usage::

    client = HttpClient(delay=0.5)
    data = client.get_json("https://api.example.org/search", {"q": "Japan"})
    result = client.download("https://example.org/big.zip", Path("out/big.zip"))
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturegan import __version__
from culturegan.fileio import atomic_write

log = logging.getLogger("culturegan.fetch")

USER_AGENT = f"culturegan/{__version__} (dataset fetcher; python urllib)"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 16
# Errors after which the same request may well succeed: the connection dropped or stalled.
_TRANSIENT = (
    ConnectionError,
    TimeoutError,
    socket.timeout,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
)


class FetchError(RuntimeError):
    """A download or API call failed for good; the message names the URL and the answer."""


class OfflineError(FetchError):
    """The host could not be reached at all (no network, wrong address, firewall)."""


@dataclass
class DownloadResult:
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes that were already in the part file (0: a fresh download)


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def connect_failure(url: str, timeout: float, *, grace: float = 0.5) -> str | None:
    """Why no TCP connection to ``url``'s host (or its proxy) opens within ``timeout`` seconds;
    None when one does.

    A connect timeout alone does not bound the wait: name resolution has no timeout, and a host
    with several addresses is tried address after address, each with the full timeout. So the
    attempt runs on a thread and the deadline (``timeout`` + ``grace``, the time the socket's
    own timeout error gets to arrive with its reason) is kept by waiting on it."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            bypass = not parts.hostname or urllib.request.proxy_bypass(parts.hostname)
            proxy = None if bypass else urllib.request.getproxies().get(parts.scheme)
            if proxy:
                parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
            outcome.append(None)
        except (OSError, ValueError) as exc:  # ValueError: a malformed URL or port
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, name="culturegan-fetch-probe", daemon=True)
    thread.start()
    thread.join(timeout + grace)
    return outcome[0] if outcome else f"no connection within {timeout:g} s"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds to wait: delta-seconds or an HTTP date; None if
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class HttpClient:
    """Polite HTTP: one request at a time, ``delay`` seconds apart, retried with backoff."""

    delay: float = 0.0  # minimum seconds between the starts of two requests (rate limit)
    retries: int = 4  # extra attempts after a 429 / 5xx / dropped connection
    backoff: float = 1.0  # first wait in seconds; doubles with each attempt
    max_wait: float = 60.0  # cap on any single wait, Retry-After included
    timeout: float = 60.0  # seconds a read may stall once connected
    connect_timeout: float = 3.0  # seconds for the reachability probe
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    _last_start: float = field(default=-1e18, init=False, repr=False)
    _reached: set[str] = field(default_factory=set, init=False, repr=False)

    # ------------------------------------------------------------------ plumbing

    def check_reachable(self, url: str) -> None:
        """Raise :class:`OfflineError` unless ``url``'s host accepts a TCP connection."""
        key = urllib.parse.urlsplit(url).netloc
        if key in self._reached:
            return
        why = connect_failure(url, self.connect_timeout)
        if why is not None:
            raise OfflineError(
                f"cannot reach {host_of(url)}: {why}. Check the network connection (and any "
                "proxy settings); nothing was downloaded"
            )
        self._reached.add(key)

    def _wait_turn(self) -> None:
        gap = self.delay - (time.monotonic() - self._last_start)
        if gap > 0:
            self.sleep(gap)
        self._last_start = time.monotonic()

    def _backoff_wait(self, attempt: int, retry_after: str | None) -> float:
        wanted = retry_after_seconds(retry_after)
        if wanted is None:
            wanted = self.backoff * 2**attempt
        return min(wanted, self.max_wait)

    def _open(self, url: str, headers: Mapping[str, str]) -> http.client.HTTPResponse:
        """One request (after the probe and the polite gap); HTTP errors propagate."""
        self.check_reachable(url)
        self._wait_turn()
        request = urllib.request.Request(
            url, headers={"User-Agent": USER_AGENT, **self.headers, **headers}
        )
        return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310

    def _with_retries(self, url: str, call: Callable[[int], Any]) -> Any:
        """``call(attempt)``, retried on 429 / 5xx / transient errors; other errors are final."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return call(attempt)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUS or last:
                    raise FetchError(
                        f"{url} answered HTTP {exc.code} {exc.reason}"
                        + (f" (after {attempt + 1} attempts)" if attempt else "")
                    ) from None
                wait = self._backoff_wait(attempt, exc.headers.get("Retry-After"))
                log.info("%s answered HTTP %d; retrying in %.1f s", url, exc.code, wait)
            except (urllib.error.URLError, *_TRANSIENT) as exc:
                reason = getattr(exc, "reason", exc)
                if last:
                    raise FetchError(
                        f"{url} failed after {attempt + 1} attempts: {reason}"
                    ) from None
                wait = self._backoff_wait(attempt, None)
                log.info("%s failed (%s); retrying in %.1f s", url, reason, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    # ------------------------------------------------------------------ requests

    def get_bytes(self, url: str, *, max_bytes: int = 200 << 20) -> bytes:
        """The body of ``url`` (at most ``max_bytes``, else a FetchError)."""

        def call(attempt: int) -> bytes:
            with self._open(url, {}) as response:
                data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise FetchError(f"{url} is larger than {max_bytes} bytes; refused")
            return data

        return self._with_retries(url, call)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``url?params`` and parse the answer as JSON."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
        body = self.get_bytes(url, max_bytes=64 << 20)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise FetchError(f"{url} did not answer JSON ({exc})") from None

    def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: Callable[[int, int | None], None] | None = None,  # (bytes so far, total)
    ) -> DownloadResult:
        """Download ``url`` to ``dest`` through ``dest.part``, resuming a part file left by an
        earlier attempt; the finished file replaces ``dest`` atomically."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        start = part.stat().st_size if part.exists() else 0
        state = {"resumed_from": start}

        def call(attempt: int) -> None:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                response = self._open(url, headers)
            except urllib.error.HTTPError as exc:
                total = _content_range_total(exc.headers.get("Content-Range"))
                if exc.code == 416 and have and total == have:
                    return  # the part file is already the whole file
                if exc.code == 416:  # a stale part file (the file changed?): start again
                    part.unlink(missing_ok=True)
                    raise ConnectionError("the partial file does not fit; starting again") from None
                raise
            with response:
                if have and response.status == 206:
                    served_from = _content_range_start(response.headers.get("Content-Range"))
                    if served_from != have:  # not the bytes asked for: start again next try
                        part.unlink(missing_ok=True)
                        raise ConnectionError(f"asked for byte {have} on, got {served_from}")
                elif have:
                    log.info("%s ignored the range request; starting again", url)
                    have = 0
                total = _expected_total(response, have)
                with open(part, "ab" if have else "wb") as fh:
                    done = have
                    while chunk := response.read(CHUNK):
                        fh.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            if total is not None and done < total:
                raise http.client.IncompleteRead(b"", total - done)

        self._with_retries(url, call)
        digest = hashlib.sha256()
        with open(part, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        size = part.stat().st_size
        atomic_write(dest, lambda tmp: os.replace(part, tmp))
        return DownloadResult(dest, size, digest.hexdigest(), state["resumed_from"])


def _content_range_total(value: str | None) -> int | None:
    """The complete length from ``Content-Range: bytes a-b/N`` or ``bytes */N``."""
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*", value or "")
    return int(match.group(1)) if match else None


def _content_range_start(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*", value or "")
    return int(match.group(1)) if match else None


def _expected_total(response: http.client.HTTPResponse, have: int) -> int | None:
    """The size the whole file will have, from the answer's headers (None if not said)."""
    total = _content_range_total(response.headers.get("Content-Range"))
    if total is not None:
        return total
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None
