"""Studies bigger than one machine: streamed arrays, resuming a killed run, Dask workers."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from culturegan.culture import stream
from culturegan.culture.analysis import analyze_cultures
from culturegan.culture.compare import CompareSettings
from culturegan.culture.descriptors import list_descriptors
from culturegan.culture.executors import open_executor
from culturegan.data.synthetic import make_art_image

FAST = CompareSettings(n_boot=50, n_perm=50, n_perm_distance=10, folds=3)
STYLES = ("ink_wash", "woodblock", "impasto")
PER_CULTURE = 8
SIZE = 64


class TinyNet(nn.Module):
    """A fixed random conv net with the Backbone ``extract`` contract (9 pooled features)."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=generator) * 0.3

    def extract(self, x):
        h1 = torch.relu(self.a(x))
        h2 = torch.relu(self.b(h1))
        return torch.cat([h2.mean((2, 3)), x.mean((2, 3))], 1), [h1, h2]


def _identity(x):
    return x


@pytest.fixture(scope="module")
def tiny_backbone():
    from culturegan.metrics.backbones import Backbone

    return Backbone(
        "tiny",
        TinyNet(),
        weight_sha256="1" * 64,
        input_size=32,
        antialias=True,
        normalise=_identity,
        preprocessing="tiny 32x32",
        dim=9,
    )


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("art")
    for k, style in enumerate(STYLES):
        (root / style).mkdir()
        for i in range(PER_CULTURE):
            make_art_image(style, 50 * k + i, SIZE).save(root / style / f"{i:02d}.png")
    (root / "impasto" / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # skipped
    return root


def _rows(result) -> list[dict[str, str]]:
    with open(result.descriptors_csv, newline="") as fh:
        return list(csv.DictReader(fh))


def _run(art: Path, out: Path, backbone, **kwargs):
    return analyze_cultures(
        art, out, size=SIZE, backbone=backbone, settings=FAST, progress=False, **kwargs
    )


@pytest.fixture(scope="module")
def local_run(art, tiny_backbone, tmp_path_factory):
    return _run(art, tmp_path_factory.mktemp("local"), tiny_backbone, workers=1)


def test_rows_stream_into_npy_arrays_in_table_order(local_run):
    out = local_run.out_dir
    rows = _rows(local_run)
    assert len(rows) == len(STYLES) * PER_CULTURE  # the torn file is skipped, not a row
    descriptors = np.load(out / "arrays" / "descriptors.npy")
    names = [*list_descriptors(), *(n for n in rows[0] if n.startswith("gram_"))]
    assert descriptors.shape == (len(rows), len(names))
    from_csv = np.array([[float(r[n]) for n in names] for r in rows])
    np.testing.assert_array_equal(descriptors, from_csv)
    assert np.load(out / "arrays" / "tiny.npy").shape == (len(rows), 9)
    assert not list((out / "arrays").glob("*.partial"))
    speed = json.loads(local_run.summary_json.read_text())["throughput"]
    assert speed["computed"] == len(rows) and speed["from_cache"] == 0 and speed["failed"] == 0
    assert speed["images"] == len(rows) and speed["images_per_second"] > 0


def test_killed_run_resumes_computing_only_what_is_left(art, tiny_backbone, local_run, tmp_path):
    real = stream.analyse_chunk
    calls: list[int] = []

    def dies_on_the_second_chunk(tasks, size, backbone):
        calls.append(len(tasks))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(tasks, size, backbone)

    patch = pytest.MonkeyPatch()
    patch.setattr(stream, "analyse_chunk", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        _run(art, tmp_path / "study", tiny_backbone, workers=1)
    done = calls[0]
    assert done == stream.CHUNK_SIZE  # the first chunk finished and was cached
    assert not list((tmp_path / "study" / "arrays").glob("*.npy*"))  # no half array left

    calls.clear()
    patch.setattr(stream, "analyse_chunk", lambda *a: calls.append(len(a[0])) or real(*a))
    again = _run(art, tmp_path / "study", tiny_backbone, workers=1)
    patch.undo()
    total = len(STYLES) * PER_CULTURE
    assert sum(calls) == total - done
    assert again.throughput["from_cache"] == done
    assert again.throughput["computed"] == total - done
    assert _rows(again) == _rows(local_run)


def test_dask_workers_give_the_local_results(art, tiny_backbone, local_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = _run(
            art,
            tmp_path / "dask",
            tiny_backbone,
            executor="dask",
            scheduler=cluster.scheduler_address,
        )
    assert (
        result.throughput["executor"].startswith("dask")
        and "2 workers" in (result.throughput["executor"])
    )
    assert result.throughput["computed"] == len(STYLES) * PER_CULTURE  # all on the workers
    local, remote = _rows(local_run), _rows(result)
    assert [r["path"] for r in remote] == [r["path"] for r in local]  # same order
    crafted = list_descriptors()
    for a, b in zip(local, remote, strict=True):
        assert [a[n] for n in crafted] == [b[n] for n in crafted]  # numpy: bit for bit
        assert a["palette"] == b["palette"]
    # The backbone runs in float32 in other processes (other thread counts): each feature is a
    # sum of at most 4 * 3 * 3 = 36 products, so allow 36 float32 roundings of its magnitude.
    tol = 36 * np.finfo(np.float32).eps
    for name in ("descriptors", "tiny", "tiny_channel_stats"):
        x = np.load(local_run.out_dir / "arrays" / f"{name}.npy")
        y = np.load(result.out_dir / "arrays" / f"{name}.npy")
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * np.abs(x).max())


def test_dask_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"culturegan\[scale\]"), open_executor("dask"):
        pass
    local = open_executor("local", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="--executor dask"), local:
        pass
