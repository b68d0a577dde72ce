"""`culturegan --help` stays fast: building the parser imports no torch, ONNX, SciPy or NumPy.

Timing would depend on the machine; which modules are loaded does not. Each check runs in a fresh
interpreter, because this test process has long since imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "onnx", "onnxruntime", "scipy", "numpy", "cv2", "pandas")


def fresh_python(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON object, returned here."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_nothing_heavy():
    loaded = fresh_python(f"""
        import json, sys
        import culturegan.cli
        culturegan.cli._parser()
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """)
    assert loaded == []


def test_every_command_help_imports_nothing_heavy():
    result = fresh_python(f"""
        import argparse, contextlib, io, json, sys
        import culturegan.cli
        parser = culturegan.cli._parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for command in sub.choices:
            with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args([command, "--help"])
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps({{"commands": sorted(sub.choices), "loaded": loaded}}))
    """)
    assert {"analyze", "evaluate", "export-onnx", "restore", "stylize-video"} <= set(
        result["commands"]
    )
    assert result["loaded"] == []


def test_every_command_has_a_handler():
    import argparse

    from culturegan import cli

    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("culturegan.onnx_export", "cmd_export_onnx"),
        ("culturegan.restore", "cmd_restore"),
        ("culturegan.video", "cmd_stylize_video"),
    ],
)
def test_lazy_handlers_name_real_functions(module, name):
    import importlib

    assert callable(getattr(importlib.import_module(module), name))


def test_written_out_defaults_equal_the_library_ones():
    from culturegan import commands, inference, onnx_export, temporal
    from culturegan.culture import cli as culture_cli
    from culturegan.culture.descriptors import DEFAULT_SIZE

    assert commands.DEFAULT_OPSET == onnx_export.DEFAULT_OPSET
    assert commands.DEFAULT_TEMPORAL == temporal.DEFAULT_TEMPORAL
    assert commands.FLOW_METHODS == temporal.FLOW_METHODS
    assert commands.SHIFT_PASSES == inference.SHIFT_PASSES
    assert culture_cli.DEFAULT_SIZE == DEFAULT_SIZE


@pytest.mark.parametrize("package", ["culturegan.culture", "culturegan.metrics", "culturegan.data"])
def test_lazy_packages_export_every_public_name(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_an_unknown_backbone_is_refused_before_any_work(tmp_path, capsys):
    from culturegan.cli import main

    a = tmp_path / "a"
    a.mkdir()
    assert main(["metrics", "fd", str(a), str(a), "--backbone", "vgg"]) == 2
    assert "unknown backbone 'vgg' (known: lite0" in capsys.readouterr().err
