"""A full disk, a read-only folder, an output path that is a file or a folder: one clear line,
a non-zero exit, the old files intact and no temporary file left (issue #14, items 1, 2, 7).

Two ways to make the faults: a patched writer that fails as the real one does (always runs),
and the real thing, a 2 MB tmpfs and a read-only bind mount inside a user namespace
(``unshare -Urm``; skipped where the kernel or the sandbox does not allow one).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from conftest import save_tiny_model
from culturegan.cli import main
from culturegan.fileio import WriteError, folder_lock

from .conftest import digest, tiny_config, write_photos

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def one_clear_line(err: str, *names: str) -> None:
    """No traceback, and one error line (beside progress bars) naming each of ``names``."""
    errors = [line for line in err.replace("\r", "\n").splitlines() if " error: " in line]
    assert "Traceback" not in err and len(errors) == 1, err
    for name in names:
        assert name in errors[0], (name, err)


def temp_files(folder):
    return [p for p in folder.rglob(".*.tmp")]


def test_a_write_error_names_the_file_and_survives_pickling():
    error = WriteError("out/p0.png", NO_SPACE, errno.ENOSPC)
    again = pickle.loads(pickle.dumps(error))  # errors of worker processes come back pickled
    assert str(again) == f"cannot write 'out/p0.png': {NO_SPACE}" and again.errno == errno.ENOSPC
    assert isinstance(again, OSError)


def test_a_full_disk_during_stylize_keeps_the_old_output(tmp_path, capsys, monkeypatch):
    model, photos = save_tiny_model(tmp_path / "model"), write_photos(tmp_path / "photos")
    out = tmp_path / "out"
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(out)]) == 0
    before, inputs = digest(out), digest(photos)

    def full_disk(self, fp, format=None, **params):  # half the file, then the disk is full
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(out)]) == 2
    one_clear_line(capsys.readouterr().err, NO_SPACE, "p0.png")
    assert digest(out) == before and digest(photos) == inputs and not temp_files(out)


def test_a_full_disk_on_the_first_image_leaves_no_empty_output_folder(tmp_path, capsys,
                                                                     monkeypatch):  # fmt: skip
    model, photos = save_tiny_model(tmp_path / "model"), write_photos(tmp_path / "photos")
    (photos / "sub").mkdir()
    (photos / "p0.png").rename(photos / "sub" / "p0.png")  # its output folder is out/sub

    def full_disk(self, fp, format=None, **params):
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "new" / "out"
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(out)]) == 2
    one_clear_line(capsys.readouterr().err, NO_SPACE, ".png")
    assert not out.exists() and (tmp_path / "new").is_dir()
    # An output folder that existed before stays, and so does what it held.
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["stylize", str(photos), "--model", str(model), "--out", str(out)]) == 2
    assert sorted(p.name for p in out.rglob("*")) == ["keep.txt"]


def test_a_full_disk_during_a_checkpoint_keeps_the_old_one(trained_run, tmp_path, capsys,
                                                          monkeypatch):  # fmt: skip
    run = shutil.copytree(trained_run, tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()

    def full_disk(obj, fh, *args, **kwargs):
        # What torch.save into a file does when a write fails: a RuntimeError raised while
        # handling the OSError (seen with RLIMIT_FSIZE; the real disk below checks it).
        fh.write(b"PK\x03\x04" + b"\0" * 100)
        try:
            raise OSError(errno.ENOSPC, NO_SPACE)
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos") from None

    monkeypatch.setattr("torch.save", full_disk)
    code = main(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"])
    assert code == 2
    one_clear_line(capsys.readouterr().err, NO_SPACE, str(last))
    assert last.read_bytes() == before and not temp_files(run)
    with folder_lock(run):  # released on the error
        pass


def test_outputs_that_are_files_or_folders_are_refused(trained_run, tmp_path, capsys):
    model, photos = save_tiny_model(tmp_path / "model"), write_photos(tmp_path / "photos")
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    torch_pth = tmp_path / "g.pth"
    save_pth(torch_pth)
    inputs = digest(tmp_path)
    cases = [
        (["stylize", str(photos), "--model", str(model), "--out", str(a_file)], "existing file"),
        (["export", str(trained_run), "--out", str(a_file)], "is a file, not a folder"),
        (["export", str(trained_run), "--out", str(a_file / "sub")], "is a file, not a folder"),
        (["import-cyclegan", str(torch_pth), "--out", str(a_file)], "is a file, not a folder"),
        (
            ["grid", str(photos / "p0.png"), "--model", str(model), "--out", str(photos)],
            "existing folder",
        ),  # fmt: skip
        (["export", str(trained_run), "--out", str(trained_run)], "the run folder itself"),
    ]
    run_before = digest(trained_run)
    for args, message in cases:
        assert main(args) == 2, args
        one_clear_line(capsys.readouterr().err, message)
    assert digest(tmp_path) == inputs and digest(trained_run) == run_before


def test_runs_dir_that_is_a_file_is_refused_and_nothing_written(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    runs = tmp_path / "runs"
    runs.write_text("not a folder")
    args = ["train", "--config", "cyclegan_tiny", "--no-progress", "--data.root", cfg.data.root,
            "--data.domains", "photo,art", "--data.load_size", "36", "--data.crop_size", "32",
            "--model.ngf", "4", "--model.ndf", "4", "--train.runs_dir", str(runs)]  # fmt: skip
    assert main(args) == 2
    one_clear_line(capsys.readouterr().err, "train.runs_dir", "is a file, not a folder")
    assert runs.read_text() == "not a folder"


def test_export_writes_files_with_the_umask_mode(trained_run, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["export", str(trained_run), "--out", str(tmp_path / "m")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "m").iterdir()}
    assert modes == {"model.safetensors": 0o644, "config.json": 0o644}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (file modes do "
                    "not bind it); the read-only mount test below covers root")  # fmt: skip
def test_read_only_folders_are_refused_by_mode(trained_run, tmp_path, capsys):
    run = shutil.copytree(trained_run, tmp_path / "run")
    photos, model = write_photos(tmp_path / "photos"), trained_run / "model"
    ro = tmp_path / "ro"
    ro.mkdir()
    before = digest(run)
    for folder in (run, run / "checkpoints", ro):
        folder.chmod(0o555)
    try:
        commands = [
            ["train", "--resume", str(run), "--train.steps", "3", "--no-progress"],
            ["export", str(run), "--out", str(ro / "m")],
            ["stylize", str(photos), "--model", str(model), "--out", str(ro)],
        ]
        for args in commands:
            assert main(args) == 2
            one_clear_line(capsys.readouterr().err, "Permission denied")
    finally:
        for folder in (run, run / "checkpoints", ro):
            folder.chmod(0o755)
    assert digest(run) == before and not any(ro.iterdir())


# ----------------------------------------------------------------------------- the real faults

REAL = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    from culturegan.cli import main

    full, ro, photos, model = sys.argv[1:5]

    def run(*args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(args))
        return {"args": args, "code": code, "err": err.getvalue()}

    def fill(reserve):
        # Fill the tmpfs, then give back `reserve` bytes: the next large write fails.
        with open(os.path.join(full, "filler"), "wb") as fh:
            try:
                while True:
                    fh.write(b"\\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        size = os.path.getsize(os.path.join(full, "filler"))
        os.truncate(os.path.join(full, "filler"), max(0, size - reserve))

    results = {"first": run("stylize", photos, "--model", model, "--out", full + "/out")}
    fill(256 * 1024)  # room for config.json and a log line, not for a checkpoint of ~600 KB
    results["checkpoint"] = run("train", "--resume", full + "/run", "--train.steps", "3",
                                "--no-progress")
    fill(0)
    results["stylize"] = run("stylize", photos, "--model", model, "--out", full + "/out")
    results["resume_ro"] = run("train", "--resume", ro + "/run", "--train.steps", "3",
                               "--no-progress")
    results["export_ro"] = run("export", ro + "/run", "--out", ro + "/model")
    results["stylize_ro"] = run("stylize", photos, "--model", model, "--out", ro + "/out")
    print(json.dumps(results))
    """
)


