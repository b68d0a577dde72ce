"""``culturegan demo``: the whole pipeline on embedded data, offline, in minutes on a CPU.

1. Build a small dataset: crops of the colour photos that ship inside scikit-image, and
   procedurally generated "cultures" (``culturegan.data.synthetic``: ink wash, woodblock,
   impasto; clearly labelled synthetic, stand-ins for real artworks, which we may not ship).
2. Train one multi-domain model on all of them (``multidomain_tiny``), or with
   ``recipe="cyclegan"`` a two-domain CycleGAN (photo <-> one style).
3. Stylize held-out photos (pictures never seen in training) into every culture, and draw the
   inputs x cultures grid.
4. Write ``index.html``: the grid, before/after pictures, training images, loss curves and
   figures, and (multi-domain) a link to the analysis of the synthetic cultures.

Usage::

    page = run_demo(Path("culturegan-demo"))
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from culturegan.config import load_config
from culturegan.data.images import load_image, pil_to_tensor, scan_images
from culturegan.data.synthetic import ART_STYLES, build_demo_dataset
from culturegan.grid import style_grid
from culturegan.inference import Stylizer, stylize_paths
from culturegan.report import esc, img, section, svg_line_chart, table, write_page
from culturegan.training import TrainResult, train
from culturegan.training.logger import read_log

DEMO_STEPS = {"multidomain": 550, "cyclegan": 800}  # about 3.5 and 2.5 minutes on 2 cores
DEMO_MARKER = ".culturegan-demo"  # only folders under a marked --out are ever deleted
# multidomain_demo (the few-shot parts on multidomain_tiny) was measured slower and no better
# at this budget (docs/quality.md), so the demo keeps multidomain_tiny.
DEMO_PRESETS = {"multidomain": "multidomain_tiny", "cyclegan": "cyclegan_tiny"}
CURVES = {
    "multidomain": [
        ("discriminator", ("loss/d",)),
        ("generator adversarial", ("loss/g_adv",)),
        ("style reconstruction, cycle", ("loss/style", "loss/cycle")),
        ("diversity (maximised), own style", ("loss/diversity", "loss/own_style")),
    ],
    "cyclegan": [
        ("generator objective (total)", ("loss/g",)),
        ("adversarial (G)", ("loss/g_gan_ab", "loss/g_gan_ba")),
        ("cycle consistency L1", ("loss/cycle_a", "loss/cycle_b")),
        ("discriminators", ("loss/d_a", "loss/d_b")),
    ],
}


class DemoInterrupted(RuntimeError):
    """Training stopped early (SIGINT/SIGTERM); its checkpoint is in ``result.run_dir``."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__(f"demo training stopped at step {result.step}")
        self.result = result


