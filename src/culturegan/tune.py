"""``culturegan tune``: choose hyper-parameters and networks by short trainings, judged.

Each trial draws values for the fields of a search space (a YAML file, below) with Optuna
(Akiba et al., KDD 2019; TPE sampler), trains the config with them for ``--minutes-per-trial``
of wall-clock time in ``--rungs`` equal parts, and after each part scores the exported model
on the **validation split** the way the quality benchmark does: an independent judge (logistic
regression on ImageNet EfficientNet-Lite1 features, which no training loss looks through) is
fitted on the validation art of every domain and half of the validation photos; the other half
of the photos is stylized into each target domain and scored by

    score = mean over targets of (hit rate + mean target probability) / 2
            - 2 * max(0, min_ssim - grey SSIM to the input)

so a trial that wins by destroying the photo is penalised. The judge also knows a reject class
of generated noise, flat colour, blobs and stripes (``artifact``, as in the quality benchmark),
and ``--judge-domains`` adds the validation images of further domain folders as classes (other
cultures): with two domains alone a two-class judge calls anything that is not a photo the
culture. Trial 0 of a new study is the config's own values (when they lie in the space): the
baseline, measured in the same run (``--no-baseline`` to skip). Optuna's median pruner stops a
trial whose score after a part is below the median of earlier trials at the same part. The
study lives in an SQLite file (``OUT/study.db``): run the same command again and it goes on
to ``--trials`` in all. ``OUT/report.md`` holds the best settings, the trial table and the
parameters' importance; ``OUT/best.yaml`` the best overrides, ready for ``--config``.

Search space file::

    loss.lambda_content: {float: [0.5, 8.0], log: true}
    loss.lambda_gan: {float: [0.1, 1.0]}
    model.generator: {choices: [mobile_unet_6blocks, mobile_resnet_6blocks]}
    train.batch_size: {int: [1, 4]}

Usage::

    culturegan tune --config fewshot_cpu --data.root DATA --data.domains photo,ukiyoe \\
        --trials 12 --minutes-per-trial 5 --space space.yaml --out tune/
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from culturegan.config import RunConfig, load_config, set_field

SPACE_KINDS = ("float", "int", "choices")


def load_space(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read and check a search space file; errors name the file and the field."""
    path = Path(path)
    try:
        space = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"search space '{path}': {exc}") from None
    if not isinstance(space, dict) or not space:
        raise ValueError(f"search space '{path}' must map section.field names to ranges")
    probe = load_config()
    for name, spec in space.items():
        kinds = [k for k in SPACE_KINDS if isinstance(spec, dict) and k in spec]
        if len(kinds) != 1:
            raise ValueError(
                f"search space '{path}': {name} needs exactly one of {', '.join(SPACE_KINDS)}"
            )
        kind = kinds[0]
        values = spec[kind]
        if kind == "choices" and (not isinstance(values, list) or not values):
            raise ValueError(f"search space '{path}': {name}: choices must be a non-empty list")
        if kind != "choices" and (
            not isinstance(values, list) or len(values) != 2 or not values[0] < values[1]
        ):
            raise ValueError(f"search space '{path}': {name}: {kind} needs [low, high], low < high")
        sample = values[0]
        set_field(probe, name, sample, source=f"search space '{path}'")  # a real field
    return space


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per field of the space from an Optuna trial."""
    params = {}
    for name, spec in space.items():
        if "float" in spec:
            low, high = spec["float"]
            params[name] = trial.suggest_float(name, low, high, log=bool(spec.get("log")))
        elif "int" in spec:
            low, high = spec["int"]
            params[name] = trial.suggest_int(name, low, high, log=bool(spec.get("log")))
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


def baseline_params(cfg: RunConfig, space: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The config's own values of the space's fields, or None if one lies outside the space."""
    params = {}
    for name, spec in space.items():
        section, _, key = name.partition(".")
        value = getattr(getattr(cfg, section), key)
        if "choices" in spec:
            if value not in spec["choices"]:
                return None
        else:
            low, high = spec["float"] if "float" in spec else spec["int"]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            if not low <= value <= high or ("int" in spec and value != int(value)):
                return None
            value = float(value) if "float" in spec else int(value)
        params[name] = value
    return params


