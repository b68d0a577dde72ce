"""Every HTML page escapes what users name: cultures, domains, files, manifest values, notes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from culturegan.culture.analysis import analyze_cultures, build_maps
from culturegan.culture.compare import CompareSettings
from culturegan.culture.descriptors import list_descriptors
from culturegan.culture.report import write_analysis_report
from culturegan.culture.table import DescriptorTable
from culturegan.culture.transfer_report import write_transfer_outputs
from culturegan.data.synthetic import make_art_image
from culturegan.demo import write_demo_page
from culturegan.metrics.report_page import write_eval_page

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
XSS_FILE = "<img src=x onerror=alert(1)>"  # a legal file name, unlike XSS (it has a "/")


def assert_escaped(html: str) -> None:
    assert XSS not in html and XSS_FILE not in html
    assert ESCAPED in html
    assert "<script" not in html.lower() and "<img src=x" not in html


def picture(path: Path, seed: int = 0, style: str = "woodblock") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_art_image(style, seed, 32).save(path)
    return path


def renamed(value, old: str, new: str):
    """``value`` (JSON data) with ``old`` replaced by ``new`` in every string and key."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {renamed(k, old, new): renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    return value


def test_culture_report_escapes_culture_file_and_manifest_names(tmp_path):
    root = tmp_path / "art"
    for k, culture in enumerate(("ink_wash", "woodblock")):
        for i in range(6):
            picture(root / culture / f"{i}.png", 10 * k + i, culture)
    (root / "woodblock" / f"{XSS_FILE}.png").write_bytes(b"not a png")  # skipped and listed
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "licence"])
        for culture in ("ink_wash", "woodblock"):
            writer.writerows([(f"{culture}/{i}.png", XSS, XSS_FILE) for i in range(6)])
    out = tmp_path / "out"
    result = analyze_cultures(
        root,
        out,
        size=32,
        embeddings=False,
        settings=CompareSettings(n_boot=50, n_perm=20, n_perm_distance=10, folds=3),
        title=XSS,
        note=XSS_FILE,
        progress=False,
    )
    assert_escaped(result.index_html.read_text())
    # A culture named XSS: folder names cannot hold "/", so rename it in the study's data.
    summary = renamed(json.loads(result.summary_json.read_text()), "ink_wash", XSS)
    table = DescriptorTable.read_csv(result.descriptors_csv, descriptors=list_descriptors())
    table.culture = [XSS if c == "ink_wash" else c for c in table.culture]
    thumbs = {i: f"thumbs/{c}/{i}.jpg" for i, c in enumerate(table.culture)}
    page = write_analysis_report(
        tmp_path / "renamed", summary, table, build_maps(table, {}, seed=0), thumbs
    )
    html = page.read_text()
    assert_escaped(html)
    assert f"thumbs/{ESCAPED}/0.jpg" in html  # in <img src> and in the maps' <image href>


def _table(names: list[str], files: list[str], group: str) -> DescriptorTable:
    n = len(files)
    values = np.random.default_rng(len(group)).normal(size=(n, len(names)))
    return DescriptorTable(names, values, [group] * n, files, ["0" * 64] * n, [32] * n,
                           [32] * n, ["#112233:1.0000"] * n)  # fmt: skip


