"""The inks of a collection: the colours a palette-headed generator starts from.

A generator with a palette head (``model.palette`` K, :class:`culturegan.models.fast.PaletteHead`)
draws every pixel as a mix of K colours. Started from colours spread over the RGB cube, they
barely move in a short run (the demo's woodblock at 200 steps kept mauve and green, its prints
being indigo, cream and vermilion), so by default (``model.palette_init: art``) training starts
them at the target culture's own colours: k-means of pixels of its training images (margins
trimmed as the loader trims them), read at the images' own size: resizing blends neighbouring
inks into colours no block printed. On the demo's woodblock (8 colours, judged on 32 held-out
photos) the inks read this way gave 0.75-0.94 at seeds 0-7; read after the loader's resize to
72 px (k-means then spends colours on the blends, white and grey), 0.25-0.97 at seeds 0-5
(docs/quality.md, session 24).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from culturegan.data.datasets import trim_margins
from culturegan.data.images import ImageLoadError, load_image

log = logging.getLogger("culturegan.data")

PALETTE_IMAGES = 256  # at most this many images are read (a seeded choice of larger folders)
PALETTE_PIXELS = 16384  # pixels clustered in all, shared evenly between the images


def art_palette(files: Sequence[Path], k: int, *, trim: float = 0.0, seed: int = 0) -> torch.Tensor:
    """(k', 3) colours in [-1, 1], the most used first: k-means (k-means++ seeding, ``seed``)
    of RGB pixels of ``files`` at their own size, each trimmed by ``trim`` first.
    k' < k only when the images hold fewer than k distinct colours. Unreadable files are
    skipped with a warning naming them; none readable is a ``ValueError``.
    """
    from culturegan.culture.descriptors.colour import weighted_kmeans  # skimage: load lazily

    if k < 1:
        raise ValueError(f"need at least one colour, got k={k}")
    rng = np.random.default_rng(seed)
    files = list(files)
    if len(files) > PALETTE_IMAGES:
        files = [files[i] for i in sorted(rng.choice(len(files), PALETTE_IMAGES, replace=False))]
    per_image = max(1, PALETTE_PIXELS // max(1, len(files)))
    pixels = []
    for path in files:
        try:
            img = trim_margins(load_image(path), trim)
        except ImageLoadError as exc:
            log.warning("palette: skipping unreadable image: %s", exc)
            continue
        rgb = np.asarray(img).reshape(-1, 3)  # uint8: a large scan is not copied as floats
        chosen = rgb[rng.choice(len(rgb), min(per_image, len(rgb)), replace=False)]
        pixels.append(chosen.astype(np.float64) / 127.5 - 1.0)
    if not pixels:
        raise ValueError(f"no readable image to take a palette from (tried {len(files)})")
    points = np.concatenate(pixels)
    centres, shares = weighted_kmeans(points, np.ones(len(points)), k, seed=seed)
    return torch.from_numpy(centres[np.argsort(-shares, kind="stable")]).float()
