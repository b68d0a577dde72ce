"""Bad files are named one by one, unreadable folders are reported, and a refused setting
leaves no empty run folder behind (issue #14, items 5 and 6)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from conftest import save_tiny_model
from culturegan.cli import main
from culturegan.fileio import WriteError
from culturegan.training import train
from culturegan.training.loop import SKIPPED_NAME

from .conftest import digest, tiny_config, write_photos


def add_bad_files(folder, n: int) -> list[str]:
    names = [f"bad_{i:02d}.png" for i in range(n)]
    for name in names:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    return names


@pytest.fixture
def unreadable(monkeypatch):
    """Make a folder unlistable: by its mode, or (root ignores modes) by a patched scandir."""
    folders = []
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) in map(str, folders):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    def make(folder):
        folders.append(folder)
        if os.geteuid() == 0:
            monkeypatch.setattr(os, "scandir", scandir)
        else:
            folder.chmod(0)

    yield make
    for folder in folders:
        folder.chmod(0o755)


def test_the_training_scan_names_each_bad_file_and_lists_all_in_the_run(tmp_path, caplog):
    cfg = tiny_config(tmp_path)
    photo = tmp_path / "data" / "photo"
    bad = add_bad_files(photo, 12)
    images = {k: v for k, v in digest(tmp_path / "data").items() if k.endswith(".png")}
    with caplog.at_level(logging.WARNING):
        run = train(cfg, until_step=0, progress=False).run_dir
    log = caplog.text
    for name in bad[:10]:
        assert f"{name}': not a recognised image format" in log, name
    assert "... and 2 more" in log and bad[11] not in log
    listed = json.loads((run / SKIPPED_NAME).read_text())
    assert sorted(os.path.basename(item["file"]) for item in listed) == bad
    assert all(item["reason"] for item in listed)
    assert {k: v for k, v in digest(tmp_path / "data").items() if k.endswith(".png")} == images


def test_metrics_fd_and_stylize_name_every_bad_file_and_unreadable_folder(
    tmp_path, caplog, capsys, unreadable
):
    a, b = write_photos(tmp_path / "a", 3), write_photos(tmp_path / "b", 3)
    bad = add_bad_files(a, 7)
    hidden = a / "sub"
    write_photos(hidden, 1)
    unreadable(hidden)
    with caplog.at_level(logging.WARNING):
        code = main(["metrics", "fd", str(a), str(b), "--no-cache", "--no-progress"])
    assert code == 0
    for name in bad:
        assert f"{name}': not a recognised image format" in caplog.text, name
    assert f"'{hidden}': folder cannot be read (Permission denied)" in caplog.text
    capsys.readouterr()
    model = save_tiny_model(tmp_path / "model")
    assert main(["stylize", str(a), "--model", str(model), "--out", str(tmp_path / "out")]) == 0
    report = capsys.readouterr().out
    assert f"{hidden}: folder cannot be read" in report
    assert all(name in report for name in bad)


def test_a_refused_setting_leaves_no_run_folder(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    runs = tmp_path / "runs"
    args = ["train", "--config", "cyclegan_tiny", "--no-progress", "--data.root", cfg.data.root,
            "--data.domains", "photo,art", "--data.load_size", "36", "--data.crop_size", "30",
            "--model.ngf", "4", "--model.ndf", "4", "--train.runs_dir", str(runs)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "crop_size 30 must be a multiple of 4" in err and "Traceback" not in err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_run_folder_whose_config_cannot_be_written_is_removed(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path)

    def full_disk(path, data):
        raise WriteError(path, "No space left on device", 28)

    monkeypatch.setattr("culturegan.training.loop.write_json", full_disk)
    with pytest.raises(WriteError, match="No space"):
        train(cfg, progress=False)
    assert not any((tmp_path / "runs").iterdir())
