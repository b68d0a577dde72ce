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

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from culturegan.augment import DiffAugment
from culturegan.config import RunConfig, for_domains, named_weight
from culturegan.losses import (
    content_loss,
    feature_stats,
    flat_loss,
    focus_weights,
    gaussian_blur,
    grey_layout,
    guide_loss,
    matched_mix,
    outline_loss,
    palette_loss,
    patch_swd_loss,
    structure_loss,
    style_stats_loss,
    style_swd_loss,
)
from culturegan.models.pretrained import lite0_maps


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


def step_quietly(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Advance a schedule whose optimiser may not have stepped yet (a discriminator held back
    by ``loss.gan_start``), without PyTorch's warning about the call order: the schedule
    follows the global step, so the discriminator starts at the learning rate of that step."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
        scheduler.step()


class Recipe:
    name = "recipe"
    multi_domain = False  # True: trains on any number of domains (MultiDomainDataset batches)
    n_domains: int | None = 2  # domains a recipe trains on (None: two or more)
    # Set by the training loop for data-parallel runs: averages gradients over processes.
    grad_hook: Callable[[Iterable[torch.nn.Parameter]], None] | None = None
    cfg: RunConfig
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

    def gan_weight(self, step: int) -> float:
        """lambda_gan at ``step``: 0 before ``gan_start``, then a linear ramp over ``gan_ramp``
        steps (cut and multidomain recipes). The content and style terms shape the picture
        first; the discriminator then starts from outputs already near the art, not noise."""
        loss = self.cfg.loss
        if step < loss.gan_start:
            return 0.0
        if loss.gan_ramp == 0:
            return loss.lambda_gan
        return loss.lambda_gan * min(1.0, (step - loss.gan_start + 1) / loss.gan_ramp)

    def learning_rates(self) -> dict[str, float]:
        return {"lr/g": self.opt_g.param_groups[0]["lr"], "lr/d": self.opt_d.param_groups[0]["lr"]}


# Lite0 blocks read by the perceptual terms: content at strides 16 (blocks 7, 10: objects and
# their layout); style: loss.style_taps (by default blocks 0, 2, 4, 7 at strides 2 to 16:
# colour, strokes, textures).
CONTENT_TAPS = (7, 10)


def generator_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """What the two-domain recipes pass to ``build_generator`` (the mobile generators' options
    only when set, so other generators keep refusing them clearly)."""
    off = {
        "palette": 0, "palette_hard": 0, "pad_mode": "zeros", "icnr": False,
        "output_tent": False,
    }  # fmt: skip
    set_options = {k: getattr(cfg.model, k) for k, v in off.items() if getattr(cfg.model, k) != v}
    return {"ngf": cfg.model.ngf, **set_options}


def discriminator_kwargs(cfg: RunConfig, *, num_domains: int = 1) -> dict[str, Any]:
    """What every recipe passes to ``build_discriminator`` (each network takes what it uses)."""
    m = cfg.model
    return {
        "ndf": m.ndf,
        "n_layers": m.d_layers,
        "spectral_norm": m.spectral_norm,
        "train_size": cfg.data.crop_size,
        "mix_seed": cfg.train.seed,
        "num_domains": num_domains,
    }


def build_augment(cfg: RunConfig, *, seed: int) -> DiffAugment:
    """The recipe's DiffAugment (an empty policy leaves images as they are)."""
    loss = cfg.loss
    return DiffAugment(
        loss.diffaugment, p=loss.diffaugment_p, seed=seed, ada_target=loss.ada_target
    )


@dataclasses.dataclass
class LiteFeatures:
    """Lite0 maps of one batch: ``fake`` by block, ``source`` at CONTENT_TAPS, ``style`` at
    ``loss.style_taps`` (None where no term reads them)."""

    fake: dict[int, torch.Tensor]
    source: list[torch.Tensor] | None
    style: list[torch.Tensor] | None

    def select(self, index: torch.Tensor) -> LiteFeatures:
        """The maps of the items ``index`` (gradients flow back to the whole batch's)."""

        def pick(maps: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            return None if maps is None else [m[index] for m in maps]

        fake = {t: m[index] for t, m in self.fake.items()}
        return LiteFeatures(fake, pick(self.source), pick(self.style))


class PerceptualTerms:
    """The optional content and collection-style losses, read through the frozen Lite0.

    ``__call__(fake, source, style, step=)`` returns ``(weighted sum, {name: value})``: the
    content term compares ``fake`` with the ``source`` it was made from, the style terms compare
    it with ``style``, a batch of real images of the target domain (feature statistics, feature
    distributions, colours). All weights 0: nothing runs. ``step`` seeds the sliced Wasserstein
    directions, so a resumed run draws the same ones. ``features``: the Lite0 maps of these
    images already read (:meth:`features`, then :meth:`LiteFeatures.select` for a part of a
    batch), so that several sets of weights can score parts of one batch read once.
    """

    def __init__(self, cfg: RunConfig, *, paired: bool = False) -> None:
        self.lambda_content = cfg.loss.lambda_content
        self.lambda_style_stats = cfg.loss.lambda_style_stats
        self.lambda_style_swd = cfg.loss.lambda_style_swd
        self.lambda_palette = cfg.loss.lambda_palette
        self.lambda_patch = cfg.loss.lambda_patch
        self.lambda_structure = cfg.loss.lambda_structure
        self.lambda_flat = cfg.loss.lambda_flat
        self.flat_segments = cfg.loss.flat_segments
        self.lambda_guide = cfg.loss.lambda_guide
        self.guide_pool = cfg.loss.guide_pool
        self.guide_mode = cfg.loss.guide_mode
        self.lambda_outline = cfg.loss.lambda_outline
        self.outline_share = cfg.loss.outline_share
        self.perceptual_size = cfg.loss.perceptual_size  # checked by RunConfig.validate
        self.style_taps = tuple(sorted(cfg.loss.style_taps))
        self.style_blur = cfg.loss.style_blur
        self.style_focus = cfg.loss.style_focus
        self.style_target = cfg.loss.style_target
        self.style_bank = cfg.loss.style_bank
        if self.style_bank and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # each process would bank its own slice of the art, and a checkpoint holds rank 0's
            raise ValueError("loss.style_bank runs on one process; train without torchrun "
                             "or without the bank")  # fmt: skip
        self.bank: list[torch.Tensor] = []  # per style tap: (K, 2C) statistics of earlier art
        self.bank_layout: torch.Tensor | None = None  # (K, cells^2): their grey_layout
        self.seed = cfg.train.seed
        self.paired = paired  # style image i is the target of output i (see style_stats_loss)

    @property
    def enabled(self) -> bool:
        return (self.lambda_content > 0 or self.lambda_style_stats > 0
                or self.lambda_style_swd > 0 or self.lambda_palette > 0
                or self.lambda_patch > 0 or self.lambda_structure > 0
                or self.lambda_flat > 0 or self.lambda_guide > 0
                or self.lambda_outline > 0)  # fmt: skip

    def __call__(
        self,
        fake: torch.Tensor,
        source: torch.Tensor,
        style: torch.Tensor,
        *,
        step: int = 0,
        suffix: str = "",
        features: LiteFeatures | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        total = fake.new_zeros(())
        logs: dict[str, float] = {}
        if not self.enabled:
            return total, logs
        if features is None:
            features = self.features(fake, source, style)
        out = features.fake
        seed = (self.seed * 1_000_003 + step) % 2**62
        if self.lambda_content > 0:
            ref = features.source
            value = content_loss([out[t] for t in CONTENT_TAPS], ref)
            total = total + self.lambda_content * value
            logs[f"loss/content{suffix}"] = value.item()
        terms: list[tuple[str, float, Callable[[], torch.Tensor]]] = [
            (
                "palette",
                self.lambda_palette,
                lambda: self._per_item(palette_loss, fake, style, seed),
            ),
            ("patch", self.lambda_patch, lambda: self._per_item(patch_swd_loss, fake, style, seed)),
            ("structure", self.lambda_structure, lambda: structure_loss(fake, source)),
            ("flat", self.lambda_flat,
             lambda: flat_loss(fake, source, segments=self.flat_segments)),
            ("guide", self.lambda_guide, lambda: self._per_item(
                self._guide, fake, style, seed, source=source)),
            ("outline", self.lambda_outline, lambda: self._per_item(
                self._outline, fake, style, seed, source=source)),
        ]  # fmt: skip
        if self.styled:
            ref = features.style
            maps = [out[t] for t in self.style_taps]
            terms += [
                ("style_stats", self.lambda_style_stats,
                 lambda: self._style_stats(maps, ref, source, style)),
                ("style_swd", self.lambda_style_swd,
                 lambda: self._per_item(style_swd_loss, maps, ref, seed)),
            ]  # fmt: skip
        for name, weight, compute in terms:
            if weight > 0:
                value = compute()
                total = total + weight * value
                logs[f"loss/{name}{suffix}"] = value.item()
        return total, logs

    def _push(
        self, maps_style: list[torch.Tensor], layout: torch.Tensor
    ) -> tuple[list[torch.Tensor] | None, torch.Tensor | None]:
        """The bank as it stands (statistics per style tap, grey layouts; None, None while
        empty), then this batch's art (``maps_style``, ``layout``) added, the oldest dropped
        past ``style_bank``."""
        held, held_layout = self.bank or None, self.bank_layout
        now = [feature_stats(m.detach()) for m in maps_style]
        if held is not None:
            now = [torch.cat([k, n]) for k, n in zip(held, now, strict=True)]
            layout = torch.cat([held_layout, layout])
        self.bank = [n[-self.style_bank :] for n in now]
        self.bank_layout = layout[-self.style_bank :]
        return held, held_layout

    def _style_stats(self, maps: list[torch.Tensor], ref: list[torch.Tensor],
                     source: torch.Tensor, style: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The style statistics term at this run's target (``loss.style_target``)."""
        focus = self._focus(source)
        if not self.style_bank:
            return style_stats_loss(maps, ref, paired=self.paired, focus=focus,
                                    target=self.style_target)  # fmt: skip
        layout = grey_layout(style.detach())
        held, held_layout = self._push(ref, layout)
        if self.style_target == "nearest":
            return style_stats_loss(maps, ref, focus=focus, target="nearest", bank=held)
        candidates = layout if held_layout is None else torch.cat([held_layout, layout])
        # as many artworks as the batch holds, the ones laid out most like each photo
        mix = matched_mix(grey_layout(source.detach()), candidates, style.shape[0])
        return style_stats_loss(maps, ref, focus=focus, target="mixed", bank=held, mix=mix)

    def bank_state(self) -> dict[str, torch.Tensor]:
        """The bank for a checkpoint: the statistics at each style tap ("0", "1", ...) and the
        grey layouts (a resumed run chooses among the same artworks)."""
        if not self.bank:
            return {}
        state = {str(i): k.detach().cpu() for i, k in enumerate(self.bank)}
        return state | {"layout": self.bank_layout.detach().cpu()}

    def load_bank_state(self, bank: dict[str, torch.Tensor], device: torch.device) -> None:
        """The bank from a checkpoint (``bank_state``), checked against this run's style taps;
        a run resumed with a smaller ``style_bank`` keeps the newest of it, one without none."""
        if not bank or not self.style_bank:
            self.bank, self.bank_layout = [], None
            return
        taps = sorted((key for key in bank if key.isdigit()), key=int)
        layout = bank.get("layout")
        held = [bank[key] for key in taps]
        if (layout is None or len(held) != len(self.style_taps)
                or any(t.dim() != 2 for t in [*held, layout])
                or len({t.shape[0] for t in [*held, layout]}) != 1):  # fmt: skip
            shapes = {key: tuple(t.shape) for key, t in bank.items()}
            raise ValueError(
                f"the checkpoint's style bank does not fit this run ({len(self.style_taps)} "
                f"style taps, a layout of each artwork): it holds {shapes}"
            )
        self.bank = [t[-self.style_bank :].to(device) for t in held]
        self.bank_layout = layout[-self.style_bank :].to(device)

    def _focus(self, source: torch.Tensor) -> torch.Tensor | None:
        """Where the style statistics read the outputs (``loss.style_focus``); None: evenly."""
        return focus_weights(source, self.style_focus) if self.style_focus > 0 else None

    @property
    def styled(self) -> bool:
        return self.lambda_style_stats > 0 or self.lambda_style_swd > 0

    def fake_taps(self) -> set[int]:
        """The Lite0 blocks these terms read of the generated images."""
        return set(CONTENT_TAPS if self.lambda_content > 0 else ()) | set(
            self.style_taps if self.styled else ()
        )

    def features(
        self,
        fake: torch.Tensor,
        source: torch.Tensor,
        style: torch.Tensor,
        *,
        also: Iterable[PerceptualTerms] = (),
    ) -> LiteFeatures:
        """The Lite0 maps these terms and those in ``also`` read: of ``fake`` (differentiable),
        of ``source`` at CONTENT_TAPS and of ``style`` at ``loss.style_taps`` (constants; the
        same for every set of weights of one run).
        :class:`DomainPerceptualTerms` reads one batch once for several sets of weights."""
        every = [self, *also]
        taps = sorted(set().union(*(terms.fake_taps() for terms in every)))
        content = any(terms.lambda_content > 0 for terms in every)
        styled = any(terms.styled for terms in every)
        out = dict(zip(taps, self._maps(fake, taps), strict=True)) if taps else {}
        with torch.no_grad():
            src = self._maps(source, CONTENT_TAPS) if content else None
            sty = None
            if styled:  # a blurred art asks for its colours and shapes, not its fine grain
                sty = self._maps(gaussian_blur(style, self.style_blur), self.style_taps)
        return LiteFeatures(out, src, sty)

    def _maps(self, images: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        """Lite0 maps of ``images``, first enlarged to ``loss.perceptual_size`` when smaller.

        Lite0 learned ImageNet at 224 px: at 64 px its stride-16 blocks see 4 x 4 maps and its
        stem folds a one-pixel dither into a smooth colour, so the style terms paint dots where
        the art is flat (measured on the demo, docs/quality.md). Nearest-neighbour enlargement
        adds no blur: a pixel-level dither stays a visible texture to the network."""
        side = self.perceptual_size
        if side and max(images.shape[-2:]) < side:
            scale = side / max(images.shape[-2:])
            images = F.interpolate(images, scale_factor=scale, mode="nearest")
        return lite0_maps(images, taps)

    def _guide(
        self, fake: torch.Tensor, style: torch.Tensor, *, seed: int, source: torch.Tensor
    ) -> torch.Tensor:
        return guide_loss(fake, source, style, seed=seed, pool=self.guide_pool,
                          mode=self.guide_mode)  # fmt: skip

    def _outline(
        self, fake: torch.Tensor, style: torch.Tensor, *, seed: int, source: torch.Tensor
    ) -> torch.Tensor:
        return outline_loss(fake, source, style, share=self.outline_share)

    def _per_item(
        self, loss_fn: Callable, out: Any, ref: Any, seed: int, **batches: torch.Tensor
    ) -> torch.Tensor:
        """Pooled reference (the collection) or, ``paired``, item i against style image i;
        ``batches`` (keyword tensors, such as the photos) are split with the items."""
        if not self.paired:
            return loss_fn(out, ref, seed=seed, **batches)
        pick = (lambda x, i: [m[i : i + 1] for m in x]) if isinstance(out, list) else (
            lambda x, i: x[i : i + 1])  # fmt: skip
        n = out[0].shape[0] if isinstance(out, list) else out.shape[0]
        return torch.stack([
            loss_fn(pick(out, i), pick(ref, i), seed=seed,
                    **{k: v[i : i + 1] for k, v in batches.items()})
            for i in range(n)
        ]).mean()  # fmt: skip


PERCEPTUAL_TERMS = (
    "content", "style_stats", "style_swd", "palette", "patch", "structure", "flat", "guide",
    "outline",
)  # fmt: skip


def parse_domain_weights(items: Sequence[str]) -> dict[str, dict[str, float]]:
    """``["ink:content=0.5", "ink:structure=2"]`` -> ``{"ink": {"content": 0.5, "structure": 2}}``.

    Errors name the item and what is wrong with it (format, term, weight).
    """
    weights: dict[str, dict[str, float]] = {}
    form = "DOMAIN:TERM=WEIGHT"
    for item in items:
        domain, colon, setting = str(item).partition(":")
        domain = domain.strip()
        if not (colon and domain):
            raise ValueError(f"loss.domain_weights: '{item}' is not {form}")
        term, weight = named_weight(setting, option="loss.domain_weights", item=item, form=form)
        if term not in PERCEPTUAL_TERMS:
            raise ValueError(f"loss.domain_weights: '{item}': unknown term '{term}' (terms: "
                             f"{', '.join(PERCEPTUAL_TERMS)})")  # fmt: skip
        weights.setdefault(domain, {})[term] = weight
    return weights


class DomainPerceptualTerms:
    """:class:`PerceptualTerms` with other weights for the items aimed at some domains
    (``loss.domain_weights``). The two-domain recipes take one direction's terms with
    :meth:`for_target`; the multi-domain recipe calls the object on a mixed batch.

    ``__call__(fake, source, style, target, step=)``: the items are grouped by ``target`` (domain
    indices); each group is scored by its domain's terms and weighted by its share of the batch,
    so that with every domain at the default weights the total equals ``PerceptualTerms`` on
    the whole batch (each term is a mean over items). The logged values are the item-weighted
    means over the groups in which a term weighs.
    """

    def __init__(self, cfg: RunConfig, domains: Sequence[str], *, paired: bool = True) -> None:
        self.default = PerceptualTerms(cfg, paired=paired)
        self.by_domain: dict[int, PerceptualTerms] = {}
        named = parse_domain_weights(cfg.loss.domain_weights)
        for name, weights in for_domains(named, domains, option="loss.domain_weights").items():
            terms = PerceptualTerms(cfg, paired=paired)
            for term, weight in weights.items():
                setattr(terms, f"lambda_{term}", weight)
            self.by_domain[list(domains).index(name)] = terms

    @property
    def enabled(self) -> bool:
        return self.default.enabled or any(t.enabled for t in self.by_domain.values())

    def for_target(self, domain: int) -> PerceptualTerms:
        """The terms of outputs aimed at domain index ``domain``."""
        return self.by_domain.get(domain, self.default)

    def __call__(
        self,
        fake: torch.Tensor,
        source: torch.Tensor,
        style: torch.Tensor,
        target: torch.Tensor,
        *,
        step: int = 0,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.by_domain:
            return self.default(fake, source, style, step=step)
        total = fake.new_zeros(())
        sums: dict[str, float] = {}
        shares: dict[str, float] = {}
        groups = []
        for domain in torch.unique(target).tolist():
            terms = self.for_target(domain)
            if terms.enabled:
                groups.append(((target == domain).nonzero().squeeze(1), terms))
        if not groups:
            return total, {}
        # Lite0 reads the whole batch once (three passes of B items, not three per culture:
        # small batches waste most of a CPU's time); each culture's terms take their items.
        first, *others = (terms for _, terms in groups)
        features = first.features(fake, source, style, also=others)
        for index, terms in groups:
            share = len(index) / len(target)
            value, logs = terms(fake[index], source[index], style[index], step=step,
                                features=features.select(index))  # fmt: skip
            total = total + share * value
            for key, logged in logs.items():
                sums[key] = sums.get(key, 0.0) + share * logged
                shares[key] = shares.get(key, 0.0) + share
        return total, {key: sums[key] / shares[key] for key in sums}
