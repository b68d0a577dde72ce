"""Export, reload and apply: identical outputs, any size, any mode, bad files reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from culturegan.checkpoint import CheckpointError, load_pretrained
from culturegan.cli import main
from culturegan.inference import Stylizer, marks_top_left, pad_to_multiple
from culturegan.training import export_run, train


@pytest.fixture
def trained(tiny_cfg):
    return train(tiny_cfg, progress=False)


def test_export_reload_gives_identical_outputs(trained, tmp_path):
    exported = export_run(trained.run_dir, tmp_path / "exported")
    a = Stylizer.from_pretrained(trained.run_dir / "model")
    b = Stylizer.from_pretrained(exported)
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    for target in ("art", "photo"):
        out_a = np.asarray(a(photo, target=target).images[0])
        out_b = np.asarray(b(photo, target=target).images[0])
        assert np.array_equal(out_a, out_b)
    # The exported networks are the EMA generators of the checkpoint, bit for bit.
    _, tensors = load_pretrained(exported)
    from culturegan.checkpoint import load_training_state

    ema = load_training_state(trained.run_dir / "checkpoints/last.pt")["recipe"]["ema"]["g_ab"]
    assert all(torch.equal(tensors[f"g_ab.{k}"], v) for k, v in ema.items())


def test_stylizer_is_deterministic_and_directional(trained):
    s = Stylizer.from_pretrained(trained.run_dir / "model")
    assert s.domains == ["photo", "art"]
    img = Image.new("RGB", (32, 32), (200, 30, 30))
    first = s(img).images[0]
    assert s(img).direction == "photo->art"
    assert np.array_equal(np.asarray(first), np.asarray(s(img, target="art").images[0]))
    assert s(img, target="photo").direction == "art->photo"
    with pytest.raises(ValueError, match="unknown target domain 'ukiyoe'.*photo, art"):
        s(img, target="ukiyoe")
    with pytest.raises(ValueError, match="no direction art->art"):
        s(img, source="art", target="art")


def test_padding_handles_odd_and_tiny_sizes():
    x = torch.randn(1, 3, 5, 3)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 4) and (h, w) == (5, 3)
    assert torch.equal(padded[..., :5, :3], x)
    padded, _ = pad_to_multiple(torch.randn(1, 3, 1, 1), 4, min_size=16)
    assert padded.shape[-2:] == (16, 16)


def test_padding_adds_a_lead_above_and_left():
    x = torch.randn(1, 3, 13, 20)
    padded, (h, w) = pad_to_multiple(x, 8, 32, lead=8)
    assert padded.shape[-2:] == (32, 32) and (h, w) == (13, 20)
    assert torch.equal(padded[..., 8:21, 8:28], x)
    assert torch.equal(padded[..., 7, 8:28], x[..., 1, :])  # reflected, not zeros
    padded, _ = pad_to_multiple(torch.randn(1, 3, 3, 5), 8, lead=8)  # lead > side: replicate
    assert padded.shape[-2:] == (16, 16)


class _EdgeFrame(torch.nn.Module):
    """Paints black where its zero-padded stride-2 convolution sees the border, as a generator
    trained on framed scans does: the top and left two rows and columns of an even-sided input
    (no others: on even sides the last window ends inside). Elsewhere the picture unchanged."""

    def __init__(self, pad_mode: str = "zeros") -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, stride=2, padding=1, padding_mode=pad_mode,
                                    bias=False)  # fmt: skip
        torch.nn.init.ones_(self.conv.weight)

    def forward(self, x):
        seen = self.conv(torch.ones_like(x[:, :1]))  # 9 inside, less where it reads zeros
        frame = F.interpolate((seen < 8.5).float(), scale_factor=2.0) > 0
        return torch.where(frame, -1.0, x)


def edge_frame_stylizer(pad_mode="zeros", **config):
    config = {"kind": "two_domain", "domains": ["photo", "art"],
              "directions": {"photo->art": "g_ab"}, "size_multiple": 8, **config}  # fmt: skip
    return Stylizer.from_modules({"g_ab": _EdgeFrame(pad_mode)}, config)


@pytest.mark.parametrize("tile", [0, 64])
def test_the_edge_margin_keeps_a_frame_off_the_picture(tile):
    stylizer = edge_frame_stylizer()
    assert stylizer.edge_margin == 8  # one size multiple: the network marks the top and left
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (72, 150, 3), dtype=np.uint8))
    out = np.asarray(stylizer(img, tile=tile).images[0], np.int16)
    assert np.abs(out - np.asarray(img, np.int16)).max() <= 1  # the frame fell in the margin
    stylizer.edge_margin = 0
    out = np.asarray(stylizer(img, tile=tile).images[0], np.int16)
    assert out[:, :2].max() == 0 and out[:2].max() == 0  # without it, the frame is painted
    if not tile:  # and only there (tiled, at each tile's top and left too, blended)
        assert np.abs(out[2:, 2:] - np.asarray(img, np.int16)[2:, 2:]).max() <= 1


def test_the_edge_margin_defaults_to_what_the_network_needs():
    assert edge_frame_stylizer("reflect").edge_margin == 0  # no edge marked, no margin
    assert edge_frame_stylizer(edge_margin=0).edge_margin == 0  # the folder's own (imports)
    assert edge_frame_stylizer("reflect", edge_margin=16).edge_margin == 16
    assert not marks_top_left(torch.nn.Conv2d(3, 3, 3, padding=1))  # stride 1


def test_stylize_cli_on_odd_sizes_modes_and_a_corrupt_file(trained, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)).save(inputs / "odd.jpg")
    Image.fromarray(rng.integers(0, 256, (1, 1), dtype=np.uint8), "L").save(inputs / "dot.png")
    Image.new("RGBA", (21, 18), (0, 0, 255, 128)).save(inputs / "sub" / "alpha.png")
    Image.new("P", (30, 30)).save(inputs / "sub" / "palette.gif")
    Image.new("CMYK", (19, 23), (0, 255, 0, 0)).save(inputs / "cmyk.jpg")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    single = tmp_path / "single.png"
    Image.new("I;16", (9, 14)).save(single)

    out = tmp_path / "out"
    code = main(["stylize", str(inputs), str(single), "--model", str(trained.run_dir / "model"),
                 "--out", str(out), "--batch-size", "2"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "stylized 6 images (photo->art)" in printed
    assert "broken.png" in printed and "skipped 1" in printed
    expected = {
        "odd.png": (47, 33), "dot.png": (1, 1), "sub/alpha.png": (21, 18),
        "sub/palette.png": (30, 30), "cmyk.png": (19, 23), "single.png": (9, 14),
    }  # fmt: skip
    for rel, size in expected.items():
        with Image.open(out / rel) as img:
            # A transparent input keeps its alpha, exactly; everything else comes out RGB.
            mode = "RGBA" if rel == "sub/alpha.png" else "RGB"
            assert img.size == size and img.mode == mode, rel
    with Image.open(out / "sub/alpha.png") as img:
        assert set(np.asarray(img)[..., 3].ravel()) == {128}


def test_stylize_cli_errors(trained, tmp_path, capsys):
    model = str(trained.run_dir / "model")
    assert main(["stylize", str(tmp_path / "nope.jpg"), "--model", model, "--out", "o"]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    assert main(["stylize", str(tmp_path), "--model", str(tmp_path), "--out", "o"]) == 2
    assert "missing config.json" in capsys.readouterr().err


def test_info_lists_domains(trained, capsys):
    assert main(["info", str(trained.run_dir / "model")]) == 0
    out = capsys.readouterr().out
    assert "domains: photo, art" in out and "photo->art" in out


def test_future_or_broken_model_folders_are_refused(trained, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained.run_dir / "model", model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer than this culturegan"):
        Stylizer.from_pretrained(model)
    (model / "config.json").write_text(json.dumps(config))
    (model / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        Stylizer.from_pretrained(model)


def test_a_folder_half_written_by_a_killed_save_is_refused(trained, tmp_path):
    """A save killed between its two renames leaves new weights beside the old config.json."""
    import shutil

    from safetensors.torch import save_file

    model = tmp_path / "model"
    shutil.copytree(trained.run_dir / "model", model)
    config, tensors = load_pretrained(model)
    assert len(config["weights_sha256"]) == 64
    # Another model's weights of the same architecture: every shape matches, only the hash tells.
    save_file({k: v + 1 for k, v in tensors.items()}, str(model / "model.safetensors"))
    with pytest.raises(CheckpointError, match="save was interrupted"):
        Stylizer.from_pretrained(model)
    # A folder written before the hash existed still loads.
    del config["weights_sha256"]
    (model / "config.json").write_text(json.dumps(config))
    assert Stylizer.from_pretrained(model)(Image.new("RGB", (32, 32)), target="art").images
