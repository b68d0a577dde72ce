"""Folder statistics: cache hits, invalidation, records and the `metrics fd|kd` command."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from culturegan.metrics.backbones import get_backbone
from culturegan.metrics.cli import register
from culturegan.metrics.features import default_cache_dir, folder_stats, get_stats
from culturegan.metrics.registry import append_jsonl, compute_metric


def _write_images(folder, n, seed, colour):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = np.clip(rng.normal(colour, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def folders(tmp_path):
    a = _write_images(tmp_path / "a", 5, seed=1, colour=(200, 60, 60))
    b = _write_images(tmp_path / "b", 5, seed=2, colour=(40, 90, 220))
    return a, b


def _handlers():
    parser = argparse.ArgumentParser(prog="culturegan")
    handlers = register(parser.add_subparsers(dest="command", required=True))
    return parser, handlers


def test_cache_hit_on_second_run_and_a_changed_file_invalidates(folders, tmp_path):
    a, _ = folders
    backbone = get_backbone("lite0")
    cache = tmp_path / "cache"
    first, hit = folder_stats(a, backbone, cache_dir=cache)
    assert not hit and first.n == 5
    entries = list(cache.glob("lite0-*.npz"))
    assert len(entries) == 1
    with np.load(entries[0], allow_pickle=False) as data:  # plain arrays, no pickle
        meta = json.loads(str(data["meta"]))
    assert meta["backbone"]["weight_sha256"] == backbone.weight_sha256

    second, hit = folder_stats(a, backbone, cache_dir=cache)
    assert hit
    np.testing.assert_allclose(second.cov, first.cov)
    np.testing.assert_array_equal(second.kd_features, first.kd_features)

    # Renaming keeps the contents: still a hit. Changing one file's bytes: a miss.
    shutil.move(a / "000.png", a / "renamed.png")
    assert folder_stats(a, backbone, cache_dir=cache)[1]
    _write_images(tmp_path / "other", 1, seed=9, colour=(0, 255, 0))
    shutil.copy(tmp_path / "other" / "000.png", a / "001.png")
    changed, hit = folder_stats(a, backbone, cache_dir=cache)
    assert not hit and not np.allclose(changed.mean, first.mean)
    assert len(list(cache.glob("*.npz"))) == 2
    # Other statistics options are another entry; use_cache=False touches nothing.
    assert not folder_stats(a, backbone, cache_dir=cache, max_kd_rows=3)[1]
    assert not folder_stats(a, backbone, cache_dir=cache, use_cache=False)[1]
    assert len(list(cache.glob("*.npz"))) == 3


def test_cache_dir_follows_the_environment(folders, tmp_path, monkeypatch):
    monkeypatch.setenv("CULTUREGAN_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env" / "stats"
    folder_stats(folders[0], get_backbone("lite0"))
    assert len(list((tmp_path / "env" / "stats").glob("*.npz"))) == 1


def test_unreadable_files_are_skipped_and_counted(folders, tmp_path):
    a, _ = folders
    (a / "broken.png").write_bytes(b"not a png")
    stats, _ = folder_stats(a, get_backbone("lite0"), use_cache=False)
    assert stats.n == 5 and stats.skipped == 1


def test_a_cache_hit_names_the_files_that_could_not_be_read_again(folders, tmp_path, caplog):
    a, _ = folders
    whole = (a / "000.png").read_bytes()
    (a / "truncated.png").write_bytes(whole[: len(whole) // 2])  # a valid header, half the data
    backbone = get_backbone("lite0")
    for expect_hit in (False, True):
        caplog.clear()
        with caplog.at_level("WARNING", logger="culturegan"):
            stats, hit = folder_stats(a, backbone, cache_dir=tmp_path / "cache")
        assert hit == expect_hit and stats.n == 5 and stats.skipped == 1
        warned = "\n".join(r.getMessage() for r in caplog.records)
        assert "truncated.png" in warned and "skipped 1 unreadable images of 6" in warned
        assert ("from the cache" in warned) == expect_hit


def test_fd_of_a_folder_with_itself_is_zero_and_records_name_and_hash(folders, tmp_path):
    a, b = folders
    cache = tmp_path / "cache"
    same = compute_metric("fd", a, a, backbone="lite0", cache_dir=cache)
    assert same.value == pytest.approx(0.0, abs=1e-6)
    assert same.metric == "fd_lite0" and same.backbone == "lite0"
    assert same.weight_sha256.startswith("57934424") and same.num_a == 5
    assert "fewer images than feature dimensions" in same.extra["warning"]
    different = compute_metric("fd", a, b, backbone="lite0", cache_dir=cache)
    assert different.value > 1.0 and different.extra["cache_hit_a"]
    kd = compute_metric("kd", a, b, backbone="lite0", cache_dir=cache, num_subsets=10)
    assert kd.metric == "kd_lite0" and kd.value > 0 and "std" in kd.extra
    log = append_jsonl(tmp_path / "m.jsonl", kd.to_dict())
    append_jsonl(log, same.to_dict())
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["metric"] for r in lines] == ["kd_lite0", "fd_lite0"]


def test_tensors_are_a_source_too():
    backbone = get_backbone("lite0")
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    stats, hit = get_stats(x, backbone, batch_size=2)
    assert stats.n == 3 and not hit
    record = compute_metric("fd", x, x, backbone=backbone)
    assert record.value == pytest.approx(0.0, abs=1e-6) and record.a == "<Tensor>"
    with pytest.raises(ValueError, match="unknown metric 'is'"):
        compute_metric("is", x, x)


def test_metrics_command_prints_and_appends_a_record(folders, tmp_path, capsys):
    a, b = folders
    parser, handlers = _handlers()
    log = tmp_path / "records.jsonl"
    argv = ["metrics", "kd", str(a), str(b), "--backbone", "lite0", "--subsets", "5"]
    argv += ["--cache-dir", str(tmp_path / "c"), "--jsonl", str(log), "--no-progress"]
    args = parser.parse_args(argv)
    assert handlers[args.command](args) == 0
    out = capsys.readouterr().out
    assert "kd_lite0 = " in out and "lite0@57934424" in out
    record = json.loads(log.read_text())
    assert record["backbone"] == "lite0" and record["extra"]["num_subsets"] == 5
    args = parser.parse_args(["metrics", "fd", str(a), str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match="missing"):
        handlers["metrics"](args)
    with pytest.raises(SystemExit):  # argparse refuses other metrics
        parser.parse_args(["metrics", "is", str(a), str(b)])
