"""What a run shows while it trains: JSONL log, TensorBoard events and PNG sample grids.

A run folder looks like::

    runs/003-cyclegan-ukiyoe/
      config.json          resolved config, written before step 0
      log.jsonl            one JSON record per logged step (losses, learning rates, speed)
      tb/                  TensorBoard event files (scalars and sample grids)
      samples/step_000500.png
      checkpoints/last.pt  resumable training state
      model/               exported pretrained folder (safetensors + config.json)

Usage::

    run_dir = new_run_dir("runs", "cyclegan-ukiyoe")
    logger = RunLogger(run_dir, start_step=0)
    logger.scalars(10, {"loss/g": 1.2})
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from culturegan.data.images import tensor_to_pil
from culturegan.fileio import WriteError


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """Create ``runs_dir/NNN-name`` with the next free number."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise NotADirectoryError(f"train.runs_dir '{runs_dir}' is a file, not a folder")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(runs_dir, f"cannot create train.runs_dir ({exc.strerror})") from exc
    numbers = [int(m.group(1)) for p in runs_dir.iterdir() if (m := re.match(r"(\d+)-", p.name))]
    number = max(numbers, default=-1) + 1
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    while True:  # another process may take the same number at the same time
        run_dir = runs_dir / f"{number:03d}-{safe}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            number += 1
        except OSError as exc:  # a read-only or full runs_dir
            raise WriteError(run_dir, f"cannot create the run folder ({exc.strerror})") from exc


def make_grid(images: torch.Tensor, rows: int, pad: int = 2) -> torch.Tensor:
    """Tile (N, 3, H, W) images in [-1, 1] row-major into one (3, H', W') image, white gaps."""
    n, c, h, w = images.shape
    cols = -(-n // rows)
    grid = torch.ones(c, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = images[i].clamp(-1, 1)
    return grid


class RunLogger:
    def __init__(self, run_dir: Path, *, start_step: int = 0, enabled: bool = True) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.writer = None
        if not enabled:
            return
        self.log_path = run_dir / "log.jsonl"
        self._truncate_after(start_step)
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run logged after its last checkpoint.
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step or None)

    def _truncate_after(self, step: int) -> None:
        """On resume, forget log records newer than the checkpoint we resume from."""
        if not self.log_path.exists():
            return
        kept = []
        for line in self.log_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
        self.log_path.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        try:  # appended, not replaced: a torn last line is dropped on resume (above)
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps({"step": step, **values}) + "\n")
        except OSError as exc:
            raise WriteError(self.log_path, exc.strerror or str(exc), exc.errno) from exc
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def image(self, step: int, name: str, grid: torch.Tensor) -> Path | None:
        """Save a (3, H, W) grid in [-1, 1] as PNG and to TensorBoard."""
        if not self.enabled:
            return None
        path = self.run_dir / "samples" / f"{name}_{step:06d}.png"
        path.parent.mkdir(exist_ok=True)
        tensor_to_pil(grid).save(path)
        self.writer.add_image(name, (grid.clamp(-1, 1) + 1) / 2, step)
        return path

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_log(run_dir: str | Path) -> list[dict]:
    """The JSONL records of a run (skipping a torn last line)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
