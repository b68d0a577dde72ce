"""Command-line adapters of the metrics: ``evaluate``, ``metrics fd|kd``, ``train-classifier``.

:func:`register` adds the three subcommands to the ``culturegan`` parser and returns their
handlers; each handler only parses, calls a tested library function and prints. Bad input
raises ValueError / FileNotFoundError with a message, which ``culturegan.cli.main`` prints.

Usage::

    handlers = register(parser.add_subparsers(dest="command"))
    exit_code = handlers[args.command](args)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got '{text}'"
        ) from None


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names separated by commas")
    return names


def _add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        help="statistics cache (default $CULTUREGAN_CACHE/stats or ~/.cache/culturegan/stats)",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument(
        "--download",
        action="store_true",
        help="allow downloading the Inception weights to the torch hub cache",
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add ``evaluate``, ``metrics`` and ``train-classifier``; return name -> handler."""
    # Backbone names are checked by the handlers: the registry imports torch, and building the
    # parser (`culturegan --help`) must not.
    p = subparsers.add_parser("evaluate", help="measure a model on a data split, write a page")
    p.add_argument("--model", required=True, help="pretrained model folder")
    p.add_argument("--data", required=True, help="dataset root (same layouts as training)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="folder for metrics.json, index.html, examples")
    p.add_argument(
        "--backbones",
        type=_names,
        default=["lite0"],
        help="comma-separated feature networks (see `culturegan list`); default: lite0",
    )
    p.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="weights of a backbone (a bare PATH is for inception); repeatable",
    )
    p.add_argument("--classifier", help="style classifier folder: adds style_acc")
    p.add_argument("--max-images", type=int, default=64, help="inputs per direction (0 = all)")
    p.add_argument("--max-reference", type=int, default=0, help="real images (0 = all)")
    p.add_argument("--examples", type=int, default=4, help="example pictures per direction")
    p.add_argument(
        "--diversity-seeds",
        type=int,
        default=4,
        help="outputs per input for diversity (diverse models)",
    )
    p.add_argument("--split-ratios", type=_floats, default=[0.8, 0.1, 0.1])
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--manifest", help="split manifest (default ROOT/culturegan_split.json)")
    _add_cache_options(p)

    p = subparsers.add_parser("metrics", help="compare two image folders (fd or kd)")
    p.add_argument("metric", choices=("fd", "kd"), help="fd: Fréchet distance, kd: kernel distance")
    p.add_argument("a_dir", help="first image folder")
    p.add_argument("b_dir", help="second image folder")
    p.add_argument("--backbone", default="lite0", help="feature network (see `culturegan list`)")
    p.add_argument("--weights", help="backbone weights file (classifier: its folder)")
    p.add_argument("--jsonl", help="also append the record to this JSONL file")
    p.add_argument("--subsets", type=int, default=100, help="kd: random subsets")
    p.add_argument("--subset-size", type=int, default=1000, help="kd: rows per subset")
    p.add_argument(
        "--max-kd-rows",
        type=int,
        default=10_000,
        help="feature rows kept per set for kd (random subset beyond that)",
    )
    _add_cache_options(p)

    p = subparsers.add_parser("train-classifier", help="train the style classifier on lite0")
    p.add_argument("--data", required=True, help="dataset root; one class per domain")
    p.add_argument("--out", required=True, help="folder to write the classifier to")
    p.add_argument("--domains", type=_names, help="classes, comma-separated (default: all)")
    p.add_argument("--split-ratios", type=_floats, default=[0.8, 0.1, 0.1])
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=256, help="hidden units (0 = linear head)")
    p.add_argument(
        "--finetune-blocks", type=int, default=0, help="also train the last N lite0 blocks (slower)"
    )
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")

    return {
        "evaluate": cmd_evaluate,
        "metrics": cmd_metrics,
        "train-classifier": cmd_train_classifier,
    }


def _check_backbones(names: list[str], flag: str) -> None:
    from culturegan.metrics.backbones import list_backbones

    known = list_backbones()
    for name in names:
        if name not in known:
            raise ValueError(f"{flag}: unknown backbone '{name}' (known: {', '.join(known)})")


def _parse_weights(items: list[str]) -> dict[str, str]:
    weights = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = "inception", item
        _check_backbones([name], f"--weights {item}")
        weights[name] = path
    return weights


def cmd_evaluate(args: argparse.Namespace) -> int:
    from culturegan.data.splits import load_splits
    from culturegan.fileio import write_json
    from culturegan.inference import Stylizer
    from culturegan.metrics.evaluate import evaluate_model
    from culturegan.metrics.report_page import write_eval_page

    _check_backbones(args.backbones, "--backbones")  # before any loading: bad flags fail at once
    weights = _parse_weights(args.weights)
    stylizer = Stylizer.from_pretrained(args.model, device=args.device)
    splits = load_splits(
        args.data,
        domains=stylizer.domains,
        ratios=args.split_ratios,
        seed=args.split_seed,
        manifest_path=args.manifest,
    )
    out = Path(args.out)
    result = evaluate_model(
        stylizer,
        splits,
        split=args.split,
        backbones=args.backbones,
        max_images=args.max_images or None,
        max_reference=args.max_reference or None,
        classifier=args.classifier,
        weights=weights,
        download=args.download,
        diversity_seeds=args.diversity_seeds,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        examples_dir=out / "examples",
        num_examples=args.examples,
        device=args.device,
        progress=not args.no_progress,
    )
    result["model"], result["data"] = str(args.model), str(args.data)
    write_json(out / "metrics.json", result)
    page = write_eval_page(out / "index.html", result, model=str(args.model), data=str(args.data))
    for key, pair in result["pairs"].items():
        shown = ", ".join(f"{m} {v:.4g}" for m, v in pair["metrics"].items() if v is not None)
        print(f"{key}: {shown}")
    for name, info in result["backbones"].items():
        print(f"backbone {name}: sha256 {info['weight_sha256'][:12]}, {info['preprocessing']}")
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"metrics: {out / 'metrics.json'}\npage: {page}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from culturegan.metrics.registry import append_jsonl, compute_metric

    _check_backbones([args.backbone], "--backbone")
    for folder in (args.a_dir, args.b_dir):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"image folder '{folder}' does not exist")
    options = (
        {"num_subsets": args.subsets, "subset_size": args.subset_size}
        if args.metric == "kd"
        else {}
    )
    record = compute_metric(
        args.metric,
        args.a_dir,
        args.b_dir,
        backbone=args.backbone,
        weights=args.weights,
        download=args.download,
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        max_kd_rows=args.max_kd_rows,
        progress=not args.no_progress,
        **options,
    )
    if args.jsonl:
        append_jsonl(args.jsonl, record.to_dict())
    std = f" ± {record.extra['std']:.3g}" if "std" in record.extra else ""
    print(
        f"{record.metric} = {record.value:.6g}{std}  ({record.backbone}@"
        f"{record.weight_sha256[:12]}, {record.num_a} vs {record.num_b} images)"
    )
    if "warning" in record.extra:
        print(f"warning: {record.extra['warning']}")
    print(json.dumps(record.to_dict(), sort_keys=True))
    return 0


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from culturegan.metrics.classifier import train_classifier

    report = train_classifier(
        args.data,
        args.out,
        domains=args.domains,
        ratios=args.split_ratios,
        split_seed=args.split_seed,
        hidden=args.hidden,
        finetune_blocks=args.finetune_blocks,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    print(report.summary())
    return 0
