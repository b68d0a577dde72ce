"""Outputs never replace inputs, are never torn, and keep the umask's mode (issue: nothing lost)."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest
from PIL import Image

from conftest import save_tiny_model
from culturegan.cli import main
from culturegan.fileio import atomic_write


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def model_dir(tmp_path):
    return save_tiny_model(tmp_path / "model")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.png")
    return folder


def test_stylize_into_its_own_input_folder_is_refused_and_changes_nothing(
    model_dir, photos, capsys
):
    before = digest(photos)
    args = ["stylize", str(photos), "--model", str(model_dir), "--out", str(photos)]
    assert main(args) == 2
    assert "would overwrite an input" in capsys.readouterr().err
    assert digest(photos) == before
    single = photos / "p0.png"
    args = ["stylize", str(single), "--model", str(model_dir), "--out", str(photos)]
    assert main(args) == 2
    assert digest(photos) == before


def test_an_output_folder_inside_the_input_folder_is_not_read_back(model_dir, photos):
    out = photos / "styl"
    args = ["stylize", str(photos), "--model", str(model_dir), "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 0  # the second run must not stylize styl/ itself
    assert sorted(p.name for p in out.rglob("*.png")) == ["p0.png", "p1.png", "p2.png"]
    assert not (out / "styl").exists()


def test_grid_refuses_to_write_over_an_input(model_dir, photos, capsys):
    before = digest(photos)
    target = photos / "p1.png"
    assert main(["grid", str(target), "--model", str(model_dir), "--out", str(target)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert digest(photos) == before


def test_atomic_writes_keep_the_umask_mode_and_leave_no_temp_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "a.json", lambda tmp: tmp.write_text("{}"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not the temp file's 0600
        os.umask(0o077)
        path = atomic_write(tmp_path / "b.json", lambda tmp: tmp.write_text("{}"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(tmp_path / "a.json", fail)
    assert (tmp_path / "a.json").read_text() == "{}"  # the old file stands
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