def combined_score(per_target: dict[str, dict[str, float]], min_ssim: float) -> float:
    """(hit rate + mean target probability) / 2 averaged over targets, minus the SSIM penalty."""
    values = []
    for scores in per_target.values():
        style = 0.5 * (scores["hit_rate"] + scores["mean_target_prob"])
        values.append(style - 2.0 * max(0.0, min_ssim - scores["ssim_grey"]))
    return sum(values) / len(values)


class ValidationScorer:
    """Fits the judge once on the validation split and scores a model folder."""

    def __init__(
        self,
        cfg: RunConfig,
        *,
        backbone: str,
        seed: int,
        judge_domains: Sequence[str] = (),
    ) -> None:
        from culturegan.data.images import load_image, pil_to_tensor
        from culturegan.metrics.judge import ARTIFACT_CLASS, artifact_images, fit_judge
        from culturegan.training.loop import prepare_splits

        data_root, domains = cfg.data.root, list(cfg.data.domains)
        extra = [n for n in judge_domains if n not in domains]
        if ARTIFACT_CLASS in extra:
            raise ValueError(f"--judge-domains: '{ARTIFACT_CLASS}' is the judge's reject class")
        # The split the trials train on (the same manifest, one split per file: loading further
        # domains beside the trained ones leaves theirs as it is).
        wider = copy.deepcopy(cfg)
        if domains:
            wider.data.domains = [*domains, *extra]
        splits = prepare_splits(wider)
        self.source = domains[0] if domains else splits.names[0]
        names = domains or list(splits.names)
        extra = [n for n in extra if n not in names]
        if not domains and extra:  # every folder is trained on: these are not folders
            raise ValueError(f"--judge-domains: no domain folder {extra} under {data_root}")
        photos = sorted(splits.domain(self.source).val)
        if len(photos) < 4:
            raise ValueError(
                f"tune needs at least 4 validation images of '{self.source}' under {data_root} "
                f"(found {len(photos)}); raise data.split_ratios' middle share"
            )
        self.test_photos = photos[1::2]  # stylized and scored
        judge_files: dict[str, Any] = {n: sorted(splits.domain(n).val) for n in [*names, *extra]}
        judge_files[self.source] = photos[0::2]
        empty = [n for n, files in judge_files.items() if not files]
        if empty:
            raise ValueError(f"no validation images for {', '.join(empty)} under {data_root}")
        # The reject class: as many as the largest class, at most 60 (the benchmark's count).
        count = min(60, max(len(files) for files in judge_files.values()))
        judge_files[ARTIFACT_CLASS] = artifact_images(count, seed=seed)
        self.targets = [n for n in names if n != self.source]
        self.judge = fit_judge(judge_files, backbone=backbone, seed=seed, folds=3)
        # Read once: every rung of every trial stylizes the same photos.
        self.photos = [load_image(p) for p in self.test_photos]
        self.inputs = [pil_to_tensor(p) for p in self.photos]

    def __call__(self, model_dir: Path) -> dict[str, dict[str, float]]:
        from culturegan.data.images import pil_to_tensor
        from culturegan.inference import Stylizer
        from culturegan.metrics.content import ssim
        from culturegan.metrics.judge import judge_scores

        stylizer = Stylizer.from_pretrained(model_dir)
        pils, inputs = self.photos, self.inputs
        out = {}
        for target in self.targets:
            if f"{self.source}->{target}" not in stylizer.directions:
                continue  # e.g. a two-domain model asked about a third domain
            result = stylizer(pils, source=self.source, target=target)
            images = [pil_to_tensor(p) for p in result.images]
            scores = judge_scores(self.judge, images, target)
            scores["ssim_grey"] = float(ssim(inputs, images, grey=True).mean())
            out[target] = scores
        return out


