"""Recipe ``multidomain``: one model for many cultures (after StarGAN v2, Choi et al., 2020).

One generator G(x, s) translates an image into any domain; the style code ``s`` comes from the
mapping network F_y(z) (latent-guided: a noise vector gives one of many possible renderings) or
from the style encoder E_y(x_ref) (reference-guided). Steps alternate between the two: even
steps latent-guided, odd steps reference-guided. Each step has two phases:

1. discriminator: non-saturating adversarial loss on reals of the source domain and fakes of
   the target domain, plus the R1 penalty on reals (Mescheder et al., 2018);
2. generator, mapping network and style encoder together: adversarial + style reconstruction
   ||s - E(G(x, s))|| - diversity sensitivity ||G(x, s1) - G(x, s2)|| (its weight decays
   linearly to zero) + cycle ||x - G(G(x, s), E(x))||.

Our additions, each with its own weight in ``cfg.loss``: ``lambda_own_style``, an L1 term
||G(x, E_y(x)) - x|| so that the strength knob's zero end (the input's own style) returns the
input; ``lambda_domain_cls``, a cross-entropy that trains the style encoder's domain classifier
(used to recognise the domain of a reference image); ``lambda_fake_cls``, a cross-entropy
asking that classifier, its weights frozen for this term, to name each output's target domain
(StarGAN's domain classification loss on fakes: outputs of one culture must not be mistaken
for another's); and the culture priors of
``culturegan.priors``, each switched on for a list of target domains.

Usage::

    recipe = MultiDomainRecipe(cfg, device=torch.device("cpu"), domains=("photo", "ink", "ukiyoe"))
    losses = recipe.train_step(batch, step)  # batch from culturegan.data.MultiDomainDataset
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.checkpoint import pretrained_config
from culturegan.config import RunConfig
from culturegan.losses import AdversarialLoss, Logits, shift_equivariance_loss
from culturegan.models import build_discriminator
from culturegan.models.discriminators import PatchDiscriminator
from culturegan.models.multidomain import (
    MappingNetwork,
    MobileStyleGenerator,
    MultiDomainDiscriminator,
    StyleEncoder,
    StyleGenerator,
)
from culturegan.priors import DomainStats, edge_loss, ink_view
from culturegan.training.base import (
    DomainPerceptualTerms,
    Recipe,
    build_augment,
    discriminator_kwargs,
    linear_decay_schedule,
    step_quietly,
)
from culturegan.training.ema import EMA
from culturegan.training.logger import make_grid


def init_he_(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation for convolutions and linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def r1_penalty(real_logits: Logits, real: torch.Tensor) -> torch.Tensor:
    """0.5 * E ||grad_x D(x)||^2 on real images (Mescheder et al., 2018)."""
    parts = real_logits if isinstance(real_logits, list | tuple) else [real_logits]
    (grad,) = torch.autograd.grad(sum(t.sum() for t in parts), real, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def domain_mask(y: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """(B,) bool: which items have their domain in ``ids``."""
    if not ids:
        return torch.zeros_like(y, dtype=torch.bool)
    return (y.unsqueeze(1) == torch.tensor(ids, device=y.device)).any(dim=1)


def build_style_generator(cfg: RunConfig, num_domains: int) -> nn.Module:
    """G(x, s): ``model.generator`` ``mobile_style_<N>blocks`` is the CPU generator with N
    style-modulated blocks (``model.domain_branch``: part of it once per domain); any other
    name, StarGAN v2's ``StyleGenerator`` (the default)."""
    m = cfg.model
    name = m.generator
    if name.startswith("mobile_style_"):
        blocks = name.removeprefix("mobile_style_").removesuffix("blocks")
        if not blocks.isdigit() or int(blocks) < 1:
            raise ValueError(f"model.generator '{name}': expected mobile_style_<N>blocks, N >= 1")
        return MobileStyleGenerator(
            ngf=m.ngf, style_dim=m.style_dim, n_blocks=int(blocks), residual=m.residual,
            pad_mode=m.pad_mode, icnr=m.icnr, output_tent=m.output_tent,
            domain_branch=m.domain_branch,
            num_domains=num_domains if m.domain_branch != "none" else 0,
        )  # fmt: skip
    return StyleGenerator(
        ngf=m.ngf,
        style_dim=m.style_dim,
        n_down=m.n_down,
        n_bottleneck=m.n_bottleneck,
        max_channels=m.max_channels,
        residual=m.residual,
        skips=m.skips,
    )


