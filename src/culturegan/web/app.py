"""The studio web app: pages (Jinja2, autoescaped) and a small JSON/PNG API over the Stylizer.

Every rendering is ``Stylizer.from_pretrained(...)(images, target=..., ...)`` run as a job in the
bounded pool of :mod:`culturegan.web.jobs`, never on the event loop. Options a model cannot honour
are refused by ``stylizer.check_inputs`` before anything is queued, and come back as 400 JSON.

Usage::

    app = create_app(StudioSettings(workers=2))   # then: uvicorn.run(app, port=7860)
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from culturegan.finish import FINISHES
from culturegan.grid import column_grid, style_grid
from culturegan.inference import SHIFT_PASSES, sample_seeds
from culturegan.web import forms, reports
from culturegan.web.forms import StudioError, number, result_response, text
from culturegan.web.jobs import (
    FINISHED,
    Job,
    JobCancelled,
    JobFailure,
    JobPool,
    QueueFullError,
)
from culturegan.web.sources import (
    ModelOpenError,
    ModelRegistry,
    UploadError,
    png_bytes,
    sample_names,
    sample_png,
    video_upload,
)

log = logging.getLogger("culturegan.web")
HERE = Path(__file__).parent
TOKEN_COOKIE = "culturegan_studio_token"
MAX_FILES = 16  # photos per request
MAX_SAMPLES = 8  # renderings per photo
WAIT_SECONDS = 600.0  # longest a synchronous API call waits for its job


@dataclass
class StudioSettings:
    model_dirs: list[Path] = field(default_factory=list)
    runs_dir: Path | None = Path("runs")
    reports_dir: Path | None = None  # browsed read-only on /reports (default: runs_dir)
    token: str | None = None
    max_upload_mb: float = 25.0
    max_pixels: int = 4096 * 4096
    workers: int = 1
    max_queue: int = 256
    # Host headers accepted (None: any). The CLI sets the loopback names when it binds to
    # loopback, so a web page cannot reach the studio by DNS rebinding.
    allowed_hosts: frozenset[str] | None = None
    max_video_frames: int = 750  # 30 s at 25 fps
    video_side: int = 360  # videos are stylized at most this big (shorter side)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def create_app(settings: StudioSettings, *, registry: ModelRegistry | None = None) -> FastAPI:
    """The studio as an ASGI app; the pool and temp folder live as long as the app runs."""
    registry = registry or ModelRegistry(model_dirs=settings.model_dirs, runs_dir=settings.runs_dir)
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # .html: autoescaped

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.tmp_dir = Path(tempfile.mkdtemp(prefix="culturegan-studio-"))
        app.state.pool = JobPool(workers=settings.workers, max_queue=settings.max_queue)
        try:
            yield
        finally:
            app.state.pool.shutdown()
            shutil.rmtree(app.state.tmp_dir, ignore_errors=True)

    app = FastAPI(title="culturegan studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.registry = registry
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # ------------------------------------------------------------------ errors and access

    def error_response(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status_code=status
        )

    @app.exception_handler(StudioError)
    async def _studio_error(request: Request, exc: StudioError) -> Response:
        return error_response(request, exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page: {request.url.path}"
        return error_response(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(request, 422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("studio: %s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal error (details are in the server log)")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        refusal = forms.access_refusal(
            request, allowed_hosts=settings.allowed_hosts, token=settings.token, cookie=TOKEN_COOKIE
        )
        if refusal is not None:
            return error_response(request, *refusal)
        length = request.headers.get("content-length")
        limit = settings.max_upload_bytes * (MAX_FILES + 1) + 1024 * 1024
        if length is not None and length.isdigit() and int(length) > limit:
            return error_response(request, 413, f"request larger than {limit} bytes")
        response = await call_next(request)
        if settings.token is not None and request.query_params.get("token"):
            # The page's own requests then carry the token as a cookie.
            response.set_cookie(TOKEN_COOKIE, settings.token, httponly=True, samesite="strict")
        return response

    # ------------------------------------------------------------------ helpers

    def pool() -> JobPool:
        return app.state.pool

    async def read_images(form, name: str, *, limit: int, required: bool = True):
        return await forms.read_images(
            form, name, limit=limit, required=required, max_mb=settings.max_upload_mb,
            max_pixels=settings.max_pixels, tmp_dir=app.state.tmp_dir,
        )  # fmt: skip

    def model_stylizer(model_id: str | None):
        if not model_id:
            raise StudioError(400, "say which model: the 'model' field (see GET /api/models)")
        try:
            registry.get(model_id)
        except KeyError as exc:
            raise StudioError(404, exc.args[0]) from None
        try:
            return registry.stylizer(model_id)
        except ModelOpenError as exc:
            raise StudioError(422, str(exc)) from None

    async def finished(job: Job) -> Job:
        """Wait for ``job`` without holding the event loop."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while job.state not in FINISHED:
            if asyncio.get_running_loop().time() > deadline:
                raise StudioError(504, "the job did not finish in time")
            await asyncio.sleep(0.02)
        return job

    def known_job(job_id: str) -> Job:
        job = pool().get(job_id)
        if job is None:
            raise StudioError(404, f"no job '{job_id}' (finished jobs are kept for a while only)")
        return job

    # ------------------------------------------------------------------ pages

    def model_page(request: Request, page: str) -> Response:
        """A page that offers the registered models and the sample photos."""
        context = {
            "page": page,
            "models": list(registry.entries),
            "samples": sample_names(),
            "finishes": sorted(FINISHES),
            "shift_passes": SHIFT_PASSES,
        }
        return templates.TemplateResponse(request, f"{page}.html", context)

    @app.get("/", response_class=HTMLResponse)
    async def page_stylize(request: Request):
        return model_page(request, "stylize")

    @app.get("/compare", response_class=HTMLResponse)
    async def page_compare(request: Request):
        return model_page(request, "compare")

    reports_root = settings.reports_dir or settings.runs_dir

    def reports_folder() -> Path:
        if reports_root is None or not reports_root.is_dir():
            raise StudioError(
                404, f"no reports folder ('{reports_root}'); start with --reports DIR"
            )
        return reports_root

    @app.get("/reports", response_class=HTMLResponse)
    async def page_reports(request: Request):
        root = reports_folder()
        found, runs = await run_in_threadpool(
            lambda: (reports.find_reports(root), reports.find_runs(root))
        )
        context = {"page": "reports", "root": str(root), "reports": found, "runs": runs}
        return templates.TemplateResponse(request, "reports.html", context)

    @app.get("/reports/run/{relative:path}", response_class=HTMLResponse)
    async def page_run(request: Request, relative: str):
        root = reports_folder()
        try:
            view = await run_in_threadpool(reports.run_view, root, relative)
        except FileNotFoundError as exc:
            raise StudioError(404, str(exc)) from None
        context = {"page": "reports", "run": view, "width": reports.CURVE_WIDTH,
                   "height": reports.CURVE_HEIGHT}  # fmt: skip
        return templates.TemplateResponse(request, "run.html", context)

    @app.get("/reports/file/{relative:path}")
    async def report_file(relative: str):
        root = reports_folder()
        try:
            path, media = reports.served_file(root, relative)
        except FileNotFoundError as exc:
            raise StudioError(404, str(exc)) from None
        except ValueError as exc:
            raise StudioError(403, str(exc)) from None
        # A report is shown as a document without scripts, in an origin of its own.
        headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
        return Response(path.read_bytes(), media_type=media, headers=headers)

    # ------------------------------------------------------------------ API

    @app.get("/api/models")
    async def api_models():
        ids = list(registry.entries)
        described = await run_in_threadpool(lambda: [registry.describe(i) for i in ids])
        return {"models": described}

    @app.get("/api/samples")
    async def api_samples():
        return {"samples": sample_names()}

    @app.get("/api/samples/{name}.png")
    async def api_sample(name: str):
        try:
            return Response(await run_in_threadpool(sample_png, name), media_type="image/png")
        except KeyError as exc:
            raise StudioError(404, exc.args[0]) from None

    @app.post("/api/stylize")
    async def api_stylize(request: Request):
        form = await request.form(max_files=2 * MAX_FILES + 2, max_fields=64)
        try:
            model_id = text(form, "model")
            stylizer = await run_in_threadpool(model_stylizer, model_id)
            options = {
                "source": text(form, "source"),
                "target": text(form, "target"),
                "strength": number(form, "strength", float, 1.0),
                "mix": text(form, "mix"),
                "finish": text(form, "finish"),
                "shifts": number(form, "shifts", int, 1),
            }
            seed = number(form, "seed", int, None)
            samples = number(form, "samples", int, 1)
            if not 1 <= samples <= MAX_SAMPLES:
                raise StudioError(400, f"samples must be in [1, {MAX_SAMPLES}], got {samples}")
            if samples > 1 and "seed" not in stylizer.options:
                raise StudioError(
                    400, f"samples: this {stylizer.kind} model gives one rendering per input"
                )
            references = await read_images(form, "reference", limit=1, required=False)
            reference = references[0][0] if references else None
            photos = await read_images(form, "file", limit=MAX_FILES)
            seeds = sample_seeds(seed, samples)
            for k_seed in seeds:  # every option checked before anything is queued
                try:
                    request_ = stylizer.check_inputs(seed=k_seed, reference=reference, **options)
                except ValueError as exc:
                    raise StudioError(400, str(exc)) from None
        finally:
            await form.close()
        target = request_.target
        jobs = []
        for image, name in photos:
            input_png = await run_in_threadpool(png_bytes, image)  # big photos take a while
            for k, k_seed in enumerate(seeds):

                def work(job: Job, image=image, k_seed=k_seed) -> bytes:
                    try:
                        out = stylizer([image], seed=k_seed, reference=reference, **options)
                    except ValueError as exc:
                        raise JobFailure(str(exc)) from None
                    return png_bytes(out.images[0])

                label = f"{name}-{model_id}-{target}" + (f"-{k + 1}" if samples > 1 else "")
                try:
                    jobs.append(
                        pool().submit(work, kind="stylize", label=label, input_png=input_png)
                    )
                except QueueFullError as exc:
                    raise StudioError(503, str(exc)) from None
        if len(jobs) == 1 and text(form, "async") not in ("1", "true", "yes"):
            job = await finished(jobs[0])
            pool().forget(job.id)  # answered in full: nothing kept
            return result_response(job, download=False)
        return JSONResponse(
            {"jobs": [pool().status(j.id) for j in jobs], "target": target}, status_code=202
        )

    @app.post("/api/grid")
    async def api_grid(request: Request):
        """One photo into every culture: every shipped model (``models=shipped``, the default)
        or every domain of one model (``model=ID``)."""
        form = await request.form(max_files=2, max_fields=16)
        try:
            model_id = text(form, "model")
            photos = await read_images(form, "file", limit=1)
        finally:
            await form.close()
        image, name = photos[0]
        cell = 160
        if model_id:
            stylizer = await run_in_threadpool(model_stylizer, model_id)

            def work(job: Job) -> bytes:
                try:
                    return png_bytes(style_grid(stylizer, [image], cell=cell))
                except ValueError as exc:
                    raise JobFailure(str(exc)) from None

            label = f"{name}-grid-{model_id}"
        else:
            shipped = [
                i
                for i, e in registry.entries.items()
                if e.origin == "shipped" and e.task == "style transfer"
            ]
            if not shipped:
                raise StudioError(404, "this installation ships no models; pass 'model'")

            def work(job: Job) -> bytes:
                columns = [("input", [image])]
                for n, entry_id in enumerate(shipped):
                    stylizer = registry.stylizer(entry_id)
                    target = registry.entries[entry_id].target
                    columns.append((target or entry_id, stylizer([image], target=target).images))
                    job.set_progress((n + 1) / len(shipped))
                    if n + 1 < len(shipped):  # the grid so far, for the page to show live
                        job.set_partial(png_bytes(column_grid(columns, cell=cell)))
                return png_bytes(column_grid(columns, cell=cell))

            label = f"{name}-grid-cultures"
        try:
            input_png = await run_in_threadpool(png_bytes, image)
            job = pool().submit(work, kind="grid", label=label, input_png=input_png)
        except QueueFullError as exc:
            raise StudioError(503, str(exc)) from None
        if text(form, "async") in ("1", "true", "yes"):
            return JSONResponse({"jobs": [pool().status(job.id)]}, status_code=202)
        job = await finished(job)
        pool().forget(job.id)
        return result_response(job, download=False)

    @app.post("/api/video")
    async def api_video(request: Request):
        """Stylize a short clip as a job (always asynchronous): progress, cancel, .mp4."""
        form = await request.form(max_files=1, max_fields=16)
        try:
            model_id = text(form, "model")
            stylizer = await run_in_threadpool(model_stylizer, model_id)
            options = {
                "target": text(form, "target"),
                "strength": number(form, "strength", float, None),
                "seed": number(form, "seed", int, None),
            }
            options = {k: v for k, v in options.items() if v is not None}
            try:
                stylizer.check_inputs(**options)
            except ValueError as exc:
                raise StudioError(400, str(exc)) from None
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise StudioError(400, "no video: upload one as 'file'")
            data = await upload.read(settings.max_upload_bytes + 1)
        finally:
            await form.close()
        if len(data) > settings.max_upload_bytes:
            raise StudioError(413, f"the video is larger than {settings.max_upload_mb:g} MB")
        try:
            clip, info = await run_in_threadpool(
                video_upload, data, tmp_dir=app.state.tmp_dir, max_frames=settings.max_video_frames
            )
        except UploadError as exc:
            raise StudioError(exc.status, str(exc)) from None
        out = clip.with_suffix(".mp4")
        side = min(info.width, info.height)
        size = settings.video_side if side > settings.video_side else None
        total = info.frames or settings.max_video_frames

        def work(job: Job) -> bytes:
            from culturegan.video import stylize_video

            seen = [0]

            def observe(*_) -> None:
                seen[0] += 1
                if job.cancel_requested:
                    raise JobCancelled()
                if seen[0] > settings.max_video_frames:
                    raise JobFailure(f"the video has more than {settings.max_video_frames} frames")
                job.set_progress(seen[0] / total)

            try:
                stylize_video(clip, out, stylizer=stylizer, size=size, progress=False,
                              observer=observe, **options)  # fmt: skip
            except ValueError as exc:  # VideoLoadError too: a frame that cannot be decoded
                raise JobFailure(str(exc).replace(str(clip), "the video")) from None
            return out.read_bytes()

        def cleanup() -> None:
            clip.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

        label = f"video-{model_id}-{options.get('target') or 'default'}"
        try:
            job = pool().submit(work, kind="video", label=label, media_type="video/mp4",
                                cleanup=cleanup)  # fmt: skip
        except QueueFullError as exc:
            raise StudioError(503, str(exc)) from None
        return JSONResponse({"jobs": [pool().status(job.id)], "frames": info.frames}, 202)

    @app.get("/video", response_class=HTMLResponse)
    async def page_video(request: Request):
        context = {"page": "video", "models": list(registry.entries)}
        return templates.TemplateResponse(request, "video.html", context)

    @app.get("/api/jobs/{job_id}")
    async def api_job(job_id: str):
        known_job(job_id)
        return pool().status(job_id)

    @app.delete("/api/jobs/{job_id}")
    async def api_cancel(job_id: str):
        known_job(job_id)
        return {"cancelled": pool().cancel(job_id)}

    @app.get("/api/jobs/{job_id}/result.{ext}")
    async def api_result(job_id: str, ext: str, download: int = 0):
        return result_response(known_job(job_id), download=bool(download), ext=ext)

    @app.get("/api/jobs/{job_id}/partial.png")
    async def api_partial(job_id: str):
        partial = known_job(job_id).partial
        if partial is None:
            raise StudioError(404, f"job {job_id} has no partial result (now)")
        return Response(partial, media_type="image/png")

    @app.get("/api/jobs/{job_id}/input.png")
    async def api_input(job_id: str):
        job = known_job(job_id)
        return Response(job.input_png or b"", media_type="image/png")

    @app.get("/api/zip")
    async def api_zip(ids: str):
        jobs = [known_job(i) for i in ids.split(",") if i]
        if not jobs or len(jobs) > 256:
            raise StudioError(400, "give 1 to 256 job ids: /api/zip?ids=ID,ID,...")
        return forms.zip_response(jobs)

    @app.get("/api/health")
    async def api_health():
        return {"ok": True, "workers": settings.workers, "jobs": pool().counts()}

    return app
