"""Stylize files and folders into an output folder: what ``culturegan stylize`` does.

Inputs are files and folders (searched recursively); each output is a PNG at the input's
relative path under ``--out``. Unreadable files are named and skipped, an output never
replaces an input, an output folder inside an input folder is not read back, and every file
is written atomically (a kill leaves no truncated PNG).

Usage::

    summary = stylize_paths(["photos/"], model="ukiyoe", out_dir="out", target="ukiyoe")
    print(summary.report())
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from culturegan.data.images import iter_image_batches, load_image, scan_images
from culturegan.fileio import atomic_write
from culturegan.inference import Stylizer, sample_seeds


@dataclass
class StylizeSummary:
    written: list[Path]  # output files
    skipped: list[tuple[Path, str]]  # inputs that could not be read, with the reason
    direction: str  # or the method that made the outputs
    verb: str = "stylized"  # what was done, for the report: "stylized", "restored"

    def report(self) -> str:
        lines = [f"{self.verb} {len(self.written)} images ({self.direction})"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable inputs:")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def remove_empty_folders(root: Path) -> None:
    """Remove ``root`` and the folders under it that hold no file (best effort)."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def expand_inputs(
    inputs: Sequence[str | Path], out_dir: str | Path | None = None
) -> tuple[list[tuple[Path, Path]], list]:
    """Files and folders -> [(input file, output path relative to --out)], skipped files.

    With ``out_dir``: files already under it are not inputs (an output folder inside an input
    folder is not read back on the next run), and an output that would land on an input file
    is refused before anything is written.
    """
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
    model_dir: str | Path | Stylizer,  # a model (folder, shipped name, Hub id) or a stylizer
    out_dir: str | Path,
    source: str | None = None,
    target: str | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = True,
    seed: int | None = None,  # style code noise seed of the first sample (models with "seed")
    samples: int = 1,  # renderings per input (seeds seed, seed + 1, ...)
    reference: str | Path | None = None,  # style from this image
    strength: float = 1.0,  # 0 = the input's own style, 1 = the target style
    mix: str | dict[str, float] | None = None,  # "ukiyoe:0.5,ink:0.5"
    tile: int | None = None,  # tile side (None: automatic for large images, 0: never)
    tileable: bool = False,  # seamless wrap-around textures
    keep_alpha: bool = True,  # inputs with transparency keep their alpha
    finish: str | None = None,  # a non-learned last stage ("print", "ink", "paint")
    shifts: int = 1,  # passes moved within the generator's grid, averaged (4, 8, 16)
    verb: str = "stylized",  # the summary's and progress bar's word for the work
) -> StylizeSummary:
    """Stylize image files and folders into ``out_dir`` as PNG; unreadable files are skipped.

    Every option is checked by the model before anything is read or written; one style code
    (``seed`` / ``reference`` / ``mix``) serves the whole batch, so a folder of game assets
    keeps one look.
    """
    from tqdm.auto import tqdm

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}")
    if isinstance(model_dir, Stylizer):
        stylizer = model_dir
    else:
        stylizer = Stylizer.from_pretrained(model_dir, device=device)
    if samples > 1 and "seed" not in stylizer.options:
        raise ValueError(
            f"samples: this {stylizer.kind} model gives one rendering per input "
            "(several samples need a multi-domain model)"
        )
    if reference is not None and samples > 1:
        raise ValueError("--samples > 1 needs noise: a reference image gives one style code")
    if reference is not None:  # read once (and refused before any output is written)
        reference = load_image(reference)
    options = {
        "source": source, "target": target, "reference": reference, "mix": mix,
        "strength": strength, "batch_size": batch_size, "tile": tile, "tileable": tileable,
        "keep_alpha": keep_alpha, "finish": finish, "shifts": shifts,
    }  # fmt: skip
    seeds = sample_seeds(seed, samples)
    request = stylizer.check_inputs(seed=seeds[0], **options)
    pairs, skipped = expand_inputs(inputs, out_dir)
    out_dir = Path(out_dir)
    fresh = not out_dir.exists()  # made by this call: not left behind empty if it fails
    rel_of = dict(pairs)
    written: list[Path] = []
    try:
        with tqdm(total=len(pairs), disable=not progress, unit="img", desc=verb) as bar:
            files = [path for path, _ in pairs]
            for chunk, images in iter_image_batches(
                files, batch_size, skipped=skipped, keep_alpha=keep_alpha
            ):
                for k, sample_seed in enumerate(seeds):
                    result = stylizer(images, seed=sample_seed, **options)
                    for path, image in zip(chunk, result.images, strict=True):
                        rel = rel_of[path]
                        name = rel if len(seeds) == 1 else rel.with_name(f"{rel.stem}_s{k}.png")
                        out = out_dir / name
                        # A kill mid-write leaves no truncated PNG under the final name.
                        atomic_write(out, lambda tmp, im=image: im.save(tmp, format="PNG"))
                        written.append(out)
                bar.update(len(chunk))
    except BaseException:
        if fresh:
            remove_empty_folders(out_dir)
        raise
    return StylizeSummary(written=written, skipped=skipped, direction=request.direction, verb=verb)
