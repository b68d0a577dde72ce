"""The training loop shared by every recipe: run folder, data, logging, checkpoints, signals.

The loop owns *when* things happen (steps, logging, sampling, checkpoints, stopping); a recipe
owns *what* one step does (networks, losses, optimisers, G/D order). A run is resumable at any
checkpoint: the state file holds the recipe's state, every RNG and the step, and the data order
is a pure function of (seed, step), so ``N steps, kill, resume, N steps`` ends with the same
weights as ``2N`` straight steps. SIGINT and SIGTERM finish the current step, write a checkpoint
and return.

Usage::

    result = train(load_config("cyclegan_tiny", {"data.root": "data/"}))
    result = train(resume_dir=result.run_dir)
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from culturegan.checkpoint import (
    load_training_state,
    save_pretrained,
    save_training_state,
)
from culturegan.config import RunConfig, set_field
from culturegan.data.datasets import (
    MultiDomainBatchSampler,
    MultiDomainDataset,
    UnpairedBatchSampler,
    UnpairedDataset,
    load_eval_batch,
    target_weight_list,
)
from culturegan.data.palette import art_palette
from culturegan.data.splits import DatasetSplits, load_splits
from culturegan.fileio import folder_lock, write_json
from culturegan.models.fast import PaletteHead
from culturegan.training.cut import CUTRecipe
from culturegan.training.cyclegan import CycleGANRecipe
from culturegan.training.distill import DistillRecipe
from culturegan.training.distributed import DistContext, init_distributed
from culturegan.training.logger import RunLogger, new_run_dir
from culturegan.training.multidomain import MultiDomainRecipe
from culturegan.training.pix2pix import Pix2PixRecipe

log = logging.getLogger("culturegan.train")

RECIPES: dict[str, type] = {
    "cyclegan": CycleGANRecipe,
    "cut": CUTRecipe,
    "multidomain": MultiDomainRecipe,
    "distill": DistillRecipe,
    "pix2pix": Pix2PixRecipe,
}
CHECKPOINT_NAME = "checkpoints/last.pt"
SKIPPED_NAME = "skipped_files.json"


def list_recipes() -> list[str]:
    return sorted(RECIPES)


@dataclass
class TrainResult:
    run_dir: Path  # the run folder
    step: int  # the step reached (and checkpointed)
    finished: bool  # reached cfg.train.steps (or spent train.max_minutes) and exported
    stop_signal: int | None  # the signal that stopped the run early, if any


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available here")
    return device


def select_domains(cfg: RunConfig, splits: DatasetSplits) -> tuple[str, ...]:
    """The domains a recipe trains on, in order: as many as the recipe takes."""
    names = tuple(cfg.data.domains or splits.names)
    needed = RECIPES[cfg.train.recipe].n_domains
    if needed is None:
        if len(names) < 2:
            raise ValueError(f"recipe '{cfg.train.recipe}' needs at least two domains")
        for name in cfg.data.source_domains:
            source_index(names, name)  # names the culprit before anything is written
        target_weight_list(cfg.data.target_weights, names)
        return names
    if len(names) != needed:
        which = "SOURCE,TARGET" if needed == 2 else "SOURCE"
        raise ValueError(
            f"recipe '{cfg.train.recipe}' trains on {needed} domain{'s' * (needed > 1)}, but "
            f"'{splits.root}' has {len(splits.names)} ({', '.join(splits.names)}); "
            f"choose with --data.domains {which}"
        )
    return names


def source_index(domains: tuple[str, ...], name: str) -> int:
    """Index of a ``data.source_domains`` entry among the run's domains."""
    if name not in domains:
        raise ValueError(
            f"data.source_domains names '{name}', which is not a domain of this run "
            f"({', '.join(domains)})"
        )
    return domains.index(name)