def namespace_available() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.skipif(not namespace_available(), reason="no user namespaces here: the patched "
                    "writers above stand in for the real disk")  # fmt: skip
def test_a_real_full_disk_and_a_real_read_only_folder(trained_run, tmp_path):
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    shutil.copytree(trained_run, ro / "run")
    photos, model = write_photos(tmp_path / "photos"), trained_run / "model"
    script = tmp_path / "faults.py"
    script.write_text(REAL)
    # The mounts exist only inside the namespace: the run is copied onto the tmpfs there.
    shell = (
        f'set -e; mount -t tmpfs -o size=2m tmpfs "{full}"; cp -r "{trained_run}" "{full}/run"; '
        f'mount --bind "{ro}" "{ro}"; mount -o remount,bind,ro "{ro}"; '
        f'exec "{sys.executable}" "{script}" "{full}" "{ro}" "{photos}" "{model}"'
    )
    before_ro = digest(ro)
    proc = subprocess.run(["unshare", "-Urm", "sh", "-c", shell], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["first"]["code"] == 0
    for name, reason in [("checkpoint", NO_SPACE), ("stylize", NO_SPACE),
                         ("resume_ro", "Read-only file system"),
                         ("export_ro", "Read-only file system"),
                         ("stylize_ro", "Read-only file system")]:  # fmt: skip
        result = results[name]
        assert result["code"] == 2, result
        last_line = result["err"].strip().splitlines()[-1]
        assert "Traceback" not in result["err"] and reason in last_line, result
    assert "last.pt" in results["checkpoint"]["err"]
    assert digest(ro) == before_ro  # (the mount is gone: this is the folder under it)


def save_pth(path) -> None:
    import torch

    from culturegan.models.generators import ResnetGenerator

    torch.save(ResnetGenerator(ngf=2, n_blocks=1).state_dict(), path)
