"""Recipe ``cut``: contrastive unpaired translation (Park et al., ECCV 2020), and FastCUT.

One generator ``g_ab`` (the paper's G) and one discriminator ``d_b`` (D, judging domain B);
no second generator and no cycle. Content is kept by PatchNCE: a patch of the output G(x)
should be recognisable as the patch of the input x at the same place among the other
``num_patches`` patches of x. Features come from G's own encoder (``encoder_features`` reads
chosen layers of ``g_ab.model``); a small MLP per layer, ``f`` (the paper's H, CUT's netF),
projects them to unit vectors, and the loss is a cross-entropy with temperature ``tau``:

    l(q, k+, k-) = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_n exp(q.k-_n / tau)) )

averaged over patches and layers. Presets, as in the paper's section 4:

* **CUT**: lambda_NCE = 1 plus the identity PatchNCE on domain-B images (G(y) against y);
* **FastCUT**: lambda_NCE = 10, no identity term, optional flip-equivariance augmentation
  (the input is flipped left-right half of the time and G(x)'s features are flipped back before
  comparing them with x's).

One step follows CUT's order: forward, discriminator phase (real vs. this step's fakes, halved),
then generator + MLP phase (adversarial + PatchNCE). Adam, linear decay and EMA as in
``cyclegan``. Patch positions and flips come from the recipe's own seeded generator, so a
resumed run draws the same ones.

Usage::

    recipe = CUTRecipe(cfg, device=torch.device("cpu"), domains=("photo", "ukiyoe"))
    losses = recipe.train_step({"a": real_a, "b": real_b}, step)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from culturegan.checkpoint import pretrained_config
from culturegan.config import RunConfig
from culturegan.losses import AdversarialLoss, patch_nce_loss, shift_equivariance_loss
from culturegan.models import build_discriminator, build_generator
from culturegan.models.features import PatchProjector, encoder_features, parse_layers
from culturegan.training.base import (
    DomainPerceptualTerms,
    Recipe,
    build_augment,
    discriminator_kwargs,
    generator_kwargs,
    linear_decay_schedule,
    step_quietly,
)
from culturegan.training.cyclegan import init_normal_
from culturegan.training.ema import EMA
from culturegan.training.logger import make_grid

PROJECTION_DIM = 256  # CUT's netF_nc


class CUTRecipe(Recipe):
    name = "cut"

    def __init__(self, cfg: RunConfig, *, device: torch.device, domains: tuple[str, str]) -> None:
        self.cfg, self.device, self.domains = cfg, device, tuple(domains)
        m, loss = cfg.model, cfg.loss
        # Fields of the CUT section; read with defaults so older configs still build.
        self.lambda_nce = loss.lambda_nce
        self.nce_idt = loss.nce_idt
        self.num_patches = loss.num_patches
        self.temperature = loss.nce_temperature
        self.flip_equivariance = loss.flip_equivariance
        self.lambda_shift = loss.lambda_shift
        if self.num_patches < 1 or self.temperature <= 0:
            raise ValueError(
                f"need loss.num_patches >= 1 and loss.nce_temperature > 0, got "
                f"{self.num_patches}, {self.temperature}"
            )

        self.g_ab = build_generator(m.generator, **generator_kwargs(cfg)).to(device)
        self.d_b = build_discriminator(m.discriminator, **discriminator_kwargs(cfg)).to(device)
        init_normal_(self.g_ab)
        init_normal_(self.d_b)
        # Before the discriminator, real and fake alike; its own seeded stream.
        self.augment = build_augment(cfg, seed=cfg.train.seed * 2 + 5)
        # loss.domain_weights: the target's own weights (the one direction this recipe trains)
        self.perceptual = DomainPerceptualTerms(cfg, self.domains, paired=False).for_target(1)
        self.nce_layers = parse_layers(loss.nce_layers, self.g_ab)
        # One dry run through the encoder tells the channel count of each chosen layer.
        side = 4 * self.g_ab.size_multiple
        with torch.no_grad():
            probe = torch.zeros(1, 3, side, side, device=device)
            channels = [f.shape[1] for f in encoder_features(self.g_ab, probe, self.nce_layers)]
        self.f = PatchProjector(channels, dim=PROJECTION_DIM).to(device)
        self.ema = {"g_ab": EMA(self.g_ab, cfg.train.ema_decay)}

        self.adv = AdversarialLoss(loss.gan_mode)
        # Patch positions and flips; its state is part of the checkpoint.
        self.generator = torch.Generator().manual_seed(cfg.train.seed * 2 + 3)

        o = cfg.optim
        betas = (o.beta1, o.beta2)
        self.opt_g = torch.optim.Adam(self.g_ab.parameters(), lr=o.lr, betas=betas)
        self.opt_f = torch.optim.Adam(self.f.parameters(), lr=o.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d_b.parameters(), lr=o.lr, betas=betas)
        factor = linear_decay_schedule(cfg.train.steps, o.decay_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_f = torch.optim.lr_scheduler.LambdaLR(self.opt_f, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks (what data-parallel processes keep in sync)."""
        return {"g_ab": self.g_ab, "d_b": self.d_b, "f": self.f}

    # ----------------------------------------------------------------------------- PatchNCE

    def patch_nce(self, source: torch.Tensor, output: torch.Tensor, flipped: bool) -> torch.Tensor:
        """lambda_NCE * PatchNCE between G's encoder features of ``output`` and ``source``."""
        feat_q = encoder_features(self.g_ab, output, self.nce_layers)
        if flipped:  # output = G(flip(source)): flip its features back into place
            feat_q = [f.flip(3) for f in feat_q]
        with torch.no_grad():  # the keys are detached in the loss: no graph needed
            feat_k = encoder_features(self.g_ab, source, self.nce_layers)
        patch_ids = [
            torch.randperm(f.shape[2] * f.shape[3], generator=self.generator)[: self.num_patches]
            for f in feat_k
        ]
        with torch.no_grad():
            keys = self.f(feat_k, patch_ids)
        queries = self.f(feat_q, patch_ids)
        n = source.shape[0]
        total = sum(
            patch_nce_loss(q, k, batch_size=n, temperature=self.temperature)
            for q, k in zip(queries, keys, strict=True)
        )
        return self.lambda_nce * total / len(self.nce_layers)

    # ----------------------------------------------------------------------------- one step

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real_a = batch["a"].to(self.device, non_blocking=True)  # (B, 3, S, S)
        real_b = batch["b"].to(self.device, non_blocking=True)
        n = real_a.shape[0]
        flipped = False
        if self.flip_equivariance:
            flipped = bool(torch.rand((), generator=self.generator) < 0.5)
        # One generator pass over A (and B for the identity term); instance norm keeps the
        # images of the batch independent.
        real = torch.cat([real_a, real_b]) if self.nce_idt else real_a
        if flipped:
            real = real.flip(3)
        fake = self.g_ab(real)
        fake_b = fake[:n]

        # Phase 1: discriminator, real B vs. this step's G(A). With lambda_gan 0 (a pure
        # content + style run, or before loss.gan_start) the discriminator would learn for
        # nothing: both phases skip it.
        lambda_gan = self.gan_weight(step)
        adversarial = lambda_gan > 0
        aug = self.augment
        loss_d = loss_gan = fake_b.new_zeros(())
        if adversarial:
            self.d_b.requires_grad_(True)
            real_logits = self.d_b(aug(real_b))
            loss_d = self.adv.discriminator(real_logits, self.d_b(aug(fake_b.detach())))
            aug.observe(real_logits)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.sync_grads(self.opt_d)
            self.opt_d.step()

            # Phase 2: generator and projection MLPs, with the discriminator frozen.
            self.d_b.requires_grad_(False)
            loss_gan = self.adv.generator(self.d_b(aug(fake_b)))
        losses = {}
        loss_g = lambda_gan * loss_gan
        if self.lambda_nce > 0:
            loss_nce = self.patch_nce(real_a, fake_b, flipped)
            losses["loss/nce"] = loss_nce.item()
            if self.nce_idt:
                loss_nce_idt = self.patch_nce(real_b, fake[n:], flipped)
                losses["loss/nce_idt"] = loss_nce_idt.item()
                loss_nce = 0.5 * (loss_nce + loss_nce_idt)
            loss_g = loss_g + loss_nce
        if self.lambda_shift > 0:  # real[:n] is what fake_b was made from, flipped or not
            loss_shift = shift_equivariance_loss(
                self.g_ab, real[:n], fake_b, multiple=self.g_ab.size_multiple, rng=self.generator
            )
            losses["loss/shift"] = loss_shift.item()
            loss_g = loss_g + self.lambda_shift * loss_shift
        if self.perceptual.enabled:
            source = real_a.flip(3) if flipped else real_a  # the image fake_b was made from
            terms, logs = self.perceptual(fake_b, source, real_b, step=step)
            loss_g = loss_g + terms
            losses.update(logs)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_f.zero_grad(set_to_none=True)
        if loss_g.requires_grad:  # False only before gan_start with no other generator term
            loss_g.backward()
        self.sync_grads(self.opt_g)
        self.sync_grads(self.opt_f)
        self.opt_g.step()
        self.opt_f.step()
        self.d_b.requires_grad_(True)

        self.sched_g.step()
        self.sched_f.step()
        step_quietly(self.sched_d)  # on the global step, whether or not D trained
        self.ema["g_ab"].update(self.g_ab, step)

        losses.update(
            {"loss/g": loss_g.item(), "loss/g_gan": loss_gan.item(), "loss/d_b": loss_d.item()}
        )
        return self.check_finite(losses, step, "lower optim.lr or try loss.gan_mode=lsgan")

    def learning_rates(self) -> dict[str, float]:
        return {
            "lr/g": self.opt_g.param_groups[0]["lr"],
            "lr/f": self.opt_f.param_groups[0]["lr"],
            "lr/d": self.opt_d.param_groups[0]["lr"],
        }

    # ----------------------------------------------------------------------------- samples

    @torch.no_grad()
    def sample_grid(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: A, G(A), B, G(B) (the identity the NCE term asks for) with the EMA G."""
        g_ab = self.ema["g_ab"].module
        real_a = samples[self.domains[0]].to(self.device)
        real_b = samples[self.domains[1]].to(self.device)
        n = min(len(real_a), len(real_b))
        rows = [real_a, g_ab(real_a), real_b, g_ab(real_b)]
        images = torch.cat([r[:n] for r in rows]).cpu()
        return make_grid(images, rows=len(rows))

    # ----------------------------------------------------------------------------- state

    def export_modules(self) -> dict[str, nn.Module]:
        return {"g_ab": self.ema["g_ab"].module}

    def export_config(self) -> dict[str, Any]:
        a, b = self.domains
        return pretrained_config(
            kind="two_domain",
            recipe=self.name,
            domains=[a, b],
            networks={"g_ab": self.g_ab},
            directions={f"{a}->{b}": "g_ab"},  # CUT learns one direction only
            size_multiple=self.g_ab.size_multiple,
            train_crop_size=self.cfg.data.crop_size,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "g_ab": self.g_ab.state_dict(),
            "d_b": self.d_b.state_dict(),
            "f": self.f.state_dict(),
            "ema": {k: v.state_dict() for k, v in self.ema.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_f": self.opt_f.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_f": self.sched_f.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "rng": self.generator.get_state(),
            "augment": self.augment.state_dict(),
            "style_bank": self.perceptual.bank_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g_ab.load_state_dict(state["g_ab"])
        self.d_b.load_state_dict(state["d_b"])
        self.f.load_state_dict(state["f"])
        for k, ema in self.ema.items():
            ema.load_state_dict(state["ema"][k])
        for name in ("opt_g", "opt_f", "opt_d", "sched_g", "sched_f", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["rng"])
        if "augment" in state:  # checkpoints from before DiffAugment have none
            self.augment.load_state_dict(state["augment"])
        self.perceptual.load_bank_state(state.get("style_bank", {}), self.device)
