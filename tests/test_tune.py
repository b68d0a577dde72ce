"""culturegan tune: search space checks, the score, and a tiny resumable study."""

from __future__ import annotations

import csv

import pytest
import yaml

from conftest import write_domain
from culturegan.cli import main
from culturegan.config import load_config
from culturegan.tune import ValidationScorer, baseline_params, combined_score, load_space

pytest.importorskip("optuna")


def test_search_space_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text(yaml.safe_dump({"loss.lambda_content": {"float": [2.0, 1.0]}}))
    with pytest.raises(ValueError, match="space.yaml.*lambda_content.*low < high"):
        load_space(bad)
    bad.write_text(yaml.safe_dump({"loss.no_such_field": {"float": [0.0, 1.0]}}))
    with pytest.raises(ValueError, match="unknown field 'loss.no_such_field'"):
        load_space(bad)
    bad.write_text(yaml.safe_dump({"loss.lambda_gan": {"float": [0, 1], "int": [0, 1]}}))
    with pytest.raises(ValueError, match="exactly one of"):
        load_space(bad)


def test_score_rewards_the_style_and_penalises_a_lost_photo():
    good = {"hit_rate": 1.0, "mean_target_prob": 0.8, "ssim_grey": 0.5}
    assert combined_score({"a": good}, 0.3) == pytest.approx(0.9)
    wrecked = {**good, "ssim_grey": 0.1}  # 0.2 under the floor: minus 0.4
    assert combined_score({"a": good, "b": wrecked}, 0.3) == pytest.approx((0.9 + 0.5) / 2)


@pytest.mark.slow
def test_a_tiny_study_runs_reports_and_resumes(tiny_data, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {"loss.lambda_identity": {"float": [0.1, 1.0]}, "model.ngf": {"choices": [4, 8]}}
        )
    )
    out = tmp_path / "tune"
    args = ["tune", "--config", "cyclegan_tiny", "--space", str(space), "--out", str(out),
            "--minutes-per-trial", "0.01", "--rungs", "2", "--judge-backbone", "lite0",
            "--data.root", str(tiny_data), "--data.domains", "photo,art",
            "--data.split_ratios", "0.4,0.6,0", "--data.load_size", "36",
            "--data.crop_size", "32", "--model.ndf", "4", "--model.ngf", "8"]  # fmt: skip
    assert main([*args, "--trials", "2"]) == 0
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 2 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert all(r["model.ngf"] in {"4", "8"} for r in rows)
    # Trial 0 is the baseline: the config's own values (cyclegan_tiny's identity 0.5, ngf 8).
    assert float(rows[0]["loss.lambda_identity"]) == 0.5 and rows[0]["model.ngf"] == "8"
    assert 0.0 <= float(rows[0]["hit_rate"]) <= 1.0 and float(rows[0]["ssim_grey"]) > 0.0
    report = (out / "report.md").read_text()
    assert "Best: trial" in report and "| 0 (baseline) |" in report
    assert "judge on lite0@" in report and "artifact" in report
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert set(best) == {"loss", "model"} and 0.1 <= best["loss"]["lambda_identity"] <= 1.0
    # The study lives in SQLite: asking for 3 trials in all runs one more.
    assert main([*args, "--trials", "3"]) == 0
    assert len(list(csv.DictReader((out / "trials.csv").open()))) == 3


def test_the_baseline_is_the_configs_own_values_or_none():
    cfg = load_config("cyclegan_tiny")  # ngf 16, identity 0.5, batch 4
    space = {
        "model.ngf": {"choices": [8, 16]},
        "loss.lambda_identity": {"float": [0.1, 1.0]},
        "train.batch_size": {"int": [1, 4]},
    }
    assert baseline_params(cfg, space) == {
        "model.ngf": 16,
        "loss.lambda_identity": 0.5,
        "train.batch_size": 4,
    }
    assert baseline_params(cfg, {**space, "model.ngf": {"choices": [4, 8]}}) is None
    assert baseline_params(cfg, {"train.batch_size": {"int": [1, 2]}}) is None


@pytest.mark.slow
def test_the_judge_learns_further_domains_and_a_reject_class(tiny_data):
    write_domain(tiny_data / "other", 10, "art", seed=3)
    overrides = {
        "data.root": str(tiny_data),
        "data.domains": "photo,art",
        "data.split_ratios": "0.4,0.6,0",
    }
    plain = ValidationScorer(load_config("cyclegan_tiny", overrides), backbone="lite0", seed=0)
    assert plain.judge.config["classes"] == ["photo", "art", "artifact"]
    wider = ValidationScorer(
        load_config("cyclegan_tiny", overrides),
        backbone="lite0",
        seed=0,
        judge_domains=["other"],
    )
    assert wider.judge.config["classes"] == ["photo", "art", "other", "artifact"]
    assert wider.targets == ["art"] and wider.test_photos == plain.test_photos
    # The further domain's validation images, not its training ones, teach the judge.
    files = wider.judge.config["training_files"]["other"]
    assert files and all("other" in str(f) for f in files) and len(files) < 10
    with pytest.raises(ValueError, match="reject class"):
        ValidationScorer(
            load_config("cyclegan_tiny", overrides),
            backbone="lite0",
            seed=0,
            judge_domains=["artifact"],
        )
