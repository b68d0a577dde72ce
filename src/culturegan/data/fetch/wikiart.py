"""WikiArt paintings by style, streamed from the Hugging Face dataset ``huggan/wikiart``.

The dataset card describes 81,444 images taken from WikiArt.org with three class labels:
``artist`` (129 classes, one of them "Unknown Artist"), ``genre`` (11, one "Unknown Genre") and
``style`` (27, e.g. ``Ukiyo_e``, ``Impressionism``, ``Baroque``); its licence is "unknown: data
files (c) original authors". It is read with ``datasets.load_dataset("huggan/wikiart",
split="train", streaming=True)`` and the image column cast to ``Image(decode=False)``, so records
arrive as encoded bytes and only the kept ones are decoded. Label ids become names through the
``ClassLabel`` features.

Style is not culture: 26 of the 27 styles are Western art movements (Ukiyo_e is the exception),
so a folder per style is a folder per movement, not per culture.

The records come from a :class:`WikiArtSource`, which tests replace with a list of made-up
records; :func:`huggingface_source` is the real one (needs ``pip install 'culturegan[fetch]'``).

Usage::

    result = fetch_wikiart(["Ukiyo_e", "Impressionism"], "data/wikiart", max_per_style=500)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from culturegan.data.fetch.http import FetchError, HttpClient
from culturegan.data.fetch.manifest import (
    DUPLICATE_DISTANCE,
    MANIFEST_NAME,
    DuplicateIndex,
    ImageRejected,
    Manifest,
    encode_jpeg,
    save_checked_image,
)

DATASET = "huggan/wikiart"
LICENCE = "unknown: (c) the original authors (WikiArt.org, via huggan/wikiart)"
WIKIART_FIELDS = (
    "file",
    "style",
    "artist",
    "genre",
    "source",
    "licence",
    "index",
    "sha256",
    "dhash",
)
LABELS = ("artist", "genre", "style")
SAVE_EVERY = 25


class MissingExtraError(FetchError):
    """An optional dependency is not installed; the message names the extra to install."""


@dataclass
class WikiArtSource:
    """Records ``{"image": ..., "artist": id, "genre": id, "style": id}`` in a fixed order, and
    the names of the label ids. An image is encoded bytes, ``{"bytes": ...}`` (what
    ``datasets`` gives with ``decode=False``) or a PIL image."""

    records: Iterable[Mapping[str, Any]]
    names: Mapping[str, Sequence[str]]  # "artist" / "genre" / "style" -> names by id
    name: str = DATASET


def huggingface_source(dataset: str = DATASET, split: str = "train") -> WikiArtSource:
    """Stream ``dataset`` through the ``datasets`` library (fails fast when offline)."""
    try:
        import datasets
    except ImportError:
        raise MissingExtraError(
            "culturegan fetch wikiart reads the Hugging Face dataset through the `datasets` "
            "library, which is not installed: pip install 'culturegan[fetch]'"
        ) from None
    offline = any(
        os.environ.get(v, "0") not in ("", "0") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    if not offline:
        HttpClient().check_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    stream = datasets.load_dataset(dataset, split=split, streaming=True)
    stream = stream.cast_column("image", datasets.Image(decode=False))
    features = stream.features or {}
    missing = [k for k in LABELS if not hasattr(features.get(k), "names")]
    if missing:
        raise FetchError(f"{dataset} has no class-label column {', '.join(missing)}")
    return WikiArtSource(stream, {k: list(features[k].names) for k in LABELS}, dataset)


def _key(name: str) -> str:
    """ "Ukiyo-e", "ukiyo e" and "Ukiyo_e" are one style."""
    return re.sub(r"[^0-9a-z]+", "_", name.casefold()).strip("_")


def resolve_styles(wanted: Sequence[str], known: Sequence[str]) -> list[str]:
    """The dataset's spelling of each wanted style; a ValueError lists the known ones."""
    by_key = {_key(name): name for name in known}
    unknown = [w for w in wanted if _key(w) not in by_key]
    if unknown:
        raise ValueError(
            f"unknown WikiArt style {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )
    return list(dict.fromkeys(by_key[_key(w)] for w in wanted))


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, Mapping) and image.get("bytes"):
        return bytes(image["bytes"])
    if isinstance(image, Image.Image):
        return encode_jpeg(image)
    raise ImageRejected(f"the record holds no image bytes ({type(image).__name__})")


