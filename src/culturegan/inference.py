"""Apply a pretrained model to images of any size.

``Stylizer.from_pretrained(dir)`` rebuilds the networks from the folder's ``config.json`` and
safetensors weights; calling it on images returns a :class:`StylizeResult`. Each image is
reflect-padded to the network's size multiple and cropped back, so any width and height work,
and images of equal size are run in batches.

Usage::

    stylizer = Stylizer.from_pretrained("runs/000-cyclegan/model")
    result = stylizer(["photo.jpg"], target="ukiyoe")
    result.images[0].save("photo_ukiyoe.png")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from culturegan.checkpoint import KINDS, CheckpointError, load_pretrained, sub_state
from culturegan.data.images import load_image, pil_to_tensor, tensor_to_pil, to_rgb
from culturegan.fileio import atomic_write
from culturegan.models.generators import generator_from_config

ImageInput = str | Path | Image.Image


@dataclass
class StylizeResult:
    images: list[Image.Image]  # one output per input, at the input's size
    direction: str  # "source->target"
    sources: list[str] = field(default_factory=list)  # file paths, or "" for in-memory images


def pad_to_multiple(
    x: torch.Tensor, multiple: int, min_size: int = 0
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the bottom/right to multiples of ``multiple``, at least ``min_size``.

    Returns the padded batch and the original (H, W) to crop back to.
    """
    h, w = x.shape[-2:]
    ph = max(h + (-h) % multiple, min_size + (-min_size) % multiple) - h
    pw = max(w + (-w) % multiple, min_size + (-min_size) % multiple) - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad to be smaller than the side; tiny images fall back to replicate.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    return [images] if isinstance(images, str | Path | Image.Image) else list(images)


def read_inputs(images: Sequence[ImageInput]) -> tuple[list[Image.Image], list[str]]:
    """Files go through the project's loader, in-memory images through the same conversion."""
    pils, sources = [], []
    for item in images:
        if isinstance(item, Image.Image):
            pils.append(to_rgb(item))
            sources.append("")
        else:
            pils.append(load_image(item))
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