def run_demo(
    out_dir: Path,
    *,
    fast: bool = False,
    steps: int | None = None,
    recipe: str = "multidomain",
    style: str = "woodblock",
    progress: bool = True,
) -> Path:
    """Run the demo into ``out_dir`` and return the path of its HTML page."""
    if recipe not in DEMO_PRESETS:
        raise ValueError(f"unknown demo recipe '{recipe}' (known: {', '.join(DEMO_PRESETS)})")
    if recipe == "cyclegan" and style not in ART_STYLES:
        raise ValueError(f"unknown synthetic style '{style}' (known: {', '.join(ART_STYLES)})")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    size = 32 if fast else 64
    data_root = out_dir / "data"
    marker = out_dir / DEMO_MARKER
    stale = [p for p in (data_root, out_dir / "stylized") if p.exists()]
    if stale and not marker.exists():
        raise ValueError(
            f"'{stale[0]}' exists and was not made by culturegan demo; choose another --out"
        )
    for folder in stale:  # rebuilt each time, so they match the seed
        shutil.rmtree(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by culturegan demo: its data/ and stylized/ are rebuilt each run\n")
    styles = tuple(ART_STYLES) if recipe == "multidomain" else (style,)
    counts = {"photos": 12, "art_per_style": 12, "heldout_photos": 4} if fast else {}
    build_demo_dataset(data_root, size=size, styles=styles, seed=0, **counts)
    domains = ["photo", *styles]
    n_steps = steps if steps is not None else (6 if fast else DEMO_STEPS[recipe])
    overrides = {
        "data.root": str(data_root),
        "data.domains": domains,
        "data.load_size": size + size // 8,
        "data.crop_size": size,
        "train.steps": n_steps,
        "train.runs_dir": str(out_dir / "runs"),
        "train.name": f"demo-{'-'.join(styles) if recipe == 'cyclegan' else 'cultures'}",
        "train.log_every": max(1, min(10, n_steps // 4)),
        "train.sample_every": max(1, n_steps // 4),
        "train.checkpoint_every": max(1, n_steps // 2),
    }
    if fast:
        overrides.update({"model.ngf": 8, "model.ndf": 8, "model.max_channels": 32})
    cfg = load_config(DEMO_PRESETS[recipe], overrides)
    t_train = time.perf_counter()
    result = train(cfg, progress=progress)
    if not result.finished:
        raise DemoInterrupted(result)
    train_seconds = time.perf_counter() - t_train

    model_dir = result.run_dir / "model"
    stylizer = Stylizer.from_pretrained(model_dir)
    heldout = data_root / "_heldout_photos"
    photos = scan_images(heldout, check="none").files
    targets = styles if recipe == "multidomain" else (style,)
    stylized: dict[str, dict[str, Path]] = {}
    for target in targets:
        summary = stylize_paths(
            [heldout],
            model_dir=model_dir,
            out_dir=out_dir / "stylized" / target,
            source="photo",
            target=target,
            progress=False,
        )
        stylized[target] = {p.stem: p for p in summary.written}
    grid = style_grid(stylizer, photos[:4], targets=list(targets), samples=2 if recipe ==
                      "multidomain" else 1, cell=96)  # fmt: skip
    grid_path = out_dir / "grid.png"
    grid.save(grid_path)

    judged = judge_demo(stylized, size=size)
    network = cfg.model.generator if recipe == "cyclegan" else "style generator"
    analysis = {}
    if recipe == "multidomain":
        analysis = analyze_synthetic_cultures(data_root, out_dir / "analysis", size=size)
    total_seconds = time.perf_counter() - t_start
    return write_demo_page(
        out_dir,
        run_dir=result.run_dir,
        recipe=recipe,
        data_root=data_root,
        domains=domains,
        photos=photos,
        stylized=stylized,
        grid_path=grid_path,
        analysis=analysis,
        figures={
            "model": f"{recipe} ({network})",
            "domains": ", ".join(domains),
            "training steps": result.step,
            "image size": f"{size} x {size} px",
            "training time": f"{train_seconds:.1f} s",
            **judged,
            "whole demo": f"{total_seconds:.1f} s",
        },
    )


def judge_demo(stylized: dict[str, dict[str, Path]], *, size: int) -> dict[str, str]:
    """The demo measures itself: the share of stylized held-out photos that an independent
    style classifier assigns to each target culture.

    The classifier is :func:`culturegan.metrics.judge.fit_judge` on ImageNet EfficientNet-Lite1
    features (no training loss or discriminator looks through Lite1), fitted on images made
    afresh for it: new crops of the training photos and synthetic art drawn with seeds the
    training set does not use, plus a reject class of generated artifacts (noise, flat colour,
    stripes) so that a broken output cannot pass for a culture.
    """
    import numpy as np

    from culturegan.data.synthetic import TRAIN_PHOTOS, make_art_image, make_photo_crops
    from culturegan.metrics.judge import ARTIFACT_CLASS, artifact_images, fit_judge, judge_scores

    n = 24

    def seeds(offset: int) -> list[int]:  # the dataset uses SeedSequence([0, i]), i < 10_000
        return [int(np.random.SeedSequence([0, offset + i]).generate_state(1)[0]) for i in range(n)]

    classes: dict = {
        "photo": [pil_to_tensor(im) for im in make_photo_crops(TRAIN_PHOTOS, n, size, 7)]
    }
    for k, style in enumerate(stylized):
        art = [make_art_image(style, s, size) for s in seeds(10_000 * (k + 1))]
        classes[style] = [pil_to_tensor(im) for im in art]
    classes[ARTIFACT_CLASS] = artifact_images(n, size=size, seed=0)
    judge = fit_judge(classes, backbone="lite1", folds=3)
    cv = judge.cross_validated_accuracy
    figures = {
        "judge (Lite1 classifier on freshly made images)": (
            f"{len(classes)} classes, cross-validated accuracy "
            + ("n/a" if cv is None else f"{cv:.0%}")
        )
    }
    for target, outputs in stylized.items():
        scores = judge_scores(judge, sorted(outputs.values()), target)
        figures[f"held-out photos judged {target}"] = (
            f"{scores['hit_rate']:.0%} of {scores['n']} (mean p {scores['mean_target_prob']:.2f})"
        )
    return figures


def analyze_synthetic_cultures(data_root: Path, report_dir: Path, *, size: int) -> dict:
    """The cultural difference study of the training domains: headline figures and its page."""
    from culturegan.culture.demo import analyze_demo_cultures

    result = analyze_demo_cultures(report_dir, data_root=data_root, size=size)
    figures = {"images analysed": ", ".join(f"{k}: {v}" for k, v in result.cultures.items())}
    if result.classifier_accuracy is not None:
        figures["classifier on interpretable descriptors (cross-validated)"] = (
            f"{result.classifier_accuracy:.0%} accuracy (chance {result.classifier_chance:.0%})"
        )
    if result.embedding_accuracy is not None:
        figures["classifier on lite0 embeddings (cross-validated)"] = (
            f"{result.embedding_accuracy:.0%}"
        )
    figures["descriptor differences with q < 0.05 (Benjamini-Hochberg)"] = (
        f"{result.n_significant} of {result.n_tests} (culture pair x descriptor) tests"
    )
    figures["analysis time"] = f"{result.seconds:.1f} s"
    return {"figures": figures, "page": result.index_html}


def write_demo_page(
    out_dir: Path,
    *,
    run_dir: Path,
    recipe: str,
    data_root: Path,
    domains: list[str],
    photos: list[Path],
    stylized: dict[str, dict[str, Path]],
    grid_path: Path,
    analysis: dict,
    figures: dict[str, object],
) -> Path:
    def rel(p: Path) -> str:
        return p.resolve().relative_to(out_dir.resolve()).as_posix()

    records = read_log(run_dir)
    if records:
        last = records[-1]
        figures = {
            **figures,
            "seconds per step (last interval)": f"{last.get('time/step_s', float('nan')):.3f}",
        }
        figures.update({f"final {k}": f"{v:.3f}" for k, v in last.items() if k.startswith("loss/")})

    def curve(keys: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
        return {k.split("/")[-1]: [(r["step"], r[k]) for r in records if k in r] for k in keys}

    charts = "".join(svg_line_chart(curve(keys), title=title) for title, keys in CURVES[recipe])
    targets = list(stylized)
    rows = []
    for photo in photos:
        outputs = [stylized[t].get(photo.stem) for t in targets]
        if None in outputs:
            continue
        w, h = load_image(photo).size
        rows.append(
            [img(rel(photo), alt="photo", width=128)]
            + [img(rel(o), alt=t, width=128) for o, t in zip(outputs, targets, strict=True)]
            + [f"{w} x {h}"]
        )
    examples = [
        [esc(name)]
        + [img(rel(p), alt=name, width=64) for p in scan_images(data_root / name).files[:8]]
        for name in domains
    ]
    samples = sorted((run_dir / "samples").glob("*.png"))
    model_dir = run_dir / "model"
    body = [
        '<p class="note"><b>Synthetic art.</b> The art domains (' + esc(", ".join(targets)) + ") "
        "are procedurally generated by <code>culturegan.data.synthetic</code> as stand-ins for "
        "real artworks; the photos are scikit-image's bundled sample photos. Held-out photos "
        "are pictures the model never saw in training.</p>",
        section(
            "Held-out photos x cultures",
            "<p>One row per held-out photo; columns: the photo, then each culture"
            + (" (two noise seeds each)" if recipe == "multidomain" else "")
            + ".</p>",
            img(rel(grid_path), alt="grid of photos and cultures"),
        ),
        section("Figures", table(["figure", "value"], [[k, v] for k, v in figures.items()])),
        section(
            "Held-out photos, before and after",
            table(["photo", *[f"-> {t}" for t in targets], "size"], rows, raw=True),
        ),
    ]
    if analysis:
        body.append(
            section(
                "The synthetic cultures, measured",
                table(["measure", "value"], [list(kv) for kv in analysis["figures"].items()]),
                f'<p><a href="{esc(rel(analysis["page"]))}">The full analysis report</a> '
                "(descriptors, effect sizes, distances, classifiers, map).</p>",
            )
        )
    body += [
        section("Training images", table(["domain"] + [""] * 8, examples, raw=True)),
        section("Training curves", f'<div class="charts">{charts}</div>'),
    ]
    if samples:
        body.append(
            section(
                "Last sample grid (EMA networks)",
                img(rel(samples[-1]), alt="sample grid", width=min(900, 96 * (len(domains) + 1))),
            )
        )
    body.append(
        section(
            "Files and commands",
            table(
                ["what", "where"],
                [
                    ["run folder (config, log, TensorBoard, checkpoints)", str(run_dir)],
                    ["pretrained model", str(model_dir)],
                ],
            ),
            f"<pre>culturegan stylize YOUR_PHOTOS/ --model {esc(model_dir)} "
            f"--target {esc(targets[0])} --out out/\n"
            f"culturegan grid a.jpg b.jpg --model {esc(model_dir)} --out grid.png\n"
            f"tensorboard --logdir {esc(run_dir / 'tb')}</pre>",
        )
    )
    title = (
        "culturegan demo: one model, photo + synthetic cultures"
        if recipe == "multidomain"
        else f"culturegan demo: photo -> {targets[0]} (synthetic)"
    )
    return write_page(
        out_dir / "index.html",
        title,
        body,
        subtitle="Trained on this machine's CPU from embedded data, offline.",
    )
