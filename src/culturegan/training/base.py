"""What every training recipe shares: the learning-rate schedule and the optimiser-step hook.

A recipe owns its networks, losses, optimisers and the order of updates; the loop in
``training/loop.py`` owns everything around a step. A recipe subclass provides ``networks()``,
``train_step(batch, step)``, ``sample_grid(samples)``, ``export_modules()``,
``export_config()``, ``state_dict()`` and ``load_state_dict()``, and calls ``sync_grads`` right
before each optimiser step.

Usage::

    class MyRecipe(Recipe):
        name = "mine"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def linear_decay_schedule(total_steps: int, decay_steps: int) -> Callable[[int], float]:
    """lr factor: 1 for the first ``total - decay`` steps, then linearly down to 0.

    ``decay_steps`` -1 means half of the steps (CycleGAN's 100 + 100 epochs), 0 a constant lr.
    """
    decay_steps = total_steps // 2 if decay_steps < 0 else min(decay_steps, total_steps)
    constant = total_steps - decay_steps

    def factor(step: int) -> float:
        if step < constant or decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - (step - constant) / decay_steps)

    return factor


class Recipe:
    name = "recipe"
    multi_domain = False  # True: trains on any number of domains (MultiDomainDataset batches)
    n_domains: int | None = 2  # domains a recipe trains on (None: two or more)
    # Set by the training loop for data-parallel runs: averages gradients over processes.
    grad_hook: Callable[[Iterable[torch.nn.Parameter]], None] | None = None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def sync_grads(self, optimizer: torch.optim.Optimizer) -> None:
        """Called right before every optimiser step."""
        if self.grad_hook is not None:
            self.grad_hook(p for group in optimizer.param_groups for p in group["params"])

    def check_finite(self, losses: dict[str, float], step: int, advice: str) -> dict[str, float]:
        """Return ``losses``, or stop the run with what to change when one is NaN or inf."""
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"non-finite loss at step {step}: {', '.join(bad)}; {advice}")
        return losses

    def learning_rates(self) -> dict[str, float]:
        return {"lr/g": self.opt_g.param_groups[0]["lr"], "lr/d": self.opt_d.param_groups[0]["lr"]}