@dataclass
class WikiArtFetch:
    out: Path
    saved: Counter = field(default_factory=Counter)  # style -> new images
    in_manifest: Counter = field(default_factory=Counter)  # style -> images after the run
    already_there: int = 0
    other_styles: int = 0  # records passed over: a style that was not asked for, or full
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> str:
        per_style = ", ".join(f"{s} {n} (+{self.saved[s]})" for s, n in self.in_manifest.items())
        lines = [f"wikiart: '{self.out}' holds {per_style}; {MANIFEST_NAME} lists their sources"]
        skipped = [
            (self.already_there, "already there"),
            (self.other_styles, "of other styles or past the limit"),
            (len(self.duplicates), "near-duplicates"),
            (len(self.corrupt), "corrupt images"),
        ]
        if any(n for n, _ in skipped):
            lines.append("passed over " + ", ".join(f"{n} {what}" for n, what in skipped if n))
        lines += [f"  corrupt: {label}: {why}" for label, why in self.corrupt]
        lines += [f"  near-duplicate: {label} of {twin}" for label, twin in self.duplicates]
        lines.append("WikiArt styles are art movements, mostly Western ones: style is not culture.")
        return "\n".join(lines)


def fetch_wikiart(
    styles: Sequence[str],
    out: str | Path,
    *,
    max_per_style: int | None = None,  # None: every image of each style
    source: WikiArtSource | Callable[[], WikiArtSource] = huggingface_source,
    max_distance: int = DUPLICATE_DISTANCE,
    progress: bool = True,
) -> WikiArtFetch:
    """Save the images of ``styles`` into ``out/STYLE/`` with ``out/manifest.csv``."""
    if not styles:
        raise ValueError("give at least one style, e.g. --styles Ukiyo_e,Impressionism")
    if max_per_style is not None and max_per_style < 1:
        raise ValueError(f"max_per_style must be >= 1, got {max_per_style}")
    out = Path(out)
    src = source() if callable(source) else source
    names = src.names
    wanted = resolve_styles(styles, names["style"])
    manifest = Manifest(out / MANIFEST_NAME, WIKIART_FIELDS, key_fields=("source", "index"))
    index = DuplicateIndex.from_rows(manifest.rows, max_distance)
    result = WikiArtFetch(out, in_manifest=Counter({s: manifest.count(style=s) for s in wanted}))
    limit = max_per_style if max_per_style is not None else float("inf")

    def full(style: str) -> bool:
        return result.in_manifest[style] >= limit

    from tqdm.auto import tqdm

    total = None if max_per_style is None else max_per_style * len(wanted)
    bar = tqdm(total=total, initial=sum(result.in_manifest.values()), unit="img",
               desc="wikiart", disable=not progress)  # fmt: skip
    unsaved = 0
    try:
        for position, record in enumerate(src.records):
            if all(full(s) for s in wanted):
                break
            style = names["style"][int(record["style"])]
            if style not in wanted or full(style):
                result.other_styles += 1
                continue
            if manifest.has_file((src.name, str(position))):
                result.already_there += 1
                continue
            label = f"{src.name} record {position} ({style})"
            folder = re.sub(r"[^A-Za-z0-9_.-]", "_", style)
            try:
                data = _image_bytes(record["image"])
                saved = save_checked_image(
                    data, out / folder / f"{position:06d}", duplicates=index, root=out
                )
            except ImageRejected as exc:
                target = result.duplicates if exc.duplicate_of else result.corrupt
                target.append((label, exc.duplicate_of or exc.reason))
                continue
            manifest.add({
                "file": saved.path.relative_to(out).as_posix(), "style": style,
                "artist": names["artist"][int(record["artist"])],
                "genre": names["genre"][int(record["genre"])], "source": src.name,
                "licence": LICENCE, "index": position, "sha256": saved.sha256,
                "dhash": saved.dhash,
            })  # fmt: skip
            result.saved[style] += 1
            result.in_manifest[style] += 1
            bar.update(1)
            unsaved += 1
            if unsaved >= SAVE_EVERY:
                manifest.save()
                unsaved = 0
    finally:
        bar.close()
        if sum(result.saved.values()):
            manifest.save()
    return result