def run_tune(args: argparse.Namespace, overrides: dict[str, str]) -> Path:
    try:
        import optuna
    except ImportError:
        raise ValueError(
            "culturegan tune needs Optuna: pip install 'culturegan[tune]' (or optuna)"
        ) from None
    from culturegan.training import train

    if args.trials < 1 or args.minutes_per_trial <= 0 or args.rungs < 1:
        raise ValueError("--trials and --rungs must be >= 1 and --minutes-per-trial > 0")
    space = load_space(args.space)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(args.config, overrides)  # fails now, not in trial 1, on a bad flag
    if not base.data.root:
        raise ValueError("tune needs --data.root")
    judge_domains = [d for d in (args.judge_domains or "").split(",") if d]
    scorer = ValidationScorer(
        base, backbone=args.judge_backbone, seed=args.seed, judge_domains=judge_domains
    )
    part = args.minutes_per_trial / args.rungs

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        budget = {
            "train.steps": 10**9,
            "train.max_minutes": part,
            "optim.decay_steps": 0,
            "train.runs_dir": str(out / "trials"),
            "train.name": f"trial{trial.number}",
            "train.sample_every": 10**9,
            "train.checkpoint_every": 10**9,
            "train.eval_every": 0,
        }
        cfg = load_config(args.config, {**overrides, **budget, **params})
        result = train(cfg, progress=False)
        score = -math.inf
        for rung in range(args.rungs):
            if rung:
                result = train(
                    resume_dir=result.run_dir,
                    overrides={"train.max_minutes": part},
                    progress=False,
                )
            per_target = scorer(result.run_dir / "model")
            score = combined_score(per_target, args.min_ssim)
            trial.set_user_attr(f"rung{rung}", per_target)
            trial.set_user_attr("steps", result.step)
            trial.set_user_attr("run_dir", str(result.run_dir))
            trial.report(score, rung)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    storage = f"sqlite:///{(out / 'study.db').resolve()}"
    study = optuna.create_study(
        study_name=args.study,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    if not study.trials and not args.no_baseline:
        baseline = baseline_params(base, space)
        if baseline is None:
            print(f"culturegan tune: {args.config}'s own values lie outside the space; no baseline")
        else:  # trial 0: the settings the search has to beat
            study.enqueue_trial(baseline, user_attrs={"baseline": True})
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len([t for t in study.trials if t.state in finished])
    remaining = max(0, args.trials - done)
    if done:
        print(f"culturegan tune: {done} trials already in {storage}; running {remaining} more")
    study.optimize(objective, n_trials=remaining)
    return write_report(study, out, args, space, judge=scorer.judge.summary())


def _cell(value: Any) -> str:
    """A parameter for the report's table: floats to three significant figures."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def last_scores(trial: Any, measures: Sequence[str]) -> list[float | None]:
    """Each measure's mean over the targets at the trial's last scored part (None if unscored)."""
    rungs = [int(k[4:]) for k in trial.user_attrs if k.startswith("rung")]
    per_target = trial.user_attrs[f"rung{max(rungs)}"] if rungs else {}
    if not per_target:
        return [None] * len(measures)
    return [sum(s[m] for s in per_target.values()) / len(per_target) for m in measures]


def write_report(
    study: Any, out: Path, args: argparse.Namespace, space: dict, *, judge: str = ""
) -> Path:
    import optuna

    from culturegan.fileio import atomic_write

    trials = study.trials
    table = io.StringIO()
    writer = csv.writer(table)
    measures = ("hit_rate", "mean_target_prob", "ssim_grey")
    scores = {t.number: last_scores(t, measures) for t in trials}
    writer.writerow(["number", "state", "score", "steps", *measures, *space])
    for t in trials:
        writer.writerow(
            [
                t.number,
                t.state.name,
                t.value,
                t.user_attrs.get("steps"),
                *scores[t.number],
                *[t.params.get(k) for k in space],
            ]
        )
    atomic_write(out / "trials.csv", lambda tmp: tmp.write_text(table.getvalue()))
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    lines = [
        f"# culturegan tune: {study.study_name}",
        "",
        f"Config `{args.config}`, {len(trials)} trials ({len(complete)} complete), "
        f"{args.minutes_per_trial:g} minutes each in {args.rungs} parts; judge backbone "
        f"`{args.judge_backbone}`; score = (hit rate + mean target probability) / 2 - "
        f"2 * max(0, {args.min_ssim} - SSIM), on the validation split.",
        "",
    ]
    if judge:
        lines += [f"The {judge}.", ""]
    if complete:
        best = study.best_trial
        nested: dict[str, dict[str, Any]] = {}
        for key, value in best.params.items():
            section, name = key.split(".", 1)
            nested.setdefault(section, {})[name] = value
        atomic_write(out / "best.yaml", lambda tmp: tmp.write_text(yaml.safe_dump(nested)))
        lines += [f"Best: trial {best.number}, score {best.value:.3f}", "", "```yaml"]
        lines += [yaml.safe_dump(nested).rstrip(), "```", ""]
        if len(complete) >= 2:
            try:
                importance = optuna.importance.get_param_importances(study)
                lines += ["| parameter | importance |", "|---|---:|"]
                lines += [f"| {k} | {v:.2f} |" for k, v in importance.items()]
                lines.append("")
            except (RuntimeError, ValueError) as exc:  # e.g. every trial the same value
                lines += [f"Importance not computed: {exc}", ""]
    lines += ["Hit rate, probability, SSIM: means over the targets at the last scored part.", ""]
    header = ["trial", "state", "score", "steps", "hit rate", "probability", "SSIM", *space]
    lines += ["| " + " | ".join(header) + " |"]
    lines += ["|" + "---|" * (7 + len(space))]
    for t in trials:
        score = "" if t.value is None else f"{t.value:.3f}"
        name = f"{t.number} (baseline)" if t.user_attrs.get("baseline") else t.number
        cells = [name, t.state.name, score, t.user_attrs.get("steps", "")]
        cells += ["" if v is None else f"{v:.3f}" for v in scores[t.number]]
        cells += [_cell(t.params.get(k, "")) for k in space]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    report = out / "report.md"
    atomic_write(report, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return report


def register(subparsers: argparse._SubParsersAction) -> dict[str, Any]:
    from culturegan.config import add_override_arguments

    p = subparsers.add_parser("tune", help="search hyper-parameters by short judged trainings")
    p.add_argument("--config", required=True, help="preset name or YAML file to start from")
    p.add_argument("--space", required=True, help="YAML search space (section.field: range)")
    p.add_argument("--trials", type=int, default=10, help="trials in all (the study resumes)")
    p.add_argument("--minutes-per-trial", type=float, default=5.0)
    p.add_argument("--rungs", type=int, default=2, help="scored parts per trial (pruning)")
    p.add_argument("--min-ssim", type=float, default=0.3, help="SSIM below this is penalised")
    p.add_argument("--judge-backbone", default="lite1", help="feature network of the judge")
    p.add_argument(
        "--judge-domains",
        default="",
        help="comma-separated further domain folders whose validation images the judge learns "
        "as classes (not trained on), e.g. other cultures",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="do not run the config's own values first"
    )
    p.add_argument("--study", default="culturegan", help="study name in the storage")
    p.add_argument("--seed", type=int, default=0, help="sampler and judge seed")
    p.add_argument("--out", required=True, help="folder: study.db, trials/, report.md")
    add_override_arguments(p)
    return {"tune": cmd_tune}


def cmd_tune(args: argparse.Namespace) -> int:
    from culturegan.config import collect_overrides

    report = run_tune(args, collect_overrides(args))
    print(f"culturegan tune: report in {report}")
    return 0
