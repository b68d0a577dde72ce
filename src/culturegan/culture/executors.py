"""Where the per-image work of a study runs: this process, a local process pool, or Dask.

An executor has one small interface, the subset of :class:`concurrent.futures.Executor` that
:mod:`culturegan.culture.stream` needs: ``submit(fn, *args)`` returns a future with ``done()``
and ``result()``; ``share(obj)`` prepares a large argument (a backbone) to be passed to many
tasks; ``slots`` says how many tasks to keep in flight; ``label`` names it in the report.

* ``local``: the calling process when there is little to compute (starting a worker costs a
  second or two: it imports numpy, scipy, scikit-image and torch), otherwise a pool of
  processes started with "spawn" (safe after PyTorch has started its threads).
* ``dask``: a ``dask.distributed`` cluster: ``Client(scheduler)`` for an existing one, or a
  ``LocalCluster`` of one-thread worker processes when no address is given. Workers must have
  culturegan installed and see the image files at the same paths (a shared filesystem);
  only small per-image records come back, and the cache is written by the calling process.

Usage::

    with open_executor("dask", scheduler="tcp://10.0.0.5:8786", n_tasks=500) as executor:
        future = executor.submit(analyse_chunk, tasks, 256, executor.share("lite0"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("culturegan.culture")

EXECUTORS = ("local", "dask")
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
MIN_IMAGES_PER_WORKER = 128  # below this many new images per worker, stay in one process
SLOTS_PER_WORKER = 2  # tasks in flight per worker thread: one running, one queued


def default_workers() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Finished:
    """The future of a call that already ran (or raised) in this process."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self._error: BaseException | None = None
        self._value: Any = None
        try:
            self._value = fn(*args)
        except Exception as exc:  # re-raised by result(), like a pool's future
            self._error = exc

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class InlineExecutor:
    """Runs each task at once, in this process."""

    label = "local (1 process)"
    workers = 1
    slots = 1

    def submit(self, fn: Callable, *args: Any) -> _Finished:
        return _Finished(fn, args)

    def share(self, obj: Any) -> Any:
        return obj

    def close(self) -> None:
        pass


def _worker_init() -> None:
    # Each worker uses one thread: the pool itself provides the parallelism.
    os.environ.update(ONE_THREAD)
    import torch

    torch.set_num_threads(1)


class PoolExecutor:
    """A pool of spawned local processes, one thread each."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self.slots = SLOTS_PER_WORKER * workers
        self.label = f"local ({workers} processes)"
        self._pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
        )

    def submit(self, fn: Callable, *args: Any):
        return self._pool.submit(fn, *args)

    def share(self, obj: Any) -> Any:
        return obj  # pickled with each task: pass registry names, not objects, for speed

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "--executor dask needs dask.distributed, which is not installed: "
            "pip install 'culturegan[scale]'"
        ) from exc
    return distributed


class DaskExecutor:
    """Tasks on a dask.distributed cluster (the one at ``scheduler``, or a new local one)."""

    def __init__(self, scheduler: str | None, *, workers: int | None = None) -> None:
        distributed = _import_distributed()
        self._cluster = None
        if scheduler is None:
            import dask

            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which fixes glibc's
            # mmap threshold: every large tensor is then mapped and unmapped anew, and the
            # backbone ran 3.2x slower (descriptors 1.3x) than in a plain process.
            with dask.config.set({f"{PRE_SPAWN}.{MALLOC_TRIM}": None}):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or default_workers(),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env=ONE_THREAD,  # one OpenMP thread per one-thread worker
                )
            scheduler = self._cluster.scheduler_address
        self._client = distributed.Client(scheduler)
        trimmed = {v for v in self._client.run(os.environ.get, MALLOC_TRIM).values() if v}
        if trimmed:
            log.warning(
                "the Dask workers run with %s=%s, which makes PyTorch about 3x slower; start "
                "them with the Dask setting %s.%s: null (or dask worker --no-nanny)",
                MALLOC_TRIM,
                ",".join(sorted(trimmed)),
                PRE_SPAWN,
                MALLOC_TRIM,
            )
        threads = sum(self._client.nthreads().values())
        if threads == 0:
            self.close()
            raise RuntimeError(f"the Dask scheduler at {scheduler} has no workers")
        self.workers = len(self._client.nthreads())
        self.slots = SLOTS_PER_WORKER * threads
        self.label = f"dask ({scheduler}, {self.workers} workers, {threads} threads)"

    def submit(self, fn: Callable, *args: Any):
        # pure=False: the same chunk submitted twice (a rerun) is computed again, not shared
        return self._client.submit(fn, *args, pure=False)

    def share(self, obj: Any) -> Any:
        if isinstance(obj, str | None):
            return obj
        return self._client.scatter(obj, broadcast=True)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


@contextmanager
def open_executor(
    kind: str = "local",
    *,
    workers: int | None = None,  # local: processes (default: usable cores); dask: local workers
    scheduler: str | None = None,  # dask: scheduler address (default: start a LocalCluster)
    n_tasks: int = 0,  # images to compute: small jobs stay in this process (local only)
) -> Iterator[InlineExecutor | PoolExecutor | DaskExecutor]:
    """An executor for ``kind`` ("local" or "dask"), closed on exit."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor '{kind}' (choose from: {', '.join(EXECUTORS)})")
    if scheduler is not None and kind != "dask":
        raise ValueError("--scheduler is the address of a Dask scheduler: use --executor dask")
    if kind == "dask":
        executor = DaskExecutor(scheduler, workers=workers)
    else:
        workers = default_workers() if workers is None else max(1, workers)
        workers = min(workers, max(1, n_tasks // MIN_IMAGES_PER_WORKER))
        executor = InlineExecutor() if workers <= 1 else PoolExecutor(workers)
    try:
        yield executor
    finally:
        executor.close()
