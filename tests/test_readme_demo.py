"""The README's two commands, the CI script, and the demo end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from culturegan.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_readme_opens_with_the_demo_and_test_commands():
    demo, tests = readme_commands()
    assert demo.endswith("culturegan demo") and "torch==2.13.0" in demo
    assert tests.endswith("pytest") and '".[dev]"' in tests
    # CI runs exactly the README's test command.
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize("recipe", ["fewshot", "multidomain", "cyclegan"])
def test_demo_end_to_end_fast(tmp_path, capsys, recipe):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast", "--recipe", recipe]) == 0
    page = out / "index.html"
    assert f"demo page: {page.resolve()}" in capsys.readouterr().out
    html = page.read_text()
    assert "Synthetic art" in html and "<svg" in html
    links = re.findall(r'<img src="([^"]+)"', html)
    assert len(links) >= 10
    for link in links + re.findall(r'<a href="([^"]+)"', html):
        assert (out / unquote(link)).is_file(), link
    if recipe != "cyclegan":
        assert "The synthetic cultures, measured" in html
        assert (out / "analysis" / "index.html").is_file()
    stylized = sorted((out / "stylized").glob("*/*.png"))
    heldout = sorted((out / "data" / "_heldout_photos").glob("*.png"))
    n_targets = 1 if recipe == "cyclegan" else 3
    assert len(stylized) == n_targets * len(heldout) >= 4
    assert (out / "grid.png").is_file()
    models = sorted((out / "runs").glob("*/model"))
    assert len(models) == (3 if recipe == "fewshot" else 1)  # fewshot: one model per culture
    assert all((model / "model.safetensors").is_file() for model in models)
    if recipe == "fewshot":  # impasto alone keeps its losses at 64 px (demo.CULTURE_OVERRIDES)
        sizes = {
            run.name.split("-", 2)[-1]: json.loads((run / "config.json").read_text())["loss"][
                "perceptual_size"
            ]
            for run in sorted((out / "runs").iterdir())
        }
        assert sizes == {"demo-ink_wash": 128, "demo-woodblock": 128, "demo-impasto": 0}
        # --fast (like --steps) is one length for every culture, whatever CULTURE_STEPS says.
        lengths = {
            json.loads((run / "config.json").read_text())["train"]["steps"]
            for run in (out / "runs").iterdir()
        }
        assert lengths == {6}
        assert "per-culture settings" in html and "loss.perceptual_size=128" in html
        # woodblock paints with its 8 inks, not blends of them (model.palette_hard).
        for picture in sorted((out / "stylized").glob("woodblock/*.png")):
            colours = np.asarray(Image.open(picture).convert("RGB")).reshape(-1, 3)
            assert len(np.unique(colours, axis=0)) <= 8, picture
    # Section 0: every shipped model on scikit-image's photos, before any training.
    assert "Models that ship with culturegan" in html
    assert len(sorted((out / "shipped").glob("*/*.png"))) >= 5 * 5  # 5 photos, 4 models + photos
    # Each culture's hit rate comes with its 95% interval, and the interval holds the rate.
    judged = re.findall(
        r"held-out photos judged (\w+)</td><td>(\d+)% of (\d+) "
        r"\(95% interval (\d+)%-(\d+)%; mean p ([\d.]+)\)",
        html,
    )
    assert len(judged) == n_targets, html
    for _, rate, n, low, high, _ in judged:
        assert int(n) == len(heldout) and int(low) <= int(rate) <= int(high) <= 100


def test_demo_no_train_stylizes_with_the_shipped_models_only(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-train"]) == 0
    html = (out / "index.html").read_text()
    for name in ("ukiyoe", "chinese_ink", "impressionism_monet", "postimpressionism_cezanne"):
        assert len(list((out / "shipped" / name).glob("*.png"))) == 5
    # ukiyoe's card recommends the print finish, chinese_ink's the ink finish and Cezanne's the
    # paint finish: the page shows each beside the plain outputs.
    finishes = {"ukiyoe": "print", "chinese_ink": "ink", "postimpressionism_cezanne": "paint"}
    for model, finish in finishes.items():
        finished = sorted((out / "shipped" / f"{model}_{finish}").glob("*.png"))
        assert len(finished) == 5 and f"<th>{model} + {finish}</th>" in html
        plain = out / "shipped" / model / finished[0].name
        assert not np.array_equal(
            np.asarray(Image.open(finished[0])), np.asarray(Image.open(plain))
        )
    # Cezanne's card also recommends 8 passes: its finished column is drawn over their average.
    from culturegan.data.synthetic import photo_sources
    from culturegan.inference import Stylizer

    name, photo = next(iter(photo_sources().items()))
    photo.thumbnail((256, 256), Image.Resampling.LANCZOS)
    shown = np.asarray(
        Image.open(out / "shipped" / "postimpressionism_cezanne_paint" / f"{name}.png")
    )
    cezanne = Stylizer.from_pretrained("postimpressionism_cezanne")
    passes, once = (
        np.asarray(cezanne([photo], shifts=n, finish="paint").images[0], np.float64) for n in (8, 1)
    )
    assert np.abs(shown - passes).mean() < 1 < np.abs(shown - once).mean()
    assert "--shifts 8" in html
    assert not (out / "runs").exists() and not (out / "data").exists()
    for link in re.findall(r'<img src="([^"]+)"', html):
        assert (out / unquote(link)).is_file(), link


def test_demo_never_deletes_folders_it_did_not_make(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--fast"]) == 2
    assert "was not made by culturegan demo" in capsys.readouterr().err
    assert (tmp_path / "data" / "precious.txt").read_text() == "mine"


def test_an_interrupted_demo_says_how_to_resume_each_stopped_run(tmp_path, capsys, monkeypatch):
    import signal

    from culturegan import demo
    from culturegan.training import TrainResult

    stopped = [TrainResult(tmp_path / f"00{i}-cut-demo-{s}", 40 + i, False, signal.SIGTERM)
               for i, s in enumerate(("woodblock", "ink_wash"))]  # fmt: skip

    def interrupted(*args, **kwargs):
        raise demo.DemoInterrupted(stopped)

    def interrupted_between_runs(*args, **kwargs):  # nothing had started: nothing to resume
        raise demo.DemoInterrupted([])

    monkeypatch.setattr(demo, "run_demo", interrupted)
    assert main(["demo", "--out", str(tmp_path)]) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "000-cut-demo-woodblock at step 40, 001-cut-demo-ink_wash at step 41" in out
    for r in stopped:
        assert f"culturegan train --resume {r.run_dir}" in out
    monkeypatch.setattr(demo, "run_demo", interrupted_between_runs)
    assert main(["demo", "--out", str(tmp_path)]) == 128 + signal.SIGINT
    assert "run the demo again" in capsys.readouterr().out


def test_demo_job_config_layers_preset_culture_settings_and_extras(tmp_path):
    # benchmarks/demo_seeds.py trains one culture as the demo does, at other seeds: the preset,
    # then the culture's own settings, then the benchmark's extras, which win.
    from culturegan.demo import CULTURE_OVERRIDES, demo_job_config

    wood = CULTURE_OVERRIDES["fewshot"]["woodblock"]
    runs = tmp_path / "runs"
    cfg = demo_job_config("fewshot", "woodblock", ["photo", "woodblock"], tmp_path, runs, 64, 300)
    assert cfg.loss.lambda_style_stats == wood["loss.lambda_style_stats"] != 1.0  # preset: 1.0
    assert cfg.loss.lambda_structure == wood["loss.lambda_structure"] != 0.0  # preset: 0.0
    assert (cfg.model.palette, cfg.loss.perceptual_size) == (8, 128)
    assert (cfg.train.steps, cfg.data.crop_size, cfg.data.load_size) == (300, 64, 72)
    assert cfg.train.name == "demo-woodblock" and cfg.train.runs_dir == str(runs)
    extra = {"train.seed": 6, "loss.lambda_style_stats": 3.0}
    other = demo_job_config(
        "fewshot", "woodblock", ["photo", "woodblock"], tmp_path, runs, 64, 300, extra=extra
    )
    assert (other.train.seed, other.loss.lambda_style_stats, other.model.palette) == (6, 3.0, 8)
    impasto = demo_job_config("fewshot", "impasto", ["photo", "impasto"], tmp_path, runs, 64, 150)
    assert (impasto.loss.lambda_style_stats, impasto.model.palette) == (1.0, 0)


def test_demo_seeds_reads_seeds_and_settings_and_refuses_what_it_sets_itself():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "demo_seeds", ROOT / "benchmarks" / "demo_seeds.py"
    )
    demo_seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_seeds)
    assert demo_seeds.parse_seeds("0-3,2,7") == [0, 1, 2, 3, 7]  # a seed is trained once
    assert demo_seeds.parse_setting("demo=") == ("demo", {})
    label, extra = demo_seeds.parse_setting("g=loss.lambda_guide=2,model.palette=12")
    assert (label, extra) == ("g", {"loss.lambda_guide": 2, "model.palette": 12})
    with pytest.raises(SystemExit, match="train.seed is set by the script"):
        demo_seeds.parse_setting("x=train.seed=3")
    with pytest.raises(SystemExit, match="'oops' is not KEY=VALUE"):
        demo_seeds.parse_setting("x=oops")
    with pytest.raises(SystemExit, match="labels must differ"):
        demo_seeds.main(["--setting", "a=", "--setting", "a=model.palette=12"])
