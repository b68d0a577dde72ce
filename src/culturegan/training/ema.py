"""Exponential moving average of a network's weights (the copy that gets exported).

Averaging the generator over recent steps removes much of the step-to-step jitter of GAN
training (Karras et al., 2018; Yazici et al., 2019). Early on the decay is ramped from 0 as
``min(decay, (1 + step) / (10 + step))`` so that a short run's average is not dominated by the
random initialisation.

Usage::

    ema = EMA(g_ab, decay=0.999)
    ema.update(g_ab, step)
    export(ema.module)
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        for ema_p, p in zip(self.module.parameters(), module.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.module.buffers(), module.buffers(), strict=True):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
