"""Differentiable augmentation for discriminators trained on few images (DiffAugment, ADA).

With a few hundred artworks a discriminator memorises them, and its feedback to the generator
turns to noise. DiffAugment (Zhao, Liu, Lin, Zhu and Han, NeurIPS 2020) shows every
discriminator input, real and generated alike, through the same random differentiable
transformations, so the discriminator must judge what survives them and the generator still
receives gradients through them. Operations (the paper's policy names):

* ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
* ``translation``: a shift of up to 1/8 of each side, zero-filled;
* ``cutout``: a square of half the side at a random place set to black.

Each image of a batch draws its own parameters, and with probability ``p`` gets each operation
at all. Adaptive augmentation (Karras et al., NeurIPS 2020, "ADA") raises ``p`` while the
discriminator is too sure of the real images: every ``ada_interval`` steps the mean sign of its
real logits, r_t, is compared with ``ada_target`` and ``p`` moves by the number of images seen
over ``ada_kimg`` thousand in that direction. Randomness comes from the augmenter's own seeded
generator, whose state (and ``p``) is part of a recipe's checkpoint.

Usage::

    augment = DiffAugment("color,translation,cutout", seed=0)
    loss_d = adv.discriminator(d_b(augment(real_b)), d_b(augment(fake_b.detach())))
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | list[str]) -> tuple[str, ...]:
    items = policy.split(",") if isinstance(policy, str) else list(policy)
    ops = tuple(item.strip() for item in items if item.strip())
    unknown = [op for op in ops if op not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment operation(s) {', '.join(unknown)} (known: {', '.join(POLICIES)})"
        )
    return ops


class DiffAugment:
    """Random differentiable augmentation of (B, 3, H, W) images in [-1, 1]."""

    def __init__(
        self,
        policy: str | list[str] = "color,translation,cutout",
        *,
        p: float = 1.0,  # probability of each operation per image (the start value with ADA)
        seed: int = 0,
        ada_target: float = 0.0,  # r_t the discriminator is held to; 0 = no adaptation
        ada_interval: int = 4,  # steps between adjustments of p
        ada_kimg: float = 10.0,  # thousands of images for p to move from 0 to 1
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"DiffAugment p must be in [0, 1], got {p}")
        self.ops = parse_policy(policy)
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(seed)
        self.ada_target = ada_target
        self.ada_interval = max(int(ada_interval), 1)
        self.ada_kimg = ada_kimg
        self._signs: list[float] = []
        self._seen = 0

    @property
    def enabled(self) -> bool:
        return bool(self.ops)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def _mask(self, n: int, device: torch.device) -> torch.Tensor:
        """(n, 1, 1, 1): 1 for the images that get this operation."""
        keep = (torch.rand(n, generator=self.generator) < self.p).float()
        return keep.view(n, 1, 1, 1).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.ops or self.p <= 0:
            return x
        for op in self.ops:
            x = getattr(self, f"_{op}")(x)
        return x

    # --------------------------------------------------------------------- the operations
    # Parameters are drawn on the CPU from the augmenter's generator whatever the device, so a
    # run draws the same numbers on any machine, then moved next to the images.

    def _color(self, x: torch.Tensor) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        view = (n, 1, 1, 1)
        brightness = self._uniform(n, -0.5, 0.5).view(view).to(dev)
        saturation = self._uniform(n, 0.0, 2.0).view(view).to(dev)
        contrast = self._uniform(n, 0.5, 1.5).view(view).to(dev)
        mask = self._mask(n, dev)
        # On [-1, 1] images, as the paper's code applies them to StyleGAN2's range.
        y = x + brightness
        mean = y.mean(dim=1, keepdim=True)
        y = (y - mean) * saturation + mean
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        y = (y - mean) * contrast + mean
        return mask * y + (1 - mask) * x

    def _translation(self, x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
        n, _, h, w = x.shape
        sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
        dy = torch.randint(-sy, sy + 1, (n,), generator=self.generator)
        dx = torch.randint(-sx, sx + 1, (n,), generator=self.generator)
        mask = self._mask(n, x.device).view(n)
        dy, dx = (dy * mask.cpu()).long(), (dx * mask.cpu()).long()
        padded = F.pad(x, (sx, sx, sy, sy))  # zero fill
        out = [
            padded[
                i, :, sy - int(dy[i]) : sy - int(dy[i]) + h, sx - int(dx[i]) : sx - int(dx[i]) + w
            ]
            for i in range(n)
        ]
        return torch.stack(out)

    def _cutout(self, x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
        n, _, h, w = x.shape
        ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=self.generator)
        cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=self.generator)
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        top, left = (cy - ch // 2).view(n, 1, 1), (cx - cw // 2).view(n, 1, 1)
        hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
        apply = self._mask(n, torch.device("cpu")).view(n, 1, 1).bool()
        keep = (~(hole & apply)).float().unsqueeze(1).to(x.device)  # (n, 1, h, w)
        return x * keep - (1 - keep)  # black (-1) inside the square

    # --------------------------------------------------------------------- adaptation

    def observe(self, real_logits: torch.Tensor | list[torch.Tensor]) -> None:
        """ADA: record the discriminator's real logits of one step; adjusts p now and then."""
        if self.ada_target <= 0:
            return
        parts = real_logits if isinstance(real_logits, list | tuple) else [real_logits]
        signs = torch.cat([t.detach().flatten().sign().cpu() for t in parts])
        self._signs.append(float(signs.mean()))
        self._seen += parts[0].shape[0]
        if len(self._signs) >= self.ada_interval:
            r_t = sum(self._signs) / len(self._signs)
            step = self._seen / (self.ada_kimg * 1000)
            direction = 1.0 if r_t > self.ada_target else -1.0
            self.p = min(max(self.p + direction * step, 0.0), 1.0)
            self._signs, self._seen = [], 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "rng": self.generator.get_state(),
            "signs": list(self._signs),
            "seen": self._seen,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"])
        self.generator.set_state(state["rng"])
        self._signs = [float(v) for v in state["signs"]]
        self._seen = int(state["seen"])
