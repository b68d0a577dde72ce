"""The HTML report of a cultural difference study (``index.html`` beside ``summary.json``).

Written for readers who do not code: every number says what it is and how many images it
rests on, every descriptor and statistic is defined at the end, and the pictures (thumbnails
of a bounded sample per culture) sit next to the numbers. One self-contained file plus the
``thumbs/`` folder it links by relative path; charts are inline SVG.

Usage::

    write_analysis_report(out_dir, summary, table, maps, thumbnails)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from culturegan.culture.plots import (
    culture_colours,
    palette_swatches,
    svg_heatmap,
    svg_interval_bars,
    svg_scatter,
)
from culturegan.culture.table import DescriptorTable
from culturegan.report import esc, img, section, table, write_page

MAX_EXAMPLES = 8  # thumbnails per culture in the overview table
MAP_THUMBS_PER_CULTURE = 6

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
        " Chance is the share of the largest culture.",
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


def write_analysis_report(
    out_dir: Path,
    summary: dict,
    data: DescriptorTable,
    maps: dict,
    thumbnails: dict[int, str],  # table row -> thumbnail path relative to out_dir
) -> Path:
    cultures = list(summary["cultures"])
    colours = culture_colours(cultures)
    body = [_intro(summary)]
    body.append(_overview(summary, data, thumbnails, colours))
    if summary["warnings"]:
        items = "".join(f"<li>{esc(w)}</li>" for w in summary["warnings"])
        body.append(section("Warnings", f'<ul class="note">{items}</ul>'))
    for comparison in summary["comparisons"]:
        body.append(_comparison(comparison, summary, colours))
    body.append(_maps(summary, data, maps, thumbnails, colours))
    body.append(_definitions(summary))
    return write_page(
        out_dir / "index.html",
        summary["title"],
        body,
        subtitle=f"{sum(summary['cultures'].values())} images, {len(cultures)} cultures, "
        f"analysed at {summary['settings']['working_size']} px (shorter side).",
    )


def _intro(summary: dict) -> str:
    s = summary["settings"]
    note = f'<p class="note">{esc(summary["note"])}</p>' if summary["note"] else ""
    by = (
        f" Comparisons are made only <b>within each value of '{esc(s['by'])}'</b> (a confound "
        "control: e.g. landscapes are compared with landscapes)."
        if s["by"]
        else ""
    )
    learned = summary["learned"]
    learned_text = (
        f"Learned features: {esc(learned.get('backbone'))} embedding "
        f"({learned.get('dim')} dimensions, weights {esc(learned.get('weights_hash'))})."
        if learned.get("computed")
        else f"Learned features were not computed: {esc(learned.get('reason', ''))}."
    )
    return note + (
        f"<p>Every picture was resized so that its shorter side is {s['working_size']} px "
        "(longer side at most 4 times that) before any descriptor was computed, so that "
        f"numbers do not depend on scan resolution.{by} {learned_text} Random draws "
        f"(bootstrap, permutations, folds) use seed {s['seed']}: {s['n_boot']} bootstrap "
        f"resamples, {s['n_perm']} permutations per descriptor test, {s['n_perm_distance']} per "
        f"distance test, {s['folds']}-fold cross-validation.</p>"
        "<p>Files: <a href='descriptors.csv'>descriptors.csv</a> (one row per image), "
        "<a href='summary.json'>summary.json</a> (every statistic), "
        "<a href='map_coordinates.csv'>map_coordinates.csv</a>.</p>"
    )


def _overview(summary: dict, data: DescriptorTable, thumbs: dict[int, str], colours) -> str:
    skipped_by = {c: 0 for c in summary["cultures"]}
    for item in summary["skipped"]:
        skipped_by[item["culture"]] = skipped_by.get(item["culture"], 0) + 1
    rows = []
    for culture, n in summary["cultures"].items():
        examples = [
            img(t, alt=culture, width=64)
            for i, t in sorted(thumbs.items())
            if data.culture[i] == culture
        ][:MAX_EXAMPLES]
        rows.append(
            [
                f'<b style="color:{colours[culture]}">{esc(culture)}</b>',
                str(n),
                str(skipped_by.get(culture, 0)),
                palette_swatches(summary["palettes"].get(culture, [])),
                f'<div style="display:flex;gap:2px">{"".join(examples)}</div>',
            ]
        )
    header = ["culture", "images analysed", "files skipped", "palette", "examples"]
    parts = [table(header, rows, raw=True)]
    parts.append(
        "<p>Palette: the culture's dominant colours, block width = share of picture area "
        "(k-means in CIELAB over every image's own palette).</p>"
    )
    if summary["skipped"]:
        items = "".join(
            f"<li><code>{esc(s['path'])}</code>: {esc(s['reason'])}</li>"
            for s in summary["skipped"]
        )
        parts.append(
            f"<details><summary>{len(summary['skipped'])} skipped file(s)</summary>"
            f"<ul>{items}</ul></details>"
        )
    m = summary["settings"]
    if m["manifest"]:
        parts.append(
            f"<p>Manifest <code>{esc(m['manifest'])}</code> (columns: "
            f"{esc(', '.join(m['manifest_columns']))}) describes {m['manifest_matched']} of "
            f"the {len(data)} images.</p>"
        )
    return section("The images", *parts)


def _comparison(c: dict, summary: dict, colours: dict) -> str:
    title = f"Comparison: {c['label']} ({c['n_images']} images)"
    counts = ", ".join(f"{k}: {v}" for k, v in c["counts"].items())
    if "skipped_reason" in c:
        return section(title, f"<p>Not compared: {esc(c['skipped_reason'])} ({esc(counts)}).</p>")
    parts = [f"<p>Images per culture: {esc(counts)}.</p>"]
    if c["warnings"]:
        parts.append("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in c["warnings"]) + "</ul>")
    parts.append(_classifiers(c))
    if c["pairs"]:
        parts.append(_separating(c))
        parts.append(_effect_heatmap(c))
    parts.append(_means(c, summary, colours))
    parts.append(_distances(c))
    if c["pairs"]:
        parts.append(_pair_details(c))
    return section(title, *parts)


def _classifiers(c: dict) -> str:
    if not c["classifiers"]:
        return "<p>No classifier: fewer than two cultures have enough images.</p>"
    rows, charts = [], []
    for name, r in c["classifiers"].items():
        label = "interpretable descriptors" if name == "descriptors" else name.split(":", 1)[1]
        rows.append(
            [
                label,
                str(r["n_features"])
                + (
                    f" (first {r['reduced_to']} principal components, fitted per fold)"
                    if "reduced_to" in r
                    else ""
                ),
                f"{r['accuracy']:.1%} (fold SD {r['accuracy_sd_over_folds']:.1%})",
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
    header = ["classifier on", "features", "cross-validated accuracy", "chance", "rests on"]
    return (
        "<h3>Can the cultures be told apart?</h3>"
        + table(header, rows)
        + f'<div class="charts">{"".join(charts)}</div>'
    )


def _separating(c: dict) -> str:
    rows = []
    for p in c["pairs"]:
        described = []
        for name in p["separating"]:
            r = p["descriptors"][name]
            higher = p["a"] if r["mean_a"] > r["mean_b"] else p["b"]
            described.append(
                f"<b>{esc(name)}</b> higher in {esc(higher)} ({_fmt(r['mean_a'])} vs "
                f"{_fmt(r['mean_b'])}; delta {r['cliffs_delta']:+.2f}, q {_p(r['q'])})"
            )
        clf = p["classifier"]
        rows.append(
            [
                f"{esc(p['a'])} vs {esc(p['b'])}",
                f"{p['n_a']} + {p['n_b']}",
                f"{clf['accuracy']:.0%} (chance {clf['chance']:.0%})" if clf else "n/a",
                f"{p['n_significant']} of {len(p['descriptors'])}",
                "<br>".join(described) or "none significant",
            ]
        )
    header = [
        "pair",
        "images",
        "pair classifier accuracy",
        "descriptors differing (q < 0.05)",
        "most separating descriptors (largest |Cliff's delta|)",
    ]
    return "<h3>What separates each pair</h3>" + table(header, rows, raw=True)


def _effect_heatmap(c: dict) -> str:
    names = list(c["pairs"][0]["descriptors"])
    cols = [f"{p['a']} vs {p['b']} (n={p['n_a']}+{p['n_b']})" for p in c["pairs"]]
    matrix = [[p["descriptors"][n]["cliffs_delta"] for p in c["pairs"]] for n in names]
    notes = [["*" if p["descriptors"][n]["significant"] else "" for p in c["pairs"]] for n in names]
    return (
        "<h3>Effect sizes</h3><p>Cliff's delta of every descriptor for every pair (red: the first "
        "culture is higher, blue: lower; * marks q &lt; 0.05 after Benjamini-Hochberg over all "
        f"{c['n_tests']} tests of this comparison).</p>"
        + svg_heatmap(
            matrix,
            names,
            cols,
            title="Cliff's delta",
            diverging=True,
            notes=notes,
            label_width=170,
            cell=56,
        )
    )


def _means(c: dict, summary: dict, colours: dict) -> str:
    charts = []
    for name, per_culture in c["means"].items():
        rows = [(k, v["mean"], v["ci_low"], v["ci_high"], v["n"]) for k, v in per_culture.items()]
        units = summary["descriptors"].get(name, {}).get("units", "learned feature summary")
        charts.append(svg_interval_bars(rows, title=name, units=units, colours=colours))
    return (
        "<h3>Per-culture means</h3><p>Bars: mean over the culture's images; whiskers: "
        "95% bootstrap interval; n: images.</p>"
        f'<div class="charts">{"".join(charts)}</div>'
    )


def _distances(c: dict) -> str:
    parts = []
    for name, d in c["embedding_distances"].items():
        cultures = list(dict.fromkeys(k for key in d["frechet"] for k in key.split("|")))
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
            parts.append(
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
        parts.append(
            f"<p>{esc(name)}: Frechet distance on the first {d['n_components']} principal "
            f"components ({d['explained_variance']:.0%} of the embedding variance); * p &lt; "
            "0.05 (permutation).</p>"
            + table(["pair", "Frechet", "p", "images", "MMD^2", "p"], rows)
        )
    if not parts:
        return ""
    return "<h3>Distances between the cultures' embeddings</h3>" + "".join(parts)


def _pair_details(c: dict) -> str:
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
        out.append(
            f"<details><summary>All descriptors: {esc(p['a'])} vs {esc(p['b'])}</summary>"
            + table(header, rows)
            + "</details>"
        )
    return "".join(out)


def _maps(summary: dict, data: DescriptorTable, maps: dict, thumbs: dict, colours) -> str:
    parts = []
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
        parts.append(
            svg_scatter(
                points,
                title=f"{m['title']} ({len(data)} images)",
                colours=colours,
                x_label=m["axes"][0],
                y_label=m["axes"][1],
                thumbnails=shown,
                markers=centroids,
            )
        )
        if "loadings" in m:
            parts.append(_loadings(m["loadings"]))
    if "descriptors_umap" not in maps:
        parts.append("<p>UMAP map: not drawn (install the optional package umap-learn).</p>")
    plane = [
        (
            data.column("permutation_entropy")[i],
            data.column("statistical_complexity")[i],
            data.culture[i],
        )
        for i in range(len(data))
    ]
    parts.append(
        "<p>The complexity-entropy plane (Sigaki, Perc and Ribeiro 2018): permutation entropy "
        "H against statistical complexity C of every image.</p>"
        + svg_scatter(
            plane,
            title=f"complexity-entropy plane ({len(data)} images)",
            colours=colours,
            x_label="permutation entropy H",
            y_label="statistical complexity C",
            width=560,
            height=400,
        )
    )
    return section(
        "Maps", "<p>Large dots: culture centres; framed pictures: sampled images.</p>", *parts
    )


def _loadings(loadings: dict[str, list[float]]) -> str:
    rows = []
    for k in range(2):
        ranked = sorted(loadings, key=lambda n: -abs(loadings[n][k]))[:4]
        rows.append([f"PC{k + 1}", ", ".join(f"{n} ({loadings[n][k]:+.2f})" for n in ranked)])
    return "<p>What the axes mean (largest loadings):</p>" + table(["axis", "descriptors"], rows)


def _definitions(summary: dict) -> str:
    rows = [
        [name, d["family"], d["units"], d["definition"]]
        for name, d in summary["descriptors"].items()
    ]
    learned = summary["learned"]
    if learned.get("computed"):
        rows += [[n, "learned", "see definition", t] for n, t in learned.get("gram", {}).items()]
    stats = [[name, text] for name, text in STATISTICS_HELP]
    return section(
        "Definitions",
        "<h3>Descriptors</h3>",
        table(["descriptor", "family", "units", "definition"], rows),
        "<h3>Statistics</h3>",
        table(["statistic", "meaning"], stats),
        "<p>References and details: docs/culture.md in the culturegan repository.</p>",
    )
