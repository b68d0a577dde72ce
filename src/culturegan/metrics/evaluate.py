"""Evaluate a style-transfer model on a data split: every direction, every named backbone.

For each direction ``source->target`` (every direction of a two-domain model; every ordered
pair of distinct domains of a multi-domain model), the first ``max_images`` images of the
source's split are stylized and compared:

==========================  =====================================================  ========
name (per backbone B)       meaning                                                better
==========================  =====================================================  ========
``fd_B``                    Fréchet distance, outputs vs the target's real images  lower
                            of the same split (FID when B is ``inception``)
``fd_B_inputs``             the same for the untouched inputs: the starting point  -
``kd_B`` (``kd_B_std``)     kernel distance (KID with ``inception``), mean (std)   lower
``perceptual_B``            feature-map distance output vs input (content kept?)   lower
``artfid_B``                (1 + perceptual_B) * (1 + fd_B), after ArtFID          lower
``ssim``                    SSIM output vs input, pixels                           higher
``border_band``             colour step the model adds at an image's edge (worst   lower
                            side; a band painted down one side), pixels
``grid_peak``               a pattern fixed to the generator's pixel grid: the     lower
                            outputs' spectral peaks at its period's harmonics
                            (about 1 = none), pixels
``style_acc``               share of outputs the classifier puts in the target     higher
``diversity_B``             mean pairwise perceptual distance between outputs of   higher
                            one input under different seeds (diverse models only)
==========================  =====================================================  ========

Reference statistics of the real images are cached on disk (see ``features.py``), so
evaluating every N training steps extracts them once. The global torch RNG is left untouched
(a resumed run stays bit-exact).

Usage::

    result = evaluate_model(Stylizer.from_pretrained(d), load_splits(root), split="val")
    result["metrics"]["fd_lite0"], result["pairs"]["photo->ukiyoe"]["metrics"]
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from culturegan.data.images import iter_image_batches, pil_to_tensor
from culturegan.data.splits import SPLIT_NAMES, DatasetSplits
from culturegan.fileio import write_json
from culturegan.inference import Stylizer
from culturegan.metrics.backbones import Backbone, get_backbone
from culturegan.metrics.classifier import StyleClassifier, predict
from culturegan.metrics.content import (
    added_band,
    grid_peaks,
    map_distance,
    pairwise_diversity,
    ssim,
)
from culturegan.metrics.features import folder_stats
from culturegan.metrics.registry import append_jsonl, higher_is_better
from culturegan.metrics.stats import FeatureStats, fd_from_stats, kernel_distance
from culturegan.notebook import esc, format_value, html_table, require_pandas

log = logging.getLogger("culturegan.metrics")


class EvaluationResult(dict):
    """What :func:`evaluate_model` returns: the dict it describes (written to JSON as it is),
    which Jupyter also shows as tables and a direction matrix, and which ``to_pandas()`` turns
    into one row per direction."""

    def to_pandas(self) -> Any:
        """One row per direction (index ``source->target``): inputs, references, every metric."""
        pd = require_pandas("EvaluationResult.to_pandas()")
        rows = [
            {
                "direction": key,
                "source": pair["source"],
                "target": pair["target"],
                "num_inputs": pair["num_inputs"],
                "num_reference": pair["num_reference"],
                **pair["metrics"],
            }
            for key, pair in self["pairs"].items()
        ]
        return pd.DataFrame(rows).set_index("direction")

    def _repr_html_(self) -> str:
        """Jupyter's view: the primary metric, a table per direction, the direction matrix."""
        primary = self.get("primary")
        value = self["metrics"].get(primary) if primary else None
        parts = [f"<div><b>evaluation on the {esc(self['split'])} split</b>"]
        if primary:
            parts.append(f"<p>primary metric {esc(primary)} = {esc(format_value(value))}</p>")
        names = sorted({m for pair in self["pairs"].values() for m in pair["metrics"]})
        rows = [
            [key, pair["num_inputs"], *(pair["metrics"].get(m) for m in names)]
            for key, pair in self["pairs"].items()
        ]
        parts.append(html_table(["direction", "inputs", *names], rows, caption="per direction"))
        if primary in self["matrices"]:
            parts.append(_matrix_html(self["matrices"], primary, higher_is_better(primary)))
        parts.append(
            html_table(
                ["backbone", "weights sha256", "preprocessing"],
                [
                    [name, str(info.get("weight_sha256", ""))[:12], info.get("preprocessing")]
                    for name, info in self["backbones"].items()
                ],
                caption="backbones",
            )
        )
        parts.extend(f"<p>note: {esc(note)}</p>" for note in self["notes"])
        return "".join(parts) + "</div>"


