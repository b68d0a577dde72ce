"""Recipe ``pix2pix``: paired translation, here old-photo restoration (Isola et al., CVPR 2017).

The pairs are made on the fly: each clean photo crop of the batch is degraded by the seeded
old-photo model of :mod:`culturegan.data.degrade`, with the seed
``derive_seed(0, train.seed, step, index)`` (``index`` the item's place in the global batch), so
the pairs are a pure function of (run seed, step) and a resumed run sees exactly the pairs an
uninterrupted one sees. Names in code and paper: ``g`` is G (a U-Net, ``unet_*``; any
registered generator works), ``d`` is the conditional PatchGAN D, which judges the degraded
input and a restoration side by side (6 channels: ``cat(x, y)``). One step, in the paper's order:

1. generator: ``lambda_gan * GAN(D(x, G(x))) + lambda_l1 * ||y - G(x)||_1`` with D frozen
   (the paper: lambda = 100, the non-saturating loss; ``loss.gan_mode`` chooses);
2. discriminator: real pairs (x, y) against fake pairs (x, G(x)), objective halved.

Adam (lr 2e-4, betas 0.5 / 0.999), constant-then-linear-decay learning rate and an EMA of G for
export, as in the other recipes. The exported folder is an ordinary two-domain model with the
one direction ``degraded->restored``, so ``Stylizer.from_pretrained`` and ``culturegan
restore`` apply it like any other.

Usage::

    culturegan train --config pix2pix_restore --data.root DATA --data.domains photo
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from culturegan.checkpoint import pretrained_config
from culturegan.config import RunConfig
from culturegan.data.degrade import degrade, derive_seed
from culturegan.losses import AdversarialLoss
from culturegan.models import build_discriminator, build_generator
from culturegan.training.base import (
    Recipe,
    discriminator_kwargs,
    linear_decay_schedule,
    step_quietly,
)
from culturegan.training.cyclegan import init_normal_
from culturegan.training.ema import EMA
from culturegan.training.logger import make_grid

DOMAINS = ("degraded", "restored")  # the exported model's domains
PAIR_STREAM = 0  # first key of derive_seed for training pairs
SAMPLE_STREAM = 1  # ... and for the fixed pairs of the sample grids


def degrade_batch(clean: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Degrade each (3, H, W) image of ``clean`` (values in [-1, 1] on the 8-bit grid, as the
    loader makes them) with its seed; returns a batch on the same grid."""
    out = []
    for image, seed in zip(clean.detach().cpu(), seeds, strict=True):
        pixels = ((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (3, H, W)
        old, _ = degrade(np.ascontiguousarray(pixels.permute(1, 2, 0).numpy()), seed)
        out.append(torch.from_numpy(old).permute(2, 0, 1).float() / 127.5 - 1.0)
    return torch.stack(out).to(clean.device)


class Pix2PixRecipe(Recipe):
    name = "pix2pix"
    n_domains = 1  # clean photos; their degraded versions are made here

    def __init__(self, cfg: RunConfig, *, device: torch.device, domains: tuple[str, ...]) -> None:
        self.cfg, self.device, self.domains = cfg, device, tuple(domains)
        m = cfg.model
        kwargs: dict[str, Any] = {"ngf": m.ngf}
        if m.generator.startswith("unet_"):
            kwargs |= {"max_channels": m.max_channels, "residual": m.residual}
        self.g = build_generator(m.generator, **kwargs).to(device)
        if m.discriminator != "patchgan":
            raise ValueError(
                f"pix2pix needs the conditional patchgan discriminator (it judges input and "
                f"output side by side), not '{m.discriminator}'"
            )
        # Conditional D: the degraded input and a (real or restored) photo, channels stacked.
        self.d = build_discriminator("patchgan", in_channels=6, **discriminator_kwargs(cfg))
        self.d = self.d.to(device)
        for net in (self.g, self.d):
            init_normal_(net)
        self.ema = EMA(self.g, cfg.train.ema_decay)
        self.adv = AdversarialLoss(cfg.loss.gan_mode)
        o = cfg.optim
        betas = (o.beta1, o.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=o.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=o.lr, betas=betas)
        factor = linear_decay_schedule(cfg.train.steps, o.decay_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)

    def networks(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d}

    def pair_seeds(self, step: int, local_batch: int) -> list[int]:
        """Degradation seeds of this process's items: keyed by their global batch index."""
        first = dist.get_rank() * local_batch if dist.is_initialized() else 0
        seed = self.cfg.train.seed
        return [derive_seed(PAIR_STREAM, seed, step, first + j) for j in range(local_batch)]

    # ----------------------------------------------------------------------------- one step

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        clean = batch["a"].to(self.device, non_blocking=True)  # (B, 3, S, S): paper's y
        old = degrade_batch(clean, self.pair_seeds(step, len(clean)))  # paper's x
        loss = self.cfg.loss

        # The adversary's weight at this step (0: no discriminator work at all, as for the
        # L1-only preset; the weight depends only on the step, so every process agrees).
        gan = self.gan_weight(step)

        # Phase 1: generator, with D frozen.
        fake = self.g(old)
        loss_l1 = F.l1_loss(fake, clean)
        loss_g = loss.lambda_l1 * loss_l1
        losses = {"loss/l1": loss_l1.item()}
        if gan > 0:
            self.d.requires_grad_(False)
            loss_gan = self.adv.generator(self.d(torch.cat([old, fake], dim=1)))
            loss_g = loss_g + gan * loss_gan
            losses["loss/g_gan"] = loss_gan.item()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.sync_grads(self.opt_g)
        self.opt_g.step()
        losses["loss/g"] = loss_g.item()

        # Phase 2: discriminator on real pairs (x, y) and fake pairs (x, G(x)).
        if gan > 0:
            self.d.requires_grad_(True)
            loss_d = self.adv.discriminator(
                self.d(torch.cat([old, clean], dim=1)),
                self.d(torch.cat([old, fake.detach()], dim=1)),
            )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.sync_grads(self.opt_d)
            self.opt_d.step()
            losses["loss/d"] = loss_d.item()

        self.sched_g.step()
        step_quietly(self.sched_d)  # on the global step, stepped or not
        self.ema.update(self.g, step)
        return self.check_finite(losses, step, "lower optim.lr or try loss.gan_mode=lsgan")

    # ----------------------------------------------------------------------------- samples

    @torch.no_grad()
    def sample_grid(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: clean photos, their degraded versions (fixed seeds), EMA restorations."""
        clean = samples[self.domains[0]].to(self.device)
        seeds = [derive_seed(SAMPLE_STREAM, self.cfg.train.seed, i) for i in range(len(clean))]
        old = degrade_batch(clean, seeds)
        rows = [clean, old, self.ema.module(old)]
        return make_grid(torch.cat(rows).cpu(), rows=len(rows))

    # ----------------------------------------------------------------------------- state

    def export_modules(self) -> dict[str, nn.Module]:
        return {"g_ab": self.ema.module}

    def export_config(self) -> dict[str, Any]:
        source, target = DOMAINS
        return pretrained_config(
            kind="two_domain",
            recipe=self.name,
            domains=list(DOMAINS),
            networks={"g_ab": self.g},
            directions={f"{source}->{target}": "g_ab"},
            size_multiple=self.g.size_multiple,
            train_crop_size=self.cfg.data.crop_size,
            trained_on=self.domains[0],  # the clean photos' domain
            degradation="culturegan.data.degrade",
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
