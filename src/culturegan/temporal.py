"""Temporal consistency for video stylization: optical flow, reliability, blending, flicker.

A feed-forward generator stylizes each frame on its own, so small changes between input frames
(noise, compression, a one-pixel shift the network's strides are not invariant to) become
visible flicker in the output. This follows the short-term consistency of Ruder, Dosovitskiy
and Brox, "Artistic style transfer for videos" (GCPR 2016), applied as a blend rather than an
optimisation, as in the "blind" methods (Bonneel et al. 2015, Lai et al. 2018):

1. the optical flow between consecutive *input* frames, both ways (OpenCV's DIS or Farneback);
2. a reliability mask: the forward and backward flows must cancel (the consistency test of
   Sundaram, Brox and Keutzer 2010, as used by Ruder et al.), the warped previous input must
   match the current input, and the source point must lie inside the frame; occluded and
   disoccluded pixels fail one of these;
3. ``output_t = (1 - a) * stylized_t + a * warp(output_{t-1})`` where ``a`` is ``temporal``
   on reliable pixels, less in flat areas, where a change shows most, and near unreliable
   pixels (:func:`blend_weight`), and 0 elsewhere.

Flicker is measured by the standard warping error (Lai et al. 2018): the mean absolute
difference between output frame t and output frame t-1 warped by the input flow, over the
pixels the mask marks reliable (:class:`FlickerMeter`). Needs OpenCV (the ``video`` extra).

Usage::

    flow = OpticalFlow("dis")
    step = flow_step(flow, previous_input, current_input)
    output = temporal_blend(stylized, previous_output, step, 0.4)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from culturegan.data.video import require

FLOW_METHODS = ("dis", "farneback")
DEFAULT_TEMPORAL = 0.4  # meets ">= 30% less flicker at <= 0.02 SSIM loss" (docs/applications.md)
# Reliability tests (images in [0, 1]): forward-backward consistency as in Sundaram et al. 2010,
# |w + w'|^2 <= FB_RELATIVE (|w|^2 + |w'|^2) + FB_ABSOLUTE (pixels^2); warped input error.
FB_RELATIVE, FB_ABSOLUTE = 0.01, 0.5
PHOTOMETRIC_THRESHOLD = 0.08  # mean |input_t - warp(input_{t-1})| over RGB, in [0, 1]
EASE_RADIUS = 2  # the blend weight rises from 0 over this many pixels from unreliable ones
TEXTURE_VARIANCE = 40.0  # grey variance (levels^2) at which the texture factor is 1/2


class OpticalFlow:
    """Dense flow between two grey uint8 frames: ``flow(a, b)[y, x] = (dx, dy)`` such that
    ``a[y, x] ~ b[y + dy, x + dx]``."""

    def __init__(self, method: str = "dis") -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method '{method}' (choose from {FLOW_METHODS})")
        self.cv2 = require("cv2")
        self.method = method
        if method == "dis":
            self._dis = self.cv2.DISOpticalFlow_create(self.cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.method == "dis":
            return self._dis.calc(a, b, None)  # (H, W, 2) float32
        return self.cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8, the luma the flow runs on."""
    return require("cv2").cvtColor(image, require("cv2").COLOR_RGB2GRAY)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y), each (H, W) float32; cached, as every frame has one size."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``p + flow(p)`` (bilinear; edges replicated): the previous frame
    brought onto the current one by the backward flow."""
    cv2 = require("cv2")
    xs, ys = _grid(*flow.shape[:2])
    return cv2.remap(
        image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


@dataclass
class FlowStep:
    """What frame t needs from frame t-1: the backward flow and where it can be trusted."""

    backward: np.ndarray  # (H, W, 2): frame t pixel p comes from p + backward(p) in frame t-1
    reliable: np.ndarray  # (H, W) bool

    def fraction(self) -> float:
        return float(self.reliable.mean())


def flow_step(flow: OpticalFlow, previous: np.ndarray, current: np.ndarray) -> FlowStep:
    """Flow from input frame t (``current``) back to t-1 (``previous``), both (H, W, 3) uint8,
    and the reliability mask (see the module docstring)."""
    g_prev, g_cur = grey(previous), grey(current)
    backward = flow(g_cur, g_prev)  # (H, W, 2)
    forward = flow(g_prev, g_cur)
    forward_there = warp(forward, backward)  # the forward flow at the source point p + w
    both = backward + forward_there
    consistent = (both**2).sum(-1) <= FB_RELATIVE * (
        (backward**2).sum(-1) + (forward_there**2).sum(-1)
    ) + FB_ABSOLUTE
    h, w = backward.shape[:2]
    xs, ys = _grid(h, w)
    sx, sy = xs + backward[..., 0], ys + backward[..., 1]
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    warped = warp(previous, backward).astype(np.float32)
    error = np.abs(current.astype(np.float32) - warped).mean(-1) / 255.0
    return FlowStep(backward, consistent & inside & (error <= PHOTOMETRIC_THRESHOLD))


def blend_weight(step: FlowStep, temporal: float, stylized: np.ndarray) -> np.ndarray:
    """(H, W, 1) float32 weight of the warped previous output.

    ``temporal`` on reliable pixels, times a texture factor ``v / (v + TEXTURE_VARIANCE)``
    (``v`` the local grey variance of the stylized frame over a 7 x 7 window): a change to a
    flat area is seen at once, while texture masks it (and the generator's flicker is mostly
    texture), so flat areas keep more of the current frame. The weight eases to 0 within
    :data:`EASE_RADIUS` of unreliable pixels (no hard seam) and is 0 on them.
    """
    cv2 = require("cv2")
    mask = step.reliable.astype(np.float32)
    k = 2 * EASE_RADIUS + 1
    eased = cv2.blur(mask, (k, k), borderType=cv2.BORDER_REPLICATE) * mask
    g = grey(stylized).astype(np.float32)
    mean = cv2.blur(g, (7, 7), borderType=cv2.BORDER_REFLECT)
    variance = np.maximum(cv2.blur(g * g, (7, 7), borderType=cv2.BORDER_REFLECT) - mean**2, 0)
    texture = variance / (variance + TEXTURE_VARIANCE)
    return (temporal * eased * texture)[..., None]


def temporal_blend(
    stylized: np.ndarray, previous_output: np.ndarray, step: FlowStep, temporal: float
) -> np.ndarray:
    """(H, W, 3) float32 output in [0, 255]: the stylized frame (uint8) blended with the
    previous output (float32) warped onto it."""
    a = blend_weight(step, temporal, stylized)
    current = stylized.astype(np.float32)
    return current + a * (warp(previous_output, step.backward) - current)


class FlickerMeter:
    """Warping error of one or more output sequences against the flow of the input frames.

    ``update(input, {"name": output, ...})`` per frame (uint8 or float arrays in [0, 255]);
    ``result()`` gives, per name, the mean over frame pairs of the mean absolute difference
    (in [0, 1] units) between output t and output t-1 warped by the input flow, over reliable
    pixels. With ``flow=None`` the caller passes each pair's :class:`FlowStep`.
    """

    def __init__(self, flow: str | None = "farneback") -> None:
        self.flow = OpticalFlow(flow) if flow else None
        self._previous: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self._sums: dict[str, float] = {}
        self.pairs = 0
        self.reliable = 0.0  # mean reliable fraction over the pairs

    def update(
        self,
        frame: np.ndarray,
        outputs: Mapping[str, np.ndarray],
        step: FlowStep | None = None,
    ) -> None:
        outputs = {k: np.asarray(v, np.float32) for k, v in outputs.items()}
        if self._previous is not None:
            previous_frame, previous_outputs = self._previous
            if step is None:
                if self.flow is None:
                    raise ValueError("FlickerMeter(flow=None) needs the FlowStep of each pair")
                step = flow_step(self.flow, previous_frame, frame)
            mask = step.reliable
            n = max(int(mask.sum()), 1)
            for name, out in outputs.items():
                diff = np.abs(out - warp(previous_outputs[name], step.backward)).mean(-1)
                self._sums[name] = self._sums.get(name, 0.0) + float(diff[mask].sum()) / n / 255
            self.reliable += step.fraction()
            self.pairs += 1
        self._previous = (frame, outputs)

    def result(self) -> dict[str, float]:
        return {k: v / max(self.pairs, 1) for k, v in self._sums.items()}
