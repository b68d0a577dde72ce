"""Speed benchmark: the reference CycleGAN generator against our generators and execution paths.

One run measures, each case in a fresh subprocess (so its peak memory is its own):

* inference images/s at 256, 512 and 1024 px (batch 1) for the reference ``resnet_9blocks``
  at ngf 64 in eager fp32 (as the original CycleGAN code runs it), ``resnet_6blocks`` ngf 32
  (the ``cyclegan_cpu`` preset) and the ``mobile_resnet`` generators, through eager PyTorch,
  channels-last, ``torch.compile``, onnxruntime and, only on CPUs with native bf16
  (avx512_bf16 / amx_bf16), bf16 autocast;
* seconds per training iteration at 128 and 256 px (batch 1): a full
  ``CycleGANRecipe.train_step`` and a ``CUTRecipe.train_step``;
* peak resident memory (``ru_maxrss`` of the case's process) and the memory added by the
  case itself (peak minus the resident size after imports and model construction);
* FLOPs (``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products,
  forward and backward), achieved GFLOP/s, and the fraction of the machine's fp32 peak,
  measured in the same run as the median of large fp32 matrix products;
* ratios to the reference measured in the same run.

Every time is the median of repeats after a warm-up. Results go to a JSON file and, with
``--docs``, into the results section of ``docs/benchmarks.md``.

The command that fills docs/benchmarks.md (on a quiet machine; about half an hour on 2 cores)::

    python benchmarks/bench_speed.py --threads 2 --out benchmarks/results/speed.json \\
        --docs docs/benchmarks.md

A check that the script works (seconds; used by tests/test_bench_smoke.py)::

    python benchmarks/bench_speed.py --quick --out /tmp/speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REFERENCE = "reference"
# label -> (generator, ngf, discriminator ndf used in its training cases)
MODELS: dict[str, tuple[str, int, int]] = {
    REFERENCE: ("resnet_9blocks", 64, 64),  # CycleGAN / CUT as published
    "resnet6_ngf32": ("resnet_6blocks", 32, 32),  # the cyclegan_cpu preset
    "mobile6_ngf32": ("mobile_resnet_6blocks", 32, 32),  # cyclegan_mobile / cyclegan_fast
    "mobile9_ngf32": ("mobile_resnet_9blocks", 32, 32),
}
FAST = "mobile6_ngf32"  # the generator the targets are about
PATHS = ("eager", "channels_last", "compile", "onnx", "bf16")
TARGET_SPEEDUP_512 = 15.0  # images/s at 512 px relative to the reference
TARGET_TRAIN_128_S = 0.6  # seconds per CycleGAN iteration at 128 px
DOCS_START = "<!-- bench_speed results: start -->"
DOCS_END = "<!-- bench_speed results: end -->"


# ----------------------------------------------------------------------------- the machine


def cpu_info() -> dict[str, Any]:
    """Model name and the flags that decide whether bf16 is native (Linux /proc/cpuinfo)."""
    import torch

    name, flags = platform.processor() or "unknown", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("unknown", "", platform.machine()):
                name = value.strip()
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
    native_bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    return {
        "cpu": name,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "native_bf16_flags": native_bf16,
        "python": platform.python_version(),
    }


def matmul_peak(threads: int, n: int, repeats: int) -> float:
    """GFLOP/s of an (n x n) @ (n x n) fp32 product: the machine's practical peak."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = measure(lambda: a @ b, warmup=2, repeats=repeats, budget=30.0)
    return 2 * n**3 / statistics.median(times) / 1e9


# ----------------------------------------------------------------------------- one case


