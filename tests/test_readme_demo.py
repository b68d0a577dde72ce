"""The README's two commands, the CI script, and the demo end to end."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

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


@pytest.mark.parametrize("recipe", ["multidomain", "cyclegan"])
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
    if recipe == "multidomain":
        assert "The synthetic cultures, measured" in html
        assert (out / "analysis" / "index.html").is_file()
    stylized = sorted((out / "stylized").glob("*/*.png"))
    heldout = sorted((out / "data" / "_heldout_photos").glob("*.png"))
    n_targets = 3 if recipe == "multidomain" else 1
    assert len(stylized) == n_targets * len(heldout) >= 4
    assert (out / "grid.png").is_file()
    model = next((out / "runs").glob("*/model"))
    assert (model / "model.safetensors").is_file()


def test_demo_never_deletes_folders_it_did_not_make(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--fast"]) == 2
    assert "was not made by culturegan demo" in capsys.readouterr().err
    assert (tmp_path / "data" / "precious.txt").read_text() == "mine"
