"""ONNX export: dynamic sizes really work, onnxruntime matches PyTorch, the CLI handler runs."""

from __future__ import annotations

import argparse
import copy

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from conftest import save_tiny_model  # noqa: E402
from culturegan.checkpoint import save_pretrained  # noqa: E402
from culturegan.commands import add_export_onnx  # noqa: E402
from culturegan.inference import Stylizer  # noqa: E402
from culturegan.models import build_generator  # noqa: E402
from culturegan.onnx_export import (  # noqa: E402
    OnnxStylizer,
    check_parity,
    export_generator,
    export_onnx,
)


def random_generator(name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_generator(name, ngf=8).eval()
    with torch.no_grad():  # weights away from the default init, so errors are not hidden
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each generator family exported once (export takes seconds)."""
    out = {}
    for i, name in enumerate(["resnet_2blocks", "mobile_resnet_3blocks", "mobile_unet_3blocks"]):
        net = random_generator(name, seed=i)
        path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
        export_generator(net, path, size_multiple=net.size_multiple, check=True)
        out[name] = (net, path)
    return out


@pytest.mark.parametrize("name", ["resnet_2blocks", "mobile_resnet_3blocks", "mobile_unet_3blocks"])
def test_onnxruntime_matches_pytorch_at_sizes_other_than_the_traced_one(exported, name):
    net, path = exported[name]
    m = net.size_multiple
    # Traced at (2, 3, 8m, 12m); check other batches, sides and aspect ratios.
    worst = check_parity(net, path, sizes=[(1, 5 * m, 9 * m), (3, 16 * m, 4 * m)])
    assert worst < 1e-3
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    assert all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # symbolic, not fixed


def test_onnx_stylizer_runs_images_like_the_stylizer(exported, tmp_path):
    net, _ = exported["mobile_resnet_3blocks"]
    folder = save_tiny_model(tmp_path / "model", net)
    path = export_onnx(folder, tmp_path / "m.onnx", direction="photo->art")
    onnx_stylizer = OnnxStylizer(path, threads=1)
    assert onnx_stylizer.direction == "photo->art" and onnx_stylizer.size_multiple == 8
    rng = np.random.default_rng(0)
    photos = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in [(37, 53), (64, 48)]
    ]
    ours = onnx_stylizer(photos, batch_size=2)
    torch_result = Stylizer.from_pretrained(folder)(photos)
    assert ours.direction == torch_result.direction
    for a, b in zip(ours.images, torch_result.images, strict=True):
        assert a.size == b.size
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
        assert diff.max() <= 1  # rounding to 8 bits of values equal to 1e-3


def test_cli_handler_exports_and_reports_errors(exported, tmp_path, capsys):
    net, _ = exported["resnet_2blocks"]
    config = {
        "kind": "two_domain",
        "domains": ["photo", "art"],
        "networks": {"g_ab": net.config, "g_ba": net.config},
        "directions": {"photo->art": "g_ab", "art->photo": "g_ba"},
        "size_multiple": 4,
    }
    folder = save_pretrained(tmp_path / "model", {"g_ab": net, "g_ba": copy.deepcopy(net)}, config)
    parser = argparse.ArgumentParser(prog="culturegan")
    handlers = add_export_onnx(parser.add_subparsers(dest="command"))
    assert set(handlers) == {"export-onnx"}
    out = tmp_path / "back.onnx"
    args = parser.parse_args(
        ["export-onnx", str(folder), "--out", str(out), "--direction", "art->photo", "--no-check"]
    )
    assert handlers[args.command](args) == 0
    assert out.is_file() and "onnx model:" in capsys.readouterr().out
    assert OnnxStylizer(out).direction == "art->photo"
    assert OnnxStylizer(out).edge_margin == 4  # the PyTorch stylizer's, one size multiple
    config["edge_margin"] = 0  # an imported model's: the network's output as it is
    folder = save_pretrained(tmp_path / "m0", {"g_ab": net, "g_ba": copy.deepcopy(net)}, config)
    assert Stylizer.from_pretrained(folder).edge_margin == 0
    export_onnx(folder, out, direction="art->photo", check=False)
    assert OnnxStylizer(out).edge_margin == 0
    with pytest.raises(ValueError, match="SOURCE->TARGET"):
        export_onnx(folder, tmp_path / "x.onnx", direction="art")
    with pytest.raises(ValueError, match="unknown target domain 'ukiyoe'"):
        export_onnx(folder, tmp_path / "x.onnx", direction="photo->ukiyoe")
    with pytest.raises(FileNotFoundError):
        OnnxStylizer(tmp_path / "missing.onnx")


def test_a_hard_palette_exports_and_paints_the_same_inks(tmp_path):
    def inks_net(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        net = build_generator("mobile_unet_3blocks", ngf=8, palette=4, palette_hard=5).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        return net

    net = inks_net(3)
    path = export_generator(net, tmp_path / "inks.onnx", size_multiple=8)  # checked: no raise
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 3, 48, 72, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = net(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    inks = torch.tanh(net.model[-1].colors).detach().numpy()  # (4, 3)
    # Every pixel is one of the four inks ...
    nearest = np.abs(got.transpose(0, 2, 3, 1)[..., None, :] - inks).max(-1).min(-1)
    assert nearest.max() < 1e-5
    # ... the same ink as PyTorch's, but where two inks tie to the float rounding of the two
    # runtimes' softmax (a handful of pixels at most; none is the likely case).
    differ = np.abs(got - expected).max(axis=1) > 1e-3  # (B, H, W)
    assert differ.mean() < 0.01
    assert len(np.unique(got.transpose(0, 2, 3, 1).reshape(-1, 3), axis=0)) > 1
    # The export's check still catches a file that paints other inks than the network.
    with pytest.raises(RuntimeError, match="paints another ink than PyTorch"):
        check_parity(inks_net(4), path, sizes=[(1, 32, 32)], inks=True)
