"""Independent training runs side by side on a CPU's cores, one process per run.

A small model keeps two cores only about 1.35x as busy as one: the demo's 64 px runs take
0.159 s a step on 2 threads and 0.212 s on 1 (Intel Xeon, session 25), and two such runs in two
one-thread processes each keep their one-thread speed. So on N cores, N runs side by side in N
processes finish a set of runs sooner than the same runs one after another on N threads.

    results = train_many({"ink_wash": cfg_ink, "woodblock": cfg_wood})  # name -> TrainResult

Each run is exactly what ``train(cfg)`` makes on as many threads as its process has (float sums
depend on the thread count, so a run on 1 thread is not bit-identical to one on 2). Signals: only
this process takes them (the workers leave the terminal's process group), and a first SIGINT or
SIGTERM asks every worker to finish its step and write a checkpoint (its ``TrainResult`` then says
``finished=False``; runs that had not started do not start), a second SIGINT ends the workers at
once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import time
from typing import Any

import torch

from culturegan.config import RunConfig
from culturegan.training.loop import TrainResult, train

log = logging.getLogger("culturegan")


def plan_workers(n_runs: int, cores: int) -> tuple[int, int]:
    """(processes, threads each): one process per run up to the cores, the cores shared out."""
    workers = max(1, min(n_runs, cores))
    return workers, max(1, cores // workers)


def train_many(
    cfgs: dict[str, RunConfig],
    *,
    cores: int | None = None,  # default: torch's thread count (OMP_NUM_THREADS, or the cores)
    progress: bool = True,  # progress bars when the runs go one after another
) -> dict[str, TrainResult]:
    """Train every config; the results by name, in ``cfgs``' order.

    One process per run up to ``cores`` (the longest runs, by ``train.steps``, start first and a
    free process takes the next run); with one core, or one run, they train here one after
    another. After an interruption the runs that never started are missing from the result.
    """
    workers, threads = plan_workers(len(cfgs), cores or torch.get_num_threads())
    if workers == 1:
        results: dict[str, TrainResult] = {}
        for name, cfg in cfgs.items():
            results[name] = train(cfg, progress=progress)
            if not results[name].finished:
                break
        return results
    order = sorted(cfgs, key=lambda name: -cfgs[name].train.steps)  # stable: ties keep order
    log.info(
        "training %s side by side: %d processes of %d thread%s",
        ", ".join(cfgs), workers, threads, "" if threads == 1 else "s",
    )  # fmt: skip
    done = _run_workers([(name, cfgs[name]) for name in order], workers, threads)
    return {name: done[name] for name in cfgs if name in done}


def _run_workers(
    jobs: list[tuple[str, RunConfig]], workers: int, threads: int
) -> dict[str, TrainResult]:
    ctx = multiprocessing.get_context("spawn")  # no forked copy of this process's torch threads
    todo, reports, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    for job in jobs:
        todo.put(job)
    for _ in range(workers):
        todo.put(None)
    level = logging.getLogger("culturegan").getEffectiveLevel()
    procs = [
        # not daemonic: a run with data.num_workers > 0 starts loader processes of its own
        ctx.Process(target=_worker, args=(todo, reports, stop, threads, level))
        for _ in range(workers)
    ]
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        if received and signum == signal.SIGINT:  # a second Ctrl-C: no more checkpoints
            for p in procs:
                p.kill()
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()
        log.info("got %s: each run saves a checkpoint after its step", signal.Signals(signum).name)
        _signal_all(procs, signal.SIGTERM)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
            previous[sig] = signal.signal(sig, forward)
    results: dict[str, TrainResult] = {}
    try:
        for p in procs:
            p.start()
        error: BaseException | None = None
        while any(p.is_alive() for p in procs) or not reports.empty():
            try:
                name, result, failure = reports.get(timeout=0.5)
            except queue.Empty:
                if stop.is_set():  # again: a run still setting up had no handler for the first
                    _signal_all(procs, signal.SIGTERM)
                continue
            if failure is not None:
                error = error or failure
                stop.set()  # the other runs checkpoint and stop; nothing new starts
                _signal_all(procs, signal.SIGTERM)
                continue
            if received and not result.finished:  # stopped by the signal this process got
                result = dataclasses.replace(result, stop_signal=received[0])
            results[name] = result
        lost = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        if error is not None:
            raise error
        if lost and len(results) < len(jobs) and not received:
            raise RuntimeError(f"a training process ended with exit code {lost[0]}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    return results


def _signal_all(procs: list[Any], signum: int) -> None:
    for p in procs:
        if p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signum)


def _worker(todo: Any, reports: Any, stop: Any, threads: int, level: int) -> None:
    """One process: take runs from ``todo`` until it is empty or ``stop`` is set."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # the terminal's Ctrl-C reaches the parent, which asks each run to stop
    for sig in (signal.SIGINT, signal.SIGTERM):  # train() takes them over while it runs; between
        signal.signal(sig, signal.SIG_IGN)  # runs, `stop` says it
    logging.basicConfig(level=level, format="culturegan: %(message)s")
    torch.set_num_threads(threads)
    while not stop.is_set():
        job = todo.get()
        if job is None:
            return
        name, cfg = job
        if stop.is_set():
            return
        t0 = time.perf_counter()
        try:
            result = train(cfg, progress=False)
        except Exception as exc:  # sent back whole when it pickles, so the caller sees its type
            try:
                pickle.dumps(exc)
            except Exception:
                exc = RuntimeError(f"training '{name}' failed: {type(exc).__name__}: {exc}")
            reports.put((name, None, exc))
            return
        log.info("%s: %d steps in %.1f s", name, result.step, time.perf_counter() - t0)
        reports.put((name, result, None))
        if not result.finished:
            return
