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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from culturegan.checkpoint import CheckpointError, load_pretrained, sub_state
from culturegan.data.images import load_image, pil_to_tensor, tensor_to_pil, to_rgb
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


class Stylizer:
    def __init__(
        self,
        networks: dict[str, torch.nn.Module],
        config: dict[str, Any],
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.networks = {k: v.to(self.device).eval() for k, v in networks.items()}
        self.domains: list[str] = list(config["domains"])
        self.directions: dict[str, str] = dict(config["directions"])
        self.size_multiple = int(config.get("size_multiple", 4))

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, *, device: str = "cpu") -> Stylizer:
        config, tensors = load_pretrained(model_dir)
        networks = {}
        for name, net_config in config["networks"].items():
            net = generator_from_config(net_config)
            try:
                net.load_state_dict(sub_state(tensors, name))
            except RuntimeError as exc:
                raise CheckpointError(
                    f"weights of '{name}' in '{model_dir}' do not fit its config.json: {exc}"
                ) from None
            networks[name] = net
        return cls(networks, config, device=device)

    def resolve_direction(self, source: str | None = None, target: str | None = None) -> str:
        """Pick ``source->target``: default is the first direction (e.g. photo -> art)."""
        if target is None and source is None:
            return next(iter(self.directions))
        for role, name in (("source", source), ("target", target)):
            if name is not None and name not in self.domains:
                raise ValueError(
                    f"unknown {role} domain '{name}' (this model knows: {', '.join(self.domains)})"
                )
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
        if isinstance(images, str | Path | Image.Image):
            images = [images]
        direction = self.resolve_direction(source, target)
        net = self.networks[self.directions[direction]]
        pils, sources = [], []
        for item in images:
            if isinstance(item, Image.Image):
                pils.append(to_rgb(item))  # same mode conversion as files
                sources.append("")
            else:
                pils.append(load_image(item))
                sources.append(str(item))
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
                result = net(padded)[..., :h, :w].cpu()  # (B, 3, H, W)
                for i, tensor in zip(chunk, result, strict=True):
                    outputs[i] = tensor_to_pil(tensor)
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


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, Path]], list]:
    """Files and folders -> [(input file, output path relative to --out)], skipped files."""
    from culturegan.data.images import scan_images

    pairs: list[tuple[Path, Path]] = []
    skipped: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            scan = scan_images(item, check="none")
            pairs += [(f, f.relative_to(item).with_suffix(".png")) for f in scan.files]
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
) -> StylizeSummary:
    """Stylize image files and folders into ``out_dir`` as PNG; unreadable files are skipped."""
    from tqdm import tqdm

    from culturegan.data.images import ImageLoadError

    stylizer = Stylizer.from_pretrained(model_dir, device=device)
    direction = stylizer.resolve_direction(source, target)
    src, dst = direction.split("->")
    pairs, skipped = expand_inputs(inputs)
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
            if images:
                result = stylizer(images, source=src, target=dst, batch_size=batch_size)
                for (_, rel), image in zip(chunk, result.images, strict=True):
                    out = out_dir / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    image.save(out)
                    written.append(out)
            bar.update(len(pairs[start : start + batch_size]))
    return StylizeSummary(written=written, skipped=skipped, direction=direction)
