"""Provenance of a culture study (sources, licences, confounds) and classifier intervals."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from culturegan.culture.analysis import analyze_cultures
from culturegan.culture.classify import cross_validate
from culturegan.culture.compare import CompareSettings
from culturegan.culture.descriptors import list_descriptors
from culturegan.data.synthetic import make_art_image

FAST = CompareSettings(n_boot=200, n_perm=50, n_perm_distance=20, folds=3)
INTERVAL = re.compile(r"^\d{1,3}\.\d% \[\d{1,3}\.\d, \d{1,3}\.\d\]$")  # "92.5% [88.1, 95.9]"


def write_art(root: Path, styles: tuple[str, ...], n: int) -> Path:
    for k, style in enumerate(styles):
        (root / style).mkdir(parents=True)
        for i in range(n):
            make_art_image(style, 100 * k + i, 32).save(root / style / f"{i:02d}.png")
    return root


def write_manifest(path: Path, key: str, rows: list[tuple], extra: tuple[str, ...] = ()) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([key, "source", "licence", *extra])
        writer.writerows(rows)


def analyze(root: Path, out: Path, **kwargs):
    result = analyze_cultures(
        root, out, size=32, embeddings=False, settings=FAST, progress=False, **kwargs
    )
    return result, json.loads(result.summary_json.read_text())


def test_one_source_per_culture_is_reported_and_warned(tmp_path):
    root = write_art(tmp_path / "art", ("ink_wash", "woodblock"), 8)
    write_manifest(
        root / "manifest.csv",
        "path",
        [(f"ink_wash/{i:02d}.png", "museum", "CC0") for i in range(8)]
        + [(f"woodblock/{i:02d}.png", "scrape", "PD" if i < 3 else "CC0") for i in range(8)],
    )
    result, summary = analyze(root, tmp_path / "out")
    provenance = summary["provenance"]
    assert provenance["by_culture"]["woodblock"] == {
        "sources": {"scrape": 8},
        "licences": {"CC0": 5, "PD": 3},
    }
    assert provenance["single_source_cultures"] == {"ink_wash": "museum", "woodblock": "scrape"}
    assert provenance["source_names_culture"] == 1.0
    assert any(w.startswith("culture and source are confounded") for w in result.warnings)
    html = result.index_html.read_text()
    assert "Where the images come from" in html and "<td>scrape: 8</td>" in html
    assert "<td>CC0: 5; PD: 3</td>" in html and "culture and source are confounded" in html
    with open(tmp_path / "out" / "classifiers.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["labels"] for r in rows if r["comparison"].startswith("provenance")] == [
        "source",
        "culture",
    ]


def test_sources_crossed_with_cultures_raise_no_warning(tmp_path):
    # Per-culture manifests with a `file` column and a museum's own `culture` field, as
    # `culturegan fetch` writes them.
    root = write_art(tmp_path / "art", ("ink_wash", "woodblock"), 12)
    for style in ("ink_wash", "woodblock"):
        write_manifest(
            root / style / "manifest.csv",
            "file",
            [
                (f"{i:02d}.png", "museum" if i % 2 else "archive", "CC0", "Chinese")
                for i in range(12)
            ],
            extra=("culture",),
        )
    result, summary = analyze(root, tmp_path / "out")
    provenance = summary["provenance"]
    assert summary["settings"]["manifest_matched"] == 24
    assert summary["settings"]["manifest_columns"] == ["source", "licence", "manifest_culture"]
    assert provenance["by_culture"]["ink_wash"]["sources"] == {"archive": 6, "museum": 6}
    assert provenance["single_source_cultures"] == {} and provenance["warnings"] == []
    source, culture = provenance["source_classifier"], provenance["culture_classifier"]
    assert source["n_images"] == culture["n_images"] == 24
    assert culture["accuracy"] > source["accuracy"]
    assert not any("source" in w for w in result.warnings)


def test_a_source_that_separates_the_images_is_warned(tmp_path):
    # Two "cultures" drawn alike; one source darkens its scans, and holds most of the north's
    # pictures but few of the south's: the descriptors tell the sources apart better than the
    # cultures, although no culture comes from one source alone.
    rows = []
    for culture, n_scanned in (("north", 8), ("south", 2)):
        (tmp_path / "art" / culture).mkdir(parents=True)
        for i in range(10):
            image = np.asarray(make_art_image("ink_wash", 1000 * len(culture) + i, 32))
            source = "scanner" if i < n_scanned else "camera"
            if source == "scanner":
                image = (image * 0.4).astype(np.uint8)
            Image.fromarray(image).save(tmp_path / "art" / culture / f"{i:02d}.png")
            rows.append((f"{culture}/{i:02d}.png", source, "CC0"))
    write_manifest(tmp_path / "art" / "manifest.csv", "path", rows)
    result, summary = analyze(tmp_path / "art", tmp_path / "out")
    provenance = summary["provenance"]
    assert provenance["single_source_cultures"] == {}
    source, culture = provenance["source_classifier"], provenance["culture_classifier"]
    assert source["accuracy"] > culture["accuracy"]
    assert any(w.startswith("the descriptors tell the sources apart") for w in result.warnings)


def test_the_hand_crafted_descriptors_have_their_own_classifier_row(tmp_path):
    root = write_art(tmp_path / "art", ("ink_wash", "woodblock"), 8)
    result, summary = analyze(root, tmp_path / "out")
    classifiers = summary["comparisons"][0]["classifiers"]
    assert classifiers["descriptors"]["n_features"] == len(list_descriptors()) == 29
    assert "gram" not in classifiers  # no embeddings, no Gram summaries
    html = result.index_html.read_text()
    assert "interpretable descriptors (hand-crafted)" in html
    assert summary["provenance"] is None and "Where the images come from" not in html


def test_accuracy_intervals_contain_the_estimate_and_widen_with_fewer_images():
    g = np.random.default_rng(0)

    def noisy(n_per_class: int):
        labels = np.repeat(["ink", "oil"], n_per_class)
        x = g.normal(size=(2 * n_per_class, 3))
        x[n_per_class:, 0] += 1.5  # overlapping classes: accuracy near 75%
        return cross_validate(x, labels, rng=g, n_boot=2000)

    few, many = noisy(15), noisy(150)
    for cv in (few, many):
        assert cv.ci_low <= cv.accuracy <= cv.ci_high and cv.ci_low < cv.ci_high
        assert INTERVAL.match(cv.accuracy_text())
        assert cv.to_dict()["accuracy_text"] == cv.accuracy_text()
    assert few.ci_high - few.ci_low > 1.5 * (many.ci_high - many.ci_low)
    # Every prediction right: an exact bound, not a zero-width bootstrap interval.
    labels = np.repeat(["ink", "oil"], 10)
    x = np.repeat([[0.0], [10.0]], 10, axis=0) + g.normal(size=(20, 1)) * 0.1
    perfect = cross_validate(x, labels, rng=g)
    assert perfect.accuracy == 1.0 and perfect.ci_high == 1.0
    assert perfect.ci_low == pytest.approx(0.025 ** (1 / 20))
    assert "Clopper-Pearson" in perfect.ci_method


def test_intervals_are_in_the_json_csv_and_report(tmp_path):
    root = write_art(tmp_path / "art", ("ink_wash", "woodblock"), 8)
    result, summary = analyze(root, tmp_path / "out")
    clf = summary["comparisons"][0]["classifiers"]["descriptors"]
    low, high = clf["accuracy_ci"]
    assert low <= clf["accuracy"] <= high and INTERVAL.match(clf["accuracy_text"])
    pair = summary["comparisons"][0]["pairs"][0]["classifier"]
    assert INTERVAL.match(pair["accuracy_text"])
    with open(tmp_path / "out" / "classifiers.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["accuracy_text"] == clf["accuracy_text"]
    assert all(INTERVAL.match(r["accuracy_text"]) for r in rows)
    assert clf["accuracy_text"] in result.index_html.read_text()
    assert clf["accuracy_text"] in result.headline()