def measure(fn, *, warmup: int, repeats: int, budget: float) -> list[float]:
    """Wall times of ``repeats`` calls after ``warmup`` calls; stops early (after at least 3)
    once ``budget`` seconds are spent, so the slow reference cases stay bounded."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min(3, repeats) and time.perf_counter() - start > budget:
            break
    return times


def max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes vs. KiB


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def run_infer(case: dict[str, Any]) -> dict[str, Any]:
    import torch

    from culturegan.models import build_generator

    s, path = case["size"], case["path"]
    # FLOPs on the meta device: counted without computing or allocating anything.
    with torch.device("meta"):
        meta_net = build_generator(case["generator"], ngf=case["ngf"]).eval()
        flops = count_flops(lambda: meta_net(torch.empty(1, 3, s, s)))
    torch.manual_seed(0)
    net = build_generator(case["generator"], ngf=case["ngf"]).eval().requires_grad_(False)
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(1)) * 2 - 1
    extra: dict[str, Any] = {}
    if path == "eager":
        fn = lambda: net(x)  # noqa: E731
    elif path == "channels_last":
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fn = lambda: net_cl(x_cl)  # noqa: E731
    elif path == "compile":
        compiled = torch.compile(net)
        t0 = time.perf_counter()
        with torch.no_grad():
            compiled(x)
        extra["compile_s"] = time.perf_counter() - t0
        fn = lambda: compiled(x)  # noqa: E731
    elif path == "onnx":
        from culturegan.onnx_export import OnnxStylizer

        # Exported by an earlier process (run_export), so this peak is onnxruntime's alone.
        runner = OnnxStylizer(case["onnx_file"], threads=case["threads"])
        fn = lambda: runner.run(x)  # noqa: E731
    elif path == "bf16":

        def fn():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)

    else:
        raise ValueError(f"unknown path '{path}'")
    base = max_rss_mb()
    with torch.no_grad():
        times = measure(fn, warmup=case["warmup"], repeats=case["repeats"], budget=case["budget"])
        peak = max_rss_mb()
        if path != "eager":  # how far the path's output is from eager fp32 (after the peak)
            diff = (fn().float() - net(x)).abs().max().item()
            extra["max_abs_diff_vs_eager"] = diff
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "times": times,
        "images_per_s": 1.0 / seconds,
        "flops": flops,
        "gflops_per_s": flops / seconds / 1e9,
        "peak_rss_mb": peak,
        "case_rss_mb": peak - base,
        **extra,
    }


def run_train(case: dict[str, Any]) -> dict[str, Any]:
    import torch

    from culturegan.config import RunConfig

    cfg = RunConfig()
    cfg.model.generator, cfg.model.ngf, cfg.model.ndf = case["generator"], case["ngf"], case["ndf"]
    cfg.data.crop_size = case["size"]
    cfg.train.steps = 10**6  # constant learning rate throughout
    if case["recipe"] == "cyclegan":
        from culturegan.training.cyclegan import CycleGANRecipe as Recipe
    else:
        from culturegan.training.cut import CUTRecipe as Recipe

        # CUT or FastCUT settings (until config.py has these fields, they are attributes).
        for key, value in case["cut"].items():
            setattr(cfg.loss, key, value)
    torch.manual_seed(0)
    recipe = Recipe(cfg, device=torch.device("cpu"), domains=("a", "b"))
    gen = torch.Generator().manual_seed(1)
    s = case["size"]
    batch = {"a": torch.rand(1, 3, s, s, generator=gen) * 2 - 1}
    batch["b"] = torch.rand(1, 3, s, s, generator=gen) * 2 - 1
    steps = itertools.count()
    fn = lambda: recipe.train_step(batch, next(steps))  # noqa: E731
    flops = count_flops(fn)  # one step under the counter (also a warm-up)
    base = max_rss_mb()
    # The counted step already warmed up; --quick adds no further one.
    warmup = case["warmup"] if case["repeats"] > 1 else 0
    times = measure(fn, warmup=warmup, repeats=case["repeats"], budget=case["budget"])
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "times": times,
        "flops": flops,
        "gflops_per_s": flops / seconds / 1e9,
        "peak_rss_mb": max_rss_mb(),
        "case_rss_mb": max_rss_mb() - base,
    }


def run_export(case: dict[str, Any]) -> dict[str, Any]:
    """Export the generator of an onnx case (same seed, so the same weights) to its file."""
    import torch

    from culturegan.models import build_generator
    from culturegan.onnx_export import export_generator

    torch.manual_seed(0)
    net = build_generator(case["generator"], ngf=case["ngf"]).eval()
    t0 = time.perf_counter()
    export_generator(net, case["onnx_file"], size_multiple=net.size_multiple, check=False)
    return {"export_s": time.perf_counter() - t0}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(case["threads"])
    warnings.simplefilter("ignore")  # exporter and compile chatter; results speak for themselves
    run = {"infer": run_infer, "train": run_train, "export": run_export}[case["kind"]]
    return run(case)


# ----------------------------------------------------------------------------- the plan


def plan(args: argparse.Namespace, native_bf16: bool) -> list[dict[str, Any]]:
    """Every case of the run; skipped ones carry the reason instead of being run."""
    common = {"threads": args.threads, "repeats": args.repeats, "budget": args.budget}
    if args.quick:
        infer_sizes, train_sizes = [64], [32]
        infer_models = {REFERENCE: ("eager",), FAST: ("eager", "channels_last")}
        train_models = {"cyclegan": [REFERENCE, FAST], "cut": [FAST], "fastcut": []}
        common.update(repeats=1, warmup=1)
    else:
        infer_sizes, train_sizes = [256, 512, 1024], [128, 256]
        infer_models = {
            REFERENCE: PATHS,
            "resnet6_ngf32": ("eager",),
            FAST: PATHS,
            "mobile9_ngf32": ("eager", "onnx"),
        }
        train_models = {
            "cyclegan": [REFERENCE, "resnet6_ngf32", FAST],
            "cut": [REFERENCE, FAST],
            "fastcut": [FAST],
        }
        common["warmup"] = 1
    cases = []
    for label, paths in infer_models.items():
        generator, ngf, _ = MODELS[label]
        for path, size in itertools.product(paths, infer_sizes):
            case = {"kind": "infer", "model": label, "generator": generator, "ngf": ngf}
            case.update(path=path, size=size, **common)
            if path == "compile" and args.no_compile:
                case["skipped"] = "--no-compile"
            if path == "bf16" and not native_bf16:
                case["skipped"] = "no native bf16 on this CPU (avx512_bf16/amx_bf16 absent)"
            cases.append(case)
    cut_settings = {
        "cut": {"lambda_nce": 1.0, "nce_idt": True, "flip_equivariance": False},
        "fastcut": {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True},
    }
    for recipe, labels in train_models.items():
        for label, size in itertools.product(labels, train_sizes):
            generator, ngf, ndf = MODELS[label]
            case = {"kind": "train", "recipe": "cut" if recipe == "fastcut" else recipe}
            case.update(variant=recipe, model=label, generator=generator, ngf=ngf, ndf=ndf)
            case.update(size=size, cut=cut_settings.get(recipe, {}), **common)
            cases.append(case)
    return cases


def run_in_subprocess(case: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(case["threads"]), MKL_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def describe(case: dict[str, Any]) -> str:
    if case["kind"] == "infer":
        return f"infer {case['model']:<14} {case['path']:<13} {case['size']:>5} px"
    return f"train {case['variant']:<8} {case['model']:<14} {case['size']:>5} px"


def add_ratios(results: list[dict[str, Any]]) -> None:
    """images/s and iteration speed relative to the reference in the same run."""
    ref_infer = {
        r["size"]: r["seconds"]
        for r in results
        if r["kind"] == "infer"
        and r["model"] == REFERENCE
        and r["path"] == "eager"
        and "seconds" in r
    }
    ref_train = {
        r["size"]: r["seconds"]
        for r in results
        if r["kind"] == "train"
        and r["model"] == REFERENCE
        and r["variant"] == "cyclegan"
        and "seconds" in r
    }
    for r in results:
        ref = (ref_infer if r["kind"] == "infer" else ref_train).get(r["size"])
        if ref and "seconds" in r:
            r["speedup_vs_reference"] = ref / r["seconds"]


def verdicts(results: list[dict[str, Any]], quick: bool) -> list[str]:
    """Plain sentences: does each execution path help, are the targets met."""
    lines = []
    eager = {
        (r["model"], r["size"]): r["seconds"]
        for r in results
        if r["kind"] == "infer" and r["path"] == "eager" and "seconds" in r
    }
    for path in PATHS[1:]:
        rows = [
            r
            for r in results
            if r["kind"] == "infer" and r["path"] == path and (r["model"], r["size"]) in eager
        ]
        measured = [r for r in rows if "seconds" in r]
        if not measured:
            reasons = sorted({r.get("skipped") or r.get("error", "?") for r in rows})
            if reasons:
                lines.append(f"- **{path}**: not measured ({'; '.join(reasons)}).")
            continue
        parts = []
        for r in measured:
            ratio = eager[(r["model"], r["size"])] / r["seconds"]
            parts.append(f"{r['model']} {r['size']} px {ratio:.2f}x")
        ratios = [eager[(r["model"], r["size"])] / r["seconds"] for r in measured]
        word = (
            "faster than"
            if min(ratios) > 1.05
            else "slower than"
            if max(ratios) < 0.95
            else "mixed against"
        )
        lines.append(f"- **{path}** is {word} eager fp32 (speed ratio: {', '.join(parts)}).")
    if quick:
        lines.append("- Targets: not judged in --quick (tiny sizes).")
        return lines
    fast_512 = [
        r
        for r in results
        if r["kind"] == "infer" and r["model"] == FAST and r["path"] == "eager" and r["size"] == 512
    ]
    if fast_512 and "speedup_vs_reference" in fast_512[0]:
        x = fast_512[0]["speedup_vs_reference"]
        ok = "met" if x >= TARGET_SPEEDUP_512 else "MISSED"
        lines.append(
            f"- Target {TARGET_SPEEDUP_512:.0f}x images/s at 512 px ({FAST}, eager): "
            f"{x:.1f}x, {ok}."
        )
    fast_train = [
        r
        for r in results
        if r["kind"] == "train"
        and r["variant"] == "cyclegan"
        and r["model"] == FAST
        and r["size"] == 128
    ]
    if fast_train and "seconds" in fast_train[0]:
        s = fast_train[0]["seconds"]
        ok = "met" if s < TARGET_TRAIN_128_S else "MISSED"
        lines.append(
            f"- Target CycleGAN iteration at 128 px under {TARGET_TRAIN_128_S} s ({FAST}, "
            f"PatchGAN ndf 32): {s:.3f} s, {ok}."
        )
    return lines


# ----------------------------------------------------------------------------- reporting


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def _row(cells: list[Any], columns: int) -> str:
    """A table row of ``columns`` cells, the missing ones empty (a skipped or failed case)."""
    cells = [str(c).replace("|", "/") for c in cells] + [""] * (columns - len(cells))
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    peak = report["matmul_peak_gflops"]
    out = [
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['cpu']}, {report['threads']} threads, torch {m['torch']} "
        f"({m['cpu_capability']}, oneDNN {'on' if m['mkldnn'] else 'off'}), native bf16 flags: "
        f"{', '.join(m['native_bf16_flags']) or 'none'}. Measured fp32 matmul peak: "
        f"**{peak:.0f} GFLOP/s**. Date: {report['date']}.",
        "",
        "### Inference (batch 1)",
        "",
        "| model | path | size | images/s | vs reference | GFLOP/image | GFLOP/s | % of peak "
        "| peak RSS MB | case RSS MB | max abs diff vs eager |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r["kind"] != "infer":
            continue
        if "seconds" not in r:
            why = r.get("skipped") or r.get("error")
            out.append(_row([r["model"], r["path"], r["size"], why], columns=11))
            continue
        out.append(
            f"| {r['model']} | {r['path']} | {r['size']} | {r['images_per_s']:.3g} | "
            f"{_fmt(r.get('speedup_vs_reference'), '.1f', 'x')} | {r['flops'] / 1e9:.2f} | "
            f"{r['gflops_per_s']:.1f} | {100 * r['gflops_per_s'] / peak:.0f}% | "
            f"{r['peak_rss_mb']:.0f} | {r['case_rss_mb']:.0f} | "
            f"{_fmt(r.get('max_abs_diff_vs_eager'), '.1e')} |"
        )
    out += [
        "",
        "### Training (one iteration, batch 1)",
        "",
        "| recipe | generator (D ndf) | size | s/iteration | speedup vs reference CycleGAN "
        "| GFLOP/iteration | GFLOP/s | % of peak | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r["kind"] != "train":
            continue
        name = f"{r['generator']} ngf {r['ngf']} ({r['ndf']})"
        if "seconds" not in r:
            out.append(_row([r["variant"], name, r["size"], r.get("error")], columns=9))
            continue
        out.append(
            f"| {r['variant']} | {name} | {r['size']} | {r['seconds']:.3f} | "
            f"{_fmt(r.get('speedup_vs_reference'), '.1f', 'x')} | {r['flops'] / 1e9:.1f} | "
            f"{r['gflops_per_s']:.1f} | {100 * r['gflops_per_s'] / peak:.0f}% | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    out += ["", "### Verdicts", "", *report["verdicts"], ""]
    return "\n".join(out)


def fill_section(path: Path, begin: str, end: str, text: str, *, heading: str, title: str) -> None:
    """Replace what lies between the ``begin`` and ``end`` markers of a markdown file with
    ``text``; without markers, append them under ``## heading`` (a new file gets ``# title``).
    Written atomically. Shared by the benchmarks that keep a section of docs/ up to date."""
    from culturegan.fileio import atomic_write

    doc = path.read_text() if path.exists() else f"# {title}\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc += f"\n## {heading}\n\n{block}\n"
    atomic_write(path, lambda tmp: tmp.write_text(doc))


def update_docs(path: Path, table: str) -> None:
    text = path.read_text()
    if DOCS_START not in text or DOCS_END not in text:
        raise ValueError(f"'{path}' has no '{DOCS_START}' ... '{DOCS_END}' section to fill")
    head, rest = text.split(DOCS_START, 1)
    _, tail = rest.split(DOCS_END, 1)
    path.write_text(f"{head}{DOCS_START}\n{table}\n{DOCS_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (smoke test)")
    parser.add_argument("--out", default="benchmarks/results/speed.json", help="JSON results")
    parser.add_argument("--docs", help="markdown file whose results section to rewrite")
    parser.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per case")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per case (>=3 runs)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--only", help="run only the cases whose description matches this regular expression"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)

    if args.case:
        print("RESULT " + json.dumps(run_case(json.loads(args.case))), flush=True)
        return 0

    if args.quick:
        args.no_compile = True
    machine = cpu_info()
    peak = matmul_peak(args.threads, 1024 if args.quick else 4096, 3 if args.quick else 7)
    print(f"{machine['cpu']}: fp32 matmul peak {peak:.1f} GFLOP/s with {args.threads} threads")
    cases = plan(args, native_bf16=bool(machine["native_bf16_flags"]))
    if args.only:
        cases = [c for c in cases if re.search(args.only, describe(c))]
        if not cases:
            raise SystemExit(f"--only '{args.only}' matches no case")
    results = []
    exports: dict[str, dict[str, Any]] = {}  # model label -> result of its ONNX export
    onnx_dir = Path(tempfile.mkdtemp(prefix="bench_speed_onnx_"))
    for case in cases:
        if "skipped" in case:
            result = {}
        elif case["kind"] == "infer" and case["path"] == "onnx":
            # One export per model, in its own process, reused for every size.
            case["onnx_file"] = str(onnx_dir / f"{case['model']}.onnx")
            if case["model"] not in exports:
                exports[case["model"]] = run_in_subprocess({**case, "kind": "export"}, args.timeout)
            export = exports[case["model"]]
            if "error" in export:
                result = {"error": f"export failed: {export['error']}"}
            else:
                result = {**export, **run_in_subprocess(case, args.timeout)}
        else:
            result = run_in_subprocess(case, args.timeout)
        row = {**case, **result}
        results.append(row)
        if "seconds" in row:
            note = f"{row['seconds']:.4f} s ({row['gflops_per_s']:.1f} GFLOP/s)"
        else:
            note = row.get("skipped") or row.get("error")
        print(f"{describe(case)}: {note}", flush=True)
    shutil.rmtree(onnx_dir, ignore_errors=True)
    add_ratios(results)
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join(["python", "benchmarks/bench_speed.py", *given])
    report = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "threads": args.threads,
        "machine": machine,
        "matmul_peak_gflops": peak,
        "results": results,
    }
    report["verdicts"] = verdicts(results, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    print("\n" + table)
    if args.docs:
        update_docs(Path(args.docs), table)
        print(f"updated {args.docs}")
    print(f"results: {out}")
    errors = [describe(r) for r in results if "error" in r]
    if errors:
        print(f"{len(errors)} cases failed: {'; '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
