"""A seeded degradation model of old photographs, for training and measuring restoration.

``degrade(image, seed)`` turns a clean photo into an "old" one and returns the parameters it
drew. Every random choice comes from one ``numpy.random.Generator`` seeded with ``seed``, so the
same seed gives the same record and the same pixels; the record (a JSON-ready dict) holds every
parameter, including positions, so ``apply_record(image, record)`` replays it exactly. The
stages run in the order a print ages and is then scanned; each is drawn with its probability:

============  ====  ===========================================================================
stage         p     what it does (parameters drawn)
============  ====  ===========================================================================
low_res       0.5   shrink by ``factor`` in [1.5, 3] (area average), enlarge back (bicubic)
blur          0.6   Gaussian blur, ``sigma`` in [0.5, 1.8] px (lens, enlarger, print softness)
fade          0.8   contrast lowered towards a pale ``fog`` level: ``x c + fog (1 - c)``,
                    ``contrast`` c in [0.45, 0.9], ``fog`` in [0.5, 0.85]
tone          0.7   ``sepia`` (the sepia matrix blended in by ``amount`` in [0.4, 1]) or
                    ``yellow`` (blue, then green, channels lowered by ``amount`` in [0.1, 0.35])
grain         0.8   film grain: Gaussian noise of ``sigma`` in [0.02, 0.08], blurred by ``size``
                    in [0, 1] px, a ``mono`` share in [0.5, 1] the same in R, G and B
crease        0.35  1-2 folds across the picture: a pale cracked line of ``width`` 1.5-4 px and
                    ``strength`` 0.2-0.5, with a dark shadow on one side, slightly bent
scratch       0.6   1-8 thin lines, mostly near vertical (as along a film), ``width`` 1-2 px,
                    70% pale (emulsion scraped off) and 30% dark, opacity 0.6-1
dust          0.6   5-60 specks of radius 0.5-2 px, 70% pale and 30% dark, opacity 0.6-1
jpeg          0.7   JPEG ``quality`` 30-85 (the scan saved as JPEG)
============  ====  ===========================================================================

Positions are fractions of the width and height (a record applies to any size); widths and
radii are in pixels of the image given, so training crops at a photo's native scale see the
grain, blur and lines a full photo of that scale would. Outputs are quantised to 8 bits, like
the files a restoration model is later applied to.

Usage::

    old, record = degrade(photo, seed=7)         # PIL image or (H, W, 3) array in, same out
    assert apply_record(photo, record) == old    # a record replays exactly
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PIL import Image

# Stage name -> probability of being applied, in the order the stages run.
STAGES: dict[str, float] = {
    "low_res": 0.5,
    "blur": 0.6,
    "fade": 0.8,
    "tone": 0.7,
    "grain": 0.8,
    "crease": 0.35,
    "scratch": 0.6,
    "dust": 0.6,
    "jpeg": 0.7,
}
# The sepia matrix (rows R, G, B of the output), as in common photo software.
SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32
)
MAX_SEED = 2**63


def derive_seed(*keys: int) -> int:
    """A seed in [0, 2**63) mixed from non-negative integers (``numpy.random.SeedSequence``):
    ``derive_seed(0, run_seed, step, index)`` seeds the degradation of one training pair."""
    if any(k < 0 for k in keys):
        raise ValueError(f"seed keys must be >= 0, got {keys}")
    state = np.random.SeedSequence(list(keys)).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) % MAX_SEED


# ----------------------------------------------------------------------------- drawing


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 6)


def _line(rng: np.random.Generator, *, vertical_bias: bool) -> dict[str, Any]:
    """A line from one border to the other, in fractions of (width, height)."""
    if vertical_bias and rng.random() < 0.7:  # along the film: top to bottom, slightly tilted
        x0 = float(rng.uniform(0, 1))
        return {"start": [x0, 0.0], "end": [x0 + float(rng.normal(0, 0.08)), 1.0]}
    angle = float(rng.uniform(0, np.pi))
    cx, cy = rng.uniform(0.2, 0.8, size=2)
    dx, dy = np.cos(angle), np.sin(angle)
    return {"start": [cx - 1.5 * dx, cy - 1.5 * dy], "end": [cx + 1.5 * dx, cy + 1.5 * dy]}


def draw_record(seed: int) -> dict[str, Any]:
    """Every parameter of one degradation, drawn from ``numpy.random.default_rng(seed)``."""
    if not 0 <= seed < MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    rng = np.random.default_rng(seed)
    # Decide every stage first, so the draws of one stage never shift another's decision.
    on = {name: bool(rng.random() < p) for name, p in STAGES.items()}
    record: dict[str, Any] = {"seed": int(seed)}
    record["low_res"] = {"factor": _u(rng, 1.5, 3.0)} if on["low_res"] else None
    record["blur"] = {"sigma": _u(rng, 0.5, 1.8)} if on["blur"] else None
    record["fade"] = (
        {"contrast": _u(rng, 0.45, 0.9), "fog": _u(rng, 0.5, 0.85)} if on["fade"] else None
    )
    if on["tone"]:
        sepia = rng.random() < 0.5
        amount = _u(rng, 0.4, 1.0) if sepia else _u(rng, 0.1, 0.35)
        record["tone"] = {"kind": "sepia" if sepia else "yellow", "amount": amount}
    else:
        record["tone"] = None
    record["grain"] = (
        {
            "sigma": _u(rng, 0.02, 0.08),
            "size": _u(rng, 0.0, 1.0),
            "mono": _u(rng, 0.5, 1.0),
            "noise_seed": int(rng.integers(0, 2**62)),
        }
        if on["grain"]
        else None
    )
    record["crease"] = (
        [
            {
                **_line(rng, vertical_bias=False),
                "bend": _u(rng, -0.05, 0.05),
                "width": _u(rng, 1.5, 4.0),
                "strength": _u(rng, 0.2, 0.5),
            }
            for _ in range(int(rng.integers(1, 3)))
        ]
        if on["crease"]
        else None
    )
    record["scratch"] = (
        [
            {
                **_line(rng, vertical_bias=True),
                "length": _u(rng, 0.2, 1.0),  # share of the border-to-border line drawn
                "offset": _u(rng, 0.0, 1.0),  # where along it the drawn part starts
                "width": int(rng.integers(1, 3)),
                "pale": bool(rng.random() < 0.7),
                "opacity": _u(rng, 0.6, 1.0),
            }
            for _ in range(int(rng.integers(1, 9)))
        ]
        if on["scratch"]
        else None
    )
    record["dust"] = (
        [
            {
                "at": [_u(rng, 0, 1), _u(rng, 0, 1)],
                "radius": _u(rng, 0.5, 2.0),
                "pale": bool(rng.random() < 0.7),
                "opacity": _u(rng, 0.6, 1.0),
            }
            for _ in range(int(rng.integers(5, 61)))
        ]
        if on["dust"]
        else None
    )
    record["jpeg"] = {"quality": int(rng.integers(30, 86))} if on["jpeg"] else None
    return record


# ----------------------------------------------------------------------------- stages
# Each stage maps an (H, W, 3) float32 array in [0, 1] to a new one.


def low_res(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    h, w = x.shape[:2]
    small = (max(1, round(w / p["factor"])), max(1, round(h / p["factor"])))
    down = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
    return np.clip(cv2.resize(down, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def blur(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), p["sigma"], borderType=cv2.BORDER_REFLECT_101)


def fade(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return x * p["contrast"] + p["fog"] * (1 - p["contrast"])


def tone(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    a = p["amount"]
    if p["kind"] == "sepia":
        return np.clip((1 - a) * x + a * (x @ SEPIA.T), 0, 1)
    # Yellowing paper and dyes: blue fades most, green a third as much.
    return x * np.array([1.0, 1.0 - a / 3, 1.0 - a], dtype=np.float32)


def grain(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    rng = np.random.default_rng(p["noise_seed"])
    h, w = x.shape[:2]
    mono = rng.standard_normal((h, w, 1), dtype=np.float32)
    colour = rng.standard_normal((h, w, 3), dtype=np.float32)
    noise = np.sqrt(p["mono"]) * mono + np.sqrt(1 - p["mono"]) * colour  # unit variance
    if p["size"] > 0.05:  # clumped silver grains; rescaled back to unit variance
        noise = cv2.GaussianBlur(noise, (0, 0), p["size"], borderType=cv2.BORDER_REFLECT_101)
        noise /= max(float(noise.std()), 1e-6)
    return x + p["sigma"] * noise


def _to_pixels(point: list[float], w: int, h: int) -> np.ndarray:
    return np.array([point[0] * (w - 1), point[1] * (h - 1)], dtype=np.float64)


def crease(x: np.ndarray, creases: list[dict[str, Any]]) -> np.ndarray:
    h, w = x.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for c in creases:
        a, b = _to_pixels(c["start"], w, h), _to_pixels(c["end"], w, h)
        d = b - a
        length = float(np.hypot(*d)) or 1.0
        tangent, normal = d / length, np.array([-d[1], d[0]]) / length
        t = ((xs - a[0]) * tangent[0] + (ys - a[1]) * tangent[1]) / length  # 0..1 along
        bent = c["bend"] * max(w, h) * np.sin(np.pi * np.clip(t, 0, 1))
        dist = (xs - a[0]) * normal[0] + (ys - a[1]) * normal[1] - bent  # signed, px
        width, s = c["width"], c["strength"]
        core = np.exp(-0.5 * (dist / width) ** 2)[..., None]  # cracked emulsion: pale
        shadow = np.exp(-0.5 * ((dist - 1.5 * width) / width) ** 2)[..., None]  # one side
        x = x + (1.0 - x) * s * core
        x = x * (1.0 - 0.6 * s * shadow)
    return x


def _overlay(x: np.ndarray, draw: Callable[[np.ndarray], None], pale: bool, opacity: float):
    """Blend towards white (``pale``) or black where ``draw`` paints an antialiased mask."""
    mask = np.zeros(x.shape[:2], np.uint8)
    draw(mask)
    m = (mask.astype(np.float32) / 255.0 * opacity)[..., None]
    return x * (1 - m) + (0.97 if pale else 0.05) * m


SHIFT = 4  # cv2 fixed-point bits: sub-pixel positions for lines and circles


def scratch(x: np.ndarray, scratches: list[dict[str, Any]]) -> np.ndarray:
    h, w = x.shape[:2]
    for s in scratches:
        a, b = _to_pixels(s["start"], w, h), _to_pixels(s["end"], w, h)
        p0 = a + (b - a) * s["offset"] * (1 - s["length"])
        p1 = p0 + (b - a) * s["length"]
        pts = [tuple(int(round(v * 2**SHIFT)) for v in p) for p in (p0, p1)]
        x = _overlay(
            x,
            lambda m, pts=pts, s=s: cv2.line(m, *pts, 255, s["width"], cv2.LINE_AA, SHIFT),
            s["pale"],
            s["opacity"],
        )
    return x


def dust(x: np.ndarray, specks: list[dict[str, Any]]) -> np.ndarray:
    h, w = x.shape[:2]
    for pale in (True, False):  # one mask per colour: specks of a colour never stack
        group = [s for s in specks if s["pale"] == pale]
        if not group:
            continue
        mask = np.zeros((h, w), np.float32)
        for s in group:
            one = np.zeros((h, w), np.uint8)
            centre = tuple(int(round(v * 2**SHIFT)) for v in _to_pixels(s["at"], w, h))
            radius = int(round(s["radius"] * 2**SHIFT))
            cv2.circle(one, centre, radius, 255, -1, cv2.LINE_AA, SHIFT)
            mask = np.maximum(mask, one.astype(np.float32) / 255.0 * s["opacity"])
        m = mask[..., None]
        x = x * (1 - m) + (0.97 if pale else 0.05) * m
    return x


def jpeg(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(_quantise(x)).save(buffer, format="JPEG", quality=p["quality"])
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0


STAGE_FUNCTIONS: dict[str, Callable[[np.ndarray, Any], np.ndarray]] = {
    "low_res": low_res,
    "blur": blur,
    "fade": fade,
    "tone": tone,
    "grain": grain,
    "crease": crease,
    "scratch": scratch,
    "dust": dust,
    "jpeg": jpeg,
}


# ----------------------------------------------------------------------------- applying


def _quantise(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _as_float(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"degrade takes an RGB image (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
            raise ValueError("a float image for degrade must hold finite values in [0, 1]")
        return arr.astype(np.float32)
    raise ValueError(f"degrade takes uint8 or float images, got {arr.dtype}")


def apply_record(
    image: Image.Image | np.ndarray, record: dict[str, Any]
) -> Image.Image | np.ndarray:
    """Apply the stages a record describes; the output is of the input's kind (PIL image,
    uint8 array, or float array in [0, 1] holding multiples of 1/255)."""
    x = _as_float(image)
    unknown = set(record) - set(STAGES) - {"seed"}
    if unknown:
        raise ValueError(f"unknown degradation stages in record: {', '.join(sorted(unknown))}")
    for name, fn in STAGE_FUNCTIONS.items():
        params = record.get(name)
        if params:
            x = np.clip(fn(x, params), 0.0, 1.0).astype(np.float32)
    out = _quantise(x)
    if isinstance(image, Image.Image):
        return Image.fromarray(out)
    if np.asarray(image).dtype == np.uint8:
        return out
    return out.astype(np.float32) / 255.0


def degrade(
    image: Image.Image | np.ndarray, seed: int
) -> tuple[Image.Image | np.ndarray, dict[str, Any]]:
    """An old-photo version of ``image`` and the record of what was drawn from ``seed``."""
    record = draw_record(seed)
    return apply_record(image, record), record
