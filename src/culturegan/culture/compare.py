"""Compare cultures: means with intervals, effect sizes and tests, distances, classifiers.

:func:`compare_cultures` takes the descriptor table of one comparison (all images, or one
stratum such as "genre = landscape") and returns a JSON-able dict with every statistic and
the number of images each rests on. A culture with fewer images than a statistic needs
(:data:`MIN_IMAGES`) is left out of that statistic and a warning says so.

Multiple comparisons: the permutation p-values of all (pair of cultures, descriptor) tests of
one comparison form one family, adjusted together with Benjamini-Hochberg (q-values).

Classifiers (cross-validated, :mod:`culturegan.culture.classify`) run on the hand-crafted
descriptors alone (``descriptors``), on the Gram summaries of the backbone's feature maps
(``gram``: learned, not interpretable) and on each embedding; every accuracy carries a bootstrap
interval, and :func:`write_classifier_csv` lists them all.

Embedding distances are computed on the first K principal components of the pooled embeddings
of the comparison (K = min(32, D, n_smallest / 2)), because the covariance of n pictures in D
dimensions is singular when n <= D and the Frechet distance is then dominated by noise.

Usage::

    result = compare_cultures(table, embeddings={"lite0": emb}, settings=CompareSettings())
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from culturegan.culture.classify import cross_validate, fit_pca
from culturegan.culture.descriptors import DESCRIPTORS
from culturegan.culture.stats import (
    benjamini_hochberg,
    bootstrap_mean_ci,
    cliffs_delta,
    cohens_d,
    finite_or_none,
    frechet_test,
    mmd_test,
    permutation_pvalues,
)
from culturegan.culture.table import DescriptorTable
from culturegan.fileio import atomic_write

# The fewest images per culture each statistic is computed on.
MIN_IMAGES = {
    "mean and bootstrap interval": 3,
    "effect sizes and permutation tests": 5,
    "classifier": 5,
    "embedding distances": 8,
}
CLASSIFIER_LABELS = {
    "descriptors": "interpretable descriptors (hand-crafted)",
    "gram": "Gram summaries of the backbone's feature maps (learned)",
}
MAX_MMD_IMAGES = 500  # per culture; larger groups are subsampled (seeded) for MMD
TOP_SEPARATING = 3


@dataclass
class CompareSettings:
    n_boot: int = 1000  # bootstrap resamples for confidence intervals
    n_perm: int = 1000  # permutations for descriptor tests
    n_perm_distance: int = 200  # permutations for Frechet distance and MMD tests
    ci_level: float = 0.95
    alpha: float = 0.05  # q-value under which a difference is called significant
    folds: int = 5  # cross-validation folds
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def feature_groups(names: list[str]) -> tuple[list[int], list[int]]:
    """Column indices of the hand-crafted descriptors and of the learned scalars among
    ``names``: the ``gram_*`` summaries of the backbone's feature maps that
    :mod:`culturegan.culture.embed` appends to the table."""
    learned = [j for j, n in enumerate(names) if n.startswith("gram_") and n not in DESCRIPTORS]
    return [j for j in range(len(names)) if j not in learned], learned


def _enough(counts: dict[str, int], statistic: str, warnings: list[str], label: str) -> list[str]:
    """Cultures with enough images for ``statistic``; a warning for each one left out."""
    need = MIN_IMAGES[statistic]
    kept = []
    for culture, n in counts.items():
        if n >= need:
            kept.append(culture)
        else:
            warnings.append(
                f"{label}: '{culture}' has {n} image{'s' * (n != 1)}, fewer than the {need} "
                f"needed for {statistic}; it is left out of them"
            )
    return kept


def compare_cultures(
    table: DescriptorTable,
    *,
    embeddings: dict[str, np.ndarray] | None = None,  # name -> (N, D), rows as in table
    settings: CompareSettings | None = None,
    label: str = "all images",
) -> dict:
    """Every statistic between the cultures of ``table`` (see the module docstring)."""
    settings = settings or CompareSettings()
    rng = np.random.default_rng(settings.seed)
    counts = table.counts()
    warnings: list[str] = []
    culture = np.array(table.culture)
    out: dict = {"label": label, "n_images": len(table), "counts": counts}

    # Per-culture means with bootstrap intervals.
    means: dict[str, dict[str, dict]] = {name: {} for name in table.names}
    for c in _enough(counts, "mean and bootstrap interval", warnings, label):
        mean, low, high = bootstrap_mean_ci(
            table.values[culture == c], rng=rng, n_boot=settings.n_boot, level=settings.ci_level
        )
        for j, name in enumerate(table.names):
            means[name][c] = {
                "mean": float(mean[j]),
                "ci_low": float(low[j]),
                "ci_high": float(high[j]),
                "n": counts[c],
            }
    out["means"] = means

    # Pairwise effect sizes and permutation tests; one BH family over all pairs x descriptors.
    testable = _enough(counts, "effect sizes and permutation tests", warnings, label)
    pairs = []
    for a, b in itertools.combinations(testable, 2):
        xa, xb = table.values[culture == a], table.values[culture == b]
        pairs.append(
            {
                "a": a,
                "b": b,
                "n_a": len(xa),
                "n_b": len(xb),
                "cohens_d": cohens_d(xa, xb),
                "cliffs_delta": cliffs_delta(xa, xb),
                "p": permutation_pvalues(xa, xb, rng=rng, n_perm=settings.n_perm),
                "mean_a": xa.mean(0),
                "mean_b": xb.mean(0),
            }
        )
    if pairs:
        q_all = benjamini_hochberg(np.stack([p["p"] for p in pairs]))
        for pair, q in zip(pairs, q_all, strict=True):
            pair["q"] = q
    out["pairs"] = [_pair_summary(p, table, settings, rng) for p in pairs]
    out["n_tests"] = len(pairs) * len(table.names)

    # Classifiers on the hand-crafted descriptors, on the Gram summaries of the backbone's
    # feature maps (learned, so they sit with the embeddings), and on each embedding.
    classifiable = _enough(counts, "classifier", warnings, label)
    classifiers = {}
    if len(classifiable) >= 2:
        rows = np.isin(culture, classifiable)
        crafted, learned = feature_groups(table.names)
        cv_args = dict(rng=rng, k=settings.folds, n_boot=settings.n_boot, level=settings.ci_level)
        classifiers["descriptors"] = cross_validate(
            table.values[rows][:, crafted], culture[rows], **cv_args
        ).to_dict()
        if learned:
            classifiers["gram"] = cross_validate(
                table.values[rows][:, learned], culture[rows], **cv_args
            ).to_dict()
        for name, emb in (embeddings or {}).items():
            cv = cross_validate(emb[rows], culture[rows], max_components=32, **cv_args)
            classifiers[f"embedding:{name}"] = {
                **cv.to_dict(),
                "reduced_to": min(32, cv.n_features),  # principal components, per fold
            }
    out["classifiers"] = classifiers

    # Distances between the cultures' embedding distributions.
    distances = {}
    far_enough = _enough(counts, "embedding distances", warnings, label)
    for name, emb in (embeddings or {}).items():
        if len(far_enough) >= 2:
            distances[name] = _embedding_distances(emb, culture, far_enough, settings, rng)
    out["embedding_distances"] = distances
    out["warnings"] = list(dict.fromkeys(warnings))
    return out


def _pair_summary(
    pair: dict, table: DescriptorTable, settings: CompareSettings, rng: np.random.Generator
) -> dict:
    """JSON-able result of one pair, with the descriptors that separate it best."""
    per_descriptor = {}
    for j, name in enumerate(table.names):
        per_descriptor[name] = {
            "mean_a": float(pair["mean_a"][j]),
            "mean_b": float(pair["mean_b"][j]),
            "cohens_d": finite_or_none(pair["cohens_d"][j]),
            "cliffs_delta": float(pair["cliffs_delta"][j]),
            "p": float(pair["p"][j]),
            "q": float(pair["q"][j]),
            "significant": bool(pair["q"][j] < settings.alpha),
        }

    # Separating descriptors: largest |Cliff's delta| among the significant ones (ties broken
    # by |d|), i.e. those whose values overlap least between the two cultures.
    def strength(name: str) -> tuple[float, float]:
        r = per_descriptor[name]
        return abs(r["cliffs_delta"]), abs(r["cohens_d"] or 0.0)

    ranked = sorted(
        (n for n in table.names if per_descriptor[n]["significant"]), key=strength, reverse=True
    )
    culture = np.array(table.culture)
    rows = np.isin(culture, [pair["a"], pair["b"]])
    accuracy = None
    if min(pair["n_a"], pair["n_b"]) >= MIN_IMAGES["classifier"]:
        crafted, _ = feature_groups(table.names)
        cv = cross_validate(
            table.values[rows][:, crafted],
            culture[rows],
            rng=rng,
            k=settings.folds,
            n_boot=settings.n_boot,
            level=settings.ci_level,
        )
        accuracy = {
            key: value
            for key, value in cv.to_dict().items()
            if key not in ("confusion", "fold_accuracies", "classes")
        }
    return {
        "a": pair["a"],
        "b": pair["b"],
        "n_a": pair["n_a"],
        "n_b": pair["n_b"],
        "descriptors": per_descriptor,
        "separating": ranked[:TOP_SEPARATING],
        "n_significant": len(ranked),
        "classifier": accuracy,
    }


def _embedding_distances(
    emb: np.ndarray,
    culture: np.ndarray,
    names: list[str],
    settings: CompareSettings,
    rng: np.random.Generator,
) -> dict:
    rows = np.isin(culture, names)
    smallest = min(int((culture == c).sum()) for c in names)
    k = int(max(2, min(32, emb.shape[1], smallest // 2)))
    projection = fit_pca(emb[rows], k, scale=False)
    reduced = projection.transform(emb)
    result = {
        "n_components": k,
        "explained_variance": float(sum(projection.explained)),
        "frechet": {},
        "mmd": {},
    }
    for a, b in itertools.combinations(names, 2):
        za, zb = reduced[culture == a], reduced[culture == b]
        fd, fd_p = frechet_test(za, zb, rng=rng, n_perm=settings.n_perm_distance)
        ea, eb = emb[culture == a], emb[culture == b]
        if len(ea) > MAX_MMD_IMAGES:
            ea = ea[rng.choice(len(ea), MAX_MMD_IMAGES, replace=False)]
        if len(eb) > MAX_MMD_IMAGES:
            eb = eb[rng.choice(len(eb), MAX_MMD_IMAGES, replace=False)]
        mmd2, mmd_p, bandwidth = mmd_test(ea, eb, rng=rng, n_perm=settings.n_perm_distance)
        key = f"{a}|{b}"
        result["frechet"][key] = {"value": fd, "p": fd_p, "n_a": len(za), "n_b": len(zb)}
        result["mmd"][key] = {
            "value": mmd2,
            "p": mmd_p,
            "bandwidth": bandwidth,
            "n_a": len(ea),
            "n_b": len(eb),
        }
    return result


CSV_COLUMNS = (
    "comparison", "classifier", "labels", "accuracy_text", "accuracy", "ci_low", "ci_high",
    "ci_level", "ci_method", "chance", "n_images", "n_folds", "n_features",
)  # fmt: skip


def classifier_csv_row(comparison: str, classifier: str, labels: str, result: dict) -> dict:
    """One row (:data:`CSV_COLUMNS`) of the classifier CSV from a ``CrossValidation.to_dict``."""
    low, high = result["accuracy_ci"]
    values = {**result, "ci_low": low, "ci_high": high, "comparison": comparison}
    values.update(classifier=classifier, labels=labels)
    return {k: values.get(k, "") for k in CSV_COLUMNS}


def classifier_rows(comparisons: list[dict]) -> list[dict]:
    """One row per classifier of every comparison, pair classifiers included."""
    rows = []
    for c in comparisons:
        for name, r in c.get("classifiers", {}).items():
            rows.append(classifier_csv_row(c["label"], classifier_label(name), "culture", r))
        for p in c.get("pairs", []):
            if p["classifier"]:
                labels = f"culture ({p['a']} vs {p['b']})"
                name = CLASSIFIER_LABELS["descriptors"]
                rows.append(classifier_csv_row(c["label"], name, labels, p["classifier"]))
    return rows


def classifier_label(key: str) -> str:
    """Readable name of a classifier key of :func:`compare_cultures` (``embedding:lite0``)."""
    return CLASSIFIER_LABELS.get(key) or f"{key.split(':', 1)[1]} embedding"


def write_classifier_csv(path: Path, rows: list[dict]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)
