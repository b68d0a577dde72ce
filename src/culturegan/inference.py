"""One way to apply a model: the :class:`Stylizer` interface and its two PyTorch classes.

``Stylizer.from_pretrained(model)`` reads the folder's ``config.json``, picks the class from its
``kind`` (the :data:`STYLIZERS` table; a ``.onnx`` file opens as
:class:`culturegan.onnx_export.OnnxStylizer`) and rebuilds the networks from the safetensors
weights. Every stylizer is called with one keyword signature::

    stylizer(images, source=, target=, seed=, reference=, mix=, strength=, batch_size=, tile=,
             finish=)

and says which of the style options (``seed``, ``reference``, ``mix``, ``strength``) it honours
in ``stylizer.options``; :meth:`Stylizer.check_inputs` refuses, before any work, an option the
model cannot honour. Each image is reflect-padded to the network's size multiple (and by
``edge_margin`` more above and left, where zero-padded stride-2 convolutions would mark the
edge) and cropped back, so any width and height work; images of equal size run in batches, and
large images run in overlapping tiles with one set of normalisation statistics
(:mod:`culturegan.tiling`), so memory is bounded by the tile size.

Usage::

    stylizer = Stylizer.from_pretrained("ukiyoe")  # a shipped model, a folder, org/name
    result = stylizer(["photo.jpg"], target="ukiyoe")
    result.images[0].save("photo_ukiyoe.png")
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from PIL import Image

from culturegan.checkpoint import CheckpointError, load_pretrained, shape_differences, sub_state
from culturegan.data.images import (
    has_alpha,
    load_image,
    merge_alpha,
    pil_to_tensor,
    split_alpha,
    tensor_to_pil,
    to_rgb,
)
from culturegan.finish import apply_finish, check_finish, check_finish_size, finish_name
from culturegan.models.generators import generator_from_config
from culturegan.tiling import (
    DEFAULT_TILE,
    MIN_MULTIPLES,
    auto_tile,
    padded_side,
    tileable_apply,
    tiled_apply,
)

ImageInput = str | Path | Image.Image
STYLE_OPTIONS = ("seed", "reference", "mix", "strength")
AVERAGE_STYLE_SAMPLES = 1024  # noise vectors averaged for a domain's average style
MAX_SEED = 2**63


@dataclass
class StylizeResult:
    images: list[Image.Image]  # one output per input, at the input's size
    direction: str  # "source->target"
    sources: list[str] = field(default_factory=list)  # file paths, or "" for in-memory images

    def _repr_html_(self) -> str:
        """Jupyter shows the outputs as thumbnails, each named by its input file."""
        from culturegan.notebook import html_images

        labels = [
            Path(src).name if src else f"image {i}"
            for i, src in enumerate(self.sources or [""] * len(self.images))
        ]
        return html_images(self.images, labels, caption=self.direction)


def sample_seeds(seed: int | None, samples: int) -> list[int | None]:
    """The seeds of ``samples`` renderings: one without a seed is the average style (None),
    several are seeds ``seed``, ``seed + 1``, ... (from 0 without one)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}")
    if samples == 1:
        return [seed]
    first = 0 if seed is None else seed
    return [first + k for k in range(samples)]


@dataclass
class Request:
    """The options of one call, checked and resolved by :meth:`Stylizer.check_inputs`."""

    source: str | None  # None: the model decides (multi-domain: any input)
    target: str
    direction: str  # "source->target" (multi-domain without a source: "auto->target")
    seed: int | None = None  # noise seed of the style code; None: the average style
    reference: Image.Image | None = None  # style taken from this image
    mix: dict[str, float] | None = None  # normalised weights over domains
    strength: float = 1.0
    batch_size: int = 4
    tile: int | None = None  # tile side; None = automatic, 0 = never tile
    tileable: bool = False  # wrap-around output (seamless texture)
    keep_alpha: bool = True  # inputs with transparency come back with their alpha
    finish: str | None = None  # a non-learned last stage (culturegan.finish.FINISHES)
    shifts: int = 1  # passes over the picture moved within the generator's grid, averaged


