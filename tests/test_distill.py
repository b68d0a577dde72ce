"""Distillation: a fast student learns to imitate a trained two-domain teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from culturegan.cli import main
from culturegan.inference import Stylizer
from culturegan.training import train


def test_distill_student_imitates_the_teacher(tiny_cfg, tmp_path, capsys):
    teacher = train(tiny_cfg, progress=False).run_dir / "model"
    runs = tmp_path / "distill_runs"
    code = main(["distill", "--teacher", str(teacher), "--config", "distill_fast", "--no-progress",
                 "--data.root", tiny_cfg.data.root, "--data.domains", "photo",
                 "--data.load_size", "36", "--data.crop_size", "32",
                 "--model.generator", "mobile_resnet_3blocks", "--model.ngf", "8",
                 "--train.steps", "30", "--train.log_every", "5", "--train.sample_every", "30",
                 "--train.checkpoint_every", "30", "--train.num_samples", "2",
                 "--train.runs_dir", str(runs)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "student vs teacher on held-out photos" in out
    (run,) = list(runs.iterdir())
    logged = [json.loads(line)["loss/distill"] for line in (run / "log.jsonl").open()]
    assert logged[-1] < logged[0]  # the student gets closer to the teacher
    gap = json.loads((run / "distill_gap.json").read_text())
    assert 0 <= gap["mean_abs_diff_0_255"] < 255 and gap["images"] >= 1

    student = Stylizer.from_pretrained(run / "model")
    assert student.directions == {"photo->art": "g_ab"}
    assert student.networks["g_ab"].config["name"] == "mobile_resnet_3blocks"
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
    assert student(photo).images[0].size == (40, 40)


def test_distill_needs_a_two_domain_teacher_and_one_domain(tiny_cfg, tmp_path, capsys):
    base = ["distill", "--config", "distill_fast", "--data.root", tiny_cfg.data.root,
            "--train.runs_dir", str(tmp_path / "r")]  # fmt: skip
    assert main([*base, "--teacher", str(tmp_path / "nope"), "--data.domains", "photo"]) == 2
    assert "does not exist" in capsys.readouterr().err
    teacher = train(tiny_cfg, progress=False).run_dir / "model"
    assert main([*base, "--teacher", str(teacher)]) == 2  # photo and art: which one?
    assert "--data.domains SOURCE" in capsys.readouterr().err


@pytest.mark.parametrize("direction", ["photo>art", "photo->ukiyoe"])
def test_bad_teacher_direction(tiny_cfg, direction, capsys, tmp_path):
    teacher = train(tiny_cfg, progress=False).run_dir / "model"
    code = main(["distill", "--teacher", str(teacher), "--data.root", tiny_cfg.data.root,
                 "--data.domains", "photo", "--model.teacher_direction", direction,
                 "--train.runs_dir", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
    assert direction.split("->")[-1] in capsys.readouterr().err
