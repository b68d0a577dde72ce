"""Recipe ``cyclegan``: unpaired two-domain translation (Zhu et al., ICCV 2017).

Names in code and paper: ``g_ab`` is the paper's G: X -> Y, ``g_ba`` is F: Y -> X, ``d_b`` is
D_Y (judges domain B = Y) and ``d_a`` is D_X. (The official code calls them netG_A, netG_B,
netD_A, netD_B, with netD_A judging domain B.) One step is two phases, in the paper's order:

1. generators: adversarial + lambda * cycle + lambda * lambda_idt * identity, discriminators
   frozen;
2. discriminators: real vs. a fake drawn from the image pool, objective halved.

Adam(lr 2e-4, betas 0.5/0.999), constant learning rate then linear decay to zero, EMA copies of
both generators for export. This module owns the optimisers and the order of updates; the
networks in ``culturegan.models`` are pure functions of their input.

Usage::

    recipe = CycleGANRecipe(cfg, device=torch.device("cpu"), domains=("photo", "ukiyoe"))
    losses = recipe.train_step({"a": real_a, "b": real_b}, step)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from culturegan.checkpoint import pretrained_config
from culturegan.config import RunConfig
from culturegan.losses import (
    AdversarialLoss,
    ImagePool,
    cycle_loss,
    identity_loss,
    shift_equivariance_loss,
)
from culturegan.models import build_discriminator, build_generator
from culturegan.training.base import (
    DomainPerceptualTerms,
    Recipe,
    build_augment,
    discriminator_kwargs,
    generator_kwargs,
    linear_decay_schedule,
)
from culturegan.training.ema import EMA
from culturegan.training.logger import make_grid


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """CycleGAN's initialisation: conv weights ~ N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            weight = (
                m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            )
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class CycleGANRecipe(Recipe):
    name = "cyclegan"

    def __init__(self, cfg: RunConfig, *, device: torch.device, domains: tuple[str, str]) -> None:
        self.cfg, self.device, self.domains = cfg, device, domains
        m = cfg.model
        self.g_ab = build_generator(m.generator, **generator_kwargs(cfg)).to(device)
        self.g_ba = build_generator(m.generator, ngf=m.ngf).to(device)  # photos: free RGB
        d_kwargs = discriminator_kwargs(cfg)
        self.d_a = build_discriminator(m.discriminator, **d_kwargs).to(device)
        self.d_b = build_discriminator(m.discriminator, **d_kwargs).to(device)
        for net in (self.g_ab, self.g_ba, self.d_a, self.d_b):
            init_normal_(net)
        # Before every discriminator, real and fake alike; its own seeded stream.
        self.augment = build_augment(cfg, seed=cfg.train.seed * 2 + 5)
        self.perceptual = DomainPerceptualTerms(cfg, domains, paired=False)
        ema_decay = cfg.train.ema_decay
        self.ema = {"g_ab": EMA(self.g_ab, ema_decay), "g_ba": EMA(self.g_ba, ema_decay)}

        self.adv = AdversarialLoss(cfg.loss.gan_mode)
        seed = cfg.train.seed
        self.pool_a = ImagePool(cfg.loss.pool_size, seed=seed * 2 + 1)  # fakes of domain A
        self.pool_b = ImagePool(cfg.loss.pool_size, seed=seed * 2 + 2)
        # The shift term's offsets (loss.lambda_shift); its state is part of the checkpoint.
        self.shift_rng = torch.Generator().manual_seed(seed * 2 + 7)

        o = cfg.optim
        betas = (o.beta1, o.beta2)
        g_params = list(self.g_ab.parameters()) + list(self.g_ba.parameters())
        d_params = list(self.d_a.parameters()) + list(self.d_b.parameters())
        self.opt_g = torch.optim.Adam(g_params, lr=o.lr, betas=betas)
        self.opt_d = torch.optim.Adam(d_params, lr=o.lr, betas=betas)
        factor = linear_decay_schedule(cfg.train.steps, o.decay_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks (what data-parallel processes keep in sync)."""
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}

    # ----------------------------------------------------------------------------- one step

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, 3, S, S)
        real_b = batch["b"].to(self.device, non_blocking=True)
        lam = self.cfg.loss.lambda_cycle
        lam_idt = self.cfg.loss.lambda_identity

        # Phase 1: generators, with the discriminators frozen.
        self.d_a.requires_grad_(False)
        self.d_b.requires_grad_(False)
        fake_b = self.g_ab(real_a)
        rec_a = self.g_ba(fake_b)
        fake_a = self.g_ba(real_b)
        rec_b = self.g_ab(fake_a)
        aug = self.augment
        loss_gan_ab = self.adv.generator(self.d_b(aug(fake_b)))
        loss_gan_ba = self.adv.generator(self.d_a(aug(fake_a)))
        loss_cyc_a = cycle_loss(rec_a, real_a)
        loss_cyc_b = cycle_loss(rec_b, real_b)
        loss_g = self.cfg.loss.lambda_gan * (loss_gan_ab + loss_gan_ba)
        loss_g = loss_g + lam * (loss_cyc_a + loss_cyc_b)
        losses = {}
        if self.perceptual.enabled:
            to_b, to_a = self.perceptual.for_target(1), self.perceptual.for_target(0)
            terms_ab, logs_ab = to_b(fake_b, real_a, real_b, step=step, suffix="_ab")
            terms_ba, logs_ba = to_a(fake_a, real_b, real_a, step=step, suffix="_ba")
            loss_g = loss_g + terms_ab + terms_ba
            losses.update(logs_ab | logs_ba)
        if self.cfg.loss.lambda_shift > 0:
            shift_ab, shift_ba = (
                shift_equivariance_loss(g, real, fake, multiple=g.size_multiple,
                                        rng=self.shift_rng)
                for g, real, fake in ((self.g_ab, real_a, fake_b), (self.g_ba, real_b, fake_a))
            )  # fmt: skip
            loss_g = loss_g + self.cfg.loss.lambda_shift * (shift_ab + shift_ba)
            losses.update({"loss/shift_ab": shift_ab.item(), "loss/shift_ba": shift_ba.item()})
        if lam_idt > 0:
            loss_idt_a = identity_loss(self.g_ba(real_a), real_a)
            loss_idt_b = identity_loss(self.g_ab(real_b), real_b)
            loss_g = loss_g + lam * lam_idt * (loss_idt_a + loss_idt_b)
            losses.update({"loss/idt_a": loss_idt_a.item(), "loss/idt_b": loss_idt_b.item()})
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.sync_grads(self.opt_g)
        self.opt_g.step()

        # Phase 2: discriminators, on real images and pooled past fakes.
        self.d_a.requires_grad_(True)
        self.d_b.requires_grad_(True)
        pooled_b = self.pool_b.query(fake_b.detach())
        pooled_a = self.pool_a.query(fake_a.detach())
        real_logits_b = self.d_b(aug(real_b))
        loss_d_b = self.adv.discriminator(real_logits_b, self.d_b(aug(pooled_b)))
        loss_d_a = self.adv.discriminator(self.d_a(aug(real_a)), self.d_a(aug(pooled_a)))
        aug.observe(real_logits_b)  # ADA follows the target domain's discriminator
        self.opt_d.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        self.sync_grads(self.opt_d)
        self.opt_d.step()

        self.sched_g.step()
        self.sched_d.step()
        self.ema["g_ab"].update(self.g_ab, step)
        self.ema["g_ba"].update(self.g_ba, step)

        losses.update(
            {
                "loss/g": loss_g.item(),
                "loss/g_gan_ab": loss_gan_ab.item(),
                "loss/g_gan_ba": loss_gan_ba.item(),
                "loss/cycle_a": loss_cyc_a.item(),
                "loss/cycle_b": loss_cyc_b.item(),
                "loss/d_a": loss_d_a.item(),
                "loss/d_b": loss_d_b.item(),
            }
        )
        return self.check_finite(losses, step, "lower optim.lr or try loss.gan_mode=lsgan")

    # ----------------------------------------------------------------------------- samples

    @torch.no_grad()
    def sample_grid(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: A, G(A), F(G(A)), B, F(B), G(F(B)) with the EMA generators."""
        g_ab, g_ba = self.ema["g_ab"].module, self.ema["g_ba"].module
        real_a = samples[self.domains[0]].to(self.device)
        real_b = samples[self.domains[1]].to(self.device)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        rows = [real_a, fake_b, g_ba(fake_b), real_b, fake_a, g_ab(fake_a)]
        n = min(len(real_a), len(real_b))
        images = torch.cat([r[:n] for r in rows]).cpu()
        return make_grid(images, rows=len(rows))

    # ----------------------------------------------------------------------------- state

    def export_modules(self) -> dict[str, nn.Module]:
        return {name: ema.module for name, ema in self.ema.items()}

    def export_config(self) -> dict[str, Any]:
        a, b = self.domains
        return pretrained_config(
            kind="two_domain",
            recipe=self.name,
            domains=[a, b],
            networks={"g_ab": self.g_ab, "g_ba": self.g_ba},
            directions={f"{a}->{b}": "g_ab", f"{b}->{a}": "g_ba"},
            size_multiple=self.g_ab.size_multiple,
            train_crop_size=self.cfg.data.crop_size,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "g_ab": self.g_ab.state_dict(),
            "g_ba": self.g_ba.state_dict(),
            "d_a": self.d_a.state_dict(),
            "d_b": self.d_b.state_dict(),
            "ema": {k: v.state_dict() for k, v in self.ema.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "pool_a": self.pool_a.state_dict(),
            "pool_b": self.pool_b.state_dict(),
            "augment": self.augment.state_dict(),
            "shift_rng": self.shift_rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("g_ab", "g_ba", "d_a", "d_b"):
            getattr(self, name).load_state_dict(state[name])
        for k, ema in self.ema.items():
            ema.load_state_dict(state["ema"][k])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])
        if "augment" in state:  # checkpoints from before DiffAugment have none
            self.augment.load_state_dict(state["augment"])
        if "shift_rng" in state:  # nor have those from before the shift term
            self.shift_rng.set_state(state["shift_rng"])