def pad_to_multiple(
    x: torch.Tensor, multiple: int, min_size: int = 0, lead: int = 0
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) by ``lead`` on the top and left, then on the bottom/right to multiples
    of ``multiple``, at least ``min_size``.

    Returns the padded batch and the original (H, W): the picture is
    ``padded[..., lead : lead + H, lead : lead + W]``.
    """
    h, w = x.shape[-2:]
    ph = padded_side(h, multiple, min_size, lead) - h
    pw = padded_side(w, multiple, min_size, lead) - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs each pad to be smaller than the side; tiny images fall back to replicate.
    mode = "reflect" if max(lead, ph - lead) < h and max(lead, pw - lead) < w else "replicate"
    return F.pad(x, (lead, pw - lead, lead, ph - lead), mode=mode), (h, w)


SHIFT_PASSES = (1, 4, 8, 16)


def shift_offsets(passes: int, multiple: int) -> list[tuple[int, int]]:
    """The (rows, columns) a picture is moved by for ``passes`` averaged passes of a generator
    whose coarsest map is 1/``multiple`` of the picture (:data:`SHIFT_PASSES`).

    A pattern fixed to that grid repeats every ``multiple`` pixels; moving the picture by
    ``offset`` moves its harmonic (i, j) (in cycles per ``multiple`` pixels) by a phase of
    2 pi (i dy + j dx) / ``multiple`` against the content, so the average over the offsets
    cancels every harmonic whose phases sum to 0. With q = ``multiple`` / 4: 4 passes, {0, 2q}
    on both axes, cancel the harmonics with an odd i or j (the period-8 diagonal lattice of the
    shipped models); 8 add those moved by (q, q) and cancel the period-4 ones too; 16, {0, q,
    2q, 3q} on both axes, all but period 2. Grids under 4 px move by whole pixels."""
    if passes not in SHIFT_PASSES:
        raise ValueError(f"shifts must be one of {', '.join(map(str, SHIFT_PASSES))} passes, "
                         f"got {passes!r}")  # fmt: skip
    q, half = max(1, multiple // 4), max(1, multiple // 2)
    if passes == 16:
        return [(a * q, b * q) for a in range(4) for b in range(4)]
    square = [(a * half, b * half) for a in range(2) for b in range(2)][:passes]
    return square + [(dy + q, dx + q) for dy, dx in square] if passes == 8 else square


def shift_average(
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    offsets: Sequence[tuple[int, int]],
    *,
    wrap: bool = False,
) -> torch.Tensor:
    """The mean over ``offsets`` of ``fn`` applied to the (B, C, H, W) batch moved down and
    right by (dy, dx) and moved back: ``fn`` must map a picture to one of the same size.
    Moved with mirrored rows and columns above and left (``wrap``: around the torus, for
    tileable textures), then cropped back to H x W."""
    total = None
    h, w = x.shape[-2:]
    for dy, dx in offsets:
        if wrap:
            out = fn(x.roll((dy, dx), dims=(-2, -1))).roll((-dy, -dx), dims=(-2, -1))
        elif dy or dx:
            mode = "reflect" if dy < h and dx < w else "replicate"
            out = fn(F.pad(x, (dx, 0, dy, 0), mode=mode))[..., dy : dy + h, dx : dx + w]
        else:
            out = fn(x)
        total = out if total is None else total + out
    if total is None:
        raise ValueError("shift_average needs at least one offset")
    return total / len(offsets)


def marks_top_left(network: torch.nn.Module) -> bool:
    """Whether ``network`` has a zero-padded stride-2 convolution: on even sides it reads its
    padding at the top and left only, so the output can tell those edges from the others."""
    return any(
        isinstance(m, torch.nn.Conv2d)
        and max(m.stride) > 1
        and m.padding_mode == "zeros"
        and m.padding != "valid"
        and any(m.padding)
        for m in network.modules()
    )


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    return [images] if isinstance(images, str | Path | Image.Image) else list(images)


def read_inputs(
    images: Sequence[ImageInput], *, keep_alpha: bool = False
) -> tuple[list[Image.Image], list[str]]:
    """Files go through the project's loader, in-memory images through the same conversion
    (RGB; with ``keep_alpha``, images with transparency stay RGBA)."""
    pils, sources = [], []
    for item in images:
        if isinstance(item, Image.Image):
            if keep_alpha and has_alpha(item):
                pils.append(item.convert("RGBA"))
            else:  # never changed in place: an RGB image is used as it is (no copy)
                pils.append(item if item.mode == "RGB" else to_rgb(item))
            sources.append("")
        else:
            pils.append(load_image(item, keep_alpha=keep_alpha))
            sources.append(str(item))
    return pils, sources


def check_device(name: str | torch.device) -> torch.device:
    """``name`` as a device this machine has, or a ValueError saying what it has."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device '{name}' (use cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available here; use cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{name}' requested but MPS is not available here; use cpu")
    return device


