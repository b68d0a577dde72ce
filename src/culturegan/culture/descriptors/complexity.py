"""Complexity: 2-D permutation entropy and statistical complexity (Bandt-Pompe).

The picture is read as in Sigaki, Perc and Ribeiro, "History of art paintings through the lens
of entropy and complexity", PNAS 115(37), 2018, who placed ~140,000 paintings on the
complexity-entropy plane of Rosso et al. (Phys. Rev. Lett. 99, 2007) using the two-dimensional
ordinal patterns of Ribeiro et al. (PLoS ONE 7(8), 2012):

1. every 2 x 2 block of neighbouring grey values (dx = dy = 2, overlapping, in reading order)
   is replaced by the permutation that sorts it: 4! = 24 possible ordinal patterns (ties keep
   reading order, so a flat area is always the identity pattern);
2. P is the histogram of these patterns over the picture;
3. permutation entropy H = S(P) / log 24 (S is Shannon's entropy);
4. statistical complexity C = Q_J(P, P_e) * H, with P_e the uniform distribution and Q_J the
   Jensen-Shannon divergence normalised by its maximum (reached when P is a delta).

Noise has H ~ 1 and C ~ 0; a flat or perfectly regular picture has H ~ 0 and C ~ 0; structured
pictures sit in between with C up to ~0.5.

Usage::

    h, c = complexity_entropy(view.grey)
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from culturegan.culture.descriptors.base import ImageView, register_descriptor, shannon_entropy

N_PATTERNS = 24  # 4! orderings of a 2 x 2 block

# Code of a permutation (base-4 digits of the sorting order) -> pattern index 0..23.
_CODE_TO_INDEX = np.full(4**4, -1, dtype=np.int64)
for _index, _perm in enumerate(itertools.permutations(range(4))):
    _CODE_TO_INDEX[sum(p * 4**i for i, p in enumerate(_perm))] = _index


def ordinal_pattern_distribution(grey: np.ndarray) -> np.ndarray:
    """(24,) probabilities of the 2 x 2 ordinal patterns of a 2-D array (at least 2 x 2)."""
    if grey.ndim != 2 or min(grey.shape) < 2:
        raise ValueError(f"need a 2-D array of at least 2 x 2, got shape {grey.shape}")
    blocks = np.stack(
        [grey[:-1, :-1], grey[:-1, 1:], grey[1:, :-1], grey[1:, 1:]], axis=-1
    )  # (H-1, W-1, 4) in reading order
    order = np.argsort(blocks, axis=-1, kind="stable")
    codes = (order * (4 ** np.arange(4))).sum(-1)
    counts = np.bincount(_CODE_TO_INDEX[codes].ravel(), minlength=N_PATTERNS)
    return counts / counts.sum()


def complexity_entropy(grey: np.ndarray) -> tuple[float, float]:
    """(normalised permutation entropy H, statistical complexity C) of a 2-D array."""
    p = ordinal_pattern_distribution(grey)
    n = N_PATTERNS
    uniform = np.full(n, 1.0 / n)
    h = shannon_entropy(p) / math.log(n)
    js = shannon_entropy((p + uniform) / 2) - shannon_entropy(p) / 2 - math.log(n) / 2
    # The largest Jensen-Shannon divergence from the uniform distribution (P a delta).
    js_max = -0.5 * ((n + 1) / n * math.log(n + 1) - 2 * math.log(2 * n) + math.log(n))
    return h, max(0.0, js / js_max) * h


def _plane(view: ImageView) -> tuple[float, float]:
    return view.memo("complexity_entropy", lambda: complexity_entropy(view.grey))


@register_descriptor(family="complexity", units="normalised entropy, 0-1")
def permutation_entropy(view: ImageView) -> float:
    """2-D permutation entropy H (Bandt-Pompe, 2 x 2 ordinal patterns of the grey image,
    Ribeiro et al. 2012): Shannon entropy of the 24 pattern frequencies divided by log 24.
    Near 1 for noise, 0 for a flat picture; lower values mean more order (Sigaki et al. 2018)."""
    return _plane(view)[0]


@register_descriptor(family="complexity", units="statistical complexity, 0 to ~0.5")
def statistical_complexity(view: ImageView) -> float:
    """Statistical complexity C = Q_J * H (Rosso et al. 2007) of the 2 x 2 ordinal patterns of
    the grey image: normalised Jensen-Shannon divergence from the uniform pattern distribution
    times the permutation entropy. 0 for both noise and a flat picture, highest for structured
    pictures; with H it places a picture on the complexity-entropy plane."""
    return _plane(view)[1]
