"""The descriptor registry and the working-resolution view every descriptor reads.

A descriptor is a pure function of one image: ``fn(view) -> float``, where ``view`` is an
:class:`ImageView` of the image at the *working resolution*. Descriptors are registered with
:func:`register_descriptor`, which records the family (colour, blank space, line, texture,
complexity, composition, tone), the units and the docstring (definition) for the report.

Working resolution: before any descriptor runs, the image is resized with a Lanczos filter so
that its shorter side is ``size`` pixels (256 by default; images smaller than that are
enlarged), keeping the aspect ratio; a very elongated image (a hand scroll) is capped so that
its longer side is at most ``MAX_ASPECT * size``. All lengths a descriptor uses (blur widths,
window sizes) are fixed in pixels of this working image, so that the same picture scanned at
two resolutions gives the same numbers.

Usage::

    view = ImageView.from_image(load_image("a.jpg"), size=256)
    values = compute_descriptors(load_image("a.jpg"))      # {name: float}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from culturegan.data.images import to_rgb

DEFAULT_SIZE = 256  # shorter side of the working image, pixels
MAX_ASPECT = 4  # the longer side is capped at MAX_ASPECT * size
DESCRIPTOR_VERSION = 1  # bump when any definition changes: it keys the on-disk cache

FAMILIES = (
    "colour",
    "blank space",
    "line and edge",
    "texture",
    "complexity",
    "composition",
    "tone",
)


@dataclass(frozen=True)
class Descriptor:
    """One registered descriptor: its function and what the report says about it."""

    name: str
    family: str
    units: str  # e.g. "share of pixels, 0-1"
    fn: Callable[[ImageView], float]

    @property
    def doc(self) -> str:
        """The definition: the function's docstring, whitespace normalised."""
        return " ".join(inspect.getdoc(self.fn).split()) if self.fn.__doc__ else ""


DESCRIPTORS: dict[str, Descriptor] = {}


def register_descriptor(
    *, family: str, units: str, name: str | None = None
) -> Callable[[Callable[[ImageView], float]], Callable[[ImageView], float]]:
    """Decorator: register ``fn(view) -> float`` under ``name`` (default: the function name)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown descriptor family '{family}' (known: {', '.join(FAMILIES)})")

    def wrap(fn: Callable[[ImageView], float]) -> Callable[[ImageView], float]:
        key = name or fn.__name__
        if key in DESCRIPTORS:
            raise ValueError(f"descriptor '{key}' is registered twice")
        if not fn.__doc__:
            raise ValueError(f"descriptor '{key}' needs a docstring with its definition")
        DESCRIPTORS[key] = Descriptor(name=key, family=family, units=units, fn=fn)
        return fn

    return wrap


def list_descriptors(family: str | None = None) -> list[str]:
    """Registered descriptor names in registration order (optionally of one family)."""
    return [n for n, d in DESCRIPTORS.items() if family is None or d.family == family]


def get_descriptor(name: str) -> Descriptor:
    if name not in DESCRIPTORS:
        raise KeyError(f"unknown descriptor '{name}' (known: {', '.join(DESCRIPTORS)})")
    return DESCRIPTORS[name]


def working_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after scaling the shorter side to ``size`` (longer side capped)."""
    if size < 16:
        raise ValueError(f"the working size must be at least 16 pixels, got {size}")
    short, long = min(width, height), max(width, height)
    scale = size / short
    if long * scale > MAX_ASPECT * size:
        scale = MAX_ASPECT * size / long
    return max(1, round(width * scale)), max(1, round(height * scale))


class ImageView:
    """An RGB image at the working resolution, with derived arrays computed once.

    ``rgb`` is float64 (H, W, 3) in [0, 1]; ``grey`` is Rec. 601 luma in [0, 1]; ``hsv``
    is (H, W, 3) hue, saturation, value in [0, 1]. :meth:`memo` shares intermediate results
    between descriptors (e.g. the Canny edge map) without changing their purity.
    """

    def __init__(self, rgb: np.ndarray) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) array, got shape {rgb.shape}")
        self.rgb = np.asarray(rgb, dtype=np.float64)
        self._memo: dict[str, Any] = {}

    @classmethod
    def from_image(cls, image: Image.Image | np.ndarray, *, size: int = DEFAULT_SIZE) -> ImageView:
        """Resize a PIL image (any mode) or uint8 (H, W, 3) array to the working resolution."""
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8:
                raise ValueError(f"array images must be uint8 (H, W, 3), got {image.dtype}")
            image = Image.fromarray(image)
        image = to_rgb(image)
        target = working_size(image.width, image.height, size)
        if target != image.size:
            image = image.resize(target, Image.Resampling.LANCZOS)
        return cls(np.asarray(image, dtype=np.float64) / 255.0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def short_side(self) -> int:
        return min(self.shape)

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def grey(self) -> np.ndarray:
        return self.memo("grey", lambda: self.rgb @ np.array([0.299, 0.587, 0.114]))

    @property
    def hsv(self) -> np.ndarray:
        return self.memo("hsv", lambda: rgb_to_hsv(self.rgb))


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> HSV in [0, 1] (hue 0 = red; grey pixels get hue 0)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    c = v - rgb.min(-1)  # chroma
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0.0)
    safe = np.where(c > 0, c, 1)
    h = np.select(
        [c == 0, v == r, v == g],
        [0.0, ((g - b) / safe) % 6, (b - r) / safe + 2],
        default=(r - g) / safe + 4,
    )
    return np.stack([h / 6.0, s, v], -1)


def shannon_entropy(counts: np.ndarray) -> float:
    """Entropy in nats of a histogram (zero bins ignored; an empty histogram gives 0)."""
    total = float(np.sum(counts))
    if total <= 0:
        return 0.0
    p = np.asarray(counts, dtype=np.float64).ravel() / total
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def compute_descriptors(
    image: Image.Image | np.ndarray | ImageView,
    *,
    size: int = DEFAULT_SIZE,  # shorter side of the working image (ignored for an ImageView)
    names: Sequence[str] | None = None,  # default: every registered descriptor
) -> dict[str, float]:
    """Every (or the named) descriptor of one image, as {name: float}, in registry order."""
    view = image if isinstance(image, ImageView) else ImageView.from_image(image, size=size)
    out = {}
    for key in names if names is not None else list(DESCRIPTORS):
        value = float(get_descriptor(key).fn(view))
        if not math.isfinite(value):
            raise ValueError(f"descriptor '{key}' gave {value}; definitions must stay finite")
        out[key] = value
    return out
