"""The Inception-v3 of the FID papers (Szegedy et al., CVPR 2016; Heusel et al., NeurIPS 2017).

FID as published is computed with the TensorFlow "2015-12-05" Inception graph. Its weights were
ported to PyTorch as ``pt_inception-2015-12-05-6726825d.pth`` (the file pytorch-fid uses); this
module is our own implementation of that network, key-compatible with the file. It differs from
the textbook Inception-v3 where the TensorFlow graph does:

* the average-pool branches of the 35x35, 17x17 and first 8x8 blocks ignore the zero padding
  in the average (``count_include_pad=False``);
* the pool branch of the last 8x8 block (``Mixed_7c``) is a 3x3 *max* pool, not an average;
* the classifier has 1008 outputs.

Input: images in [-1, 1] resized bilinearly (no antialiasing) to 299 x 299, the resizing and
normalisation of the reference implementation. The 2048-d pool3 features are the FID features.

Weights are found by :func:`find_fid_weights`: an explicit path, else the torch hub cache
(``torch.hub.get_dir()/checkpoints/``), else (only when allowed) a download to that cache.
Offline with no weights it fails at once, saying which file to put where.

Usage::

    net = FIDInception(); net.load_state_dict(load_fid_state(find_fid_weights()))
    pooled, maps = net.extract(x)  # x: (B, 3, 299, 299) in [-1, 1]
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.fileio import atomic_write

log = logging.getLogger("culturegan.metrics")

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
)
FID_WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub convention: the name ends in a hash prefix
INPUT_SIZE = 299


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm (eps 1e-3), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's SAME average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class Block35(nn.Module):
    """35 x 35 block ("InceptionA", ``Mixed_5b-d``): 1x1, 5x5, double 3x3, pool branches."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([self.branch1x1(x), b5, b3, pool], 1)


class Reduction35(nn.Module):
    """35 -> 17 reduction ("InceptionB", ``Mixed_6a``)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class Block17(nn.Module):
    """17 x 17 block ("InceptionC", ``Mixed_6b-e``) with factorised 1x7 / 7x1 convolutions."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for conv in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = conv(bd)
        pool = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([self.branch1x1(x), b7, bd, pool], 1)


class Reduction17(nn.Module):
    """17 -> 8 reduction ("InceptionD", ``Mixed_7a``)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for conv in (
            self.branch7x7x3_1,
            self.branch7x7x3_2,
            self.branch7x7x3_3,
            self.branch7x7x3_4,
        ):
            b7 = conv(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class Block8(nn.Module):
    """8 x 8 block ("InceptionE", ``Mixed_7b-c``); ``max_pool`` marks the TF graph's last one."""

    def __init__(self, cin: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(h3), self.branch3x3_2b(h3)], 1)
        hd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(hd), self.branch3x3dbl_3b(hd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """The FID Inception-v3; :meth:`extract` gives pool3 features (B, 2048) and feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = Block35(192, pool_features=32)
        self.Mixed_5c = Block35(256, pool_features=64)
        self.Mixed_5d = Block35(288, pool_features=64)
        self.Mixed_6a = Reduction35(288)
        self.Mixed_6b = Block17(768, c7=128)
        self.Mixed_6c = Block17(768, c7=160)
        self.Mixed_6d = Block17(768, c7=160)
        self.Mixed_6e = Block17(768, c7=192)
        self.Mixed_7a = Reduction17(768)
        self.Mixed_7b = Block8(1280, max_pool=False)
        self.Mixed_7c = Block8(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (B, 3, 299, 299) in [-1, 1] -> pool3 (B, 2048) and five feature maps."""
        maps = []
        h = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        maps.append(h)  # (B, 64, 147, 147)
        h = F.max_pool2d(h, 3, stride=2)
        h = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(h))
        maps.append(h)  # (B, 192, 71, 71)
        h = F.max_pool2d(h, 3, stride=2)
        h = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(h)))
        maps.append(h)  # (B, 288, 35, 35)
        h = self.Mixed_6a(h)
        h = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(h))))
        maps.append(h)  # (B, 768, 17, 17)
        h = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(h)))
        maps.append(h)  # (B, 2048, 8, 8)
        return h.mean(dim=(2, 3)), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the graph's 1008 classes."""
        return self.fc(self.extract(x)[0])


def prepare_fid_input(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> bilinear 299 x 299 (no antialias), as the reference does."""
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)


def load_fid_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (``weights_only``), checked against :class:`FIDInception`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or torn files
        raise ValueError(f"cannot read Inception weights '{path}': {exc}") from None
    if not isinstance(state, dict):
        raise ValueError(f"'{path}' does not hold a state dict (found {type(state).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = FIDInception().state_dict()
    # Files saved by old PyTorch versions have no batch-norm counters; they carry no weights.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"'{path}' is not the FID Inception state dict ({FID_WEIGHTS_NAME}): "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    return state


def hub_checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``, where torch and pytorch-fid keep downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights_message(folder: Path) -> str:
    return (
        f"the FID Inception weights are not here and downloading is off (offline by default). "
        f"Put {FID_WEIGHTS_NAME} (from {FID_WEIGHTS_URL}) in {folder}/, or pass "
        f"--weights PATH (weights=PATH), or allow the download with --download "
        f"(download=True). The backbone 'lite0' needs no download."
    )


def find_fid_weights(
    weights: str | os.PathLike | None = None,
    *,
    download: bool = False,  # fetch into the hub cache when the file is nowhere local
    cache_dir: str | os.PathLike | None = None,  # default: torch.hub.get_dir()/checkpoints
    url: str = FID_WEIGHTS_URL,
    sha256_prefix: str | None = FID_WEIGHTS_SHA256_PREFIX,  # None: do not check a download
    timeout: float = 30.0,  # seconds, for connecting and for each read
) -> Path:
    """The path of the FID Inception weights: ``weights``, the hub cache, or a download."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"Inception weights '{path}' do not exist")
        return path
    folder = Path(cache_dir) if cache_dir is not None else hub_checkpoint_dir()
    cached = folder / FID_WEIGHTS_NAME
    if cached.is_file():
        return cached
    if not download:
        raise FileNotFoundError(missing_weights_message(folder))
    return download_weights(url, cached, sha256_prefix=sha256_prefix, timeout=timeout)


def download_weights(
    url: str, dest: Path, *, sha256_prefix: str | None, timeout: float = 30.0
) -> Path:
    """Stream ``url`` into ``dest`` atomically, checking the length and the sha256 prefix."""
    log.info("downloading %s to %s", url, dest)
    digest = hashlib.sha256()

    def write(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
                expected = response.headers.get("Content-Length")
                received = 0
                while chunk := response.read(1 << 20):
                    fh.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise FileNotFoundError(
                f"cannot download {url} ({exc}); " + missing_weights_message(dest.parent)
            ) from exc
        if expected is not None and received != int(expected):
            raise FileNotFoundError(
                f"download of {url} stopped after {received} of {expected} bytes; try again"
            )
        if sha256_prefix and not digest.hexdigest().startswith(sha256_prefix):
            raise ValueError(
                f"the file downloaded from {url} has sha256 {digest.hexdigest()[:16]}..., "
                f"expected {sha256_prefix}...; it was not kept"
            )

    return atomic_write(dest, write)
