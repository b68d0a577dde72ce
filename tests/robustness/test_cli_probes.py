"""Careless arguments get one clear line and a non-zero exit, never a traceback, and a bad file
in a batch is named and skipped while the rest is written (issue #14, items 5, 7 and 11)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import save_tiny_model
from culturegan.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    save_tiny_model(root / "model")
    rng = np.random.default_rng(0)
    (root / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "in/a.png")
    Image.fromarray(np.zeros((600, 1, 3), dtype=np.uint8)).save(root / "in/thin.png")
    (root / "in/corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / "in/z.png")
    return root


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "0"], "batch size must be >= 1"),
        (["--device", "bogus"], "unknown device 'bogus'"),
        (
            ["--device", "cuda"]
            if not __import__("torch").cuda.is_available()
            else ["--device", "bogus2"],
            "device",
        ),  # fmt: skip
        (["--seed", str(2**70)], "seed must be in"),
        (["--samples", "0"], "samples must be >= 1"),
        (["--target", "nope"], "unknown target domain 'nope'"),
    ],
)
def test_bad_arguments_give_one_clear_line(setup, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code = main(["stylize", str(setup / "in" / "a.png"), "--model", str(setup / "model"),
                 "--out", str(out), *extra])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_with_bad_files_is_stylized_except_them_each_named(setup, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["stylize", str(setup / "in"), "--model", str(setup / "model"),
                 "--out", str(out)]) == 0  # fmt: skip
    report = capsys.readouterr().out
    written = sorted(p.name for p in out.iterdir())
    assert "a.png" in written and "z.png" in written  # the files after the bad ones too
    assert "corrupt.png" in report  # named, with why
    assert "corrupt.png" not in written
    # A 600 x 1 picture is either stylized to its own size or named as skipped.
    if "thin.png" in written:
        assert Image.open(out / "thin.png").size == (1, 600)
    else:
        assert "thin.png" in report


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 70), height=st.integers(1, 70),
       mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "I;16", "1", "CMYK"]))  # fmt: skip
def test_any_small_image_size_and_mode_stylizes_to_its_own_size(setup, tmp_path_factory, width,
                                                                 height, mode):  # fmt: skip
    folder = tmp_path_factory.mktemp("img")
    arr = np.random.default_rng(width * 100 + height).integers(0, 256, (height, width, 3))
    img = Image.fromarray(arr.astype(np.uint8)).convert(mode)
    img.save(folder / "x.png" if mode != "CMYK" else folder / "x.tif")
    out = folder / "out"
    assert main(["stylize", str(folder), "--model", str(setup / "model"), "--out", str(out)]) == 0
    (result,) = out.iterdir()
    assert Image.open(result).size == (width, height)
