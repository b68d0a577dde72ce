"""Where the pictures come from: images per source and licence, and source-culture confounds.

A manifest (:mod:`culturegan.culture.table`) may give every image a ``source`` (the museum,
archive or scrape it came from) and a ``licence``. When each culture comes from its own source,
a difference between cultures may be a difference between sources: scanner, cropping, colour
handling, which pictures were chosen. :func:`provenance_summary` counts, per culture, images per
source and per licence, and checks two ways the two can be confounded:

* **one source per culture**: a culture whose images all come from one source that supplies
  no other culture cannot be told apart from that source;
* **a source that separates the images as well as culture does**: the same cross-validated
  classifier (:func:`culturegan.culture.classify.cross_validate` on the hand-crafted
  descriptors) is trained once on source labels and once on culture labels, on the same
  images; when the source classifier does as well (its interval reaches the culture accuracy)
  and better than chance, the descriptors may measure the sources.

Either check adds a warning that points to ``--by source`` (compare within source).

Usage::

    provenance = provenance_summary(table, settings=CompareSettings())
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from culturegan.culture.classify import cross_validate
from culturegan.culture.compare import (
    CLASSIFIER_LABELS,
    MIN_IMAGES,
    CompareSettings,
    classifier_csv_row,
    feature_groups,
)
from culturegan.culture.table import MISSING, DescriptorTable

SOURCE_COLUMNS = ("source",)
LICENCE_COLUMNS = ("licence", "license")
COMPARE_WITHIN = "compare within source (--by source)"
COMPARISON = "provenance check (same images)"  # its rows in the classifier CSV


def _first(meta: dict[str, list[str]], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in meta), None)


def provenance_summary(
    table: DescriptorTable,
    *,
    settings: CompareSettings,
    by: str | None = None,  # the study's --by column (no advice to use it when it is source)
) -> dict | None:
    """Counts per culture of each source and licence, the confound checks and their warnings
    (see the module docstring); None when the manifest has neither column."""
    source_column = _first(table.meta, SOURCE_COLUMNS)
    licence_column = _first(table.meta, LICENCE_COLUMNS)
    if source_column is None and licence_column is None:
        return None
    culture = np.array(table.culture)
    columns = {"sources": source_column, "licences": licence_column}
    by_culture = {}
    for c in table.cultures():
        rows = np.nonzero(culture == c)[0]
        by_culture[c] = {
            kind: dict(Counter(table.meta[column][i] or MISSING for i in rows).most_common())
            for kind, column in columns.items()
            if column is not None
        }
    out: dict = {
        "source_column": source_column,
        "licence_column": licence_column,
        "by_culture": by_culture,
        "warnings": [],
    }
    if source_column is not None:
        sources = np.array([v or MISSING for v in table.meta[source_column]])
        advice = "the comparisons below are within source" if by == source_column else None
        out.update(_confounds(table, culture, sources, by_culture, settings, advice))
    return out


def _confounds(
    table: DescriptorTable,
    culture: np.ndarray,
    sources: np.ndarray,
    by_culture: dict,
    settings: CompareSettings,
    advice: str | None,
) -> dict:
    advice = advice or COMPARE_WITHIN
    warnings = []
    cultures_of = {s: set(culture[sources == s]) for s in set(sources)}
    own = {}  # culture -> the one source it comes from, when that source has no other culture
    for c, v in by_culture.items():
        only, *others = v["sources"]
        if not others and only != MISSING and len(cultures_of[only]) == 1:
            own[c] = only
    if own and len(own) == len(by_culture):
        warnings.append(
            "culture and source are confounded: every culture comes from one source of its "
            f"own ({'; '.join(f'{c}: {s}' for c, s in own.items())}), so a difference between "
            "cultures may be a difference between sources (scanning, cropping, colour, "
            "selection); add pictures of each culture from other sources; " + advice
        )
    elif own:
        warnings.append(
            f"{', '.join(own)}: all images come from one source that supplies no other culture "
            f"({'; '.join(f'{c}: {s}' for c, s in own.items())}); for these cultures, culture "
            "and source cannot be told apart"
        )
    # How well the source label alone names the culture: each source predicts its most
    # common culture.
    majority = sum(Counter(culture[sources == s]).most_common(1)[0][1] for s in cultures_of)
    out = {
        "single_source_cultures": own,
        "source_names_culture": majority / len(culture),
        "culture_chance": max(Counter(culture).values()) / len(culture),
    }
    clf = _source_and_culture_classifiers(table, culture, sources, settings)
    out.update(clf)
    if "source_classifier" in clf and len(own) < len(by_culture):  # else said above
        src, cul = clf["source_classifier"], clf["culture_classifier"]
        if src["accuracy_ci"][1] >= cul["accuracy"] and src["accuracy_ci"][0] > src["chance"]:
            warnings.append(
                "the descriptors tell the sources apart as well as the cultures (source "
                f"classifier {src['accuracy_text']}, chance {src['chance']:.1%}; culture "
                f"classifier {cul['accuracy_text']}, on the same {src['n_images']} images): "
                "differences between cultures may be differences between sources; " + advice
            )
    out["warnings"] = warnings
    return out


def _source_and_culture_classifiers(
    table: DescriptorTable, culture: np.ndarray, sources: np.ndarray, settings: CompareSettings
) -> dict:
    """The descriptor classifier on source labels and on culture labels, on the same images:
    those whose source and culture both have enough images for a classifier."""
    need = MIN_IMAGES["classifier"]
    rows = np.ones(len(culture), dtype=bool)
    for labels in (sources, culture):
        counts = Counter(labels[rows])
        rows &= np.array([counts[v] >= need for v in labels])
    n_sources, n_cultures = len(set(sources[rows])), len(set(culture[rows]))
    if n_sources < 2 or n_cultures < 2 or min(Counter(sources[rows]).values()) < 2:
        return {
            "classifier_skipped": f"fewer than two sources and two cultures with {need} or more "
            "images each (after leaving out the smaller groups)"
        }
    crafted, _ = feature_groups(table.names)
    x = table.values[rows][:, crafted]
    rng = np.random.default_rng(settings.seed)
    args = dict(rng=rng, k=settings.folds, n_boot=settings.n_boot, level=settings.ci_level)
    return {
        "source_classifier": cross_validate(x, sources[rows], **args).to_dict(),
        "culture_classifier": cross_validate(x, culture[rows], **args).to_dict(),
    }


def provenance_csv_rows(provenance: dict | None) -> list[dict]:
    """The two provenance classifiers as rows of the classifier CSV."""
    if not provenance or "source_classifier" not in provenance:
        return []
    name = CLASSIFIER_LABELS["descriptors"]
    return [
        classifier_csv_row(COMPARISON, name, labels, provenance[f"{labels}_classifier"])
        for labels in ("source", "culture")
    ]
