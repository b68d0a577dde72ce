"""Run configuration: nested dataclasses, YAML presets, and command-line overrides.

A run is described by one :class:`RunConfig`. Presets are YAML files (``configs/*.yaml``, also
shipped inside the package) holding any subset of its fields, optionally over another preset
(``base: NAME``); every field can be overridden on the command line as ``--section.field
VALUE`` (e.g. ``--train.steps 2000``). The resolved config is printed by ``culturegan train
--dry-run`` and written as ``config.json`` in the run folder before step 0, so a run can always
be rebuilt from its folder.

Usage::

    cfg = load_config("cyclegan_tiny", overrides={"train.steps": 100})
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).parent / "configs"
PALETTE_INITS = ("art", "spread")  # model.palette_init


@dataclass
class DataConfig:
    root: str = ""  # dataset root: CycleGAN layout (trainA/trainB/...) or one folder per domain
    domains: list[str] = field(default_factory=list)  # [source, target]; empty = all / A,B
    load_size: int = 286  # shorter side after resizing (training)
    crop_size: int = 256  # random square crop fed to the networks
    flip: bool = True  # random horizontal flips (training only)
    # share of each side cut off every training image before resizing: a scan's margins and
    # mount (cultures-dev's ukiyo-e have them; 0.04 removes most), which a generator otherwise
    # learns as part of the style and paints as a band along the output's edge
    trim: float = 0.0
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0  # seed of the stable train/val/test split (per-domain layout)
    manifest: str = ""  # split manifest path; empty = ROOT/culturegan_split.json
    num_workers: int = 0  # DataLoader worker processes
    # multi-domain: the domains translated *from* (empty = every domain, as in StarGAN v2);
    # [photo] spends every step on photo -> culture
    source_domains: list[str] = field(default_factory=list)
    # multi-domain: how often each domain is drawn as a target, "NAME=WEIGHT" relative to the
    # others' 1 (e.g. ["ukiyoe=2"]: a harder culture gets more of each step; "ukiyoe?=2" only
    # if the data has ukiyoe); empty = uniform
    target_weights: list[str] = field(default_factory=list)


@dataclass
class ModelConfig:
    generator: str = "resnet_9blocks"  # name in culturegan.models.GENERATORS
    ngf: int = 64  # generator width (channels of the first layer)
    palette: int = 0  # cut/cyclegan, mobile G: photo->art drawn with K learned colours (0: RGB)
    # where those K colours start: art (k-means of the target's training images) | spread (fixed
    # colours over the RGB cube); see culturegan.data.palette
    palette_init: str = "art"
    # N (odd): the trained model paints each pixel in one of the K colours, the one its N x N
    # neighbourhood weighs most, instead of the softmax's blend (0): inks as printed. Training
    # blends either way.
    palette_hard: int = 0
    # mobile generators (mobile_*): padding of the stride-2 convolutions, zeros | reflect
    # (zeros leaves a border marker a generator can draw on), ICNR initialisation of the
    # sub-pixel output layer (no 2 x 2 pattern at the start) and a fixed tent filter after it
    # (no pattern of period 2 at all); see models/fast.py
    pad_mode: str = "zeros"
    icnr: bool = False
    output_tent: bool = False
    # multi-domain mobile_style_* generators: none | decoder | blocks: the way up to RGB (decoder)
    # or also the style blocks at 1/8 (blocks) once per domain, each item drawn by its target
    # domain's branch; the encoder stays shared (the photo is read once, drawn per culture)
    domain_branch: str = "none"
    discriminator: str = "patchgan"  # name in culturegan.models.DISCRIMINATORS
    ndf: int = 64  # discriminator width
    d_layers: int = 3  # PatchGAN stride-2 layers (3 = the 70x70 receptive field)
    spectral_norm: bool = False  # spectral normalisation on discriminator convolutions
    # multi-domain recipe (StarGAN v2-style networks)
    style_dim: int = 32  # length of a style code s
    latent_dim: int = 16  # length of the noise vector z fed to the mapping network
    n_down: int = 2  # generator downsamplings (images are padded to multiples of 2**n_down)
    n_bottleneck: int = 2  # AdaIN residual blocks at the generator's lowest resolution
    max_channels: int = 256  # channel cap of generator, style encoder and discriminator (and
    # of the pix2pix U-Net generator)
    mapping_hidden: int = 256  # width of the mapping network's MLP
    d_down: int = 4  # downsamplings of the multi-domain discriminator and style encoder
    # multi-domain: the style encoder reads images area-averaged to this shorter side (0: as
    # given); 64 for 128 px crops reads each image at a quarter of the cost
    style_read_size: int = 0
    residual: bool = True  # multi-domain and pix2pix U-Net generators predict a change to the input
    skips: bool = False  # multi-domain generator: U-Net skips from encoder to decoder
    # distill recipe
    teacher: str = ""  # pretrained model folder the student imitates
    teacher_direction: str = ""  # SOURCE->TARGET of the teacher (default: its first direction)


@dataclass
class LossConfig:
    gan_mode: str = "lsgan"  # lsgan | nonsaturating | hinge
    lambda_gan: float = 1.0  # weight of the generators' adversarial terms (every recipe)
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1 (paper: lambda)
    lambda_identity: float = 0.5  # identity L1 weight, relative to lambda_cycle (paper: 0.5)
    pool_size: int = 50  # image pool of past fakes shown to the discriminators (0 = off)
    lambda_l1: float = 100.0  # pix2pix: weight of ||y - G(x)||_1 (paper: 100)
    # multi-domain recipe (weights as in StarGAN v2 unless noted)
    lambda_style: float = 1.0  # style reconstruction ||s - E(G(x, s))||_1
    lambda_ds: float = 1.0  # diversity sensitivity, decayed linearly to 0
    ds_decay_steps: int = -1  # steps over which lambda_ds decays; -1 = half of train.steps
    lambda_r1: float = 1.0  # R1 gradient penalty on real images
    lambda_own_style: float = 1.0  # ours: ||G(x, E(x, own domain)) - x||_1, so strength 0 ~ x
    lambda_domain_cls: float = 0.5  # ours: domain classifier head of the style encoder
    # ours: that classifier, frozen for this term, should name each output's target domain
    # (StarGAN's domain classification loss on fakes)
    lambda_fake_cls: float = 0.0
    # cut recipe (Park et al., 2020)
    lambda_nce: float = 1.0  # PatchNCE weight (CUT 1, FastCUT 10)
    nce_idt: bool = True  # identity PatchNCE on domain-B images (CUT yes, FastCUT no)
    nce_layers: str = ""  # generator.model indices "0,4,7,10,14"; empty = the generator's own
    num_patches: int = 256  # patches sampled per layer
    nce_temperature: float = 0.07  # tau
    flip_equivariance: bool = False  # FastCUT's flip augmentation
    # ours: the output of the photo moved by a few pixels is the output moved (no pattern fixed
    # to the generator's own grid; losses.shift_equivariance_loss); cut, cyclegan, multidomain
    lambda_shift: float = 0.0
    # culture priors: lists of target domains each prior applies to (empty = off)
    edge_domains: list[str] = field(default_factory=list)  # keep the input's edges/strokes
    lambda_edge: float = 1.0
    ink_domains: list[str] = field(default_factory=list)  # ink-wash discriminator (eroded+blur)
    lambda_ink: float = 1.0
    blank_domains: list[str] = field(default_factory=list)  # blank-paper share like the domain
    lambda_blank: float = 1.0
    color_domains: list[str] = field(default_factory=list)  # colour histogram like the domain
    lambda_color: float = 1.0
    # few-shot training (culturegan.augment, losses.content_loss / style_stats_loss)
    diffaugment: str = ""  # DiffAugment before every discriminator: "color,translation,cutout"
    diffaugment_p: float = 1.0  # probability of each operation per image (ADA's start value)
    ada_target: float = 0.0  # adaptive p: hold the mean sign of D(real) at this (0 = fixed p)
    lambda_content: float = 0.0  # perceptual content: frozen Lite0 features of output vs input
    lambda_style_stats: float = 0.0  # collection style: Lite0 feature mean/std, output vs art
    lambda_style_swd: float = 0.0  # collection style: sliced Wasserstein on Lite0 features
    lambda_palette: float = 0.0  # the art's colours: sliced Wasserstein on RGB values
    lambda_patch: float = 0.0  # the art's 5x5 colour patches at 3 scales: sliced Wasserstein
    lambda_structure: float = 0.0  # the photo's drawing: 1 - grey SSIM of output vs input
    lambda_flat: float = 0.0  # flat colour areas: output vs its mean over the photo's regions
    flat_segments: int = 32  # the photo's regions for lambda_flat: SLIC superpixels per image
    lambda_guide: float = 0.0  # the photo recoloured with the art's palette, vs output, low-res
    guide_pool: int = 8  # lambda_guide compares the images averaged over pool x pool pixels
    # how lambda_guide recolours the photo: "rank" (the brightest area takes the art's
    # brightest colours, losses.colour_transfer), "hue" (each colour takes the art's colours
    # of its own hue, the photo's light and dark kept; losses.hue_transfer)
    guide_mode: str = "rank"
    lambda_outline: float = 0.0  # lines along the photo's contours in the art's darkest ink
    outline_share: float = 0.05  # the share of the pixels lambda_outline draws as lines
    perceptual_size: int = 0  # Lite0 terms see images enlarged (nearest) to this side; 0 = as is
    style_blur: float = 0.0  # style terms see the art through a Gaussian of this sigma (px)
    # style statistics of the outputs read where the photo has drawing: 0 = everywhere alike,
    # 1 = each position weighted by the photo's gradient (losses.focus_weights)
    style_focus: float = 0.0
    # Lite0 blocks (0-15) the style terms read: strides 2, 4, 8, 16 by default
    style_taps: list[int] = field(default_factory=lambda: [0, 2, 4, 7])
    # each output's style statistics against: "mean" (the batch of art's average, the whole
    # collection's mix asked of every output), "nearest" (the one artwork of the batch whose
    # statistics are nearest the output's; cut and cyclegan; losses.style_stats_loss),
    # "matched" (the average of as many artworks as a batch holds, those of the batch and the
    # bank whose light and dark lie where the photo's do, losses.grey_layout; cut, with a bank)
    style_target: str = "mean"
    # with style_target "nearest" or "matched" (cut): the statistics of this many earlier
    # draws of art (the latest batches', drawn with replacement) are candidates beside the
    # batch's own, so the choice is made from more of the collection (0 = the batch alone)
    style_bank: int = 0
    # content / style weights for the items (multidomain) or the direction (cyclegan, cut)
    # aimed at one domain, as
    # "DOMAIN:TERM=WEIGHT" (TERM: content, style_stats, style_swd, palette, patch, structure,
    # flat, guide, outline; "DOMAIN?:..." applies only if the data has DOMAIN); the other
    # items keep the lambda_* above
    domain_weights: list[str] = field(default_factory=list)
    gan_start: int = 0  # cut, multidomain: steps before the adversarial term (and D) start
    gan_ramp: int = 0  # then lambda_gan grows linearly from 0 over this many steps


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam learning rate (paper default)
    beta1: float = 0.5
    beta2: float = 0.999
    decay_steps: int = -1  # lr decays linearly to 0 over the last N steps; -1 = half of steps
    # multidomain: the mapping network's lr as a share of lr (StarGAN v2: 0.01, 100x slower)
    mapping_lr_ratio: float = 0.01


@dataclass
class TrainConfig:
    recipe: str = "cyclegan"  # name in culturegan.training.RECIPES
    steps: int = 10000  # total optimisation steps
    max_minutes: float = 0.0  # wall-clock budget: end (and export) when spent; 0 = no limit
    batch_size: int = 1
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    ema_decay: float = 0.999  # EMA of generator weights used for export (0 = no EMA)
    log_every: int = 50  # JSONL / TensorBoard scalars
    sample_every: int = 500  # PNG sample grids
    checkpoint_every: int = 500  # resumable training state
    num_samples: int = 4  # images per domain in a sample grid
    eval_every: int = 0  # evaluate the EMA model every N steps and at the end (0 = never)
    eval_split: str = "val"  # split whose images are stylized and measured
    eval_backbones: list[str] = field(default_factory=lambda: ["lite0"])  # feature networks
    eval_max_images: int = 64  # source images per direction
    runs_dir: str = "runs"  # numbered run folders are created here
    name: str = ""  # suffix of the run folder name


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def validate(self) -> RunConfig:
        """Refuse values that would only fail deep inside training; returns self."""
        positive = {
            "train.steps": self.train.steps,
            "train.batch_size": self.train.batch_size,
            "train.log_every": self.train.log_every,
            "train.sample_every": self.train.sample_every,
            "train.checkpoint_every": self.train.checkpoint_every,
            "train.num_samples": self.train.num_samples,
            "data.crop_size": self.data.crop_size,
            "data.load_size": self.data.load_size,
        }
        bad = [f"{k}={v}" for k, v in positive.items() if v < 1]
        if bad:
            raise ValueError(f"these must be at least 1: {', '.join(bad)}")
        if not 0 <= self.data.trim < 0.25:
            raise ValueError(f"data.trim must be in [0, 0.25), got {self.data.trim}")
        if self.train.eval_every < 0 or self.train.max_minutes < 0:
            raise ValueError("train.eval_every and train.max_minutes must be >= 0")
        if not 0 < self.optim.mapping_lr_ratio <= 100:  # NaN fails too
            raise ValueError(
                f"optim.mapping_lr_ratio must be in (0, 100], got {self.optim.mapping_lr_ratio}"
            )
        palette = self.model.palette
        if palette and not (
            0 < palette <= 256
            and self.model.generator.startswith("mobile_")
            and self.train.recipe in ("cut", "cyclegan")
        ):
            raise ValueError(
                f"model.palette {palette}: needs 1..256 colours, a mobile_* generator and the cut "
                f"or cyclegan recipe (got {self.model.generator}, {self.train.recipe})"
            )
        if self.model.palette_init not in PALETTE_INITS:
            raise ValueError(f"model.palette_init must be one of {', '.join(PALETTE_INITS)}, "
                             f"got {self.model.palette_init!r}")  # fmt: skip
        # the networks' layer, loaded lazily
        from culturegan.models.fast import PAD_MODES, check_palette_hard

        if self.model.palette_hard and not palette:
            raise ValueError("model.palette_hard needs model.palette > 0 (the inks to pick from)")
        check_palette_hard(self.model.palette_hard, "model.palette_hard")

        m = self.model
        if m.pad_mode not in PAD_MODES:
            raise ValueError(f"model.pad_mode must be one of {', '.join(PAD_MODES)}, "
                             f"got {m.pad_mode!r}")  # fmt: skip
        if (m.pad_mode != "zeros" or m.icnr or m.output_tent) and not m.generator.startswith(
            "mobile_"
        ):
            raise ValueError(
                "model.pad_mode, model.icnr and model.output_tent apply to the mobile_* "
                f"generators, not {m.generator}"
            )
        from culturegan.models.multidomain import DOMAIN_BRANCHES

        if m.domain_branch not in DOMAIN_BRANCHES:
            raise ValueError(
                f"model.domain_branch must be one of {', '.join(DOMAIN_BRANCHES)}, "
                f"got {m.domain_branch!r}"
            )
        if m.domain_branch != "none" and not (
            self.train.recipe == "multidomain" and m.generator.startswith("mobile_style_")
        ):
            raise ValueError(
                "model.domain_branch applies to the multidomain recipe's mobile_style_* "
                f"generators, not {self.train.recipe} / {m.generator}"
            )
        loss = self.loss
        style_and_content = {
            "loss.lambda_content": loss.lambda_content,
            "loss.lambda_style_stats": loss.lambda_style_stats,
            "loss.lambda_style_swd": loss.lambda_style_swd,
            "loss.lambda_palette": loss.lambda_palette,
            "loss.lambda_patch": loss.lambda_patch,
            "loss.lambda_structure": loss.lambda_structure,
            "loss.lambda_flat": loss.lambda_flat,
            "loss.lambda_guide": loss.lambda_guide,
            "loss.lambda_outline": loss.lambda_outline,
        }
        weights = {"loss.lambda_gan": loss.lambda_gan, **style_and_content,
                   "loss.ada_target": loss.ada_target,
                   "loss.lambda_fake_cls": loss.lambda_fake_cls,
                   "loss.lambda_l1": loss.lambda_l1,
                   "loss.lambda_shift": loss.lambda_shift}  # fmt: skip
        negative = [f"{k}={v}" for k, v in weights.items() if not v >= 0]  # NaN fails too
        if negative:
            raise ValueError(f"these must be >= 0: {', '.join(negative)}")
        generator_terms = (loss.lambda_gan, loss.lambda_nce, *style_and_content.values())
        if self.train.recipe == "cut" and not any(generator_terms):
            raise ValueError("nothing trains the generator: lambda_gan, lambda_nce and every "
                             "content / style weight are 0")  # fmt: skip
        if self.train.recipe == "pix2pix" and not (loss.lambda_gan or loss.lambda_l1):
            raise ValueError("nothing trains the generator: loss.lambda_gan and loss.lambda_l1 "
                             "are both 0")  # fmt: skip
        if self.data.target_weights:
            from culturegan.data.datasets import parse_target_weights

            if self.train.recipe != "multidomain":
                raise ValueError("data.target_weights applies to the multidomain recipe, not to "
                                 f"{self.train.recipe}")  # fmt: skip
            parse_target_weights(self.data.target_weights)
        if loss.domain_weights:
            from culturegan.training.base import parse_domain_weights

            if self.train.recipe not in ("multidomain", "cyclegan", "cut"):
                raise ValueError("loss.domain_weights applies to the multidomain, cyclegan and "
                                 f"cut recipes, not to {self.train.recipe}")  # fmt: skip
            parse_domain_weights(loss.domain_weights)
        if loss.gan_start < 0 or loss.gan_ramp < 0:
            raise ValueError("loss.gan_start and loss.gan_ramp must be >= 0")
        if (loss.gan_start or loss.gan_ramp) and self.train.recipe not in ("cut", "multidomain"):
            raise ValueError("loss.gan_start and loss.gan_ramp apply to the cut and multidomain "
                             f"recipes, not to {self.train.recipe}")  # fmt: skip
        if loss.lambda_shift and self.train.recipe not in ("cut", "cyclegan", "multidomain"):
            raise ValueError("loss.lambda_shift applies to the cut, cyclegan and multidomain "
                             f"recipes, not to {self.train.recipe}")  # fmt: skip
        if loss.perceptual_size < 0 or 0 < loss.perceptual_size < 32:
            raise ValueError(
                f"loss.perceptual_size must be 0 (images as they are) or at least 32 px, got "
                f"{loss.perceptual_size}"
            )
        if not 0 <= loss.style_focus <= 1:
            raise ValueError(f"loss.style_focus must be in [0, 1] (0 = every position alike), "
                             f"got {loss.style_focus}")  # fmt: skip
        if not 0 <= loss.style_blur <= 8:
            raise ValueError(f"loss.style_blur must be a Gaussian sigma in [0, 8] px (0 = none), "
                             f"got {loss.style_blur}")  # fmt: skip
        taps = loss.style_taps
        blocks = all(type(t) is int and 0 <= t <= 15 for t in taps)  # no bools, no text
        if not taps or not blocks or len(set(taps)) != len(taps):
            raise ValueError(f"loss.style_taps must be distinct Lite0 blocks 0-15, got {taps}")
        if not 0 < loss.outline_share <= 0.5:
            raise ValueError(f"loss.outline_share must be above 0 and at most 0.5 (a share of "
                             f"the pixels), got {loss.outline_share}")  # fmt: skip
        if not 1 <= loss.guide_pool <= min(64, self.data.crop_size):
            raise ValueError(f"loss.guide_pool must be 1-64 pixels and at most data.crop_size "
                             f"({self.data.crop_size}), got {loss.guide_pool}")  # fmt: skip
        if loss.style_target not in ("mean", "nearest", "matched"):
            raise ValueError(f"loss.style_target must be 'mean', 'nearest' or 'matched', got "
                             f"{loss.style_target!r}")  # fmt: skip
        if loss.style_target == "matched" and (self.train.recipe != "cut" or not loss.style_bank):
            raise ValueError("loss.style_target 'matched' chooses among the artworks of "
                             "loss.style_bank (> 0) in the cut recipe")  # fmt: skip
        if loss.style_target == "nearest" and self.train.recipe not in ("cut", "cyclegan"):
            raise ValueError("loss.style_target 'nearest' applies to the cut and cyclegan "
                             f"recipes (one target culture per batch), not to "
                             f"{self.train.recipe}")  # fmt: skip
        if not 0 <= loss.style_bank <= 4096:
            raise ValueError(f"loss.style_bank must be 0-4096 artworks, got {loss.style_bank}")
        if loss.style_bank and loss.style_target == "mean":
            raise ValueError("loss.style_bank holds candidates for loss.style_target 'nearest' "
                             "or 'matched'; the target is 'mean'")  # fmt: skip
        if loss.style_bank and loss.lambda_style_stats <= 0:
            raise ValueError("loss.style_bank holds artworks for the style statistics term; "
                             "loss.lambda_style_stats is 0")  # fmt: skip
        if loss.style_bank and self.train.recipe != "cut":  # cyclegan: two cultures' art
            raise ValueError(f"loss.style_bank applies to the cut recipe, not to "
                             f"{self.train.recipe}")  # fmt: skip
        if loss.guide_mode not in ("rank", "hue"):
            raise ValueError(f"loss.guide_mode must be 'rank' or 'hue', got {loss.guide_mode!r}")
        if not 2 <= loss.flat_segments <= 10_000:
            raise ValueError(f"loss.flat_segments must be 2-10000 regions, got "
                             f"{loss.flat_segments}")  # fmt: skip
        if not 0.0 <= loss.diffaugment_p <= 1.0:
            raise ValueError(f"loss.diffaugment_p must be in [0, 1], got {loss.diffaugment_p}")
        from culturegan.augment import parse_policy  # checked before a run folder exists

        parse_policy(loss.diffaugment)
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        cfg = cls()
        apply_nested(cfg, values, source="config")
        return cfg


def named_weight(setting: str, *, option: str, item: str, form: str) -> tuple[str, float]:
    """``"NAME=WEIGHT"`` -> ``(NAME, WEIGHT)`` with a finite weight >= 0, for the list options
    that weigh domains or terms (``data.target_weights``, ``loss.domain_weights``). Errors name
    the ``option``, the whole ``item`` (of which ``setting`` is the NAME=WEIGHT part) and its
    expected ``form``."""
    name, equals, value = str(setting).partition("=")
    name = name.strip()
    if not (equals and name):
        raise ValueError(f"{option}: '{item}' is not {form}")
    try:
        weight = float(value)
    except ValueError:
        weight = -1.0
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"{option}: '{item}': the weight must be a number >= 0")
    return name, weight


def for_domains(named: dict[str, Any], domains: Sequence[str], *, option: str) -> dict[str, Any]:
    """The entries of ``named`` (parsed ``data.target_weights`` or ``loss.domain_weights``) for
    this run's ``domains``. A name ending in ``?`` applies when the data has that domain and is
    left out otherwise (a preset's weights for cultures a dataset may not have); any other name
    that is not a domain is refused, naming it and the domains. Dict values of a plain and a
    ``?`` entry for the same domain are merged."""
    kept: dict[str, Any] = {}
    unknown = []
    for key, value in named.items():
        name = key[:-1].strip() if key.endswith("?") else key
        if not name:
            raise ValueError(f"{option}: '{key}' names no domain")
        if name not in domains:
            if not key.endswith("?"):
                unknown.append(name)
            continue
        if isinstance(value, dict):
            kept.setdefault(name, {}).update(value)
        else:
            kept[name] = value
    if unknown:
        raise ValueError(f"{option} names {sorted(unknown)}, which are not domains of this run "
                         f"({', '.join(domains)}; a name ending in '?' applies only when the "
                         "data has it)")  # fmt: skip
    return kept


def _sections(cfg: RunConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def apply_nested(cfg: RunConfig, values: dict[str, Any], *, source: str) -> None:
    """Set fields of ``cfg`` from ``{"section": {"field": value}}``; unknown keys are errors."""
    sections = _sections(cfg)
    for section_name, section_values in values.items():
        if section_name not in sections:
            raise ValueError(
                f"{source}: unknown section '{section_name}' (known: {', '.join(sections)})"
            )
        if not isinstance(section_values, dict):
            raise ValueError(f"{source}: section '{section_name}' must be a mapping")
        for key, value in section_values.items():
            set_field(cfg, f"{section_name}.{key}", value, source=source)


def set_field(cfg: RunConfig, dotted: str, value: Any, *, source: str = "override") -> None:
    """Set ``section.field`` to ``value``, converting strings to the field's type."""
    section_name, _, key = dotted.partition(".")
    sections = _sections(cfg)
    if section_name not in sections or not key:
        raise ValueError(f"{source}: '{dotted}' is not of the form section.field")
    section = sections[section_name]
    names = {f.name: f for f in dataclasses.fields(section)}
    if key not in names:
        raise ValueError(
            f"{source}: unknown field '{dotted}' (fields of {section_name}: {', '.join(names)})"
        )
    current = getattr(section, key)
    setattr(section, key, _coerce(value, current, dotted, source))


def _coerce(value: Any, current: Any, dotted: str, source: str) -> Any:
    expected = type(current)
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                lowered = value.lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return lowered in {"true", "1", "yes"}
            return bool(value)
        if isinstance(current, list):
            if isinstance(value, str):
                items = [v.strip() for v in value.split(",") if v.strip()]
            else:
                items = list(value)
            if current and isinstance(current[0], float):
                return [float(v) for v in items]
            if current and isinstance(current[0], int):
                return [_integer(v) for v in items]
            return [str(v) for v in items]
        if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if isinstance(current, int | float) and isinstance(value, bool):  # true is not 1
            raise ValueError(value)
        return expected(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{source}: {dotted}={value!r} is not a valid {expected.__name__}"
        ) from None


def _integer(value: Any) -> int:
    """An int from an int, a whole float or the text of either; anything else is a ValueError."""
    if isinstance(value, str):
        value = float(value)
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def resolve_preset(name_or_path: str) -> Path:
    """A YAML path, or the name of a preset shipped with the package (``cyclegan_tiny``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    raise FileNotFoundError(
        f"config '{name_or_path}' is neither a file nor a preset "
        f"(presets: {', '.join(list_presets())})"
    )


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the preset's values, then ``{"section.field": value}`` overrides.

    A preset may start from another: a top-level ``base: NAME`` (a shipped preset, or a YAML
    path relative to the file) is applied first, then the file's own sections over it.
    """
    cfg = RunConfig()
    if preset:
        _apply_preset(cfg, resolve_preset(preset), [])
    for dotted, value in (overrides or {}).items():
        set_field(cfg, dotted, value)
    return cfg


def _apply_preset(cfg: RunConfig, path: Path, chain: list[Path]) -> None:
    if path.resolve() in chain:
        names = " -> ".join(str(p) for p in [*chain, path.resolve()])
        raise ValueError(f"config '{path}': its bases form a loop ({names})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"config '{path}' is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config '{path}' must be a mapping of sections")
    base = values.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ValueError(f"config '{path}': base must be a preset name or a YAML path")
        relative = path.parent / base
        _apply_preset(
            cfg, relative if relative.is_file() else resolve_preset(base), [*chain, path.resolve()]
        )
    apply_nested(cfg, values, source=str(path))


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--section.field`` option per config field (default None = not given)."""
    for section_name, section in _sections(RunConfig()).items():
        group = parser.add_argument_group(f"{section_name} overrides")
        for f in dataclasses.fields(section):
            default = getattr(section, f.name)
            group.add_argument(
                f"--{section_name}.{f.name}",
                dest=f"override__{section_name}__{f.name}",
                default=None,
                metavar=type(default).__name__.upper(),
                help=f"(default: {default})",
            )


def collect_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ``--section.field`` values the user gave, as ``{"section.field": "value"}``."""
    out = {}
    for key, value in vars(args).items():
        if key.startswith("override__") and value is not None:
            _, section, name = key.split("__", 2)
            out[f"{section}.{name}"] = value
    return out
