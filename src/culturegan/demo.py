"""``culturegan demo``: the whole pipeline on embedded data, offline, in a few minutes on a CPU.

1. Build a small two-domain dataset: crops of the colour photos that ship inside scikit-image,
   and a procedurally generated art domain (``culturegan.data.synthetic``, clearly labelled
   synthetic: it stands in for real artworks, which we may not ship).
2. Train the ``cyclegan_tiny`` preset on it.
3. Stylize held-out photos (different pictures from the training photos) with the exported model.
4. Write ``index.html``: before/after pictures, training images, loss curves, figures.

Usage::

    page = run_demo(Path("culturegan-demo"))
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from culturegan.config import load_config
from culturegan.data.images import load_image, scan_images
from culturegan.data.synthetic import ART_STYLES, build_demo_dataset
from culturegan.inference import stylize_paths
from culturegan.report import esc, img, section, svg_line_chart, table, write_page
from culturegan.training import TrainResult, train
from culturegan.training.logger import read_log

DEMO_STEPS = 800  # about 2 minutes on 2 CPU cores at 64 px, batch 4


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
    style: str = "woodblock",
    progress: bool = True,
) -> Path:
    """Run the demo into ``out_dir`` and return the path of its HTML page."""
    if style not in ART_STYLES:
        raise ValueError(f"unknown synthetic style '{style}' (known: {', '.join(ART_STYLES)})")
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    size = 32 if fast else 64
    data_root = out_dir / "data"
    if data_root.exists():  # rebuilt from scratch each time, so it always matches the seed
        shutil.rmtree(data_root)
    build_demo_dataset(data_root, size=size, styles=(style,), seed=0)
    n_steps = steps if steps is not None else (6 if fast else DEMO_STEPS)
    cfg = load_config(
        "cyclegan_tiny",
        {
            "data.root": str(data_root),
            "data.domains": ["photo", style],
            "data.load_size": size + size // 8,
            "data.crop_size": size,
            "train.steps": n_steps,
            "train.runs_dir": str(out_dir / "runs"),
            "train.name": f"demo-{style}",
            "train.log_every": max(1, min(10, n_steps // 4)),
            "train.sample_every": max(1, n_steps // 4),
            "train.checkpoint_every": max(1, n_steps // 2),
        },
    )
    t_train = time.perf_counter()
    result = train(cfg, progress=progress)
    if not result.finished:
        raise DemoInterrupted(result)
    train_seconds = time.perf_counter() - t_train

    model_dir = result.run_dir / "model"
    heldout = data_root / "_heldout_photos"
    stylized_dir = out_dir / "stylized"
    if stylized_dir.exists():
        shutil.rmtree(stylized_dir)
    summary = stylize_paths([heldout], model_dir=model_dir, out_dir=stylized_dir, progress=False)
    total_seconds = time.perf_counter() - t_start
    return write_demo_page(
        out_dir,
        run_dir=result.run_dir,
        data_root=data_root,
        style=style,
        heldout=heldout,
        stylized=summary.written,
        figures={
            "training steps": result.step,
            "image size": f"{size} x {size} px",
            "training time": f"{train_seconds:.1f} s",
            "whole demo": f"{total_seconds:.1f} s",
        },
    )


def _sample_files(folder: Path, count: int) -> list[Path]:
    return scan_images(folder, check="none").files[:count]


def write_demo_page(
    out_dir: Path,
    *,
    run_dir: Path,
    data_root: Path,
    style: str,
    heldout: Path,
    stylized: list[Path],
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
            "final generator loss": f"{last['loss/g']:.3f}",
            "final cycle loss (A, B)": f"{last['loss/cycle_a']:.3f}, {last['loss/cycle_b']:.3f}",
            "final discriminator losses (A, B)": f"{last['loss/d_a']:.3f}, {last['loss/d_b']:.3f}",
        }

    def curve(*keys: str) -> dict[str, list[tuple[float, float]]]:
        return {k.split("/")[-1]: [(r["step"], r[k]) for r in records if k in r] for k in keys}

    charts = "".join(
        [
            svg_line_chart(curve("loss/g"), title="generator objective (total)"),
            svg_line_chart(curve("loss/g_gan_ab", "loss/g_gan_ba"), title="adversarial (G)"),
            svg_line_chart(curve("loss/cycle_a", "loss/cycle_b"), title="cycle consistency L1"),
            svg_line_chart(curve("loss/d_a", "loss/d_b"), title="discriminators"),
        ]
    )
    pairs = []
    stylized_by_stem = {p.stem: p for p in stylized}
    for photo in _sample_files(heldout, 12):
        out = stylized_by_stem.get(photo.stem)
        if out is None:
            continue
        w, h = load_image(photo).size
        pairs.append(
            [
                img(rel(photo), alt="photo", width=160),
                img(rel(out), alt=style, width=160),
                f"{w} x {h}",
            ]
        )
    examples = [
        [esc(name)] + [img(rel(p), alt=name, width=80) for p in _sample_files(data_root / name, 8)]
        for name in ("photo", style)
    ]
    samples = sorted((run_dir / "samples").glob("*.png"))
    model_dir = run_dir / "model"
    body = [
        '<p class="note"><b>Synthetic art.</b> The "' + esc(style) + '" domain is procedurally '
        "generated by <code>culturegan.data.synthetic</code> as a stand-in for real artworks; "
        "the photos are scikit-image's bundled sample photos. Held-out photos are pictures the "
        "model never saw in training.</p>",
        section("Figures", table(["", ""], [[k, v] for k, v in figures.items()])),
        section(
            "Held-out photos, before and after",
            table(["photo", f"photo -> {style}", "size"], pairs, raw=True),
        ),
        section("Training images", table(["domain"] + [""] * 8, examples, raw=True)),
        section("Training curves", f'<div class="charts">{charts}</div>'),
    ]
    if samples:
        body.append(
            section(
                "Last sample grid",
                "<p>Rows: photo, photo -> art, reconstruction; art, art -> photo, "
                "reconstruction (EMA generators).</p>",
                img(rel(samples[-1]), alt="sample grid", width=min(900, 160 * 4)),
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
            f"<pre>culturegan stylize YOUR_PHOTOS/ --model {esc(model_dir)} --out out/\n"
            f"tensorboard --logdir {esc(run_dir / 'tb')}</pre>",
        )
    )
    return write_page(
        out_dir / "index.html",
        f"culturegan demo: photo -> {style} (synthetic)",
        body,
        subtitle="CycleGAN trained on this machine's CPU from embedded data.",
    )
