"""The ``analyze`` and ``analyze-transfer`` commands, as a plug-in for ``culturegan.cli``.

:func:`register` adds both sub-commands to the main parser's subparsers and returns their
handlers; each handler parses nothing itself, calls one tested library function and prints
where the report is. Bad input raises ValueError / FileNotFoundError with a message.

Usage (in culturegan/cli.py)::

    COMMANDS.update(culture_cli.register(sub))
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

# culture.descriptors.DEFAULT_SIZE, written out: importing the descriptors would import scipy for
# `culturegan --help` (tests/test_cli_imports.py keeps the two equal).
DEFAULT_SIZE = 256


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"expected comma-separated names, got '{text}'")
    return names


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="report folder (created)")
    p.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help="working resolution: shorter side in pixels (default: %(default)s)",
    )
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="skip the learned features (backbone embedding, Gram summaries)",
    )
    p.add_argument("--backbone", default="lite0", help="feature backbone (default: %(default)s)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="descriptor processes (default: all usable CPU cores)",
    )
    p.add_argument(
        "--cache", default="default", help="descriptor cache folder (default: OUT/cache)"
    )
    p.add_argument("--no-cache", action="store_true", help="compute everything afresh")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``analyze`` and ``analyze-transfer``; return {command: handler}."""
    p = subparsers.add_parser(
        "analyze",
        help="measure how the art of cultures differs (descriptors, statistics, report)",
        description="ROOT holds one folder per culture (ROOT/<culture>/...). Writes "
        "descriptors.csv, summary.json and index.html into --out.",
    )
    p.add_argument("root", help="folder with one sub-folder of artworks per culture")
    _common(p)
    p.add_argument("--cultures", help="comma-separated culture folders (default: all)")
    p.add_argument(
        "--manifest",
        help="CSV with a 'path' column and e.g. artist, year, genre "
        "(default: ROOT/manifest.csv when present)",
    )
    p.add_argument("--by", help="manifest column: compare only within each of its values")
    p.add_argument(
        "--thumbnails",
        type=int,
        default=24,
        help="images per culture shown in the report (default: %(default)s)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where the per-image work runs: local processes, or a Dask cluster "
        "(needs culturegan[scale]; default: %(default)s)",
    )
    p.add_argument(
        "--scheduler",
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask; "
        "default: start a local cluster of --workers processes)",
    )
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--perm", type=int, default=1000, help="permutations per descriptor test")
    p.add_argument(
        "--perm-distance", type=int, default=200, help="permutations per embedding distance test"
    )
    p.add_argument("--title", default="Cultural difference study", help="report title")

    p = subparsers.add_parser(
        "analyze-transfer",
        help="stylize photos into each culture and measure how far they moved toward it",
    )
    p.add_argument("--model", required=True, help="pretrained model folder")
    p.add_argument("--photos", required=True, help="folder of photos to stylize")
    p.add_argument("--art", required=True, help="ROOT with one folder of real art per culture")
    _common(p)
    p.add_argument("--source", help="the photos' domain in the model (default: photo)")
    p.add_argument("--targets", help="comma-separated target domains (default: all with art)")
    p.add_argument("--max-photos", type=int, default=None, help="use only the first N photos")
    return {"analyze": cmd_analyze, "analyze-transfer": cmd_analyze_transfer}


def _cache(args: argparse.Namespace):
    return None if args.no_cache else args.cache


def cmd_analyze(args: argparse.Namespace) -> int:
    from culturegan.culture.analysis import analyze_cultures
    from culturegan.culture.compare import CompareSettings

    settings = CompareSettings(
        n_boot=args.boot, n_perm=args.perm, n_perm_distance=args.perm_distance, seed=args.seed
    )
    result = analyze_cultures(
        args.root,
        args.out,
        size=args.size,
        cultures=_names(args.cultures),
        manifest=args.manifest,
        by=args.by,
        embeddings=not args.no_embeddings,
        backbone=args.backbone,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        cache_dir=_cache(args),
        thumbnails_per_culture=args.thumbnails,
        settings=settings,
        title=args.title,
        progress=not args.no_progress,
    )
    print(result.headline())
    speed = result.throughput
    print(
        f"images: {speed['images']} in {speed['seconds']:.1f} s "
        f"({speed['images_per_second']:.1f} images/s; {speed['computed']} computed, "
        f"{speed['from_cache']} from the cache) on {speed['executor']}"
    )
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"report: {result.index_html.resolve()}")
    return 0


def cmd_analyze_transfer(args: argparse.Namespace) -> int:
    from culturegan.culture.transfer import analyze_transfer

    result = analyze_transfer(
        args.model,
        args.photos,
        args.art,
        args.out,
        source=args.source,
        targets=_names(args.targets),
        size=args.size,
        embeddings=not args.no_embeddings,
        backbone=args.backbone,
        max_photos=args.max_photos,
        cache_dir=_cache(args),
        workers=args.workers,
        seed=args.seed,
        progress=not args.no_progress,
    )
    for target, share in result.gap_closed.items():
        shown = "n/a" if share is None else f"{share:.0%}"
        print(
            f"{target}: descriptor gap closed {shown}, "
            f"classified as {target}: {result.classified_as_target[target]:.0%}"
        )
    print(f"report: {result.index_html.resolve()}")
    return 0
