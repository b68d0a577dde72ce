"""Independent runs side by side in processes (training.side_by_side): the same models as train()
on as many threads, errors with their own type, and a signal that checkpoints every run."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import load_file

from culturegan.checkpoint import WEIGHTS_NAME, load_training_state
from culturegan.training import train
from culturegan.training.loop import CHECKPOINT_NAME
from culturegan.training.side_by_side import plan_workers, train_many


def test_plan_workers_shares_the_cores():
    assert plan_workers(3, 2) == (2, 1)  # the demo on a 2-core machine
    assert plan_workers(3, 8) == (3, 2)
    assert plan_workers(1, 4) == (1, 4)  # one run keeps every thread
    assert plan_workers(5, 1) == (1, 1)
    assert plan_workers(0, 4) == (1, 4)


def variant(cfg, tmp_path, name, **train):
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, runs_dir=str(tmp_path / name), **train)
    )


def test_runs_side_by_side_equal_the_same_runs_here_on_one_thread(tiny_cfg, tmp_path):
    cfgs = {
        "short": variant(tiny_cfg, tmp_path, "a", steps=4, seed=3),
        "long": variant(tiny_cfg, tmp_path, "b", steps=6, seed=5),
    }
    results = train_many(cfgs, cores=2, progress=False)
    assert list(results) == ["short", "long"]  # cfgs' order, whichever finished first
    assert [r.step for r in results.values()] == [4, 6]
    assert all(r.finished and r.stop_signal is None for r in results.values())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each process had one thread
    try:
        here = {name: train(variant(cfg, tmp_path, f"{name}-here"), progress=False)
                for name, cfg in cfgs.items()}  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    for name in cfgs:
        apart = load_file(results[name].run_dir / "model" / WEIGHTS_NAME)
        same = load_file(here[name].run_dir / "model" / WEIGHTS_NAME)
        assert apart.keys() == same.keys()
        assert all(torch.equal(apart[k], same[k]) for k in apart), name


def test_one_thread_trains_here_one_run_after_another(tiny_cfg, tmp_path, monkeypatch):
    import multiprocessing

    def no_processes(*args, **kwargs):
        raise AssertionError("one core must not start processes")

    monkeypatch.setattr(multiprocessing, "get_context", no_processes)
    cfgs = {n: variant(tiny_cfg, tmp_path, n, steps=2) for n in ("x", "y")}
    results = train_many(cfgs, cores=1, progress=False)
    assert [r.step for r in results.values()] == [2, 2]
    assert all((r.run_dir / "model" / WEIGHTS_NAME).is_file() for r in results.values())


def test_a_failing_run_raises_its_own_error_naming_the_file(tiny_cfg, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "photo").mkdir()
    (broken / "art").mkdir()
    (broken / "photo" / "bad.png").write_bytes(b"not a png")
    cfg = variant(tiny_cfg, tmp_path, "broken-runs", steps=2)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(broken)))
    good = variant(tiny_cfg, tmp_path, "good", steps=2)
    with pytest.raises(ValueError, match="0 usable images") as caught:
        train_many({"good": good, "broken": cfg}, cores=2, progress=False)
    with pytest.raises(type(caught.value)) as here:  # the type train() raises in-process
        train(cfg, progress=False)
    assert str(caught.value) == str(here.value)
    assert str(broken) in str(caught.value)


def test_sigint_checkpoints_every_run_and_they_resume(tiny_cfg, tmp_path):
    script = textwrap.dedent(
        f"""
        import dataclasses, json
        from culturegan.config import RunConfig
        from culturegan.training.side_by_side import train_many
        cfg = RunConfig.from_dict(json.loads({json.dumps(json.dumps(tiny_cfg.to_dict()))}))
        cfgs = {{n: dataclasses.replace(cfg, train=dataclasses.replace(
            cfg.train, runs_dir={str(tmp_path)!r} + "/" + n, steps=100000,
            checkpoint_every=100000, sample_every=100000, batch_size=1)) for n in ("p", "q")}}
        results = train_many(cfgs, cores=2, progress=False)
        print(json.dumps({{n: [str(r.run_dir), r.step, r.finished, r.stop_signal]
                          for n, r in results.items()}}))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # both runs have logged two steps
        logs = [next(iter((tmp_path / n).glob("*/log.jsonl")), None) for n in ("p", "q")]
        if all(log and log.read_text().count("\n") >= 2 for log in logs):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the runs did not start in 120 s")
    proc.send_signal(signal.SIGINT)  # to the parent only, as a terminal's Ctrl-C reaches it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    results = json.loads(out.strip().splitlines()[-1])
    assert set(results) == {"p", "q"}
    for run_dir, step, finished, stop_signal in results.values():
        assert not finished and stop_signal == signal.SIGINT and step >= 2
        assert load_training_state(f"{run_dir}/{CHECKPOINT_NAME}")["step"] == step
        resumed = train(resume_dir=run_dir, overrides={"train.steps": step + 1}, progress=False)
        assert resumed.finished and resumed.step == step + 1