class _ImageRunner:
    """Shared by the stylizers: batches images of equal size, pads, runs, crops back."""

    size_multiple: int
    device: torch.device

    def _run(
        self,
        pils: list[Image.Image],
        fn: Callable[[torch.Tensor, list[int]], torch.Tensor],
        batch_size: int,
    ) -> list[Image.Image]:
        """``fn(padded (B, 3, H', W'), indices) -> (B, 3, H', W')`` over batches of equal size."""
        outputs: list[Image.Image | None] = [None] * len(pils)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(pils):
            by_size.setdefault(img.size, []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = torch.stack([pil_to_tensor(pils[i]) for i in chunk]).to(self.device)
                # At least 4 multiples: the bottleneck then has 4 x 4 positions, enough for
                # its reflection padding and instance norm.
                padded, (h, w) = pad_to_multiple(batch, self.size_multiple, 4 * self.size_multiple)
                result = fn(padded, chunk)[..., :h, :w].cpu()  # (B, 3, H, W)
                for i, tensor in zip(chunk, result, strict=True):
                    outputs[i] = tensor_to_pil(tensor)
        return outputs


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
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        present = {k: tuple(v.shape) for k, v in sub_state(tensors, name).items()}
        if expected != present:
            wrong = sorted(set(expected) ^ set(present)) or [
                k for k in expected if expected[k] != present[k]
            ]
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


class Stylizer(_ImageRunner):
    """A two-domain model (one generator per direction). ``from_pretrained`` also opens
    multi-domain folders, returning a :class:`MultiDomainStylizer`."""

    diverse = False  # one output per input and direction

    def __init__(
        self,
        networks: dict[str, torch.nn.Module],
        config: dict[str, Any],
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.device = check_device(device)
        self.networks = {k: v.to(self.device).eval() for k, v in networks.items()}
        self.domains: list[str] = list(config["domains"])
        self.directions: dict[str, str] = dict(config["directions"])
        self.size_multiple = int(config.get("size_multiple", 4))

    @classmethod
    def from_modules(
        cls, networks: dict[str, torch.nn.Module], config: dict[str, Any], *, device="cpu"
    ) -> Stylizer:
        """A stylizer over networks in memory (e.g. a training run's EMA networks)."""
        kind = MultiDomainStylizer if config.get("kind") == "multi_domain" else Stylizer
        return kind(networks, config, device=device)

    @classmethod
    def from_pretrained(
        cls, model: str | Path, *, device: str = "cpu", revision: str | None = None
    ) -> Stylizer:
        """Open a model folder, a shipped model by name (``"ukiyoe"``, see ``culturegan
        models``) or a Hugging Face Hub repo (``"org/name"``, ``revision`` a branch, tag or
        commit; needs the ``[hub]`` extra)."""
        from culturegan.zoo import resolve_model

        model_dir = resolve_model(model, revision=revision)
        config, tensors = load_pretrained(model_dir)
        if config.get("kind", "two_domain") not in KINDS:
            raise CheckpointError(
                f"'{model_dir}' holds a {config.get('kind')}, not a style-transfer model"
            )
        if config.get("kind") == "multi_domain":
            from culturegan.models.multidomain import multidomain_from_config

            networks = _load_networks(model_dir, config, tensors, multidomain_from_config)
            return MultiDomainStylizer(networks, config, device=device)
        networks = _load_networks(model_dir, config, tensors, generator_from_config)
        return cls(networks, config, device=device)

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

    @torch.no_grad()
    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        source: str | None = None,
        target: str | None = None,
        batch_size: int = 4,
    ) -> StylizeResult:
        direction = self.resolve_direction(source, target)
        net = self.networks[self.directions[direction]]
        pils, sources = read_inputs(_as_list(images))
        outputs = self._run(pils, lambda batch, _: net(batch), batch_size)
        return StylizeResult(images=outputs, direction=direction, sources=sources)


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


class MultiDomainStylizer(Stylizer):
    """One generator for every domain, steered by a style code.

    The style code of the target comes from noise (``seed``: reproducible, different seeds give
    different renderings), from a ``reference`` image, or from a weighted ``mix`` of domains.
    ``strength`` in [0, 1] goes from the input (0) to the full target style (1): the residual
    generator's predicted change is scaled, so every pixel moves monotonically away from the
    input as strength grows. (A non-residual generator interpolates the style code from the
    input's own style instead, with no such guarantee.)
    """

    diverse = True

    def __init__(self, networks, config, *, device="cpu") -> None:
        super().__init__(networks, config, device=device)
        self.generator = self.networks["generator"]
        self.mapping = self.networks["mapping"]
        self.style_encoder = self.networks["style_encoder"]
        self.latent_dim = int(config["latent_dim"])
        self.style_size = int(config.get("train_crop_size", 64))

    def _for_encoder(self, img: Image.Image) -> torch.Tensor:
        """The style encoder sees images as in training: shorter side resized, centre square."""
        from culturegan.data.datasets import eval_transform

        return eval_transform(img, crop_size=self.style_size).unsqueeze(0).to(self.device)

    def _label(self, name: str) -> torch.Tensor:
        return torch.tensor([self.domains.index(name)], device=self.device)

    def classify(self, image: ImageInput) -> str:
        """The domain the style encoder's classifier head assigns to an image."""
        (pil,), _ = read_inputs([image])
        logits = self.style_encoder.classify(self._for_encoder(pil))
        return self.domains[int(logits.argmax())]

    def style_code(
        self,
        *,
        target: str | None = None,
        seed: int = 0,
        reference: ImageInput | None = None,
        mix: dict[str, float] | str | None = None,
    ) -> tuple[torch.Tensor, str]:
        """(1, style_dim) code and the name of the domain it renders."""
        if isinstance(mix, str):
            mix = parse_mix(mix)
        if reference is not None:
            if mix:
                raise ValueError("give either a reference image or a mix, not both")
            (ref,), _ = read_inputs([reference])
            target = target or self.classify(ref)
            self.check_domain(target, "target")
            return self.style_encoder(self._for_encoder(ref), self._label(target)), target
        z = torch.randn(1, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        z = z.to(self.device)
        if mix:
            total = sum(mix.values())
            if total <= 0 or any(w < 0 for w in mix.values()):
                raise ValueError(f"mix weights must be >= 0 with a positive sum, got {mix}")
            code = 0
            for name, weight in mix.items():
                self.check_domain(name, "mix")
                code = code + weight / total * self.mapping(z, self._label(name))
            return code, max(mix, key=mix.get)
        if target is None:
            raise ValueError(
                f"a multi-domain model needs a target (one of: {', '.join(self.domains)}), "
                "a reference image or a mix"
            )
        self.check_domain(target, "target")
        return self.mapping(z, self._label(target)), target

    @torch.no_grad()
    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        source: str | None = None,
        target: str | None = None,
        seed: int = 0,
        reference: ImageInput | None = None,
        mix: dict[str, float] | str | None = None,
        strength: float = 1.0,
        batch_size: int = 4,
    ) -> StylizeResult:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if source is not None:
            self.check_domain(source, "source")
        code, target = self.style_code(target=target, seed=seed, reference=reference, mix=mix)
        pils, sources = read_inputs(_as_list(images))
        own = []  # non-residual generators: interpolate from each input's own style code
        if strength < 1.0 and not self.generator.residual:
            for pil in pils:
                name = (
                    source
                    or self.domains[
                        int(self.style_encoder.classify(self._for_encoder(pil)).argmax())
                    ]
                )
                own.append(self.style_encoder(self._for_encoder(pil), self._label(name)))

        def run(batch: torch.Tensor, indices: list[int]) -> torch.Tensor:
            s = code.expand(len(batch), -1)
            if own:
                return self.generator(
                    batch, torch.lerp(torch.cat([own[i] for i in indices]), s, strength)
                )
            return self.generator(batch, s, strength)

        outputs = self._run(pils, run, batch_size)
        direction = f"{source or 'auto'}->{target}"
        return StylizeResult(images=outputs, direction=direction, sources=sources)


@dataclass
class StylizeSummary:
    written: list[Path]  # output files
    skipped: list[tuple[Path, str]]  # inputs that could not be read, with the reason
    direction: str

    def report(self) -> str:
        lines = [f"stylized {len(self.written)} images ({self.direction})"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable inputs:")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def expand_inputs(
    inputs: Sequence[str | Path], out_dir: str | Path | None = None
) -> tuple[list[tuple[Path, Path]], list]:
    """Files and folders -> [(input file, output path relative to --out)], skipped files.

    With ``out_dir``: files already under it are not inputs (an output folder inside an input
    folder is not read back on the next run), and an output that would land on an input file
    is refused before anything is written.
    """
    from culturegan.data.images import scan_images

    out = Path(out_dir).resolve() if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out_dir}' is an existing file; give a folder")
    pairs: list[tuple[Path, Path]] = []
    skipped: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            scan = scan_images(item, check="none")
            nested = (
                out is not None and out != item.resolve() and out.is_relative_to(item.resolve())
            )
            files = [f for f in scan.files if not (nested and f.resolve().is_relative_to(out))]
            pairs += [(f, f.relative_to(item).with_suffix(".png")) for f in files]
            skipped += scan.skipped
        elif item.exists():
            pairs.append((item, Path(item.stem + ".png")))
        else:
            raise FileNotFoundError(f"input '{item}' does not exist")
    # Two inputs with one name (a.jpg, a.png) must not overwrite each other.
    seen: set[Path] = set()
    unique = []
    for src, rel in pairs:
        candidate, n = rel, 1
        while candidate in seen:
            candidate = rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
            n += 1
        seen.add(candidate)
        unique.append((src, candidate))
    if out is not None:
        sources = {src.resolve() for src, _ in unique}
        clash = [out / rel for _, rel in unique if (out / rel).resolve() in sources]
        if clash:
            raise ValueError(
                f"the output '{clash[0]}' would overwrite an input image; choose another --out "
                "(outputs never replace inputs)"
            )
    return unique, skipped


