"""Networks: shapes, registries, and key-for-key compatibility with official CycleGAN files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from culturegan.checkpoint import CheckpointError
from culturegan.importers import import_cyclegan
from culturegan.inference import Stylizer
from culturegan.models import (
    build_discriminator,
    build_generator,
    list_discriminators,
    list_generators,
)


def official_layout_generator(ngf: int, n_blocks: int) -> nn.Module:
    """The official CycleGAN ResnetGenerator layout, rebuilt independently for the test:
    a flat Sequential 'model' whose residual blocks hold a Sequential 'conv_block'."""

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            parts = []
            for i in range(2):
                parts += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim)]
                if i == 0:
                    parts.append(nn.ReLU(True))
            self.conv_block = nn.Sequential(*parts)

        def forward(self, x):
            return x + self.conv_block(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            seq = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(3, ngf, 7),
                nn.InstanceNorm2d(ngf),
                nn.ReLU(True),
            ]
            seq += [nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(True)]
            seq += [nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), nn.InstanceNorm2d(4 * ngf), nn.ReLU(True)]
            seq += [Block(4 * ngf) for _ in range(n_blocks)]
            seq += [
                nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, 1),
                nn.InstanceNorm2d(2 * ngf),
                nn.ReLU(True),
            ]
            seq += [
                nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, 1),
                nn.InstanceNorm2d(ngf),
                nn.ReLU(True),
            ]
            seq += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
            self.model = nn.Sequential(*seq)

        def forward(self, x):
            return self.model(x)

    torch.manual_seed(ngf * 100 + n_blocks)
    net = Net()
    with torch.no_grad():  # non-trivial biases so a wrong mapping shows up
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


@pytest.mark.parametrize("name,n_blocks", [("resnet_9blocks", 9), ("resnet_6blocks", 6)])
def test_state_dict_keys_match_official_layout(name, n_blocks):
    ours = build_generator(name, ngf=8).state_dict()
    official = official_layout_generator(8, n_blocks).state_dict()
    assert list(ours) == list(official)
    assert all(ours[k].shape == official[k].shape for k in ours)
    # The first transposed convolution sits at model.19 with 9 blocks, as users expect.
    if n_blocks == 9:
        assert ours["model.19.weight"].shape == (32, 16, 3, 3)


@pytest.mark.parametrize("n_blocks,variant", [(9, "plain"), (6, "module_prefix_and_stats")])
def test_import_cyclegan_gives_the_official_output(tmp_path, n_blocks, variant):
    ref = official_layout_generator(8, n_blocks)
    state = ref.state_dict()
    if variant != "plain":
        # DataParallel prefix and the InstanceNorm running stats old PyTorch versions saved.
        state = {f"module.{k}": v for k, v in state.items()}
        state["module.model.2.running_mean"] = torch.zeros(8)
        state["module.model.2.running_var"] = torch.ones(8)
    pth = tmp_path / "latest_net_G.pth"
    torch.save(state, pth)  # as the official code saves networks
    out = import_cyclegan(pth, tmp_path / "imported", domains=("photo", "ukiyoe"))
    stylizer = Stylizer.from_pretrained(out)
    assert stylizer.domains == ["photo", "ukiyoe"]
    assert stylizer.networks["g_ab"].config["n_blocks"] == n_blocks

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
    ours = np.asarray(stylizer(photo, target="ukiyoe").images[0], dtype=np.int16)
    with torch.no_grad():
        x = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float()[None] / 127.5 - 1
        y = ref(x)[0]  # 36 x 44 are multiples of 4: no padding involved
    expected = ((y.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.int16)
    assert np.abs(ours - expected).max() <= 1


def test_import_rejects_files_that_are_not_generators(tmp_path):
    bad = tmp_path / "disc.pth"
    torch.save(build_discriminator("patchgan", ndf=4).state_dict(), bad)
    with pytest.raises(CheckpointError, match="model.1.weight"):
        import_cyclegan(bad, tmp_path / "out")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        import_cyclegan(garbage, tmp_path / "out")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        import_cyclegan(tmp_path / "missing.pth", tmp_path / "out")


@pytest.mark.parametrize("name", list_generators())
def test_generators_keep_shape_and_range(name):
    g = build_generator(name, ngf=4)
    y = g(torch.randn(2, 3, 32, 40))
    assert y.shape == (2, 3, 32, 40)
    assert y.abs().max() <= 1


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_patchgan_receptive_field_and_output(spectral_norm):
    d = build_discriminator("patchgan", ndf=8, n_layers=3, spectral_norm=spectral_norm)
    assert "patchgan" in list_discriminators()
    out = d(torch.randn(1, 3, 128, 128))
    assert out.shape == (1, 1, 14, 14)  # the 70x70 PatchGAN on 128 px: 14 x 14 patches
    # The receptive field of one output logit, from the convolutions' kernels and strides
    # (instance norm mixes whole feature maps, so gradients cannot show it).
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    field = 1
    for conv in reversed(convs):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    assert field == 70


def test_unknown_network_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown generator 'resnet_99'.*resnet_9blocks"):
        build_generator("resnet_99")