def parse_mix(text: str) -> dict[str, float]:
    """``"ukiyoe:0.5,chinese_ink:0.5"`` -> {"ukiyoe": 0.5, "chinese_ink": 0.5}."""
    mix = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition(":")
        try:
            mix[name.strip()] = float(weight) if sep else 1.0
        except ValueError:
            raise ValueError(f"--mix takes DOMAIN:WEIGHT,...; cannot read '{part}'") from None
    return mix


class Stylizer(ABC):
    """A model that turns images of one domain into another.

    Subclasses set ``kind`` and ``options`` and implement :meth:`_stylize`; everything a
    caller needs (checking, reading, batching, padding, tiling) is here.
    """

    kind: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()  # which of STYLE_OPTIONS it honours

    def __init__(
        self,
        *,
        domains: Sequence[str],
        directions: dict[str, str],
        size_multiple: int = 4,
        edge_margin: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.domains: list[str] = list(domains)
        self.directions: dict[str, str] = dict(directions)
        self.size_multiple = int(size_multiple)
        # Reflected pixels added above and left of every picture and cropped off the output
        # (None: one size multiple, a cell of the generator's coarsest map; 0: none). A
        # stride-2 convolution with zero padding sees a border only at the top and left of an
        # even-sided input, and a model trained on framed scans paints a frame there
        # (docs/quality.md, session 22); the margin takes it off the picture.
        self.edge_margin = self.size_multiple if edge_margin is None else int(edge_margin)
        self.device = check_device(device)

    # ------------------------------------------------------------------ opening models

    @classmethod
    def from_pretrained(
        cls, model: str | Path, *, device: str = "cpu", revision: str | None = None
    ) -> Stylizer:
        """Open a model folder, a shipped model by name (``"ukiyoe"``, see ``culturegan
        models``), a Hugging Face Hub repo (``"org/name"``, ``revision`` a branch, tag or
        commit; needs the ``[hub]`` extra) or an exported ``.onnx`` file; the class comes
        from the folder's ``kind``."""
        if str(model).endswith(".onnx"):
            from culturegan.onnx_export import OnnxStylizer

            if device != "cpu":
                raise ValueError("ONNX models run on the CPU here (onnxruntime's CPU provider)")
            stylizer_class: type[Stylizer] = OnnxStylizer
            if not issubclass(stylizer_class, cls):
                raise CheckpointError(f"'{model}' is an ONNX model, not a {cls.__name__}")
            return OnnxStylizer(model)
        from culturegan.zoo import resolve_model

        model_dir = resolve_model(model, revision=revision)
        config, tensors = load_pretrained(model_dir)
        kind = config.get("kind", "two_domain")
        if not isinstance(kind, str) or kind not in STYLIZERS:
            raise CheckpointError(f"'{model_dir}' holds a {kind!r}, not a style-transfer model")
        stylizer_class = STYLIZERS[kind]
        if not issubclass(stylizer_class, cls):
            raise CheckpointError(
                f"'{model_dir}' holds a {kind} model, not a {cls.__name__}; open it with "
                "Stylizer.from_pretrained"
            )
        networks = _load_networks(model_dir, config, tensors, stylizer_class.build_network)
        return stylizer_class(networks, config, device=device)

    @classmethod
    def from_modules(
        cls, networks: dict[str, torch.nn.Module], config: dict[str, Any], *, device="cpu"
    ) -> Stylizer:
        """A stylizer over networks in memory (e.g. a training run's EMA networks)."""
        return STYLIZERS[config.get("kind", "two_domain")](networks, config, device=device)

    # ------------------------------------------------------------------ the call

    def check_domain(self, name: str, role: str) -> None:
        if name not in self.domains:
            raise ValueError(
                f"unknown {role} domain '{name}' (this model knows: {', '.join(self.domains)})"
            )

    def resolve_direction(self, source: str | None = None, target: str | None = None) -> str:
        """Pick ``source->target``: default is the first direction (e.g. photo -> art)."""
        if target is None and source is None:
            return next(iter(self.directions))
        for role, name in (("source", source), ("target", target)):
            if name is not None:
                self.check_domain(name, role)
        candidates = [
            d
            for d in self.directions
            if (source is None or d.split("->")[0] == source)
            and (target is None or d.split("->")[1] == target)
        ]
        if not candidates:
            raise ValueError(
                f"this model has no direction {source or '*'}->{target or '*'} "
                f"(it has: {', '.join(self.directions)})"
            )
        return candidates[0]

    def check_inputs(
        self,
        *,
        source: str | None = None,
        target: str | None = None,
        seed: int | None = None,
        reference: ImageInput | None = None,
        mix: dict[str, float] | str | None = None,
        strength: float = 1.0,
        batch_size: int = 4,
        tile: int | None = None,
        tileable: bool = False,
        keep_alpha: bool = True,
        finish: str | None = None,
        shifts: int = 1,
    ) -> Request:
        """Refuse what this model cannot do (with a message saying why), resolve the rest."""
        given = {
            "seed": seed is not None,
            "reference": reference is not None,
            "mix": bool(mix),
            "strength": strength != 1.0,
        }
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size!r}")
        if tile is not None and (not isinstance(tile, int) or tile < 0):
            raise ValueError(f"tile must be 0 (never tile) or a side in pixels, got {tile!r}")
        smallest = MIN_MULTIPLES * self.size_multiple
        if tile and tile < smallest:
            raise ValueError(f"tile must be at least {smallest} px for this model")
        if tileable and tile:
            raise ValueError("a tileable texture is made in one pass; drop the tile size")
        check_finish(finish)
        shift_offsets(shifts, self.size_multiple)  # one of SHIFT_PASSES, or a clear error
        if tileable and finish:
            raise ValueError(
                f"the '{finish_name(finish)}' finish draws areas and lines that do not wrap "
                "around; drop the finish or --tileable"
            )
        if not isinstance(strength, int | float) or not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED
        ):
            raise ValueError(f"seed must be in [0, 2**63), got {seed!r}")
        unsupported = [name for name, on in given.items() if on and name not in self.options]
        if unsupported:
            raise ValueError(
                f"{', '.join(unsupported)}: this {self.kind} model gives one rendering per "
                f"input and cannot honour {'it' if len(unsupported) == 1 else 'them'} "
                "(seed, reference, mix and strength need a multi-domain model)"
            )
        if reference is not None and mix:
            raise ValueError("give either a reference image or a mix, not both")
        weights = None
        if mix:
            weights = parse_mix(mix) if isinstance(mix, str) else dict(mix)
            for name, weight in weights.items():
                self.check_domain(name, "mix")
                if not math.isfinite(weight) or weight < 0:
                    raise ValueError(
                        f"mix weight of '{name}' must be finite and >= 0, got {weight}"
                    )
            total = sum(weights.values())
            if total <= 0:
                raise ValueError(f"mix weights must have a positive sum, got {weights}")
            weights = {name: w / total for name, w in weights.items()}
        ref_image = None
        if reference is not None:
            (ref_image,), _ = read_inputs([reference])
        request = Request(
            source=source,
            target=target or "",
            direction="",
            seed=seed,
            reference=ref_image,
            mix=weights,
            strength=float(strength),
            batch_size=batch_size,
            tile=0 if tileable else tile,
            tileable=bool(tileable),
            keep_alpha=bool(keep_alpha),
            finish=finish,
            shifts=shifts,
        )
        self._resolve(request)
        return request

    def _resolve(self, request: Request) -> None:
        """Fill ``request.target`` and ``direction`` (two-domain: one of the directions)."""
        direction = self.resolve_direction(request.source, request.target or None)
        request.source, request.target = direction.split("->")
        request.direction = direction

    @torch.no_grad()
    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        source: str | None = None,
        target: str | None = None,
        seed: int | None = None,
        reference: ImageInput | None = None,
        mix: dict[str, float] | str | None = None,
        strength: float = 1.0,
        batch_size: int = 4,
        tile: int | None = None,
        tileable: bool = False,
        keep_alpha: bool = True,
        finish: str | None = None,
        shifts: int = 1,
    ) -> StylizeResult:
        """Stylize ``images`` (files or PIL images).

        ``source`` / ``target``: domain names; ``seed``, ``reference``, ``mix``, ``strength``:
        the style options (``self.options`` says which this model honours); ``tile``: None
        tiles images above :func:`culturegan.tiling.auto_tile`'s threshold, a number forces
        tiles of that side, 0 never tiles; ``tileable``: a seamless (wrap-around) output;
        ``keep_alpha``: an input with transparency is stylized as colour and comes back with
        its own alpha, exactly (else it is laid over white); ``finish``: a non-learned last
        stage drawn from the input and the output (``"print"``: flat inks and keyblock lines;
        ``"ink"``: the output's paper, washes and brush lines; ``"paint"``: the output's colours
        as brush strokes along the photo's contours; :mod:`culturegan.finish`); ``shifts``: run
        the model 4, 8 or 16 times on the picture moved within its generator's pixel grid and
        average the outputs moved back (:func:`shift_offsets`): a lattice fixed to that grid
        cancels while the content, which moves with the picture, stays; as many times the time.
        """
        request = self.check_inputs(
            source=source, target=target, seed=seed, reference=reference, mix=mix,
            strength=strength, batch_size=batch_size, tile=tile, tileable=tileable,
            keep_alpha=keep_alpha, finish=finish, shifts=shifts,
        )  # fmt: skip
        pils, sources = read_inputs(_as_list(images), keep_alpha=request.keep_alpha)
        if request.finish:
            for pil, source in zip(pils, sources, strict=True):
                check_finish_size(request.finish, pil.size, source)
        split = [split_alpha(p) for p in pils]
        outputs = self._stylize([rgb for rgb, _ in split], request)
        if request.finish:
            outputs = [
                apply_finish(request.finish, rgb, out)
                for (rgb, _), out in zip(split, outputs, strict=True)
            ]
        outputs = [merge_alpha(out, alpha) for out, (_, alpha) in zip(outputs, split, strict=True)]
        return StylizeResult(images=outputs, direction=request.direction, sources=sources)

    @abstractmethod
    def _stylize(self, pils: list[Image.Image], request: Request) -> list[Image.Image]:
        """Outputs for RGB ``pils`` under a checked ``request``."""

    # ------------------------------------------------------------------ shared running

    def _run(
        self,
        pils: list[Image.Image],
        fn: Callable[[torch.Tensor, list[int]], torch.Tensor],
        request: Request,
        network: torch.nn.Module | None = None,
        paint: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> list[Image.Image]:
        """``fn(padded (B, 3, H', W'), indices) -> (B, 3, H', W')`` over batches of equal size;
        large images (or every image, with ``request.tile``) go through overlapping tiles, with
        the instance-norm statistics of ``network`` taken from one downscaled pass.

        With ``paint``, ``fn`` returns (B, K, H', W') instead (a hard palette's ink votes):
        passes and tiles average those, and ``paint`` turns the average into RGB, so that an
        averaged picture is still painted in the inks."""
        outputs: list[Image.Image | None] = [None] * len(pils)
        painted = paint if paint is not None else (lambda y: y)
        offsets = shift_offsets(request.shifts, self.size_multiple)  # tileable textures
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(pils):
            if request.tileable:
                if network is None:
                    raise ValueError("this model cannot make tileable textures")
                outputs[i] = tileable_apply(
                    img,
                    lambda x, i=i: shift_average(x, lambda b: fn(b, [i]), offsets, wrap=True),
                    network=network,
                    size_multiple=self.size_multiple,
                    device=self.device,
                    paint=paint,
                )
                continue
            tile = auto_tile(img.size) if request.tile is None else request.tile
            if tile:
                outputs[i] = tiled_apply(
                    img,
                    lambda x, i=i: self._forward(x, lambda b: fn(b, [i]), request.shifts),
                    network=network,
                    tile=tile,
                    size_multiple=self.size_multiple,
                    margin=self.edge_margin,
                    device=self.device,
                    paint=paint,
                )
                continue
            by_size.setdefault(img.size, []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), request.batch_size):
                chunk = indices[start : start + request.batch_size]
                batch = torch.stack([pil_to_tensor(pils[i]) for i in chunk]).to(self.device)
                # (B, 3, H, W)
                result = self._forward(batch, lambda b, c=chunk: fn(b, c), request.shifts)
                result = painted(result).cpu()
                for i, tensor in zip(chunk, result, strict=True):
                    outputs[i] = tensor_to_pil(tensor)
        return outputs

    def _forward(
        self, batch: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], shifts: int = 1
    ) -> torch.Tensor:
        m, multiple = self.edge_margin, self.size_multiple

        def once(x: torch.Tensor) -> torch.Tensor:
            padded, (h, w) = pad_to_multiple(x, multiple, MIN_MULTIPLES * multiple, m)
            return fn(padded)[..., m : m + h, m : m + w]

        return shift_average(batch, once, shift_offsets(shifts, multiple))


