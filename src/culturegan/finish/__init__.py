"""Finishes: a non-learned last stage that redraws a model's output in a medium's own terms.

A model trained for minutes on a CPU paints a culture's palette and texture, but not its
technique: its output has the art's colours in soft, hatched areas, with a diagonal quilting
or lattice over every flat area (docs/quality.md, sessions 12, 26 and 27). A finish keeps what
the model chose (its colours, where it put them) and draws it the way the medium is made:

- ``print`` (:mod:`.woodblock`): flat inks over superpixels of the photo and the output
  together, some of the model's grain, keyblock lines along the photo's contours (XDoG).
  For ukiyo-e.
- ``ink`` (:mod:`.ink`): the model's lightest colour as the paper and its darkest as the ink;
  washes over the same superpixels, stepped at the picture's own tones; the model's dark marks
  only where the photo is busy; brush lines along the photo's contours. For Chinese ink.
- ``paint`` (:mod:`.paint`): the output's colours laid as brush strokes along the photo's
  contours, each stroke one colour and stopping at the photo's edges. For painting.

Sizes are given for a picture whose shorter side is 256 px and scale with the picture, so a
large photo gets as many areas and strokes per square inch and lines as wide relative to it.

Each finish's settings were chosen on training photos and judged on 64 held-out photos by the
independent Lite1 judge (hit rate, grey SSIM to the photo, kd_lite0 to held-out art):

- ``print``, session 7's ``ukiyoe`` model: 0.75 -> 1.00, 0.377 -> 0.396, 0.244 -> 0.219. A
  plain blur lifts the hit rate as much (0.98: the judge holds the models' fine relief texture
  against them) but not SSIM or kd_lite0 (docs/quality.md, session 26). With thinner lines
  (session 28), the shipped ``ukiyoe``: 1.00 -> 0.98, 0.366 -> 0.387, 0.282 -> 0.213. With
  the coloured inks' chroma doubled and the photo's flat areas merged (session 38), session
  35's ``ukiyoe``: 0.98 -> 0.97, 0.445 -> 0.441, 0.317 -> 0.213, its most saturated tenth's
  chroma 0.121 -> 0.140 (the prints': 0.192); the finish before them: 1.00, 0.427, 0.226,
  0.106. With areas alike in the photo voting on one ink (``cohere``, session 40): 0.92,
  0.450, 0.205 (a second judge on Lite2: 0.98 with the vote and without).
- ``ink``, the shipped ``chinese_ink``: 0.94 -> 0.95, 0.400 -> 0.450, 0.247 -> 0.259; a blur
  as wide as its washes loses hit rate instead (down to 0.58; session 27). With 30% of the
  areas bare paper instead of half (session 38), session 29's ``chinese_ink``: 0.89 -> 0.94,
  0.455 -> 0.467, 0.205 -> 0.252 (half paper: 0.97, 0.457, 0.263).
- ``paint``, the shipped ``postimpressionism_cezanne``: 0.42 -> 0.69 (the judge's own hit rate
  on held-out Cezanne paintings is 0.68), 0.422 -> 0.403, 0.199 -> 0.168; a blur as wide as its
  broad strokes' colour: 0.33. On the shipped Monet it costs the judge's hit rate: 0.97 ->
  0.56 (session 28).

Usage::

    stylizer(["photo.jpg"], target="ukiyoe", finish="print")   # or `--finish print`
    stylizer(["photo.jpg"], finish="print:merge=6,chroma=1.5")  # settings by name
    print_finish(photo, stylized).save("print.png")
    ink_finish(photo, stylized, InkFinish(washes=2)).save("ink.png")
    paint_finish(photo, stylized, PaintFinish(length=24)).save("painted.png")
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from culturegan.finish.common import REFERENCE_SIDE
from culturegan.finish.ink import InkFinish, ink_finish
from culturegan.finish.paint import PaintFinish, paint_finish
from culturegan.finish.woodblock import (
    PrintFinish,
    flat_areas,
    print_finish,
    print_finish_and_inks,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "FINISHES",
    "FinishFrames",
    "MAX_FINISH_PIXELS",
    "REFERENCE_SIDE",
    "InkFinish",
    "PaintFinish",
    "PrintFinish",
    "apply_finish",
    "check_finish",
    "check_finish_size",
    "finish_name",
    "parse_finish",
    "flat_areas",
    "ink_finish",
    "paint_finish",
    "print_finish",
]

# A finish works on the whole picture (areas, strokes and lines do not tile): about 215 MB and
# 1-6 s per megapixel (each of the three took about 900 MB over its inputs at 4.2 megapixels),
# so a 24-megapixel photo needs some 5 GB.
MAX_FINISH_PIXELS = 24_000_000


FINISHES = {"print": PrintFinish, "ink": InkFinish, "paint": PaintFinish}
FinishSettings = PrintFinish | InkFinish | PaintFinish


def parse_finish(spec: str) -> tuple[str, FinishSettings]:
    """A finish's name and settings from ``name`` or ``name:key=value,key=value`` (e.g.
    ``print:merge=6,chroma=1.5``; the print's ``ink`` colour as ``ink=28/26/30``): the
    settings not named keep their defaults. Unknown names, unknown, repeated or mistyped
    settings, numbers that are not finite and values out of range are refused with the finish
    and the setting named ("print finish: ...", as the settings' own checks say it)."""
    name, _, listed = spec.partition(":")
    name = name.strip()
    if name not in FINISHES:
        raise ValueError(f"unknown finish '{name}'; choose from {', '.join(sorted(FINISHES))}")
    kind = FINISHES[name]
    if ";" in listed:
        raise ValueError(
            f"{name} finish: separate settings with ',' not ';', as {name}:KEY=VALUE,KEY=VALUE"
        )
    fields = {f.name: f for f in dataclasses.fields(kind)}
    values: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in listed.split(","))):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not key:
            raise ValueError(f"{name} finish: no setting name before '=' in '{item}'")
        if key not in fields:
            raise ValueError(
                f"{name} finish has no setting '{key}'; choose from {', '.join(fields)}"
            )
        if key in values:
            raise ValueError(f"{name} finish: {key} is given twice")
        if not sep or not text:
            raise ValueError(f"{name} finish: give '{key}' a value, as {key}=VALUE")
        values[key] = _setting_value(name, key, text, fields[key].default)
    return name, kind(**values)


