"""``culturegan studio``: start the local web studio (the ``[studio]`` extra).

Usage::

    culturegan studio --models my_models/ --port 7860 --token s3cret
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("culturegan.web")

# pip name -> the modules that provide it (python-multipart renamed its module in 0.0.13)
STUDIO_PACKAGES = {
    "fastapi": ("fastapi",),
    "uvicorn": ("uvicorn",),
    "jinja2": ("jinja2",),
    "python-multipart": ("python_multipart", "multipart"),
}


def _missing_packages() -> list[str]:
    import importlib.util

    def found(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module blocked or half-installed
            return False

    return [
        name
        for name, modules in STUDIO_PACKAGES.items()
        if not any(found(module) for module in modules)
    ]


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_studio(args: argparse.Namespace) -> int:
    missing = _missing_packages()
    if missing:
        raise ValueError(f"the studio needs {', '.join(missing)}: pip install 'culturegan[studio]'")
    for name, value, low in (
        ("--port", args.port, 0),
        ("--workers", args.workers, 1),
        ("--max-pixels", args.max_pixels, 1),
    ):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not args.max_upload_mb > 0:
        raise ValueError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    import torch
    import uvicorn

    from culturegan.web.app import StudioSettings, create_app

    settings = StudioSettings(
        model_dirs=[Path(p) for p in args.models],
        runs_dir=Path(args.runs),
        reports_dir=Path(args.reports) if args.reports else None,
        token=args.token,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        workers=args.workers,
        allowed_hosts=LOOPBACK_NAMES | {args.host} if _is_loopback(args.host) else None,
    )
    # Workers share the cores: each model call gets its share of threads, not all of them.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    app = create_app(settings)
    if not _is_loopback(args.host):
        log.warning(
            "the studio listens on %s: anyone who can reach this machine can use it%s",
            args.host,
            "" if args.token else " (no --token set)",
        )
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    query = "?token=" + args.token if args.token else ""
    print(f"culturegan studio: http://{shown}:{args.port}/{query}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def register(subparsers: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``studio`` to the ``culturegan`` parser; returns {command: handler}."""
    p = subparsers.add_parser("studio", help="start the local web studio (needs [studio])")
    p.add_argument(
        "--models", nargs="*", default=[], metavar="DIR",
        help="model folders, or folders of model folders, to offer besides the shipped ones",
    )  # fmt: skip
    p.add_argument("--runs", default="runs", help="offer runs' models from DIR/*/model")
    p.add_argument("--reports", help="browse HTML reports and runs under DIR (default: --runs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=7860, help="(default: %(default)s)")
    p.add_argument("--token", help="require this token on every request (?token=, header)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="per file")
    p.add_argument(
        "--max-pixels", type=int, default=4096 * 4096, help="largest image accepted, in pixels"
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="model calls at once")
    return {"studio": cmd_studio}
