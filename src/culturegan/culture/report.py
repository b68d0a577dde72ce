"""The HTML report of a cultural difference study (``index.html`` beside ``summary.json``).

Written for readers who do not code: every number says what it is and how many images it
rests on, every descriptor and statistic is defined at the end, and the pictures (thumbnails
of a bounded sample per culture) sit next to the numbers. One self-contained file plus the
``thumbs/`` folder it links by relative path; charts are inline SVG. The page is the template
``templates/culture_report.html``; this module turns the summary into what it shows.

Usage::

    write_analysis_report(out_dir, summary, table, maps, thumbnails)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from culturegan.culture.classify import format_accuracy
from culturegan.culture.compare import classifier_label
from culturegan.culture.plots import (
    culture_colours,
    palette_swatches,
    svg_heatmap,
    svg_interval_bars,
    svg_scatter,
)
from culturegan.culture.table import DescriptorTable
from culturegan.report import render_page

MAX_EXAMPLES = 8  # thumbnails per culture in the overview table
MAP_THUMBS_PER_CULTURE = 6
KINDS = {"sources": "source_column", "licences": "licence_column"}  # provenance counts

STATISTICS_HELP = [
    (
        "mean and 95% interval",
        "Mean over the culture's images; the interval is a percentile "
        "bootstrap (resampling the images with replacement).",
    ),
    (
        "Cohen's d",
        "Difference of means in units of the pooled standard deviation: 0.2 small, "
        "0.5 medium, 0.8 large (Cohen 1988). Positive: the first culture is higher.",
    ),
    (
        "Cliff's delta",
        "P(a > b) - P(a < b) for an image a of the first culture and b of the "
        "second: -1 to 1, no assumption of normality; |delta| > 0.47 is large "
        "(Romano et al. 2006).",
    ),
    ("p", "Two-sided permutation test of the difference of means (culture labels shuffled)."),
    (
        "q",
        "p adjusted for the number of tests by Benjamini-Hochberg (false discovery rate); "
        "a difference is called significant when q < 0.05.",
    ),
    (
        "classifier accuracy",
        "Share of images whose culture is predicted right by a linear "
        "classifier (logistic regression) that never saw them (stratified k-fold cross-validation)."
        " Chance is the share of the largest culture. In brackets: 95% interval, a percentile "
        "bootstrap over images of the out-of-fold predictions (Clopper-Pearson when every "
        "prediction is right).",
    ),
    (
        "source classifier",
        "The same classifier trained to predict each image's source (manifest column) instead "
        "of its culture, on the same images: when it does as well, the descriptors may measure "
        "the sources (scanner, cropping, colour handling) rather than the cultures.",
    ),
    (
        "Frechet distance",
        "Distance between Gaussians fitted to two cultures' embeddings (as in "
        "FID), on the leading principal components; the p-value shuffles culture labels.",
    ),
    (
        "MMD",
        "Maximum mean discrepancy with a Gaussian kernel (median-distance width), unbiased "
        "estimate; near 0 when two cultures' embeddings are alike; permutation p-value.",
    ),
    (
        "PCA map",
        "Each image placed by its first two principal components; nearby images have "
        "similar descriptors.",
    ),
]


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def _accuracy(r: dict) -> str:
    return format_accuracy(r["accuracy"], *r["accuracy_ci"])


def write_analysis_report(
    out_dir: Path,
    summary: dict,
    data: DescriptorTable,
    maps: dict,
    thumbnails: dict[int, str],  # table row -> thumbnail path relative to out_dir
) -> Path:
    cultures = list(summary["cultures"])
    colours = culture_colours(cultures)
    learned = summary["learned"]
    return render_page(
        out_dir / "index.html",
        "culture_report.html",
        title=summary["title"],
        subtitle=f"{sum(summary['cultures'].values())} images, {len(cultures)} cultures, "
        f"analysed at {summary['settings']['working_size']} px (shorter side).",
        summary=summary,
        settings=summary["settings"],
        learned=learned,
        overview=_overview(summary, data, thumbnails, colours),
        provenance=_provenance(summary.get("provenance"), summary["cultures"]),
        comparisons=[_comparison(c, summary, colours) for c in summary["comparisons"]],
        maps=_maps(summary, data, maps, thumbnails, colours),
        descriptors=[
            [name, d["family"], d["units"], d["definition"]]
            for name, d in summary["descriptors"].items()
        ]
        + [[n, "learned", "see definition", t] for n, t in learned.get("gram", {}).items()],
        statistics=STATISTICS_HELP,
    )


def _overview(summary: dict, data: DescriptorTable, thumbs: dict[int, str], colours) -> list:
    skipped_by = {c: 0 for c in summary["cultures"]}
    for item in summary["skipped"]:
        skipped_by[item["culture"]] = skipped_by.get(item["culture"], 0) + 1
    rows = []
    for culture, n in summary["cultures"].items():
        examples = [t for i, t in sorted(thumbs.items()) if data.culture[i] == culture]
        rows.append(
            {
                "culture": culture,
                "colour": colours[culture],
                "n": n,
                "skipped": skipped_by.get(culture, 0),
                "palette": palette_swatches(summary["palettes"].get(culture, [])),
                "examples": examples[:MAX_EXAMPLES],
            }
        )
    return rows


def _provenance(p: dict | None, cultures: dict[str, int]) -> dict | None:
    """Images per source and licence for each culture, and the confound checks."""
    if not p:
        return None

    def counts(values: dict[str, int]) -> str:
        return "; ".join(f"{k}: {v}" for k, v in values.items())

    kinds = {k: p[column] for k, column in KINDS.items() if p[column]}  # kind -> its column
    header = ["culture", "images", *(f"images per {column}" for column in kinds.values())]
    rows = [[c, n, *(counts(p["by_culture"][c][k]) for k in kinds)] for c, n in cultures.items()]
    checks = []
    if "source_names_culture" in p:
        checks.append(
            [
                "images whose culture is the most common culture of their source",
                f"{p['source_names_culture']:.1%} (chance: {p['culture_chance']:.1%})",
            ]
        )
    for labels in ("source", "culture"):
        r = p.get(f"{labels}_classifier")
        if r:
            checks.append(
                [
                    f"descriptor classifier predicting the {labels}",
                    f"{_accuracy(r)} (chance {r['chance']:.1%}; {r['n_images']} images, "
                    f"{len(r['classes'])} {labels}s)",
                ]
            )
    if "classifier_skipped" in p:
        checks.append(["source classifier", f"not trained: {p['classifier_skipped']}"])
    return {"header": header, "rows": rows, "checks": checks, "warned": bool(p["warnings"])}


def _comparison(c: dict, summary: dict, colours: dict) -> dict:
    out = {
        "title": f"Comparison: {c['label']} ({c['n_images']} images)",
        "counts": ", ".join(f"{k}: {v}" for k, v in c["counts"].items()),
        "skipped_reason": c.get("skipped_reason"),
    }
    if out["skipped_reason"]:
        return out
    out.update(
        warnings=c["warnings"],
        classifiers=_classifiers(c),
        pairs=_separating(c) if c["pairs"] else [],
        effects=_effect_heatmap(c) if c["pairs"] else None,
        n_tests=c["n_tests"],
        means=_means(c, summary, colours),
        distances=_distances(c),
        details=_pair_details(c),
    )
    return out


def _classifiers(c: dict) -> dict:
    rows, charts = [], []
    for name, r in c["classifiers"].items():
        label = classifier_label(name)
        reduced = r.get("reduced_to")
        rows.append(
            [
                "interpretable" if name == "descriptors" else "learned",
                label,
                f"{r['n_features']}"
                + (f" (first {reduced} principal components, fitted per fold)" if reduced else ""),
                f"{_accuracy(r)} (fold SD {r['accuracy_sd_over_folds']:.1%})",
                f"{r['chance']:.1%}",
                f"{r['n_images']} images, {r['n_folds']} folds",
            ]
        )
        charts.append(
            svg_heatmap(
                r["confusion"],
                [f"true {k}" for k in r["classes"]],
                [f"predicted {k}" for k in r["classes"]],
                title=f"confusion matrix, {label} (image counts)",
            )
        )
    return {"rows": rows, "charts": charts}


def _separating(c: dict) -> list[dict]:
    rows = []
    for p in c["pairs"]:
        described = []
        for name in p["separating"]:
            r = p["descriptors"][name]
            described.append(
                {
                    "name": name,
                    "higher": p["a"] if r["mean_a"] > r["mean_b"] else p["b"],
                    "detail": f"{_fmt(r['mean_a'])} vs {_fmt(r['mean_b'])}; delta "
                    f"{r['cliffs_delta']:+.2f}, q {_p(r['q'])}",
                }
            )
        clf = p["classifier"]
        rows.append(
            {
                "a": p["a"],
                "b": p["b"],
                "images": f"{p['n_a']} + {p['n_b']}",
                "accuracy": f"{_accuracy(clf)} (chance {clf['chance']:.0%})" if clf else "n/a",
                "differing": f"{p['n_significant']} of {len(p['descriptors'])}",
                "described": described,
            }
        )
    return rows


def _effect_heatmap(c: dict) -> str:
    names = list(c["pairs"][0]["descriptors"])
    cols = [f"{p['a']} vs {p['b']} (n={p['n_a']}+{p['n_b']})" for p in c["pairs"]]
    matrix = [[p["descriptors"][n]["cliffs_delta"] for p in c["pairs"]] for n in names]
    notes = [["*" if p["descriptors"][n]["significant"] else "" for p in c["pairs"]] for n in names]
    return svg_heatmap(
        matrix,
        names,
        cols,
        title="Cliff's delta",
        diverging=True,
        notes=notes,
        label_width=170,
        cell=56,
    )


def _means(c: dict, summary: dict, colours: dict) -> list[str]:
    charts = []
    for name, per_culture in c["means"].items():
        rows = [(k, v["mean"], v["ci_low"], v["ci_high"], v["n"]) for k, v in per_culture.items()]
        units = summary["descriptors"].get(name, {}).get("units", "learned feature summary")
        charts.append(svg_interval_bars(rows, title=name, units=units, colours=colours))
    return charts


def _distances(c: dict) -> list[dict]:
    out = []
    for name, d in c["embedding_distances"].items():
        cultures = list(dict.fromkeys(k for key in d["frechet"] for k in key.split("|")))
        charts = []
        for stat in ("frechet", "mmd"):
            matrix = [[0.0 if a == b else None for b in cultures] for a in cultures]
            notes = [["" for _ in cultures] for _ in cultures]
            for a, b in itertools.combinations(cultures, 2):
                r = d[stat].get(f"{a}|{b}")
                if r:
                    i, j = cultures.index(a), cultures.index(b)
                    matrix[i][j] = matrix[j][i] = r["value"]
                    notes[i][j] = notes[j][i] = "*" if r["p"] < 0.05 else ""
            label = "Frechet distance" if stat == "frechet" else "MMD^2"
            charts.append(
                svg_heatmap(
                    matrix, cultures, cultures, title=f"{label}, {name}", notes=notes, cell=64
                )
            )
        rows = [
            [
                key.replace("|", " vs "),
                f"{r['value']:.4g}",
                _p(r["p"]),
                f"{r['n_a']} + {r['n_b']}",
                f"{d['mmd'][key]['value']:.4g}",
                _p(d["mmd"][key]["p"]),
            ]
            for key, r in d["frechet"].items()
        ]
        out.append(
            {
                "name": name,
                "charts": charts,
                "n_components": d["n_components"],
                "explained": f"{d['explained_variance']:.0%}",
                "rows": rows,
            }
        )
    return out


def _pair_details(c: dict) -> list[dict]:
    out = []
    for p in c["pairs"]:
        rows = [
            [
                name,
                _fmt(r["mean_a"]),
                _fmt(r["mean_b"]),
                _fmt(r["cohens_d"]),
                f"{r['cliffs_delta']:+.3f}",
                _p(r["p"]),
                _p(r["q"]) + (" *" if r["significant"] else ""),
            ]
            for name, r in p["descriptors"].items()
        ]
        header = [
            "descriptor",
            f"mean {p['a']} (n={p['n_a']})",
            f"mean {p['b']} (n={p['n_b']})",
            "Cohen's d",
            "Cliff's delta",
            "p",
            "q",
        ]
        out.append({"a": p["a"], "b": p["b"], "header": header, "rows": rows})
    return out


def _maps(summary: dict, data: DescriptorTable, maps: dict, thumbs: dict, colours) -> dict:
    out = []
    rng = np.random.default_rng(summary["settings"]["seed"])
    for m in maps.values():
        coords = m["coords"]
        rows = np.arange(len(data))
        if len(rows) > 3000:
            rows = np.sort(rng.choice(rows, 3000, replace=False))
        points = [(coords[i][0], coords[i][1], data.culture[i]) for i in rows]
        per_culture: dict[str, int] = {}
        shown = []
        for i, href in sorted(thumbs.items()):
            c = data.culture[i]
            if per_culture.get(c, 0) < MAP_THUMBS_PER_CULTURE:
                per_culture[c] = per_culture.get(c, 0) + 1
                shown.append((coords[i][0], coords[i][1], href, c))
        centroids = []
        for c in colours:
            members = coords[np.array(data.culture) == c]
            if len(members):
                centroids.append((*members.mean(0)[:2], c, colours[c]))
        chart = svg_scatter(
            points,
            title=f"{m['title']} ({len(data)} images)",
            colours=colours,
            x_label=m["axes"][0],
            y_label=m["axes"][1],
            thumbnails=shown,
            markers=centroids,
        )
        loadings = _loadings(m["loadings"]) if "loadings" in m else []
        out.append({"chart": chart, "loadings": loadings})
    plane = [
        (
            data.column("permutation_entropy")[i],
            data.column("statistical_complexity")[i],
            data.culture[i],
        )
        for i in range(len(data))
    ]
    return {
        "maps": out,
        "umap": "descriptors_umap" in maps,
        "plane": svg_scatter(
            plane,
            title=f"complexity-entropy plane ({len(data)} images)",
            colours=colours,
            x_label="permutation entropy H",
            y_label="statistical complexity C",
            width=560,
            height=400,
        ),
    }


def _loadings(loadings: dict[str, list[float]]) -> list[list[str]]:
    rows = []
    for k in range(2):
        ranked = sorted(loadings, key=lambda n: -abs(loadings[n][k]))[:4]
        rows.append([f"PC{k + 1}", ", ".join(f"{n} ({loadings[n][k]:+.2f})" for n in ranked)])
    return rows
