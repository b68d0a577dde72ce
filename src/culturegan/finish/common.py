"""What the finishes share: picture arrays at a reference scale, XDoG contour lines, and
SLIC superpixels of the photo and the model's output together (merged where the photo is
alike: the print finish's ``merge``) with their area means."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np
    from PIL import Image

REFERENCE_SIDE = 256  # the finishes' sizes are for a picture whose shorter side is this long
MAX_SIGMA = 32.0  # px at a 256 px side: the widest blur a finish setting may ask for
MAX_AREAS = 4096  # superpixels per 256 x 256 pixels: one per 4 x 4 px
MAX_SEED = 2**31  # seeds are in [0, MAX_SEED)
MAX_MIN_LINE = 65536  # px at a 256 px side: a ``min_line`` this long drops every stroke


def check_ranges(
    finish: str,
    ranges: dict[str, tuple[float, float, float, str]],
    problems: Iterable[str] = (),
) -> None:
    """Refuse settings outside their ranges, all named at once: ``ranges`` maps a setting's
    name to (value, low, high, brackets), the brackets "[]", "(]", "[)" or "()" saying which
    ends are in the range; ``problems`` are other settings' faults, named with them.
    Not-a-number is outside every range."""
    outside = []
    for key, (value, low, high, brackets) in ranges.items():
        above = low < value if brackets[0] == "(" else low <= value
        below = value < high if brackets[1] == ")" else value <= high
        if not (above and below):
            low_text, high_text = (f"{v}" if isinstance(v, int) else f"{v:g}" for v in (low, high))
            outside.append(
                f"{key} must be in {brackets[0]}{low_text}, {high_text}{brackets[1]}, got {value}"
            )
    outside.extend(problems)
    if outside:
        raise ValueError(f"{finish} finish: {'; '.join(outside)}")


def xdog_lines(grey: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) grey in [0, 1] -> line darkness in [0, 1] (1 = full line), by XDoG.

    A sharpened difference of Gaussians (scales sigma and 1.6 sigma, sharpening 20) that is
    paper (0) above a small threshold and falls smoothly to a full line below it.
    """
    import numpy as np
    from scipy import ndimage as ndi

    fine = ndi.gaussian_filter(grey, sigma)
    coarse = ndi.gaussian_filter(grey, 1.6 * sigma)
    sharpened = 21.0 * fine - 20.0 * coarse
    threshold, steepness = 0.02, 10.0
    return np.where(sharpened >= threshold, 0.0, -np.tanh(steepness * (sharpened - threshold)))