def build_loader(
    cfg: RunConfig,
    splits: DatasetSplits,
    domains: tuple[str, ...],
    *,
    start_step: int,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """An endless DataLoader whose batches are a pure function of (seed, step); each of
    ``world`` data-parallel processes takes its ``rank``'s slice of every global batch."""
    files = [splits.domain(d).train for d in domains]
    transform = {
        "load_size": cfg.data.load_size,
        "crop_size": cfg.data.crop_size,
        "flip": cfg.data.flip,
        "trim": cfg.data.trim,
    }
    sampling = {
        "batch_size": cfg.train.batch_size // world,
        "seed": cfg.train.seed,
        "start_step": start_step,
        "rank": rank,
        "world_size": world,
    }
    if RECIPES[cfg.train.recipe].multi_domain:
        dataset = MultiDomainDataset(files, **transform)
        sources = [source_index(domains, d) for d in cfg.data.source_domains]
        weights = target_weight_list(cfg.data.target_weights, domains)
        sampler = MultiDomainBatchSampler(
            [len(f) for f in files], sources=sources, target_weights=weights, **sampling
        )
    else:  # one-domain recipes (distill) get their domain's images on both sides
        dataset = UnpairedDataset(files[0], files[-1], **transform)
        sampler = UnpairedBatchSampler(len(files[0]), len(files[-1]), **sampling)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=torch.cuda.is_available(),
        # Its own generator: creating the iterator must not draw from the global RNG, or a
        # resumed run would diverge from an uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )


def prepare_splits(cfg: RunConfig) -> DatasetSplits:
    if not cfg.data.root:
        raise ValueError("no dataset: set data.root (e.g. --data.root path/to/data)")
    splits = load_splits(
        cfg.data.root,
        domains=cfg.data.domains or None,
        ratios=tuple(cfg.data.split_ratios),
        seed=cfg.data.split_seed,
        manifest_path=cfg.data.manifest or None,
    )
    if splits.skipped:
        log.warning(
            "%d unreadable files skipped while scanning '%s' (all of them: %s in the run folder)",
            len(splits.skipped),
            splits.root,
            SKIPPED_NAME,
        )
    return splits


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (a second SIGINT aborts)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread signal() raises ValueError: signals stay with the caller.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal is not None:  # the same request again (train_many repeats it): said once
            return
        self.signal = signum
        print(
            f"\nculturegan: got {signal.Signals(signum).name}, saving a checkpoint after this step",
            file=sys.stderr,
        )

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(
    cfg: RunConfig | None = None,
    *,
    resume_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    until_step: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a new run from ``cfg``, or continue the run in ``resume_dir``.

    ``until_step`` stops (with a checkpoint) before the configured end, as an interruption
    would; ``overrides`` ({"train.steps": 4000}) change a resumed run's config. The run folder
    is locked while training (``fileio.folder_lock``): a second process on it is refused.
    """
    with contextlib.ExitStack() as locks:
        return _train(cfg, resume_dir, overrides, until_step, progress, locks)


def start_palette(recipe: Any, cfg: RunConfig, files: list[Path]) -> None:
    """``model.palette_init art``: every palette head of a new run (its EMA copies too) starts
    at the colours of the target's training images (:func:`culturegan.data.palette.art_palette`).
    Numpy's own seeded stream: torch's random state, and so the rest of the run, is untouched."""
    colours = art_palette(files, cfg.model.palette, trim=cfg.data.trim, seed=cfg.train.seed)
    # model.palette is for the cut and cyclegan recipes (RunConfig.validate): EMA dicts
    modules = [*recipe.networks().values(), *(e.module for e in recipe.ema.values())]
    for net in modules:
        for head in (m for m in net.modules() if isinstance(m, PaletteHead)):
            head.set_colors(colours)
    rgb = ((colours + 1) * 127.5).round().int().tolist()
    inks = " ".join(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb)
    log.info("palette heads start at the art's %d colours: %s", len(colours), inks)


def warm_up_kernels() -> None:
    """Call the transcendental kernels once, on every thread, before a run uses them.

    With several threads the first tanh of a process sometimes rounds differently from every
    later one (seen on an Intel Xeon with AVX-512, torch 2.13, 2 threads: the generator's first
    output differed in the last bits in half of the processes started). The same run started
    twice then drew two different pictures: photo -> ukiyo-e read 0.97 and 0.69 at 1600 steps
    (docs/quality.md, session 25). One call of each kernel on a tensor that every thread gets a
    share of makes the runs agree; it draws from its own generator, so the run's random state
    is untouched.
    """
    n = max(1 << 20, torch.get_num_threads() << 16)  # torch splits work in 32768-element grains
    x = torch.rand(n, generator=torch.Generator().manual_seed(0)) + 0.5
    for kernel in (torch.tanh, torch.sigmoid, torch.exp, torch.log, torch.sqrt, torch.erf):
        kernel(x)


def _train(
    cfg: RunConfig | None,
    resume_dir: str | Path | None,
    overrides: dict[str, Any] | None,
    until_step: int | None,
    progress: bool,
    locks: contextlib.ExitStack,
) -> TrainResult:
    warm_up_kernels()
    state = None
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no run folder '{run_dir}' to resume")
        cfg = load_run_config(run_dir)
        for dotted, value in (overrides or {}).items():
            if dotted.startswith("model.") or dotted in ("data.domains", "train.recipe"):
                raise ValueError(
                    f"--{dotted} cannot change on --resume: the checkpoint holds networks built "
                    "from the run's own config.json; start a new run instead"
                )
            set_field(cfg, dotted, value)
        state = load_training_state(run_dir / CHECKPOINT_NAME)
    elif cfg is None:
        raise ValueError("train() needs a config or a run folder to resume")

    if cfg.train.recipe not in RECIPES:
        raise ValueError(f"unknown recipe '{cfg.train.recipe}' (known: {', '.join(RECIPES)})")
    cfg.validate()
    ctx = init_distributed()
    if state is not None and ctx.is_main:  # before anything is written to the run folder
        locks.enter_context(folder_lock(run_dir))
    if cfg.train.batch_size % ctx.world_size:
        raise ValueError(
            f"train.batch_size {cfg.train.batch_size} is the global batch and must divide "
            f"evenly between {ctx.world_size} processes"
        )
    device = ctx.device if ctx.enabled else resolve_device(cfg.train.device)
    splits = prepare_splits(cfg)
    domains = select_domains(cfg, splits)

    torch.manual_seed(cfg.train.seed)
    recipe = RECIPES[cfg.train.recipe](cfg, device=device, domains=domains)
    if state is None and cfg.model.palette and cfg.model.palette_init == "art":
        start_palette(recipe, cfg, splits.domain(domains[-1]).train)
    step = 0
    if state is not None:
        if list(state["domains"]) != list(domains):
            raise ValueError(
                f"'{run_dir}' was trained on domains {state['domains']}, but the data now gives "
                f"{list(domains)}; set --data.domains to the original ones"
            )
        recipe.load_state_dict(state["recipe"])
        step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    multiple = recipe.export_config()["size_multiple"]
    if cfg.data.crop_size % multiple:
        raise ValueError(
            f"data.crop_size {cfg.data.crop_size} must be a multiple of {multiple} for "
            f"this {cfg.train.recipe} model"
        )
    if state is None:  # only now: a setting refused above leaves no empty run folder behind
        name = f"{cfg.train.recipe}-{cfg.train.name}" if cfg.train.name else cfg.train.recipe
        run_dir = ctx.broadcast(new_run_dir(cfg.train.runs_dir, name) if ctx.is_main else None)
        if ctx.is_main:
            locks.enter_context(folder_lock(run_dir))
    if ctx.is_main:  # only now: a resume that fails above leaves the run folder untouched
        try:
            write_json(run_dir / "config.json", cfg.to_dict())
        except OSError:
            if state is None:  # a new folder holding nothing but our lock: remove it
                (run_dir / ".lock").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
            raise
        if splits.skipped:  # every file the scan left out, with why (the log names a few)
            skipped = [{"file": str(path), "reason": why} for path, why in splits.skipped]
            write_json(run_dir / SKIPPED_NAME, skipped)
    if ctx.enabled:
        recipe.grad_hook = ctx.all_reduce_grads
        ctx.broadcast_parameters([*recipe.networks().values(), *recipe.export_modules().values()])
        # Each process draws its own noise (z, image pools) after the shared initialisation.
        torch.manual_seed(cfg.train.seed * 1000 + ctx.rank + step)

    loader = build_loader(
        cfg, splits, domains, start_step=step, rank=ctx.rank, world=ctx.world_size
    )
    # Fixed images for the sample grids: validation first, then test, then training images.
    samples = {
        name: load_eval_batch(
            d.val + d.test + d.train, cfg.train.num_samples, crop_size=cfg.data.crop_size
        )
        for name, d in ((n, splits.domain(n)) for n in domains)
    }

    logger = RunLogger(run_dir, start_step=step, enabled=ctx.is_main)
    end = cfg.train.steps if until_step is None else min(until_step, cfg.train.steps)

    def checkpoint() -> None:
        if not ctx.is_main:
            return
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        save_training_state(
            run_dir / CHECKPOINT_NAME,
            {"step": step, "domains": list(domains), "recipe": recipe.state_dict(), "rng": rng},
        )

    evaluating = cfg.train.eval_every > 0
    t_last, steps_since = time.perf_counter(), 0
    deadline = t_last + 60 * cfg.train.max_minutes if cfg.train.max_minutes > 0 else None
    out_of_time = False
    with (
        _StopFlag() as stop,
        tqdm(
            total=cfg.train.steps,
            initial=step,
            disable=not (progress and ctx.is_main),
            desc=run_dir.name,
            unit="step",
        ) as bar,
    ):
        batches = iter(loader)
        # Every process stops at the same step when any of them got a signal.
        while step < end and not ctx.any(stop.signal is not None):
            if deadline is not None and ctx.any(time.perf_counter() > deadline):
                out_of_time = True
                break
            losses = recipe.train_step(next(batches), step)
            step += 1
            steps_since += 1
            bar.update(1)
            if step % cfg.train.log_every == 0 or step == end:
                losses = ctx.mean(losses)  # the loss of the global batch
                now = time.perf_counter()
                speed = (now - t_last) / steps_since
                t_last, steps_since = now, 0
                logger.scalars(step, {**losses, **recipe.learning_rates(), "time/step_s": speed})
                shown = ("loss/g", "loss/d", "loss/d_a", "loss/d_b")
                bar.set_postfix(
                    {k.split("/")[-1]: f"{v:.3f}" for k, v in losses.items() if k in shown}
                )
            if ctx.is_main and (step % cfg.train.sample_every == 0 or step == end):
                logger.image(step, "samples", recipe.sample_grid(samples))
            if ctx.is_main and evaluating and (step % cfg.train.eval_every == 0 or step == end):
                evaluate(cfg, recipe, splits, run_dir, step, logger)
            if step % cfg.train.checkpoint_every == 0 and step < end:
                checkpoint()
        checkpoint()
    if ctx.enabled:
        check_replicas(ctx, recipe, run_dir)
    finished = step >= cfg.train.steps or out_of_time
    if out_of_time:
        log.info("train.max_minutes (%g) spent at step %d", cfg.train.max_minutes, step)
    if finished and ctx.is_main:
        save_pretrained(run_dir / "model", recipe.export_modules(), recipe.export_config())
        if hasattr(recipe, "gap"):  # distillation: how close the student came to its teacher
            held_out = splits.domain(domains[0])
            images = load_eval_batch(
                held_out.test + held_out.val or held_out.train, 64, crop_size=cfg.data.crop_size
            )
            write_json(run_dir / "distill_gap.json", recipe.gap(images))
    logger.close()
    ctx.barrier()
    return TrainResult(run_dir=run_dir, step=step, finished=finished, stop_signal=stop.signal)


def evaluate(
    cfg: RunConfig, recipe: Any, splits: DatasetSplits, run_dir: Path, step: int, logger: RunLogger
) -> None:
    """Measure the EMA model on ``cfg.train.eval_split``; keep the best step's model."""
    from culturegan.inference import Stylizer
    from culturegan.metrics import evaluate_model, record_eval

    config = recipe.export_config()
    stylizer = Stylizer.from_modules(recipe.export_modules(), config, device=recipe.device)
    result = evaluate_model(
        stylizer,
        splits,
        split=cfg.train.eval_split,
        backbones=tuple(cfg.train.eval_backbones),
        max_images=cfg.train.eval_max_images,
        device=str(recipe.device),
    )
    logger.scalars(step, {f"eval/{k}": v for k, v in result["metrics"].items()})
    if record_eval(run_dir, step, result):
        save_pretrained(run_dir / "model_best", recipe.export_modules(), config)
        log.info("step %d: best %s so far", step, result["primary"])


def check_replicas(ctx: DistContext, recipe: Any, run_dir: Path) -> None:
    """Record (rank 0: ``ddp_check.json``) whether every process ended with the same weights."""
    checksums = ctx.replica_checksums(recipe.networks().values())
    in_sync = max(checksums) - min(checksums) <= 1e-6 * max(1.0, abs(checksums[0]))
    if ctx.is_main:
        write_json(
            run_dir / "ddp_check.json",
            {"world_size": ctx.world_size, "checksums": checksums, "in_sync": in_sync},
        )
        if not in_sync:
            log.warning("data-parallel replicas diverged: parameter checksums %s", checksums)


def load_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"'{run_dir}' is not a run folder: no config.json")
    return RunConfig.from_dict(json.loads(path.read_text()))


def export_run(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Export the EMA generators of a run's last checkpoint as a pretrained folder."""
    run_dir = Path(run_dir)
    if Path(out_dir).resolve() == run_dir.resolve():  # its config.json would replace the run's
        raise ValueError(f"--out '{out_dir}' is the run folder itself; give a new folder")
    cfg = load_run_config(run_dir)
    state = load_training_state(run_dir / CHECKPOINT_NAME)
    domains = tuple(state["domains"])
    recipe = RECIPES[cfg.train.recipe](cfg, device=torch.device("cpu"), domains=domains)
    recipe.load_state_dict(state["recipe"])
    return save_pretrained(out_dir, recipe.export_modules(), recipe.export_config())