class MultiDomainRecipe(Recipe):
    name = "multidomain"
    multi_domain = True
    n_domains = None

    def __init__(self, cfg: RunConfig, *, device: torch.device, domains: tuple[str, ...]) -> None:
        if len(domains) < 2:
            raise ValueError(f"multi-domain training needs at least two domains, got {domains}")
        self.cfg, self.device, self.domains = cfg, device, tuple(domains)
        m, k = cfg.model, len(domains)
        self.generator = build_style_generator(cfg, k).to(device)
        self.branched = m.domain_branch != "none"
        self.mapping = MappingNetwork(
            num_domains=k, latent_dim=m.latent_dim, style_dim=m.style_dim, hidden=m.mapping_hidden
        ).to(device)
        self.style_encoder = StyleEncoder(
            num_domains=k, style_dim=m.style_dim, ndf=m.ndf, n_down=m.d_down,
            max_channels=m.max_channels, read_size=m.style_read_size,
        ).to(device)  # fmt: skip
        if m.discriminator == "patchgan":  # the default: StarGAN v2's discriminator
            self.discriminator = MultiDomainDiscriminator(
                num_domains=k, ndf=m.ndf, n_down=m.d_down, max_channels=m.max_channels
            )
        else:  # a registered one with an output per domain (projected_lite0)
            self.discriminator = build_discriminator(
                m.discriminator, **discriminator_kwargs(cfg, num_domains=k)
            )
        self.discriminator.to(device)
        # Before the discriminator, real and fake alike; its own seeded stream.
        self.augment = build_augment(cfg, seed=cfg.train.seed * 2 + 5)
        self.perceptual = DomainPerceptualTerms(cfg, self.domains)
        # The shift term's offsets (loss.lambda_shift); its state is part of the checkpoint.
        self.shift_rng = torch.Generator().manual_seed(cfg.train.seed * 2 + 7)
        loss = cfg.loss
        self.prior_ids = {
            prior: self._domain_ids(getattr(loss, f"{prior}_domains"), prior)
            for prior in ("edge", "ink", "blank", "color")
        }
        self.ink_discriminator = None
        if self.prior_ids["ink"]:
            self.ink_discriminator = PatchDiscriminator(
                ndf=m.ndf, n_layers=m.d_layers, spectral_norm=m.spectral_norm
            ).to(device)
        for net in self.networks().values():
            if not isinstance(net, MobileStyleGenerator):  # keeps its own initialisation
                init_he_(net)
        self.ema = {
            name: EMA(getattr(self, name), cfg.train.ema_decay)
            for name in ("generator", "mapping", "style_encoder")
        }
        self.stats = DomainStats(k)
        self.adv = AdversarialLoss(loss.gan_mode)

        o = cfg.optim
        betas = (o.beta1, o.beta2)
        d_params = list(self.discriminator.parameters())
        if self.ink_discriminator is not None:
            d_params += list(self.ink_discriminator.parameters())
        self.opt_d = torch.optim.Adam(d_params, lr=o.lr, betas=betas)
        self.opt_g = torch.optim.Adam(
            [
                {"params": self.generator.parameters()},
                {"params": self.style_encoder.parameters()},
                {"params": self.mapping.parameters(), "lr": o.lr * o.mapping_lr_ratio},
            ],
            lr=o.lr,
            betas=betas,
        )
        factor = linear_decay_schedule(cfg.train.steps, o.decay_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)
        ds_steps = loss.ds_decay_steps if loss.ds_decay_steps >= 0 else cfg.train.steps // 2
        self.ds_decay_steps = max(1, ds_steps)

    def _domain_ids(self, names: list[str], prior: str) -> list[int]:
        unknown = [n for n in names if n not in self.domains]
        if unknown:
            raise ValueError(
                f"loss.{prior}_domains names unknown domains {unknown} "
                f"(the data has: {', '.join(self.domains)})"
            )
        return [self.domains.index(n) for n in names]

    def networks(self) -> dict[str, nn.Module]:
        nets = {
            "generator": self.generator,
            "mapping": self.mapping,
            "style_encoder": self.style_encoder,
            "discriminator": self.discriminator,
        }
        if self.ink_discriminator is not None:
            nets["ink_discriminator"] = self.ink_discriminator
        return nets

    # ----------------------------------------------------------------------------- one step

    def _target_style(self, batch: dict, z: torch.Tensor, reference_key: str | None):
        y_trg = batch["y_trg"]
        if reference_key is None:
            return self.mapping(z, y_trg)
        return self.style_encoder(batch[reference_key], y_trg)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        x, y, y_trg = batch["x"], batch["y"], batch["y_trg"]
        loss_cfg = self.cfg.loss
        reference = step % 2 == 1  # alternate latent-guided and reference-guided steps
        z1 = torch.randn(len(x), self.cfg.model.latent_dim, device=self.device)
        z2 = torch.randn(len(x), self.cfg.model.latent_dim, device=self.device)
        self.stats.update(batch["x_ref"], y_trg)
        losses: dict[str, float] = {}

        # Phase 1: discriminators (skipped while the adversarial weight is 0: before
        # loss.gan_start, or lambda_gan 0).
        lambda_gan = self.gan_weight(step)
        loss_d = x.new_zeros(())
        aug = self.augment
        if lambda_gan > 0:
            self._discriminators_trainable(True)
            with torch.no_grad():
                s_trg = self._target_style(batch, z1, "x_ref" if reference else None)
                x_fake = self._generate(x, s_trg, y_trg)
            x_real = x.detach().requires_grad_(True)
            real_logits = self.discriminator(aug(x_real), y)
            fake_logits = self.discriminator(aug(x_fake), y_trg)
            aug.observe(real_logits)
            loss_d = self.adv.discriminator(real_logits, fake_logits)
            total_d = loss_d
            if loss_cfg.lambda_r1 > 0:  # projected discriminators go without (as in the paper)
                loss_r1 = r1_penalty(real_logits, x_real)
                total_d = total_d + loss_cfg.lambda_r1 * loss_r1
                losses["loss/r1"] = loss_r1.item()
            if self.ink_discriminator is not None:
                loss_ink_d = self._ink_d_loss(batch, x_fake)
                total_d = total_d + loss_cfg.lambda_ink * loss_ink_d
                losses["loss/d_ink"] = loss_ink_d.item()
            self.opt_d.zero_grad(set_to_none=True)
            total_d.backward()
            self.sync_grads(self.opt_d)
            self.opt_d.step()

        # Phase 2: generator, mapping network and style encoder; discriminators frozen.
        self._discriminators_trainable(False)
        encoder = self.style_encoder
        h: dict[str, torch.Tensor] = {}  # style-encoder trunk features, read once per image
        if reference:
            h["ref"] = encoder.trunk(batch["x_ref"])
            s_trg = encoder.style_of(h["ref"], y_trg)
        else:
            s_trg = self._target_style(batch, z1, None)
        x_fake = self._generate(x, s_trg, y_trg)
        loss_adv = x.new_zeros(())
        loss_shift = x.new_zeros(())
        if loss_cfg.lambda_shift > 0:  # the first two items, each with its own style and domain
            n = min(2, len(x))
            loss_shift = shift_equivariance_loss(
                lambda v: self._generate(v, s_trg[:n], y_trg[:n]),
                x,
                x_fake,
                multiple=self.generator.size_multiple,
                rng=self.shift_rng,
                items=n,
            )
        if lambda_gan > 0:
            loss_adv = self.adv.generator(self.discriminator(aug(x_fake), y_trg))
        # Each term below costs generator or encoder passes: computed only while it weighs.
        zero = x.new_zeros(())
        loss_sty = loss_ds = loss_cyc = loss_own = loss_cls = loss_fake_cls = zero
        # The terms that read images through the style encoder share one pass of its trunk over
        # the images they need (no norm layers: each item's features are its own).
        read: dict[str, torch.Tensor] = {}
        if loss_cfg.lambda_style > 0:
            read["fake"] = x_fake
        cycled = loss_cfg.lambda_cycle > 0 or loss_cfg.lambda_own_style > 0
        if cycled or loss_cfg.lambda_domain_cls > 0:
            read["x"] = x
        if loss_cfg.lambda_domain_cls > 0 and "ref" not in h:
            read["ref"] = batch["x_ref"]
        if read:
            trunk = encoder.trunk(torch.cat(list(read.values()))).split(len(x))
            h.update(zip(read, trunk, strict=True))
        if loss_cfg.lambda_style > 0:
            loss_sty = (encoder.style_of(h["fake"], y_trg) - s_trg).abs().mean()
        lambda_ds = loss_cfg.lambda_ds * max(0.0, 1.0 - step / self.ds_decay_steps)
        if lambda_ds > 0:
            with torch.no_grad():
                s_trg2 = self._target_style(batch, z2, "x_ref2" if reference else None)
                x_fake2 = self._generate(x, s_trg2, y_trg)
            loss_ds = (x_fake - x_fake2).abs().mean()
        if cycled:
            s_own = encoder.style_of(h["x"], y)
            if loss_cfg.lambda_cycle > 0:
                loss_cyc = (self._generate(x_fake, s_own, y) - x).abs().mean()
            if loss_cfg.lambda_own_style > 0:
                loss_own = (self._generate(x, s_own, y) - x).abs().mean()
        if loss_cfg.lambda_domain_cls > 0:
            loss_cls = F.cross_entropy(encoder.classifier(h["x"]), y) + F.cross_entropy(
                encoder.classifier(h["ref"]), y_trg
            )
        if loss_cfg.lambda_fake_cls > 0:
            loss_fake_cls = F.cross_entropy(self._frozen_classify(x_fake), y_trg)
        total_g = (
            lambda_gan * loss_adv
            + loss_cfg.lambda_style * loss_sty
            - lambda_ds * loss_ds
            + loss_cfg.lambda_cycle * loss_cyc
            + loss_cfg.lambda_own_style * loss_own
            + loss_cfg.lambda_domain_cls * loss_cls
            + loss_cfg.lambda_fake_cls * loss_fake_cls
            + loss_cfg.lambda_shift * loss_shift
        )
        total_g = total_g + self._prior_losses(x, x_fake, y_trg, losses, adversarial=lambda_gan > 0)
        if self.perceptual.enabled:  # x_ref is an artwork of each item's target domain
            terms, logs = self.perceptual(x_fake, x, batch["x_ref"], y_trg, step=step)
            total_g = total_g + terms
            losses.update(logs)
        self.opt_g.zero_grad(set_to_none=True)
        total_g.backward()
        self.sync_grads(self.opt_g)
        self.opt_g.step()

        self.sched_g.step()
        step_quietly(self.sched_d)  # on the global step, whether or not D trained
        for name, ema in self.ema.items():
            ema.update(getattr(self, name), step)
        losses.update(
            {
                "loss/d": loss_d.item(),
                "loss/g": total_g.item(),
                "loss/g_adv": loss_adv.item(),
                "loss/style": loss_sty.item(),
                "loss/diversity": loss_ds.item(),
                "loss/cycle": loss_cyc.item(),
                "loss/own_style": loss_own.item(),
                "loss/domain_cls": loss_cls.item(),
                "loss/fake_cls": loss_fake_cls.item(),
                "weight/lambda_ds": lambda_ds,
            }
        )
        if loss_cfg.lambda_shift > 0:
            losses["loss/shift"] = loss_shift.item()
        return self.check_finite(losses, step, "lower optim.lr or raise loss.lambda_r1")

    def _generate(
        self, x: torch.Tensor, s: torch.Tensor, y: torch.Tensor, generator: nn.Module | None = None
    ) -> torch.Tensor:
        """G(x, s) drawn as domains ``y`` (the branch of each item's domain, if any)."""
        generator = generator if generator is not None else self.generator
        return generator(x, s, domain=y) if self.branched else generator(x, s)

    def _frozen_classify(self, images: torch.Tensor) -> torch.Tensor:
        """The style encoder's domain logits with its weights as constants: the gradient reaches
        ``images`` (the generator) only, so the classifier cannot learn to call fakes whatever
        they are asked to be."""
        self.style_encoder.requires_grad_(False)  # recorded per operation: no gradient here
        try:
            return self.style_encoder.classify(images)
        finally:
            self.style_encoder.requires_grad_(True)

    def _discriminators_trainable(self, flag: bool) -> None:
        self.discriminator.requires_grad_(flag)
        if self.ink_discriminator is not None:
            self.ink_discriminator.requires_grad_(flag)

    def _ink_d_loss(self, batch: dict, x_fake: torch.Tensor) -> torch.Tensor:
        """The ink discriminator: real ink-domain references vs. fakes aimed at ink domains."""
        ids = self.prior_ids["ink"]
        real = batch["x_ref"][domain_mask(batch["y_trg"], ids)]
        fake = x_fake[domain_mask(batch["y_trg"], ids)]
        if len(real) == 0:
            return x_fake.new_zeros(())
        return self.adv.discriminator(
            self.ink_discriminator(ink_view(real)), self.ink_discriminator(ink_view(fake))
        )

    def _prior_losses(
        self,
        x: torch.Tensor,
        x_fake: torch.Tensor,
        y_trg: torch.Tensor,
        losses: dict,
        *,
        adversarial: bool,  # False: the discriminators (the ink one too) are not trained now
    ) -> torch.Tensor:
        loss_cfg = self.cfg.loss
        total = x_fake.new_zeros(())
        for prior, ids in self.prior_ids.items():
            if prior == "ink" and not adversarial:
                continue
            mask = domain_mask(y_trg, ids)
            if not mask.any():
                continue
            fake, yt = x_fake[mask], y_trg[mask]
            if prior == "edge":
                value = edge_loss(x[mask], fake)
            elif prior == "ink":
                value = self.adv.generator(self.ink_discriminator(ink_view(fake)))
            elif prior == "blank":
                value = self.stats.blank_loss(fake, yt)
            else:
                value = self.stats.color_loss(fake, yt)
            total = total + getattr(loss_cfg, f"lambda_{prior}") * value
            losses[f"loss/prior_{prior}"] = value.item()
        return total

    # ----------------------------------------------------------------------------- samples

    @torch.no_grad()
    def sample_grid(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        """One row per domain's first sample image: the input, then one latent-guided rendering
        into every domain (fixed noise, EMA networks)."""
        g, f = self.ema["generator"].module, self.ema["mapping"].module
        inputs = torch.cat([samples[d][:1] for d in self.domains]).to(self.device)  # (K, 3, S, S)
        k = len(self.domains)
        z = torch.randn(1, self.cfg.model.latent_dim, generator=torch.Generator().manual_seed(0))
        z = z.to(self.device).expand(len(inputs), -1)
        columns = [inputs]
        for t in range(k):
            y = torch.full((len(inputs),), t, device=self.device, dtype=torch.long)
            columns.append(self._generate(inputs, f(z, y), y, g))
        rows = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: input, domain 0, ...
        return make_grid(rows.cpu(), rows=len(inputs))

    # ----------------------------------------------------------------------------- state

    def export_modules(self) -> dict[str, nn.Module]:
        return {name: ema.module for name, ema in self.ema.items()}

    def export_config(self) -> dict[str, Any]:
        names = self.domains
        return pretrained_config(
            kind="multi_domain",
            recipe=self.name,
            domains=list(names),
            networks=self.export_modules(),
            directions={f"{a}->{b}": "generator" for a in names for b in names if a != b},
            size_multiple=self.generator.size_multiple,
            latent_dim=self.cfg.model.latent_dim,
            style_dim=self.cfg.model.style_dim,
            train_crop_size=self.cfg.data.crop_size,
        )

    def state_dict(self) -> dict[str, Any]:
        state = {name: net.state_dict() for name, net in self.networks().items()}
        state.update(
            {
                "ema": {k: v.state_dict() for k, v in self.ema.items()},
                "stats": self.stats.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "sched_g": self.sched_g.state_dict(),
                "sched_d": self.sched_d.state_dict(),
                "augment": self.augment.state_dict(),
                "shift_rng": self.shift_rng.get_state(),
            }
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        for k, ema in self.ema.items():
            ema.load_state_dict(state["ema"][k])
        self.stats.load_state_dict(state["stats"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        if "augment" in state:  # checkpoints from before DiffAugment have none
            self.augment.load_state_dict(state["augment"])
        if "shift_rng" in state:  # nor have those from before the shift term
            self.shift_rng.set_state(state["shift_rng"])
