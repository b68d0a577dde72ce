"""The models that ship inside the package: names, cards, the CLI, and the built wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from culturegan.checkpoint import CheckpointError
from culturegan.cli import main
from culturegan.inference import Stylizer
from culturegan.zoo import ZOO_DIR, list_shipped, read_card, resolve_model, shipped_model

REPO = Path(__file__).resolve().parents[1]
CULTURES = {"ukiyoe", "chinese_ink", "impressionism_monet", "postimpressionism_cezanne"}
CARD_FIGURES = ("judge_hit_rate", "mean_target_prob", "ssim_grey", "kd_lite0", "steps", "command")


def photo(path: Path, size=(48, 40), seed=3) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_every_culture_ships_with_a_parsable_card_under_15_mb():
    everything = list_shipped()
    assert sum(m.size_bytes for m in everything) <= 15_000_000
    models = [m for m in everything if m.task == "style transfer"]
    assert {m.target for m in models} == CULTURES
    for m in models:
        card = read_card(m.path / "README.md")
        assert card["domains"] == ["photo", m.target]
        for key in CARD_FIGURES:
            assert key in card, f"{m.name}'s card lacks {key}"
        assert 0.0 <= card["judge_hit_rate"] <= 1.0 and -1.0 <= card["ssim_grey"] <= 1.0
        text = (m.path / "README.md").read_text()
        assert "licence" in text.lower() and "Known limits" in text
        assert not [p for p in m.path.iterdir() if p.suffix.lower() in {".jpg", ".png", ".pth"}]


def test_the_shipped_restoration_model_beats_the_degraded_input(tmp_path):
    """Its card carries the benchmark's figures, and on a photo aged by the degradation model
    (a seed the training never used: stream 2 of derive_seed, as the benchmark's test set)
    its output is closer to the clean photo than the aged one is."""
    from culturegan.data.degrade import degrade, derive_seed
    from culturegan.restore import RESTORED

    (m,) = [m for m in list_shipped() if m.task == "restoration"]
    assert m.domains == ["degraded", RESTORED] and m.target == RESTORED
    assert m.card["psnr_model"] >= m.card["psnr_classical"] + 2.0  # the goal it was shipped on
    text = (m.path / "README.md").read_text()
    assert "licence" in text.lower() and "Known limits" in text
    from skimage import data

    clean = np.asarray(Image.fromarray(data.chelsea()).resize((192, 128), Image.BOX))
    old, _ = degrade(clean, derive_seed(2, 99, 0, 0))
    out = np.asarray(Stylizer.from_pretrained(m.name)(Image.fromarray(old)).images[0], float)

    def psnr(a):
        return 10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - clean) ** 2))

    assert psnr(out) > psnr(old) + 1.0


def test_a_shipped_model_opens_by_name_and_stylizes(tmp_path):
    m = shipped_model("chinese_ink")
    assert resolve_model("chinese_ink") == m.path
    stylizer = Stylizer.from_pretrained("chinese_ink")
    src = Image.open(photo(tmp_path / "p.png"))
    out = stylizer(src, target="chinese_ink").images[0]
    assert out.size == src.size
    assert np.abs(np.asarray(out, float) - np.asarray(src, float)).mean() > 5  # it changed


def test_unknown_names_list_the_known_ones(tmp_path, capsys):
    with pytest.raises(ValueError, match="known: .*chinese_ink"):
        shipped_model("klimt")
    with pytest.raises(CheckpointError, match="not a shipped model \\(known: .*ukiyoe"):
        resolve_model("klimt")
    with pytest.raises(ValueError, match="--revision applies to Hub models"):
        resolve_model(tmp_path, revision="main")
    code = main(["stylize", str(photo(tmp_path / "p.png")), "--style", "klimt", "--out",
                 str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "no shipped style 'klimt' (known: chinese_ink" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_stylize_with_style_and_no_model_flag(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    src = photo(tmp_path / "in" / "p.png")
    out = tmp_path / "out"
    assert main(["stylize", str(src), "--style", "ukiyoe", "--out", str(out)]) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == ["p.png"]
    assert Image.open(written[0]).size == (48, 40)
    assert "note: ukiyoe's card recommends --finish print" in capsys.readouterr().out
    args = ["stylize", str(src), "--style", "ukiyoe", "--finish", "ink", "--out", str(out)]
    assert main(args) == 0 and "recommends" not in capsys.readouterr().out  # a finish was chosen
    args = ["stylize", str(src), "--style", "impressionism_monet", "--out", str(tmp_path / "m")]
    assert main(args) == 0 and "recommends" not in capsys.readouterr().out  # its card does not
    # Cezanne's card recommends 8 passes too: named when they are not asked for.
    args = ["stylize", str(src), "--style", "postimpressionism_cezanne", "--finish", "paint",
            "--out", str(tmp_path / "c")]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "recommends --shifts 8" in said and "recommends --finish" not in said
    assert main([*args, "--shifts", "8"]) == 0 and "recommends" not in capsys.readouterr().out
    assert main(["stylize", str(src), "--out", str(out)]) == 2
    assert "--style NAME" in capsys.readouterr().err
    assert main(["stylize", str(src), "--style", "ukiyoe", "--model", "ukiyoe",
                 "--out", str(out)]) == 2  # fmt: skip


def test_models_and_info_commands(capsys):
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    for name in CULTURES:
        assert name in listed
    assert "MB" in listed and "photo -> ukiyoe" in listed
    finishes = {line.split()[0]: line.split()[-1] for line in listed.splitlines()[1:5]}
    assert finishes["ukiyoe"] == "print" and finishes["impressionism_monet"] == "-"
    assert main(["info", "ukiyoe"]) == 0
    assert "model card:" in capsys.readouterr().out


def test_a_shipped_model_exports_to_onnx_by_name(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "ink.onnx"
    assert main(["export-onnx", "chinese_ink", "--out", str(out)]) == 0
    assert "checked against PyTorch" in capsys.readouterr().out and out.stat().st_size > 100_000


def test_broken_zoo_folders_are_packaging_errors(tmp_path):
    folder = tmp_path / "zoo" / "broken"
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((ZOO_DIR / "ukiyoe" / name).read_bytes())
    with pytest.raises(CheckpointError, match="lacks README.md"):
        list_shipped(tmp_path / "zoo")
    (folder / "README.md").write_text("# no front matter\n")
    with pytest.raises(CheckpointError, match="no YAML front matter"):
        list_shipped(tmp_path / "zoo")
    (folder / "README.md").write_text("---\ndomains: [photo, x]\n---\n")
    with pytest.raises(CheckpointError, match="lacks target"):
        list_shipped(tmp_path / "zoo")


@pytest.mark.slow
def test_the_built_wheel_carries_the_models_and_stylizes_offline(tmp_path):
    """Build the wheel, install it (no dependencies) in a fresh virtualenv that borrows this
    one's packages, and stylize from a folder outside the checkout with the Hub offline."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(REPO)],
        check=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("culturegan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for culture in CULTURES:
        for file in ("model.safetensors", "config.json", "README.md"):
            assert f"culturegan/zoo/{culture}/{file}" in names
    assert not [n for n in names if n.lower().endswith((".jpg", ".jpeg"))]  # no art ships

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # Dependencies from this environment (a plain path entry: its .pth hooks, such as the
    # editable install of the checkout, are not run), the package from the wheel.
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        check=True,
    )  # fmt: skip
    src = photo(tmp_path / "photo.png", size=(64, 48))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run(
        [str(python), "-c", "import culturegan, sys; from culturegan.cli import main; "
         "print(culturegan.__file__); sys.exit(main(sys.argv[1:]))",
         "stylize", str(src), "--style", "chinese_ink", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(str(venv))  # the wheel's copy ran
    assert Image.open(tmp_path / "out" / "photo.png").size == (64, 48)