def drop_short_strokes(lines: np.ndarray, min_pixels: int) -> np.ndarray:
    """``lines`` with every 8-connected stroke (darkness > 0.5) of < ``min_pixels`` removed."""
    import numpy as np
    from scipy import ndimage as ndi

    stroke = lines > 0.5
    labels, _ = ndi.label(stroke, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = True  # the background is not a stroke: its faint tails stay as they are
    return np.where(keep[labels], lines, 0.0)


def superpixels(
    photo_lab: np.ndarray,  # (H, W, 3) CIELAB of the photo
    out_lab: np.ndarray,  # (H, W, 3) CIELAB of the model's output
    areas: int,  # superpixels per 256 x 256 pixels
    fields_sigma: float,  # px at a 256 px side: the blur that takes the output's grain away
    scale: float,
) -> np.ndarray:
    """(H, W) labels 0..n-1: SLIC areas of the photo and the output's colour fields together."""
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.segmentation import slic

    h, w = photo_lab.shape[:2]
    # The areas come from the output's colour fields, not its grain: segmenting the raw output
    # lets SLIC cut noise into fragments that its connectivity pass merges across the photo's
    # edges.
    sigma = fields_sigma * scale
    fields = ndi.gaussian_filter(out_lab, (sigma, sigma, 0))
    features = np.concatenate([photo_lab, fields], axis=-1).astype(np.float32) / 100.0
    return slic(
        features,
        n_segments=max(1, round(areas * h * w / REFERENCE_SIDE**2)),
        compactness=0.1,  # for features in [-1, 1]: areas follow colour more than the grid
        sigma=scale,
        start_label=0,
        channel_axis=-1,
        convert2lab=False,
    )


def merge_alike(labels: np.ndarray, photo_lab: np.ndarray, distance: float) -> np.ndarray:
    """``labels`` with neighbouring areas whose photo colours (CIELAB means) are closer than
    ``distance`` merged, nearest pair first, each merge's mean colour weighted by pixels (a
    region adjacency graph, 8-connected); labels 0..m-1 in the order of the areas they hold.
    A flat sky or wall becomes one area, so the model's specks in it need not be printed as
    patches the photo does not have."""
    import heapq
    import math

    import numpy as np

    flat = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    count = np.bincount(flat.ravel()).astype(np.float64)
    n = len(count)
    pixels = photo_lab.reshape(-1, photo_lab.shape[-1]).astype(np.float64)
    total = np.stack(
        [np.bincount(flat.ravel(), pixels[:, c], n) for c in range(pixels.shape[1])], 1
    )
    codes = []  # each neighbouring pair once, as low * n + high: 8-connected
    for one, other in [
        (flat[:, :-1], flat[:, 1:]),  # across
        (flat[:-1], flat[1:]),  # down
        (flat[:-1, :-1], flat[1:, 1:]),  # the diagonals
        (flat[:-1, 1:], flat[1:, :-1]),
    ]:
        border = one != other
        one, other = one[border].astype(np.int64), other[border].astype(np.int64)
        codes.append(np.minimum(one, other) * n + np.maximum(one, other))
    code = np.unique(np.concatenate(codes))
    pairs = np.stack([code // n, code % n], 1)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    parent = list(range(n))  # each merged area is held by its lowest label
    version = [0] * n  # an area's colour changes with every merge: older heap entries are stale
    # Plain floats, not arrays: the loop below runs once per merge and per neighbour.
    sums = total.tolist()
    sizes = count.tolist()
    mean = total / count[:, None]
    means = mean.tolist()

    def gap(a: int, b: int) -> float:
        (la, aa, ba), (lb, ab, bb) = means[a], means[b]
        return math.sqrt((la - lb) ** 2 + (aa - ab) ** 2 + (ba - bb) ** 2)

    first = np.linalg.norm(mean[pairs[:, 0]] - mean[pairs[:, 1]], axis=1)
    heap = [(d, a, b, 0, 0) for d, (a, b) in zip(first.tolist(), pairs.tolist(), strict=True)]
    heapq.heapify(heap)
    while heap:
        d, a, b, va, vb = heapq.heappop(heap)
        if d >= distance:
            break
        if parent[a] != a or parent[b] != b or version[a] != va or version[b] != vb:
            continue  # merged away or recoloured since this entry
        keep, gone = min(a, b), max(a, b)
        parent[gone] = keep
        sums[keep] = [x + y for x, y in zip(sums[keep], sums[gone], strict=True)]
        sizes[keep] += sizes[gone]
        means[keep] = [x / sizes[keep] for x in sums[keep]]
        version[keep] += 1
        neighbours[keep] |= neighbours[gone]
        neighbours[keep] -= {keep, gone}
        for other in neighbours[gone] - {keep}:
            neighbours[other].discard(gone)
            neighbours[other].add(keep)
        neighbours[gone] = set()
        for other in neighbours[keep]:
            heapq.heappush(heap, (gap(keep, other), keep, other, version[keep], version[other]))

    root = np.arange(n)
    for label in range(n):  # parents hold lower labels: one pass in order finds each root
        root[label] = root[parent[label]]
    return np.unique(root, return_inverse=True)[1][flat]


def area_means(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each label's mean of ``values`` (H, W, C) and its pixel count: ((n, C), (n,)); labels
    with no pixel get 0."""
    import numpy as np

    flat = labels.ravel()
    count = np.bincount(flat).astype(np.float64)
    pixels = values.reshape(flat.size, -1).astype(np.float64)
    means = np.stack([np.bincount(flat, pixels[:, c]) for c in range(pixels.shape[1])], axis=1)
    present = count > 0
    means[present] /= count[present, None]
    return means, count


def as_arrays(photo: Image.Image, stylized: Image.Image) -> tuple[np.ndarray, np.ndarray, float]:
    """(photo, output) as (H, W, 3) float32 RGB in [0, 1], the output resized to the photo's
    size if it differs, and the picture's scale against :data:`REFERENCE_SIDE`."""
    import numpy as np
    from PIL import Image

    photo = photo.convert("RGB")
    stylized = stylized.convert("RGB")
    if stylized.size != photo.size:
        stylized = stylized.resize(photo.size, Image.Resampling.BICUBIC)
    rgb_photo = np.asarray(photo, dtype=np.float32) / 255.0
    rgb_out = np.asarray(stylized, dtype=np.float32) / 255.0
    return rgb_photo, rgb_out, min(photo.size) / REFERENCE_SIDE


def contour_lines(
    grey: np.ndarray, sigma: float, min_line: int, strength: float, scale: float
) -> np.ndarray:
    """Line darkness (H, W) in [0, strength] along the contours of ``grey`` (XDoG at ``sigma``
    px, strokes under ``min_line`` px dropped; both at a 256 px side, scaled)."""
    lines = xdog_lines(grey, sigma * scale)
    return strength * drop_short_strokes(lines, max(1, round(min_line * scale**2)))
