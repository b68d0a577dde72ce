"""The ``culturegan`` command: parse arguments, build a config, call the library.

Every command is a thin adapter over a tested Python function; no maths happens here.

Usage::

    culturegan demo
    culturegan train --config cyclegan_tiny --data.root data/ --train.steps 2000
    culturegan stylize photos/ --model runs/000-cyclegan/model --out stylized/
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from culturegan import __version__


def _parser() -> argparse.ArgumentParser:
    from culturegan.commands import FINISH_SETTINGS_HELP, add_shifts_argument, finish_argument
    from culturegan.config import add_override_arguments
    from culturegan.finish import FINISHES

    parser = argparse.ArgumentParser(
        prog="culturegan", description="GAN style transfer across cultures."
    )
    parser.add_argument("--version", action="version", version=f"culturegan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build synthetic data, train a small model, write a page")
    p.add_argument("--out", default="culturegan-demo", help="output folder (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="a few seconds instead of minutes (tests)")
    p.add_argument("--no-train", action="store_true", help="only the shipped models, no training")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the preset)")
    p.add_argument(
        "--recipe",
        default="fewshot",
        choices=["fewshot", "multidomain", "cyclegan"],
        help="one small model per synthetic culture (default), one multi-domain model for all "
        "of them, or a photo<->style CycleGAN",
    )
    p.add_argument("--style", default="woodblock", help="the style a cyclegan demo learns")

    p = sub.add_parser("train", help="train a model (or resume a run)")
    p.add_argument("--config", help="YAML file or preset name (see `culturegan list`)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_override_arguments(p)

    p = sub.add_parser("distill", help="train a fast student to imitate a two-domain model")
    p.add_argument("--teacher", required=True, help="pretrained model folder to imitate")
    p.add_argument("--config", default="distill_fast", help="preset (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_override_arguments(p)

    p = sub.add_parser("stylize", help="apply a model to images and folders")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--style", help="a shipped culture model (see `culturegan models`)")
    p.add_argument("--model", help="model folder, shipped model name or Hub id org/name")
    p.add_argument("--revision", help="Hub models: branch, tag or commit")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--source", help="source domain (default: the model's first direction)")
    p.add_argument("--target", help="target domain")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--tile",
        type=int,
        help="run in overlapping tiles of N px (bounded memory; default: automatic above "
        "1536 x 1536 pixels; 0 = never)",
    )
    p.add_argument(
        "--tileable", action="store_true", help="seamless wrap-around output (game textures)"
    )
    p.add_argument(
        "--no-alpha",
        action="store_true",
        help="lay transparent inputs over white (default: outputs keep the input's alpha)",
    )
    p.add_argument(
        "--finish",
        type=finish_argument,
        metavar="{" + ",".join(sorted(FINISHES)) + "}[:KEY=VALUE,...]",
        help="redraw the output in a medium's terms: 'print' = flat inks and keyblock lines "
        "from the photo's contours (woodblock prints, ukiyo-e); 'ink' = the output's paper, "
        "washes by area and brush lines (Chinese ink); 'paint' = the output's colours laid as "
        "brush strokes along the photo's contours (impressionist painting)" + FINISH_SETTINGS_HELP,
    )
    add_shifts_argument(p)
    multi = p.add_argument_group("multi-domain models")
    multi.add_argument(
        "--seed", type=int, help="noise seed of the style code (default: the average style)"
    )
    multi.add_argument("--samples", type=int, default=1, help="renderings per input")
    multi.add_argument("--reference", help="take the style from this image")
    multi.add_argument("--strength", type=float, default=1.0, help="0 = own style .. 1 = target")
    multi.add_argument("--mix", help="blend domains, e.g. ukiyoe:0.5,chinese_ink:0.5")

    p = sub.add_parser("grid", help="a labelled picture: inputs x target domains")
    p.add_argument("inputs", nargs="+", help="image files")
    p.add_argument("--model", required=True, help="pretrained model folder")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--targets", help="comma-separated domains (default: all)")
    p.add_argument("--samples", type=int, default=1, help="renderings per domain")
    p.add_argument(
        "--seed", type=int, help="first noise seed (default: the average style; samples from 0)"
    )
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--cell", type=int, default=128, help="picture size in the grid (px)")

    p = sub.add_parser("export", help="export a run's EMA generators as a pretrained folder")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True)

    p = sub.add_parser("import-cyclegan", help="convert an official CycleGAN generator .pth")
    p.add_argument("checkpoint", help="e.g. latest_net_G.pth or style_ukiyoe.pth")
    p.add_argument("--out", required=True, help="pretrained folder to write")
    p.add_argument("--domains", default="photo,style", help="SOURCE,TARGET names")

    sub.add_parser("models", help="list the models that ship with culturegan")

    p = sub.add_parser("push-to-hub", help="upload a model folder to the Hugging Face Hub")
    p.add_argument("model_dir", help="pretrained model folder")
    p.add_argument("repo_id", help="org/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--revision", help="branch to commit to (created if needed)")
    p.add_argument("--message", help="commit message")

    p = sub.add_parser("info", help="describe a model (folder, shipped name or Hub id)")
    p.add_argument("model_dir")

    p = sub.add_parser("fetch", help="download a real dataset (CycleGAN zips, WikiArt, museums)")
    fetch = p.add_subparsers(dest="dataset", required=True)
    q = fetch.add_parser("cyclegan", help="an official CycleGAN dataset, extracted (trainA/ ...)")
    cyclegan_names = ["monet2photo", "vangogh2photo", "ukiyoe2photo", "cezanne2photo"]
    q.add_argument("name", choices=cyclegan_names)
    q.add_argument("--keep-zip", action="store_true", help="keep the zip after extracting it")
    q = fetch.add_parser("wikiart", help="WikiArt images by style (needs culturegan[fetch])")
    q.add_argument("--styles", required=True, help="comma-separated, e.g. Ukiyo_e,Impressionism")
    q.add_argument("--max-per-style", type=int, help="images per style (default: all)")
    q = fetch.add_parser("museum", help="public-domain / CC0 works from a museum's open API")
    q.add_argument("museum", choices=["met", "aic", "cleveland"])
    q.add_argument("--culture", help='e.g. "Japan": matched against culture / place of origin')
    q.add_argument("--query", help="search words (default: the culture)")
    q.add_argument("--max", type=int, default=100, help="images from this museum in --out")
    q.add_argument("--delay", type=float, help="seconds between requests (default: per museum)")
    for q in fetch.choices.values():
        q.add_argument("--out", required=True, help="output folder")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list presets, recipes and networks")
    for plugin in PLUGINS:
        COMMANDS.update(plugin.register(sub))
    return parser


def _plugins() -> list:
    """Command groups (each has ``register``): light modules, so ``--help`` imports no torch."""
    from culturegan import commands, tune
    from culturegan.culture import cli as culture_cli
    from culturegan.metrics import cli as metrics_cli
    from culturegan.web import cli as web_cli

    return [metrics_cli, culture_cli, commands, tune, web_cli]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="culturegan: %(message)s",
    )
    from culturegan.checkpoint import CheckpointError
    from culturegan.data.images import ImageLoadError
    from culturegan.fileio import FolderLockedError
    from culturegan.hub import HubError

    try:
        return COMMANDS[args.command](args)
    except (
        ValueError,
        OSError,  # a missing input, a full disk, a read-only folder (fileio.WriteError)
        CheckpointError,
        ImageLoadError,
        HubError,
        FolderLockedError,
    ) as exc:
        print(f"culturegan {args.command}: error: {exc}", file=sys.stderr)
        return 2


def cmd_train(args: argparse.Namespace) -> int:
    from culturegan.config import collect_overrides, load_config
    from culturegan.training import train

    overrides = collect_overrides(args)
    if args.resume:
        if args.config:
            raise ValueError("--resume takes the config from the run folder; drop --config")
        if args.dry_run:
            from culturegan.training.loop import load_run_config

            print(load_run_config(args.resume).to_json())
            return 0
        result = train(resume_dir=args.resume, overrides=overrides, progress=not args.no_progress)
    else:
        cfg = load_config(args.config, overrides)
        print(cfg.to_json())
        if args.dry_run:
            return 0
        result = train(cfg, progress=not args.no_progress)
    if result.stop_signal is not None:
        print(
            f"stopped at step {result.step}; checkpoint saved. "
            f"Resume with: culturegan train --resume {result.run_dir}"
        )
        return 128 + result.stop_signal
    print(f"run folder: {result.run_dir}")
    if result.finished:
        print(f"model: {result.run_dir / 'model'}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from culturegan.config import collect_overrides, load_config
    from culturegan.training import train

    overrides = {
        **collect_overrides(args),
        "train.recipe": "distill",
        "model.teacher": args.teacher,
    }
    cfg = load_config(args.config, overrides)
    print(cfg.to_json())
    if args.dry_run:
        return 0
    result = train(cfg, progress=not args.no_progress)
    print(f"run folder: {result.run_dir}")
    gap = result.run_dir / "distill_gap.json"
    if gap.is_file():
        print(f"student vs teacher on held-out photos: {gap.read_text().strip()}")
        print(f"model: {result.run_dir / 'model'}")
    return 0 if result.stop_signal is None else 128 + result.stop_signal


def cmd_stylize(args: argparse.Namespace) -> int:
    from culturegan.apply import stylize_paths
    from culturegan.zoo import card_notes, model_from_options

    model_dir, target = model_from_options(
        style=args.style, model=args.model, revision=args.revision, target=args.target
    )
    summary = stylize_paths(
        args.inputs,
        model_dir=model_dir,
        out_dir=args.out,
        source=args.source,
        target=target,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        samples=args.samples,
        reference=args.reference,
        strength=args.strength,
        mix=args.mix,
        tile=args.tile,
        tileable=args.tileable,
        keep_alpha=not args.no_alpha,
        finish=args.finish,
        shifts=args.shifts,
    )
    print(summary.report())
    card_notes(args.style, finish=args.finish, shifts=args.shifts)
    return 0 if summary.written else 1


def cmd_models(args: argparse.Namespace) -> int:
    from culturegan.zoo import list_shipped

    models = list_shipped()
    if not models:
        print("this installation ships no models")
        return 0
    print(f"{'name':<28} {'domains':<34} {'size':>8}  judge hit  SSIM   kd_lite0  finish")

    def number(value: object) -> float:
        return float(value) if isinstance(value, (int, float)) else float("nan")

    for m in (m for m in models if m.task == "style transfer"):
        hit, ssim, kd = (number(m.card.get(k)) for k in ("judge_hit_rate", "ssim_grey", "kd_lite0"))
        size = m.size_bytes / 1e6
        line = f"{m.name:<28} {' -> '.join(m.domains):<34} {size:>6.1f} MB  {hit:>9.2f}  {ssim:.2f}"
        print(f"{line}   {kd:.3f}     {m.finish or '-'}")
    for m in (m for m in models if m.task != "style transfer"):
        size = m.size_bytes / 1e6
        psnr, base = number(m.card.get("psnr_model")), number(m.card.get("psnr_classical"))
        print(f"{m.name:<28} {' -> '.join(m.domains):<34} {size:>6.1f} MB  {m.task}: PSNR "
              f"{psnr:.2f} dB (classical {base:.2f} dB)")  # fmt: skip
    print("use: culturegan stylize PHOTO --style NAME --out OUT/  (card: culturegan info NAME)")
    return 0


def cmd_push_to_hub(args: argparse.Namespace) -> int:
    from culturegan.hub import push_to_hub

    url = push_to_hub(
        args.model_dir, args.repo_id, private=args.private, revision=args.revision,
        commit_message=args.message,
    )  # fmt: skip
    print(f"uploaded {args.model_dir} -> {url}")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from culturegan.fileio import atomic_write
    from culturegan.grid import style_grid
    from culturegan.inference import Stylizer

    out = Path(args.out)
    if out.resolve() in {Path(p).resolve() for p in args.inputs}:
        raise ValueError(f"--out '{out}' is one of the inputs; outputs never replace inputs")
    stylizer = Stylizer.from_pretrained(args.model)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    picture = style_grid(
        stylizer,
        args.inputs,
        targets=targets,
        samples=args.samples,
        seed=args.seed,
        strength=args.strength,
        cell=args.cell,
    )
    atomic_write(out, lambda tmp: picture.save(tmp, format="PNG"))
    print(f"grid: {out} ({picture.width} x {picture.height})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from culturegan.training import export_run

    print(f"model: {export_run(args.run_dir, args.out)}")
    return 0


def cmd_import_cyclegan(args: argparse.Namespace) -> int:
    from culturegan.importers import import_cyclegan

    names = [n.strip() for n in args.domains.split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError(f"--domains takes SOURCE,TARGET, got '{args.domains}'")
    out = import_cyclegan(args.checkpoint, args.out, domains=(names[0], names[1]))
    print(f"model: {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from culturegan.checkpoint import load_pretrained
    from culturegan.inference import Stylizer
    from culturegan.zoo import CARD_NAME, resolve_model

    model_dir = resolve_model(args.model_dir)
    config, tensors = load_pretrained(model_dir)
    Stylizer.from_pretrained(model_dir)  # the weights fit the config, or a clear error
    n_params = sum(t.numel() for t in tensors.values())
    print(json.dumps(config, indent=2))
    print(f"domains: {', '.join(config['domains'])}")
    print(f"directions: {', '.join(config['directions'])}")
    print(f"parameters: {n_params:,}")
    if (model_dir / CARD_NAME).is_file():
        print(f"model card: {model_dir / CARD_NAME}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from culturegan.config import list_presets
    from culturegan.metrics.backbones import list_backbones
    from culturegan.models import list_discriminators, list_generators
    from culturegan.training import list_recipes

    print("presets:        " + ", ".join(list_presets()))
    print("recipes:        " + ", ".join(list_recipes()))
    print("generators:     " + ", ".join(list_generators()))
    print("discriminators: " + ", ".join(list_discriminators()))
    print("backbones:      " + ", ".join(list_backbones()))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from culturegan.data.fetch import FetchError, fetch_cyclegan, fetch_museum, fetch_wikiart

    progress = not args.no_progress
    try:
        if args.dataset == "cyclegan":
            result = fetch_cyclegan(args.name, args.out, keep_zip=args.keep_zip, progress=progress)
        elif args.dataset == "wikiart":
            styles = [s.strip() for s in args.styles.split(",") if s.strip()]
            result = fetch_wikiart(
                styles, args.out, max_per_style=args.max_per_style, progress=progress
            )
        else:
            result = fetch_museum(
                args.museum, args.out, culture=args.culture, query=args.query,
                max_images=args.max, delay=args.delay, progress=progress,
            )  # fmt: skip
    except FetchError as exc:  # no network, a refused download, a missing extra
        print(f"culturegan fetch: error: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from culturegan.demo import DemoInterrupted, run_demo

    try:
        page = run_demo(
            Path(args.out),
            no_train=args.no_train,
            fast=args.fast,
            steps=args.steps,
            recipe=args.recipe,
            style=args.style,
        )
    except DemoInterrupted as exc:
        resume = "; ".join(f"culturegan train --resume {r.run_dir}" for r in exc.stopped)
        print(f"{exc}; " + (f"continue with: {resume}" if resume else "run the demo again"))
        return 128 + exc.stop_signal
    print(f"demo page: {page.resolve()}")
    return 0


PLUGINS = _plugins()
COMMANDS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "distill": cmd_distill,
    "stylize": cmd_stylize,
    "models": cmd_models,
    "push-to-hub": cmd_push_to_hub,
    "grid": cmd_grid,
    "export": cmd_export,
    "import-cyclegan": cmd_import_cyclegan,
    "info": cmd_info,
    "list": cmd_list,
    "fetch": cmd_fetch,
}

if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
