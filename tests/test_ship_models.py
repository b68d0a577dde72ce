"""scripts/ship_models.py: a benchmarked model copied into a zoo with its card, or nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import load_script, save_tiny_model
from culturegan.inference import Stylizer
from culturegan.zoo import read_card

SCRIPT = Path(__file__).parents[1] / "scripts" / "ship_models.py"


@pytest.fixture(scope="module")
def ship_models():
    return load_script(SCRIPT, "ship_models")


def results_for(tmp_path: Path) -> tuple[dict, Path]:
    """A quality_cultures.py results file of one direction, two candidates (A: the higher hit
    rate but SSIM under 0.30; B: lower hit rate, the photo kept), and the data's manifest."""
    models = {}
    for name in ("A", "B"):
        folder = save_tiny_model(tmp_path / "runs" / name)
        models[name] = {
            "model": str(folder), "domains": ["photo", "ukiyoe"], "preset": "fewshot_structure",
            "overrides": {}, "batch_size": 1, "seed": 0, "steps": 10, "minutes": 0.1,
            "config": {"train": {"recipe": "cut"}, "model": {"generator": "tiny"},
                       "data": {"crop_size": 64}},
        }  # fmt: skip
    row = {"reference": False, "verdicts": {"ukiyoe": 3, "photo": 1}, "kd_lite0": 0.2}
    results = {
        "machine": {"cpu": "test CPU", "matmul_peak_gflops": 70.0},
        "threads": 2,
        "command": "python benchmarks/quality_cultures.py ...",
        "judge": {"summary": "a test judge"},
        "split": {"files": {"photo": {"train": ["p1", "p2"]}, "ukiyoe": {"train": ["u1"]}}},
        "directions": {
            "photo->ukiyoe": {
                "target": "ukiyoe",
                "num_test_photos": 4,
                "rows": [
                    {
                        "candidate": "test photos unchanged (floor)",
                        "reference": True,
                        "kd_lite0": 0.3,
                    },
                    {"candidate": "training art of ukiyoe (ceiling)", "reference": True},
                    {
                        **row,
                        "candidate": "A",
                        "hit_rate": 0.9,
                        "mean_target_prob": 0.8,
                        "ssim_grey": 0.25,
                    },
                    {
                        **row,
                        "candidate": "B",
                        "hit_rate": 0.7,
                        "mean_target_prob": 0.6,
                        "ssim_grey": 0.35,
                        "grid_peak": 3.14,
                    },
                ],
            }
        },  # fmt: skip
        "models": {"photo->ukiyoe": models},
    }
    data = tmp_path / "data"
    data.mkdir()
    with (data / "MANIFEST.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["domain", "licence_note", "source_repo", "source_path"])
        writer.writerow(["ukiyoe", "public domain (test)", "org/prints", "img/a.jpg"])
        writer.writerow(["photo", "CC0 (test)", "org/photos", "img/b.jpg"])
    return results, data


def test_ship_copies_the_best_readable_candidate_with_its_card(tmp_path, ship_models):
    results, data = results_for(tmp_path)
    zoo = tmp_path / "zoo"
    (zoo / "chinese_ink").mkdir(parents=True)
    (zoo / "chinese_ink" / "model.safetensors").write_bytes(b"another culture's model")
    written = ship_models.ship(results, "best", zoo, data, finish="print", shifts=8)
    assert written == [zoo / "ukiyoe"]
    # "best" skips A (SSIM 0.25, under the content floor) for B.
    src = Path(results["models"]["photo->ukiyoe"]["B"]["model"])
    shipped = zoo / "ukiyoe"
    assert (shipped / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    card = read_card(shipped / "README.md")
    assert card["candidate"] == "B" and card["judge_hit_rate"] == 0.7
    assert card["finish"] == "print" and card["kd_lite0_photos"] == 0.3
    assert card["training_images"] == "photo 2, ukiyoe 1"
    text = (shipped / "README.md").read_text()
    assert "public domain (test)" in text and "Recommended finish: `--finish print`" in text
    assert card["shifts"] == 8 and "Recommended passes: `--shifts 8`" in text
    assert card["grid_peak"] == 3.1 and "photos and paintings): 3.1." in text
    Stylizer.from_pretrained(shipped)  # it loads
    # The other culture's model stays, and nothing hidden is left behind.
    assert (zoo / "chinese_ink" / "model.safetensors").read_bytes() == b"another culture's model"
    assert sorted(p.name for p in zoo.iterdir()) == ["chinese_ink", "ukiyoe"]


def test_ship_refuses_before_replacing_anything(tmp_path, ship_models, monkeypatch):
    results, data = results_for(tmp_path)
    zoo = tmp_path / "zoo"
    (zoo / "ukiyoe").mkdir(parents=True)
    (zoo / "ukiyoe" / "model.safetensors").write_bytes(b"the model shipped before")
    with pytest.raises(ValueError, match="unknown finish 'oil'"):
        ship_models.ship(results, "B", zoo, data, finish="oil")
    with pytest.raises(ValueError, match="shifts must be one of 1, 4, 8, 16"):
        ship_models.ship(results, "B", zoo, data, shifts=3)
    with pytest.raises(SystemExit, match="no candidate 'C' for ukiyoe"):
        ship_models.ship(results, "C", zoo, data)
    monkeypatch.setattr(ship_models, "LIMIT_BYTES", 1000)  # the zoo's size limit (15 MB)
    with pytest.raises(SystemExit, match=r"over the 0\.001 MB limit"):
        ship_models.ship(results, "B", zoo, data)
    assert (zoo / "ukiyoe" / "model.safetensors").read_bytes() == b"the model shipped before"
    assert sorted(p.name for p in zoo.iterdir()) == ["ukiyoe"]  # no hidden staging folder