def test_transfer_report_escapes_target_and_file_names(tmp_path):
    names = list_descriptors()
    files = [f"{XSS_FILE}{i}.png" for i in range(4)]
    for i, f in enumerate(files):
        picture(tmp_path / "photos" / f, i)
        picture(tmp_path / "stylized" / f, 10 + i)
    row = {"photos": 0.1, "outputs": 0.2, "art": 0.3, "change_sd": 1.0, "share_closed": 0.5}
    summary = {
        "targets": [XSS],
        "photos": XSS_FILE,
        "model": XSS,
        "source": XSS,
        "working_size": 32,
        "learned": {"label": XSS},
        "skipped": [{"path": XSS_FILE, "reason": XSS}],
        "per_target": {
            XSS: {
                "n_photos": 4, "n_outputs": 4, "n_art": 4, "gap_closed": 0.5,
                "gap_closed_projection": 0.4, "distance_before_sd": 2.0, "distance_after_sd": 1.0,
                "embedding": {"gap_closed_frechet": 0.3}, "classified_as_target": 0.5,
                "most_changed": names[:2], "descriptors": {n: row for n in names},
                "classified_as": {XSS: 0.5, "photos": 0.5},
            }
        },
    }  # fmt: skip
    art = _table(names, [f"{XSS_FILE}art{i}.png" for i in range(4)], XSS)
    index, _ = write_transfer_outputs(
        tmp_path / "out",
        summary,
        _table(names, files, "photos"),
        {XSS: _table(names, files, XSS)},
        {XSS: art},
        tmp_path / "photos",
        tmp_path / "stylized",
        tmp_path / "art",
    )
    assert_escaped(index.read_text())


def test_eval_page_escapes_domain_and_file_names(tmp_path):
    example = {"input": f"ex/{XSS}/in.png", "output": f"ex/{XSS_FILE}.png", "samples": [XSS]}
    metrics = {"fd_lite0": 1.5, "kd_lite0": 0.1, "kd_lite0_std": 0.01, "ssim": 0.5}
    backbone = {"weight_sha256": "ab" * 32, "preprocessing": XSS, "classes": [XSS]}
    result = {
        "backbones": {"lite0": backbone},
        "pairs": {
            f"photo->{XSS}": {"metrics": metrics, "num_inputs": 3, "num_reference": 4,
                              "examples": [example]}
        },
        "domains": ["photo", XSS, XSS_FILE],
        "matrices": {"fd_lite0": [[None, 1.0, 2.0], [1.0, None, 3.0], [2.0, 3.0, None]]},
        "metrics": metrics,
        "primary": XSS,
        "split": XSS,
        "notes": [XSS_FILE],
    }  # fmt: skip
    page = write_eval_page(tmp_path / "index.html", result, model=XSS, data=XSS_FILE)
    html = page.read_text()
    assert_escaped(html)
    assert "1.5<br><small>lite0@abababababab</small>" in html and "&plusmn; 0.01" in html


def test_demo_page_escapes_domain_and_file_names(tmp_path):
    out = tmp_path / "demo"
    data = out / "data"
    photo = picture(data / "_heldout_photos" / f"{XSS_FILE}.png")
    picture(data / "photo" / "0.png")
    picture(data / XSS / f"{XSS_FILE}.png")  # "/" in the name: nested folders
    output = picture(out / "stylized" / XSS / f"{XSS_FILE}.png", 1)
    grid = picture(out / "grid.png", 2)
    run = out / "runs" / XSS
    run.mkdir(parents=True)
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "loss/content": 1.0}) + "\n")
    shipped = {
        "models": [XSS],
        "columns": [XSS, f"{XSS} + print"],
        "rows": [
            (XSS, "shipped/photos/a.png", [(XSS, f"shipped/{XSS_FILE}.png")] * 2),
        ],
        "side": 256,
        "seconds": "1.0",
        "scores": [[XSS, XSS_FILE, "1 MB", "50%", "0.50"]],
    }
    page = write_demo_page(
        out,
        runs={XSS: run},
        recipe="fewshot",
        data_root=data,
        domains=["photo", XSS],
        photos=[photo],
        stylized={XSS: {photo.stem: output}},
        grid_path=grid,
        analysis={"figures": {XSS: XSS_FILE}, "page": out / "analysis" / "index.html"},
        figures={XSS: XSS_FILE},
        shipped=shipped,
    )
    html = page.read_text()
    assert_escaped(html)
    assert "<svg" in html  # the loss curve, drawn by culturegan, is not escaped