def _matrix_html(matrices: dict[str, Any], metric: str, higher_better: bool) -> str:
    """Source (rows) x target (columns) of ``metric``, shaded from bad (red) to good (green)."""
    domains = matrices["domains"]
    grid = matrices[metric]
    values = [v for row in grid for v in row if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    colours = []
    for row in grid:
        shades = []
        for v in row:
            if v is None:
                shades.append(None)
                continue
            good = (v - lo) / (hi - lo) if hi > lo else 0.5
            good = good if higher_better else 1 - good
            red, green = int(255 - 90 * good), int(165 + 90 * good)
            shades.append(f"#{red:02x}{green:02x}a5")
        colours.append(shades)
    return html_table(
        ["source \\ target", *domains],
        [[source, *row] for source, row in zip(domains, grid, strict=True)],
        caption=f"{metric} by direction (greener is better)",
        cell_colours=[[None, *row] for row in colours],
    )


def direction_pairs(stylizer: Any) -> list[tuple[str, str]]:
    """(source, target) pairs to evaluate: all ordered pairs for more than two domains."""
    domains = list(stylizer.domains)
    if len(domains) > 2:
        return [(s, t) for s in domains for t in domains if s != t]
    return [tuple(d.split("->", 1)) for d in stylizer.directions]


def pair_key(source: str, target: str) -> str:
    return f"{source}->{target}"


def flat_key(metric: str, source: str, target: str) -> str:
    # "->" is not allowed in TensorBoard tags; "_to_" is.
    return f"{metric}/{source}_to_{target}"


def _finite(value: Any) -> Any:
    """NaN and infinity -> None, recursively, so that the result is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _stylize(
    stylizer: Stylizer, images: list[Image.Image], src: str, tgt: str, *, batch_size: int, seed=None
) -> list[Image.Image]:
    # ``seed`` is None for models without a style code (they refuse one).
    return stylizer(images, source=src, target=tgt, batch_size=batch_size, seed=seed).images


def _distribution_metrics(
    key: str,
    name: str,
    out: FeatureStats,
    ref: FeatureStats,
    inp: FeatureStats,
    notes: list[str],
    num_refs: int,
) -> dict[str, float]:
    if out.n < 2 or ref.n < 2:
        notes.append(
            f"{key}: no fd/kd_{name}, they need 2+ images on each side "
            f"(outputs {out.n}, real target images {max(ref.n, num_refs)})"
        )
        return {}
    kd, kd_std = kernel_distance(out.kd_features, ref.kd_features)
    return {
        f"fd_{name}": fd_from_stats(out, ref),
        f"fd_{name}_inputs": fd_from_stats(inp, ref),
        f"kd_{name}": kd,
        f"kd_{name}_std": kd_std,
    }


def _save_example(folder: Path, rel_root: Path, name: str, image: Image.Image) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    image.save(path)
    return path.relative_to(rel_root).as_posix()


def _rng_neutral(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with the global torch RNGs (CPU and every CUDA device) saved and restored."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            return fn(*args, **kwargs)

    return wrapper


@_rng_neutral
def evaluate_model(
    stylizer: Stylizer,
    splits: DatasetSplits,
    *,
    split: str = "val",  # which split's images are stylized and compared
    backbones: Sequence[str | Backbone] = ("lite0",),  # feature networks, by registry name
    max_images: int | None = 64,  # source images per direction (first N, sorted); None = all
    max_reference: int | None = None,  # real target images for the statistics; None = all
    classifier: str | os.PathLike | Backbone | None = None,  # style classifier -> style_acc
    weights: dict[str, str] | None = None,  # backbone name -> weights path (e.g. inception)
    download: bool = False,  # allow downloading the Inception weights
    diversity_seeds: int = 4,  # outputs per input for diversity (diverse models only)
    diversity_images: int = 8,  # inputs per direction used for diversity
    batch_size: int = 8,  # images per stylizer / backbone call
    cache_dir: str | os.PathLike | None = None,  # reference statistics cache
    use_cache: bool = True,
    examples_dir: str | os.PathLike | None = None,  # save example inputs / outputs here
    num_examples: int = 4,  # examples per direction
    device: str = "cpu",
    progress: bool = False,
) -> EvaluationResult:
    """Stylize the ``split`` images of every direction and measure the results.

    Returns ``{"metrics": {flat name: float}, "pairs": {"src->tgt": {...}}, "matrices": ...,
    "backbones": ..., "primary": name, ...}``; ``metrics`` holds ``fd_lite0/photo_to_ink`` per
    direction and ``fd_lite0`` averaged over the directions that have it.
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, not '{split}'")
    if not backbones:
        raise ValueError("give at least one backbone (e.g. 'lite0')")
    weights = dict(weights or {})
    nets = {}
    for item in backbones:
        net = get_backbone(item, weights=weights.get(str(item)), download=download, device=device)
        nets[net.name] = net
    clf = None
    if classifier is not None:
        clf = get_backbone(
            classifier if isinstance(classifier, Backbone) else "classifier",
            weights=None if isinstance(classifier, Backbone) else classifier,
            device=device,
        )
    diverse = "seed" in stylizer.options  # the interface says whether outputs vary
    start = time.perf_counter()
    notes: list[str] = []
    pairs_out: dict[str, Any] = {}
    examples_root = Path(examples_dir) if examples_dir is not None else None
    for src, tgt in tqdm(direction_pairs(stylizer), disable=not progress, desc="directions"):
        if src not in splits.names or tgt not in splits.names:
            notes.append(f"{pair_key(src, tgt)}: skipped, domain not in the data")
            continue
        inputs = list(getattr(splits.domain(src), split))[:max_images]
        refs = list(getattr(splits.domain(tgt), split))[:max_reference]
        if not inputs:
            notes.append(f"{pair_key(src, tgt)}: skipped, no {split} images of '{src}'")
            continue
        pairs_out[pair_key(src, tgt)] = _evaluate_pair(
            stylizer,
            src,
            tgt,
            inputs,
            refs,
            nets=nets,
            clf=clf,
            diverse=diverse,
            diversity_seeds=diversity_seeds,
            diversity_images=diversity_images,
            batch_size=batch_size,
            cache_options={"cache_dir": cache_dir, "use_cache": use_cache},
            examples_root=examples_root,
            num_examples=num_examples,
            notes=notes,
        )
    if not pairs_out:
        raise ValueError(
            f"nothing to evaluate: {'; '.join(notes) or 'the model has no directions'}"
        )
    return EvaluationResult(
        _finite(_assemble(stylizer, split, nets, clf, pairs_out, notes, diverse, start))
    )


def _evaluate_pair(
    stylizer: Any,
    src: str,
    tgt: str,
    inputs: list[Path],
    refs: list[Path],
    *,
    nets: dict[str, Backbone],
    clf: Backbone | None,
    diverse: bool,
    diversity_seeds: int,
    diversity_images: int,
    batch_size: int,
    cache_options: dict[str, Any],
    examples_root: Path | None,
    num_examples: int,
    notes: list[str],
) -> dict[str, Any]:
    key = pair_key(src, tgt)
    ref_stats: dict[str, FeatureStats] = {}
    for name, net in nets.items():
        if len(refs) >= 2:
            ref_stats[name], _ = folder_stats(refs, net, batch_size=batch_size, **cache_options)
        else:
            ref_stats[name] = FeatureStats(net.dim)
    out_stats = {name: FeatureStats(net.dim) for name, net in nets.items()}
    in_stats = {name: FeatureStats(net.dim) for name, net in nets.items()}
    perceptual: dict[str, list[float]] = {name: [] for name in nets}
    ssims: list[float] = []
    bands: list[float] = []  # per output: the largest colour step it adds at one of its sides
    peaks: list[float] = []  # per output large enough: spectral peaks of the generator's grid
    period = max(2, stylizer.size_multiple)
    hits = total = 0
    target_index = None
    if clf is not None:
        classes = clf.net.classes if isinstance(clf.net, StyleClassifier) else []
        if tgt in classes:
            target_index = classes.index(tgt)
        else:
            notes.append(f"{key}: no style_acc, the classifier does not know '{tgt}'")
    examples: list[dict[str, Any]] = []
    kept: list[Image.Image] = []  # inputs reused for diversity
    seed = 0 if diverse else None
    folder = examples_root / f"{src}_to_{tgt}" if examples_root is not None else None
    unreadable: list[tuple[Path, str]] = []
    for files, pils in iter_image_batches(inputs, batch_size, skipped=unreadable):
        outs = _stylize(stylizer, pils, src, tgt, batch_size=batch_size, seed=seed)
        x_in = [pil_to_tensor(p) for p in pils]
        x_out = [pil_to_tensor(o) for o in outs]
        ssims += ssim(x_in, x_out).tolist()
        bands += added_band(x_out, x_in).tolist()
        large = [x for x in x_out if min(x.shape[-2:]) >= 2 * period]
        if large:
            peaks += grid_peaks(large, period=period).tolist()
        for name, net in nets.items():
            pooled_in, maps_in = net.extract(x_in)
            pooled_out, maps_out = net.extract(x_out)
            in_stats[name].update(pooled_in)
            out_stats[name].update(pooled_out)
            perceptual[name] += map_distance(maps_in, maps_out).tolist()
        if target_index is not None:
            hits += int((predict(clf, x_out) == target_index).sum())
            total += len(x_out)
        for img, out, path in zip(pils, outs, files, strict=True):
            if len(kept) < diversity_images:
                kept.append(img)
            if folder is not None and len(examples) < num_examples:
                stem = f"{len(examples):02d}"
                examples.append(
                    {
                        "source_file": str(path),
                        "input": _save_example(folder, examples_root.parent, f"{stem}_in.png", img),
                        "output": _save_example(
                            folder, examples_root.parent, f"{stem}_out.png", out
                        ),
                    }
                )
    if unreadable:
        for path, reason in unreadable:
            log.warning("skipped '%s': %s", path, reason)
        names = ", ".join(f"'{path.name}'" for path, _ in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        notes.append(f"{key}: skipped {len(unreadable)} unreadable input images ({names}{more})")

    metrics: dict[str, float] = {}
    if ssims:
        metrics.update(ssim=float(np.mean(ssims)), border_band=float(np.mean(bands)))
    if peaks:
        metrics["grid_peak"] = float(np.mean(peaks))
    for name in nets:
        stats = _distribution_metrics(
            key, name, out_stats[name], ref_stats[name], in_stats[name], notes, len(refs)
        )
        metrics.update(stats)
        if perceptual[name]:
            metrics[f"perceptual_{name}"] = float(np.mean(perceptual[name]))
            if f"fd_{name}" in stats:
                metrics[f"artfid_{name}"] = (1 + metrics[f"perceptual_{name}"]) * (
                    1 + stats[f"fd_{name}"]
                )
    if total:
        metrics["style_acc"] = hits / total
    if diverse and diversity_seeds >= 2 and kept:
        samples = [
            _stylize(stylizer, kept, src, tgt, batch_size=batch_size, seed=s)
            for s in range(diversity_seeds)
        ]
        for name, net in nets.items():
            per_input = [
                pairwise_diversity([pil_to_tensor(samples[s][i]) for s in range(len(samples))], net)
                for i in range(len(kept))
            ]
            metrics[f"diversity_{name}"] = float(np.mean(per_input))
        if folder is not None and examples:
            examples[0]["samples"] = [
                _save_example(folder, examples_root.parent, f"00_seed{s}.png", samples[s][0])
                for s in range(len(samples))
            ]
    return {
        "source": src,
        "target": tgt,
        "num_inputs": len(ssims),
        "num_reference": max([len(refs)] + [st.n for st in ref_stats.values()]),
        "metrics": metrics,
        "examples": examples,
    }


def _assemble(
    stylizer: Any,
    split: str,
    nets: dict[str, Backbone],
    clf: Backbone | None,
    pairs: dict[str, Any],
    notes: list[str],
    diverse: bool,
    start: float,
) -> dict[str, Any]:
    flat: dict[str, float] = {}
    names: list[str] = []
    for pair in pairs.values():
        for metric, value in pair["metrics"].items():
            flat[flat_key(metric, pair["source"], pair["target"])] = value
            if metric not in names:
                names.append(metric)
    for metric in names:
        values = [p["metrics"][metric] for p in pairs.values() if metric in p["metrics"]]
        if len(values) == len(pairs):  # an average over some directions would mislead
            flat[metric] = float(np.mean(values))
    domains = list(stylizer.domains)
    matrices = {"domains": domains}
    for metric in names:
        matrices[metric] = [
            [pairs.get(pair_key(s, t), {}).get("metrics", {}).get(metric) for t in domains]
            for s in domains
        ]
    first = next(iter(nets))
    primary = next((m for m in (f"artfid_{first}", f"fd_{first}", "ssim") if m in flat), None)
    described = {name: net.info() for name, net in nets.items()}
    if clf is not None:
        described["classifier"] = {**clf.info(), "classes": list(clf.net.classes)}
    return {
        "split": split,
        "primary": primary,
        "primary_higher_is_better": higher_is_better(primary) if primary else None,
        "metrics": flat,
        "pairs": pairs,
        "matrices": matrices,
        "backbones": described,
        "domains": domains,
        "diverse": diverse,
        "notes": notes,
        "time_s": time.perf_counter() - start,
    }


def record_eval(run_dir: str | os.PathLike, step: int, result: dict[str, Any]) -> bool:
    """Append ``result`` to ``run_dir/eval.jsonl``; update ``run_dir/eval_best.json`` when its
    primary metric is the best so far. Returns True for a new best step."""
    run_dir = Path(run_dir)
    primary = result.get("primary")
    value = result["metrics"].get(primary) if primary else None
    append_jsonl(
        run_dir / "eval.jsonl",
        {"step": step, "split": result["split"], "primary": primary, "metrics": result["metrics"]},
    )
    if value is None:
        return False
    best_path = run_dir / "eval_best.json"
    better = True
    if best_path.is_file():
        best = json.loads(best_path.read_text())
        if best.get("metric") == primary:
            old = best["value"]
            better = value > old if higher_is_better(primary) else value < old
    if better:
        write_json(
            best_path,
            {
                "step": step,
                "metric": primary,
                "value": value,
                "higher_is_better": higher_is_better(primary),
                "metrics": result["metrics"],
                "backbones": result.get("backbones", {}),
            },
        )
    return better
