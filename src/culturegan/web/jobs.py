"""The studio's jobs: a bounded pool of worker threads behind a queue, and the jobs' results.

Model calls never run on the web server's event loop: every stylization or grid is a :class:`Job`
submitted to :class:`JobPool`, which runs it on one of ``workers`` threads (PyTorch releases the
GIL inside its kernels, so threads use the cores). The queue is bounded: when ``max_queue`` jobs
wait, :meth:`JobPool.submit` raises :class:`QueueFullError` (the server answers 503). Finished
jobs keep their PNG in memory until ``keep`` newer jobs have finished or they are fetched with
``forget``; nothing a job holds is written to disk.

Usage::

    pool = JobPool(workers=2)
    job = pool.submit(lambda job: render_png(...), kind="stylize")
    pool.wait(job.id, timeout=60); png = pool.get(job.id).result
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("culturegan.web")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = frozenset({DONE, FAILED, CANCELLED})


class QueueFullError(RuntimeError):
    """The queue holds ``max_queue`` waiting jobs already."""


class JobCancelled(Exception):
    """Raised by a job's work when it sees ``job.cancel_requested`` (it stops early)."""


class JobFailure(Exception):
    """A job's failure whose message is safe and useful to show the user (e.g. a ValueError
    from ``check_inputs``); any other exception is logged and shown as a generic message."""


@dataclass
class Job:
    id: str
    kind: str  # "stylize" | "grid"
    label: str  # shown on the page (never a user file name used as a path)
    state: str = QUEUED
    progress: float = 0.0  # 0..1, set by the work function through ``set_progress``
    error: str | None = None
    result: bytes | None = None  # the PNG (or video), once done
    media_type: str = "image/png"  # of ``result``
    input_png: bytes | None = None  # the (re-encoded) input, for the before/after view
    partial: bytes | None = None  # a PNG of the work so far (the culture grid, column by column)
    partial_count: int = 0  # bumped with every new ``partial``
    cancel_requested: bool = False  # long work polls this and raises JobCancelled
    cleanup: Callable[[], None] | None = None  # removes the job's temporary files, once
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    seq: int = 0  # submission order (queue position)

    def set_progress(self, value: float) -> None:
        self.progress = min(1.0, max(0.0, float(value)))

    def set_partial(self, png: bytes) -> None:
        self.partial, self.partial_count = png, self.partial_count + 1

    def public(self, position: int | None) -> dict:
        """What the API shows about this job."""
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "position": position,  # 1 = next to run; None unless queued
            "progress": round(self.progress, 3),
            "partial": self.partial_count,  # > 0: GET /api/jobs/ID/partial.png: the work so far
            "error": self.error,
        }


class JobPool:
    """A bounded worker pool with a queue, queue positions and a store of finished jobs."""

    def __init__(self, *, workers: int, max_queue: int = 256, keep: int = 256) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.workers = workers
        self.max_queue = max_queue
        self.keep = keep  # finished jobs kept for fetching (oldest dropped first)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="studio-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queued: list[str] = []  # ids in submission order
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._counter = itertools.count(1)
        self._closed = False

    # ------------------------------------------------------------------ submitting

    def submit(
        self,
        work: Callable[[Job], bytes],
        *,
        kind: str,
        label: str,
        input_png: bytes | None = None,
        media_type: str = "image/png",
        cleanup: Callable[[], None] | None = None,
    ) -> Job:
        """Queue ``work(job) -> bytes`` (a PNG unless ``media_type`` says otherwise);
        ``cleanup`` runs when the job ends however it ends. Raises :class:`QueueFullError`
        when full (and then runs ``cleanup`` at once)."""
        with self._lock:
            if self._closed:
                raise QueueFullError("the studio is shutting down")
            if len(self._queued) >= self.max_queue:
                if cleanup is not None:
                    cleanup()
                raise QueueFullError(
                    f"{len(self._queued)} jobs are waiting (the limit); try again shortly"
                )
            job = Job(
                id=secrets.token_hex(8),
                kind=kind,
                label=label,
                input_png=input_png,
                media_type=media_type,
                cleanup=cleanup,
                seq=next(self._counter),
            )
            self._jobs[job.id] = job
            self._queued.append(job.id)
        self._executor.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], bytes]) -> None:
        with self._lock:
            if job.id in self._queued:
                self._queued.remove(job.id)
            if job.state == CANCELLED:
                self._clean(job)
                return
            job.state = RUNNING
        try:
            result = work(job)
            state, error = DONE, None
        except JobCancelled:
            result, state, error = None, CANCELLED, None
        except JobFailure as exc:
            result, state, error = None, FAILED, str(exc)
        except Exception:  # a bug or resource problem: logged in full, shown briefly
            log.exception("studio job %s (%s) failed", job.id, job.kind)
            result, state, error = None, FAILED, "internal error while rendering (see the log)"
        finally:
            self._clean(job)
        with self._lock:
            job.result, job.error, job.partial = result, error, None
            job.state = CANCELLED if job.state == CANCELLED else state
            job.progress = 1.0 if state == DONE else job.progress
            job.finished = time.monotonic()
            self._drop_old()
            self._done.notify_all()

    @staticmethod
    def _clean(job: Job) -> None:
        cleanup, job.cleanup = job.cleanup, None
        if cleanup is not None:
            try:
                cleanup()
            except OSError:
                log.exception("studio job %s: could not remove its temporary files", job.id)

    def _drop_old(self) -> None:
        """Forget the oldest finished jobs beyond ``keep`` (the caller holds the lock)."""
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job_id: str) -> int | None:
        """1-based place in the queue, or None when the job is not waiting."""
        with self._lock:
            try:
                return self._queued.index(job_id) + 1
            except ValueError:
                return None

    def status(self, job_id: str) -> dict | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            position = self._queued.index(job_id) + 1 if job_id in self._queued else None
            return job.public(position)

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has finished (or ``timeout`` seconds pass); None if unknown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while True:
                job = self._jobs.get(job_id)
                if job is None or job.state in FINISHED:
                    return job
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return job
                self._done.wait(remaining)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def cancel(self, job_id: str) -> bool:
        """Cancel a waiting job, or ask a running one to stop (work that polls
        ``cancel_requested`` stops early); False when the job has already ended."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return False
            job.cancel_requested = True
            if job_id in self._queued:
                self._queued.remove(job_id)
                job.state, job.finished = CANCELLED, time.monotonic()
                self._done.notify_all()
            # a queued job's cleanup runs when its worker picks it up and sees it cancelled
            return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
            return {s: states.count(s) for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}

    def shutdown(self) -> None:
        """Stop accepting jobs, drop the waiting ones, wait for the running ones."""
        with self._lock:
            self._closed = True
            for job_id in self._queued:
                self._jobs[job_id].state = CANCELLED
            self._queued.clear()
            for job in self._jobs.values():
                job.cancel_requested = True  # running video jobs stop at their next frame
            self._done.notify_all()
        self._executor.shutdown(wait=True, cancel_futures=True)