def _load_networks(
    model_dir: str | Path, config: dict, tensors: dict, build: Callable[[dict], torch.nn.Module]
) -> dict[str, torch.nn.Module]:
    networks = {}
    for name, net_config in config["networks"].items():
        # First on the meta device (no memory): the shapes the config implies must be exactly
        # those of the weights present, so a config cannot make us allocate more than the file.
        with torch.device("meta"):
            try:
                probe = build(net_config)
            except (TypeError, ValueError, KeyError) as exc:
                raise CheckpointError(
                    f"network '{name}' in '{model_dir}' cannot be built from config.json: {exc}"
                ) from None
        wrong = shape_differences(probe, sub_state(tensors, name))
        if wrong:
            raise CheckpointError(
                f"weights of '{name}' in '{model_dir}' do not fit its config.json "
                f"(first differences: {', '.join(wrong[:3])})"
            )
        net = build(net_config)
        try:
            net.load_state_dict(sub_state(tensors, name))
        except RuntimeError as exc:
            raise CheckpointError(
                f"weights of '{name}' in '{model_dir}' do not fit its config.json: {exc}"
            ) from None
        networks[name] = net
    return networks


class _NetworkStylizer(Stylizer):
    """Stylizers over PyTorch networks rebuilt from a pretrained folder's config."""

    def __init__(
        self,
        networks: dict[str, torch.nn.Module],
        config: dict[str, Any],
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        margin = config.get("edge_margin")
        generators = [networks[name] for name in set(config["directions"].values())]
        if margin is None and not any(map(marks_top_left, generators)):
            margin = 0  # no edge is marked: the network sees the picture as it is
        super().__init__(
            domains=config["domains"],
            directions=config["directions"],
            size_multiple=config.get("size_multiple", 4),
            edge_margin=margin,
            device=device,
        )
        self.config = config
        self.networks = {k: v.to(self.device).eval() for k, v in networks.items()}

    @staticmethod
    @abstractmethod
    def build_network(config: dict) -> torch.nn.Module:
        """One network of the folder from its entry in ``config.json``'s ``networks``."""


class TwoDomainStylizer(_NetworkStylizer):
    """One generator per direction (CycleGAN, CUT, distilled students, restoration)."""

    kind = "two_domain"
    options = frozenset()

    build_network = staticmethod(generator_from_config)

    def _stylize(self, pils: list[Image.Image], request: Request) -> list[Image.Image]:
        net = self.networks[self.directions[request.direction]]
        head = net.ink_head() if hasattr(net, "ink_head") else None
        if head is not None:  # painted in its inks after any averaging (passes, tiles)
            return self._run(pils, lambda b, _: net.ink_votes(b), request, net, paint=head.paint)
        return self._run(pils, lambda batch, _: net(batch), request, network=net)


class MultiDomainStylizer(_NetworkStylizer):
    """One generator for every domain, steered by a style code.

    The style code of the target is the domain's average style (no seed), comes from noise
    (``seed``: reproducible, different seeds give different renderings) or from a
    ``reference`` image; a weighted ``mix`` of domains blends their codes.
    ``strength`` in [0, 1] goes from the input (0) to the full target style (1): the residual
    generator's predicted change is scaled, so every pixel moves monotonically away from the
    input as strength grows. (A non-residual generator interpolates the style code from the
    input's own style instead, with no such guarantee.)
    """

    kind = "multi_domain"
    options = frozenset(STYLE_OPTIONS)

    def __init__(self, networks, config, *, device="cpu") -> None:
        super().__init__(networks, config, device=device)
        self.generator = self.networks["generator"]
        self.mapping = self.networks["mapping"]
        self.style_encoder = self.networks["style_encoder"]
        self.latent_dim = int(config["latent_dim"])
        self.style_size = int(config.get("train_crop_size", 64))
        self._average_styles: dict[str, torch.Tensor] = {}

    @staticmethod
    def build_network(config: dict) -> torch.nn.Module:
        from culturegan.models.multidomain import multidomain_from_config

        return multidomain_from_config(config)

    def _for_encoder(self, img: Image.Image) -> torch.Tensor:
        """The style encoder sees images as in training: shorter side resized, centre square."""
        from culturegan.data.datasets import eval_transform

        return eval_transform(img, crop_size=self.style_size).unsqueeze(0).to(self.device)

    def _label(self, name: str) -> torch.Tensor:
        return torch.tensor([self.domains.index(name)], device=self.device)

    @torch.no_grad()
    def classify(self, image: ImageInput) -> str:
        """The domain the style encoder's classifier head assigns to an image."""
        (pil,), _ = read_inputs([image])
        logits = self.style_encoder.classify(self._for_encoder(pil))
        return self.domains[int(logits.argmax())]

    def _resolve(self, request: Request) -> None:
        if request.source is not None:
            self.check_domain(request.source, "source")
        if request.mix:
            request.target = request.target or max(request.mix, key=request.mix.get)
        elif request.reference is not None:
            request.target = request.target or self.classify(request.reference)
        elif not request.target:
            raise ValueError(
                f"a multi-domain model needs a target (one of: {', '.join(self.domains)}), "
                "a reference image or a mix"
            )
        self.check_domain(request.target, "target")
        request.direction = f"{request.source or 'auto'}->{request.target}"

    @torch.no_grad()
    def style_code(self, request: Request) -> torch.Tensor:
        """(1, style_dim) code of a checked request: from its reference, mix or seed.

        Without a seed, a domain's code is its average style: the mean of the mapping network
        over AVERAGE_STYLE_SAMPLES fixed noise vectors (StyleGAN's truncation to the centre).
        One noise vector is one rendering among many, and some miss the culture: on
        cultures-dev the judge's hit rate for Chinese ink went from 0.42 to 0.80 across seeds
        0-3, and the average gave 0.80 (docs/quality.md, "The average style")."""
        if request.reference is not None:
            ref = self._for_encoder(request.reference)
            return self.style_encoder(ref, self._label(request.target))
        weights = request.mix or {request.target: 1.0}
        if request.seed is None:
            return sum(w * self.average_style(name) for name, w in weights.items())
        z = torch.randn(1, self.latent_dim, generator=torch.Generator().manual_seed(request.seed))
        z = z.to(self.device)
        return sum(w * self.mapping(z, self._label(name)) for name, w in weights.items())

    @torch.no_grad()
    def average_style(self, name: str) -> torch.Tensor:
        """(1, style_dim): the mean code of domain ``name`` over fixed noise (cached)."""
        if name not in self._average_styles:
            z = torch.randn(
                AVERAGE_STYLE_SAMPLES, self.latent_dim, generator=torch.Generator().manual_seed(0)
            ).to(self.device)
            label = self._label(name).expand(AVERAGE_STYLE_SAMPLES)
            self._average_styles[name] = self.mapping(z, label).mean(0, keepdim=True)
        return self._average_styles[name]

    def _domain_weights(self, weights: dict[str, float]) -> torch.Tensor:
        """(1, K) weights over the model's domains."""
        w = torch.zeros(1, len(self.domains), device=self.device)
        for name, value in weights.items():
            w[0, self.domains.index(name)] += value
        return w

    def _stylize(self, pils: list[Image.Image], request: Request) -> list[Image.Image]:
        code = self.style_code(request)
        # Generators with a branch per domain draw with the target's branch (a mix blends the
        # branches as it blends the codes).
        branched = getattr(self.generator, "branches", None) is not None
        target = self._domain_weights(request.mix or {request.target: 1.0})
        own, own_domain = [], []  # non-residual generators: from each input's own style
        if request.strength < 1.0 and not self.generator.residual:
            for pil in pils:
                x = self._for_encoder(pil)
                name = request.source or self.domains[int(self.style_encoder.classify(x).argmax())]
                own.append(self.style_encoder(x, self._label(name)))
                own_domain.append(self._domain_weights({name: 1.0}))

        def draw(
            batch: torch.Tensor, s: torch.Tensor, strength: float, domain: torch.Tensor
        ) -> torch.Tensor:
            if branched:
                return self.generator(batch, s, strength, domain=domain)
            return self.generator(batch, s, strength)

        def run(batch: torch.Tensor, indices: list[int]) -> torch.Tensor:
            s = code.expand(len(batch), -1)
            domain = target.expand(len(batch), -1)
            if not own:
                return draw(batch, s, request.strength, domain)
            mixed = torch.lerp(torch.cat([own[i] for i in indices]), s, request.strength)
            start = torch.cat([own_domain[i] for i in indices])
            return draw(batch, mixed, 1.0, torch.lerp(start, domain, request.strength))

        return self._run(pils, run, request, network=self.generator)


# The one table from a folder's ``kind`` to its class (a ``.onnx`` file is kind "onnx").
STYLIZERS: dict[str, type[_NetworkStylizer]] = {
    TwoDomainStylizer.kind: TwoDomainStylizer,
    MultiDomainStylizer.kind: MultiDomainStylizer,
}

__all__ = [
    "DEFAULT_TILE",
    "STYLIZERS",
    "MultiDomainStylizer",
    "Request",
    "StylizeResult",
    "Stylizer",
    "TwoDomainStylizer",
    "check_device",
    "parse_mix",
    "read_inputs",
    "sample_seeds",
]
