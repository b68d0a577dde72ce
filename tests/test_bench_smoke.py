"""The speed benchmark runs end to end in --quick mode and writes what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_speed.py"


@pytest.mark.slow
def test_quick_benchmark_writes_json_and_a_table(tmp_path):
    out = tmp_path / "speed.json"
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        "# Speed\n\n<!-- bench_speed results: start -->\nold\n<!-- bench_speed results: end -->\n"
    )
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--threads",
            threads,
            "--out",
            str(out),
            "--docs",
            str(docs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] and report["matmul_peak_gflops"] > 0
    results = report["results"]
    kinds = {(r["kind"], r.get("path") or r.get("variant")) for r in results}
    assert {
        ("infer", "eager"),
        ("infer", "channels_last"),
        ("train", "cyclegan"),
        ("train", "cut"),
    } <= kinds
    for r in results:
        assert "error" not in r, r
        assert r["seconds"] > 0 and r["flops"] > 0 and r["peak_rss_mb"] > 0
        assert r["speedup_vs_reference"] > 0
    reference = [r for r in results if r["model"] == "reference" and r.get("path") == "eager"]
    assert reference[0]["speedup_vs_reference"] == 1.0
    text = docs.read_text()
    assert "old" not in text and "### Inference" in text and "### Training" in text
    assert "--quick" in text  # the command that made the table