def _setting_value(name: str, key: str, text: str, default: object) -> object:
    """``text`` read as the type of the setting's ``default`` (a tuple as ``a/b/c``)."""
    kinds = [type(v) for v in default] if isinstance(default, tuple) else [type(default)]
    parts = text.split("/") if isinstance(default, tuple) else [text]
    try:
        if len(parts) != len(kinds):
            raise ValueError
        read = [kind(part) for kind, part in zip(kinds, parts, strict=True)]
    except ValueError:
        what = "/".join(kind.__name__ for kind in kinds)
        raise ValueError(f"{name} finish: {key}={text} is not {what}") from None
    # nan and inf are refused by the ranges too; here they are named as what they are
    if not all(math.isfinite(v) for v in read):
        raise ValueError(f"{name} finish: {key}={text} is not a finite number")
    return tuple(read) if isinstance(default, tuple) else read[0]


def finish_name(spec: str | None) -> str | None:
    """The finish's name in a spec (``print:merge=6`` -> ``print``)."""
    return None if spec is None else spec.partition(":")[0].strip()


def check_finish(spec: str | None) -> None:
    """Refuse an unknown finish or a bad setting of one before any work (None = no finish)."""
    if spec is not None:
        parse_finish(spec)


def check_finish_size(spec: str, size: tuple[int, int], source: str = "") -> None:
    """Refuse a picture too large for the finish, naming it, before the model runs."""
    name = finish_name(spec)
    width, height = size
    if width * height > MAX_FINISH_PIXELS:
        what = f"'{source}'" if source else "an image"
        raise ValueError(
            f"{what} is {width} x {height} px: the '{name}' finish works on whole pictures of "
            f"at most {MAX_FINISH_PIXELS // 1_000_000} megapixels (memory); downscale it or "
            "drop the finish"
        )


def apply_finish(spec: str, photo: Image.Image, stylized: Image.Image) -> Image.Image:
    """The finish ``spec`` names (``print``, or with settings ``print:merge=6``; see
    :func:`parse_finish` and :data:`FINISHES`) drawn from ``photo`` and its ``stylized``."""
    return parse_finish(spec)[1].draw(photo, stylized)


class FinishFrames:
    """A finish drawn over the frames of a video, one frame after another: the ``print``
    finish keeps the first frame's inks for the frames after it (refitted at a new scene;
    :func:`culturegan.finish.woodblock.flat_areas_and_inks`), so a field is not printed in a
    new ink each frame. The other finishes have no state across frames: each is drawn alone."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.settings = parse_finish(spec)[1]
        self.inks = None  # the print's inks, CIELAB, once a frame is drawn

    def __call__(self, photo: Image.Image, stylized: Image.Image) -> Image.Image:
        if isinstance(self.settings, PrintFinish):
            image, self.inks = print_finish_and_inks(photo, stylized, self.settings, self.inks)
            return image
        return self.settings.draw(photo, stylized)
