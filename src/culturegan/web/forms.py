"""What the studio reads from a request and how it refuses: form fields, uploaded photos, results.

Every problem with a request becomes a :class:`StudioError` carrying the HTTP status and a
message that names the field (``'strength' must be a float, got 'abc'``, ``file #2 is larger
than 25 MB``); the app turns it into JSON for the API and an error page for the browser.
"""

from __future__ import annotations

import io
import math
import secrets
import zipfile
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from culturegan.web.jobs import DONE, FAILED, Job
from culturegan.web.sources import UploadError, decode_upload, safe_label, sample_png

RESULT_TYPES = {"png": "image/png", "mp4": "video/mp4"}


class StudioError(Exception):
    """A refusal with an HTTP status and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def access_refusal(
    request: Request, *, allowed_hosts: frozenset[str] | None, token: str | None, cookie: str
) -> tuple[int, str] | None:
    """Why the studio will not answer ``request`` (status, message), or None when it will.

    A Host header outside ``allowed_hosts`` (None: any) is refused with 400, so a web page cannot
    reach a loopback studio by DNS rebinding; a missing or wrong ``token`` (header, ``?token=``,
    bearer or the ``cookie``) with 401, compared in constant time.
    """
    if allowed_hosts is not None:
        host = request.headers.get("host", "")
        if host.count(":") == 1 or "]:" in host:
            host = host.rsplit(":", 1)[0]
        if host.lower() not in allowed_hosts:
            return 400, f"this studio does not answer to host '{host}'"
    if token is not None:
        given = (
            request.headers.get("x-studio-token")
            or request.query_params.get("token")
            or request.cookies.get(cookie)
        )
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given or not secrets.compare_digest(given.encode(), token.encode()):
            return 401, "this studio needs its token (?token=..., or the X-Studio-Token header)"
    return None


async def read_images(
    form,
    name: str,
    *,
    limit: int,
    max_mb: float,
    max_pixels: int,
    tmp_dir: Path,
    required: bool = True,
) -> list[tuple[Image.Image, str]]:
    """The form's files under ``name`` (or the packaged ``sample``), decoded and checked.

    Returns ``(image, label)`` pairs; an upload over ``max_mb`` megabytes is refused with 413, one
    that does not decode (or has more than ``max_pixels``) with the status of :func:`decode_upload`.
    """
    max_bytes = int(max_mb * 1024 * 1024)
    uploads = [f for f in form.getlist(name) if isinstance(f, UploadFile)]
    uploads = [f for f in uploads if f.filename or (f.size or 0) > 0]
    if len(uploads) > limit:
        raise StudioError(400, f"at most {limit} file(s) in '{name}', got {len(uploads)}")
    images = []
    for index, upload in enumerate(uploads, start=1):
        data = await upload.read(max_bytes + 1)
        await upload.close()
        what = f"{name} #{index}"
        if len(data) > max_bytes:
            raise StudioError(413, f"{what} is larger than {max_mb:g} MB")
        try:
            image = await run_in_threadpool(
                decode_upload, data, what=what, tmp_dir=tmp_dir, max_pixels=max_pixels
            )
        except UploadError as exc:
            raise StudioError(exc.status, str(exc)) from None
        images.append((image, f"photo{index}"))
    sample = form.get("sample") if name == "file" else None
    if isinstance(sample, str) and sample:
        if uploads:
            raise StudioError(400, "give either uploaded photos or a sample photo, not both")
        try:
            data = sample_png(sample)
        except KeyError as exc:
            raise StudioError(404, exc.args[0]) from None
        images.append((Image.open(io.BytesIO(data)).convert("RGB"), safe_label(sample)))
    if required and not images:
        raise StudioError(400, "no photo: upload one as 'file' or name a 'sample' photo")
    return images


def text(form, name: str) -> str | None:
    """The form field ``name`` stripped, or None when absent or empty."""
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise StudioError(400, f"'{name}' must be a form field, not a file")
    return value.strip() or None if isinstance(value, str) else None


def number(form, name: str, kind: type, default):
    """The form field ``name`` as ``kind`` (int or float, finite), or ``default`` when absent."""
    raw = text(form, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise StudioError(400, f"'{name}' must be a {kind.__name__}, got '{raw}'") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise StudioError(400, f"'{name}' must be finite, got '{raw}'")
    return value


def result_response(job: Job, download: bool, ext: str = "png") -> Response:
    """A finished job's result as ``.ext``; 422 if it failed, 409 if it is still running."""
    if job.state == FAILED:
        raise StudioError(422, job.error or "the job failed")
    if job.state != DONE or job.result is None:
        raise StudioError(409, f"job {job.id} is {job.state}; poll GET /api/jobs/{job.id}")
    if RESULT_TYPES.get(ext) != job.media_type:
        raise StudioError(404, f"job {job.id} gives {job.media_type}, not .{ext}")
    headers = {}
    if download:
        name = f"{safe_label(job.label)}.{ext}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(job.result, media_type=job.media_type, headers=headers)


def zip_response(jobs: list[Job]) -> Response:
    """The finished results among ``jobs`` as one zip of PNGs; 409 when none is finished."""
    ready = [j for j in jobs if j.state == DONE and j.result is not None]
    if not ready:
        raise StudioError(409, "none of these jobs has a result yet")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for job in ready:
            archive.writestr(f"{safe_label(job.label)}-{job.id[:6]}.png", job.result)
    headers = {"Content-Disposition": 'attachment; filename="culturegan-studio.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)