def stylize_paths(
    inputs: Sequence[str | Path],
    *,
    model_dir: str | Path,
    out_dir: str | Path,
    source: str | None = None,
    target: str | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = True,
    seed: int = 0,  # multi-domain: noise seed of the first sample
    samples: int = 1,  # multi-domain: renderings per input (seeds seed, seed + 1, ...)
    reference: str | Path | None = None,  # multi-domain: style from this image
    strength: float = 1.0,  # multi-domain: 0 = the input's own style, 1 = the target style
    mix: str | dict[str, float] | None = None,  # multi-domain: "ukiyoe:0.5,ink:0.5"
) -> StylizeSummary:
    """Stylize image files and folders into ``out_dir`` as PNG; unreadable files are skipped."""
    from tqdm import tqdm

    from culturegan.data.images import ImageLoadError

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    stylizer = Stylizer.from_pretrained(model_dir, device=device)
    if reference is not None and samples > 1:
        raise ValueError("--samples > 1 needs noise: a reference image gives one style code")
    if isinstance(stylizer, MultiDomainStylizer):
        if reference is not None:  # read once (and refused before any output is written)
            reference = load_image(reference)
        kwargs = {"source": source, "reference": reference, "strength": strength, "mix": mix}
        _, target = stylizer.style_code(target=target, seed=seed, reference=reference, mix=mix)
        kwargs["target"] = target
        direction = f"{source or 'auto'}->{target}"
    else:
        extras = {"reference": reference, "mix": mix}
        given = [k for k, v in extras.items() if v] + (["strength"] if strength != 1 else [])
        if given or samples > 1:
            raise ValueError(
                f"{', '.join(given + (['samples'] if samples > 1 else []))}: only multi-domain "
                "models take these (this model is a two-domain model)"
            )
        direction = stylizer.resolve_direction(source, target)
        src, dst = direction.split("->")
        kwargs = {"source": src, "target": dst}
    seeds = [seed + k for k in range(samples)] if stylizer.diverse else [None]
    pairs, skipped = expand_inputs(inputs, out_dir)
    out_dir = Path(out_dir)
    written: list[Path] = []
    with tqdm(total=len(pairs), disable=not progress, unit="img", desc="stylize") as bar:
        for start in range(0, len(pairs), batch_size):
            chunk, images = [], []
            for path, rel in pairs[start : start + batch_size]:
                try:
                    images.append(load_image(path))
                    chunk.append((path, rel))
                except ImageLoadError as exc:
                    skipped.append((path, exc.reason))
            for k, sample_seed in enumerate(seeds):
                if not images:
                    break
                extra = {} if sample_seed is None else {"seed": sample_seed}
                result = stylizer(images, batch_size=batch_size, **kwargs, **extra)
                for (_, rel), image in zip(chunk, result.images, strict=True):
                    name = rel if len(seeds) == 1 else rel.with_name(f"{rel.stem}_s{k}.png")
                    out = out_dir / name
                    # A kill mid-write leaves no truncated PNG under the final name.
                    atomic_write(out, lambda tmp, im=image: im.save(tmp, format="PNG"))
                    written.append(out)
            bar.update(len(pairs[start : start + batch_size]))
    return StylizeSummary(written=written, skipped=skipped, direction=direction)
