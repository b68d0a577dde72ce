"""Training and evaluation datasets over image files, with reproducible augmentation.

Unpaired training draws a batch of domain-A images in a per-epoch shuffled order and, for each,
a random domain-B image (as CycleGAN does). All of that randomness is a pure function of
``(seed, step)``: the :class:`UnpairedBatchSampler` yields ``(index_a, index_b, item_seed)``
triples and the dataset seeds each image's crop and flip from ``item_seed``. A run resumed at
step N therefore sees exactly the batches that an uninterrupted run sees, whatever the number of
worker processes.

Usage::

    ds = UnpairedDataset(files_a, files_b, load_size=72, crop_size=64)
    sampler = UnpairedBatchSampler(len(files_a), len(files_b), batch_size=4, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from culturegan.config import for_domains, named_weight
from culturegan.data.images import ImageLoadError, load_image, pil_to_tensor

log = logging.getLogger("culturegan.data")

# How many following files to try when one fails to load before giving up.
MAX_SUBSTITUTES = 16


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size`` pixels, keeping the aspect ratio (bicubic)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.BICUBIC)


def trim_margins(img: Image.Image, share: float) -> Image.Image:
    """``img`` without ``share`` of its width at the left and right and of its height at the
    top and bottom (a scan's margins); at least one pixel is kept each way."""
    if share <= 0:
        return img
    w, h = img.size
    dx, dy = min(round(w * share), (w - 1) // 2), min(round(h * share), (h - 1) // 2)
    return img.crop((dx, dy, w - dx, h - dy))


def train_transform(
    img: Image.Image,
    rng: np.random.Generator,
    *,
    load_size: int,
    crop_size: int,
    flip: bool,
    trim: float = 0.0,
) -> torch.Tensor:
    """Cut ``trim`` off each side, resize the shorter side to ``load_size``, random-crop
    ``crop_size``, maybe flip."""
    img = resize_shorter(trim_margins(img, trim), max(load_size, crop_size))
    w, h = img.size
    left = int(rng.integers(0, w - crop_size + 1))
    top = int(rng.integers(0, h - crop_size + 1))
    img = img.crop((left, top, left + crop_size, top + crop_size))
    if flip and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return pil_to_tensor(img)


def eval_transform(img: Image.Image, *, crop_size: int) -> torch.Tensor:
    """Resize the shorter side to ``crop_size`` and take the centre square."""
    img = resize_shorter(img, crop_size)
    w, h = img.size
    left, top = (w - crop_size) // 2, (h - crop_size) // 2
    return pil_to_tensor(img.crop((left, top, left + crop_size, top + crop_size)))


def load_with_substitutes(files: Sequence[Path], index: int) -> tuple[Image.Image, Path]:
    """Load ``files[index]``; if it fails, warn naming the file and try the next ones."""
    for offset in range(min(MAX_SUBSTITUTES, len(files))):
        path = files[(index + offset) % len(files)]
        try:
            return load_image(path), path
        except ImageLoadError as exc:
            log.warning("skipping unreadable training image: %s", exc)
    raise ImageLoadError(files[index], f"it and the {MAX_SUBSTITUTES - 1} next files failed")


class UnpairedDataset(Dataset):
    """Items are ``(index_a, index_b, item_seed)``; returns ``{"a", "b", "path_a", "path_b"}``."""

    def __init__(
        self,
        files_a: Sequence[Path],
        files_b: Sequence[Path],
        *,
        load_size: int,
        crop_size: int,
        flip: bool = True,
        trim: float = 0.0,  # share of each side cut off first (train_transform)
    ) -> None:
        if not files_a or not files_b:
            raise ValueError("both domains need at least one training image")
        self.files_a, self.files_b = list(files_a), list(files_b)
        self.transform = {
            "load_size": load_size,
            "crop_size": crop_size,
            "flip": flip,
            "trim": trim,
        }

    def __len__(self) -> int:
        return len(self.files_a)

    def _one(self, files: Sequence[Path], index: int, seed: int) -> tuple[torch.Tensor, str]:
        img, path = load_with_substitutes(files, index)
        rng = np.random.default_rng(seed)
        tensor = train_transform(img, rng, **self.transform)
        return tensor, str(path)

    def __getitem__(self, item: tuple[int, int, int]) -> dict:
        index_a, index_b, seed = item
        a, path_a = self._one(self.files_a, index_a, seed)
        b, path_b = self._one(self.files_b, index_b, seed + 1)
        return {"a": a, "b": b, "path_a": path_a, "path_b": path_b}


class UnpairedBatchSampler(Sampler):
    """Endless batches of ``(index_a, index_b, item_seed)``, a pure function of seed and step.

    ``rank`` / ``world_size`` split every global batch of ``batch_size * world_size`` items
    between data-parallel processes, so N processes together see what one process with the
    global batch would see.
    """

    def __init__(
        self,
        n_a: int,
        n_b: int,
        *,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n_a < 1 or n_b < 1:
            raise ValueError("both domains need at least one image")
        self.n_a, self.n_b = n_a, n_b
        self.batch_size, self.seed, self.start_step = batch_size, seed, start_step
        self.rank, self.world_size = rank, world_size

    def global_batch(self, step: int) -> list[tuple[int, int, int]]:
        size = self.batch_size * self.world_size
        per_epoch = max(1, self.n_a // size)
        epoch, pos = divmod(step, per_epoch)
        order = torch.randperm(
            self.n_a, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch)
        )
        picks_a = [int(order[(pos * size + j) % self.n_a]) for j in range(size)]
        rng_b = torch.Generator().manual_seed(self.seed * 104729 + step)
        picks_b = torch.randint(self.n_b, (size,), generator=rng_b).tolist()
        base = (self.seed * 1_000_003 + step * size) * 2
        return [(picks_a[j], picks_b[j], base + 2 * j) for j in range(size)]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        step = self.start_step
        while True:
            batch = self.global_batch(step)
            yield batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            step += 1

    def __len__(self) -> int:  # endless; DataLoader only needs this for its own bookkeeping
        return 2**62


def load_eval_batch(files: Sequence[Path], count: int, *, crop_size: int) -> torch.Tensor:
    """The first ``count`` loadable files as a (count, 3, S, S) batch (fixed sample images)."""
    tensors = []
    for path in files:
        if len(tensors) == count:
            break
        try:
            tensors.append(eval_transform(load_image(path), crop_size=crop_size))
        except ImageLoadError as exc:
            log.warning("skipping unreadable sample image: %s", exc)
    if not tensors:
        raise ValueError("no readable image for the sample grid")
    return torch.stack(tensors)


class MultiDomainDataset(Dataset):
    """Items ``(src, i, trg, j, k, seed)`` -> an image of domain ``src`` and two references.

    Returns ``{"x": (3,S,S), "y": src, "x_ref": ..., "x_ref2": ..., "y_trg": trg}`` where the
    references are images ``j`` and ``k`` of the target domain ``trg``.
    """

    def __init__(
        self,
        files: Sequence[Sequence[Path]],  # training files of each domain, in domain order
        *,
        load_size: int,
        crop_size: int,
        flip: bool = True,
        trim: float = 0.0,  # share of each side cut off first (train_transform)
    ) -> None:
        if any(len(f) == 0 for f in files):
            raise ValueError("every domain needs at least one training image")
        self.files = [list(f) for f in files]
        self.transform = {
            "load_size": load_size,
            "crop_size": crop_size,
            "flip": flip,
            "trim": trim,
        }

    def __len__(self) -> int:
        return sum(len(f) for f in self.files)

    def _one(self, domain: int, index: int, seed: int) -> torch.Tensor:
        img, _ = load_with_substitutes(self.files[domain], index)
        rng = np.random.default_rng(seed)
        return train_transform(img, rng, **self.transform)

    def __getitem__(self, item: tuple[int, int, int, int, int, int]) -> dict:
        src, i, trg, j, k, seed = item
        return {
            "x": self._one(src, i, seed),
            "y": src,
            "x_ref": self._one(trg, j, seed + 1),
            "x_ref2": self._one(trg, k, seed + 2),
            "y_trg": trg,
        }


def parse_target_weights(items: Sequence[str]) -> dict[str, float]:
    """``["ukiyoe=2", "ink=0.5"]`` -> ``{"ukiyoe": 2.0, "ink": 0.5}``; errors name the item."""
    return dict(
        named_weight(item, option="data.target_weights", item=item, form="NAME=WEIGHT")
        for item in items
    )


def target_weight_list(items: Sequence[str], domains: Sequence[str]) -> list[float]:
    """Per-domain target weights (1 for a domain not named); an unknown name is refused, one
    ending in ``?`` left out."""
    weights = for_domains(parse_target_weights(items), domains, option="data.target_weights")
    return [weights.get(name, 1.0) for name in domains] if weights else []


class MultiDomainBatchSampler(Sampler):
    """Endless class-balanced batches, a pure function of (seed, step).

    Each item draws its source domain uniformly (so a domain with 40 images is seen as often as
    one with 4,000; only among ``sources`` when given), a random image of it, a target domain
    uniformly among the *other* domains (or in proportion to ``target_weights``, one per
    domain), and two random reference images of the target.
    ``rank`` / ``world_size`` split global batches between data-parallel processes as in
    :class:`UnpairedBatchSampler`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        sources: Sequence[int] = (),  # domain indices translated from (empty: all)
        target_weights: Sequence[float] = (),  # per domain (empty: uniform)
    ) -> None:
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError("multi-domain training needs at least two non-empty domains")
        self.sizes = list(sizes)
        self.sources = sorted(set(sources))
        if any(not 0 <= i < len(sizes) for i in self.sources):
            raise ValueError(f"source domain indices {list(sources)} out of range")
        # Row src: the weights of the targets an item from domain src may take (not itself).
        self.target_rows = None
        if target_weights:
            if len(target_weights) != len(sizes) or min(target_weights) < 0:
                raise ValueError(f"target_weights {list(target_weights)}: one weight >= 0 per "
                                 f"domain ({len(sizes)})")  # fmt: skip
            weights = torch.tensor([float(w) for w in target_weights])
            self.target_rows = weights.repeat(len(sizes), 1).fill_diagonal_(0)
            for src in self.sources or range(len(sizes)):
                if self.target_rows[src].sum() <= 0:
                    raise ValueError(f"target_weights {list(target_weights)} leave domain "
                                     f"{src} no target to translate into")  # fmt: skip
        self.batch_size, self.seed, self.start_step = batch_size, seed, start_step
        self.rank, self.world_size = rank, world_size

    def global_batch(self, step: int) -> list[tuple[int, int, int, int, int, int]]:
        size = self.batch_size * self.world_size
        g = torch.Generator().manual_seed(self.seed * 1_000_033 + step)
        k = len(self.sizes)
        items = []
        for j in range(size):
            if self.sources:
                src = self.sources[int(torch.randint(len(self.sources), (), generator=g))]
            else:
                src = int(torch.randint(k, (), generator=g))
            if self.target_rows is None:
                trg = (src + 1 + int(torch.randint(k - 1, (), generator=g))) % k
            else:
                trg = int(torch.multinomial(self.target_rows[src], 1, generator=g))
            i = int(torch.randint(self.sizes[src], (), generator=g))
            r1, r2 = torch.randint(self.sizes[trg], (2,), generator=g).tolist()
            item_seed = (self.seed * 1_000_003 + step * size + j) * 3
            items.append((src, i, trg, r1, r2, item_seed))
        return items

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int, int, int]]]:
        step = self.start_step
        while True:
            batch = self.global_batch(step)
            yield batch[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            step += 1

    def __len__(self) -> int:
        return 2**62
