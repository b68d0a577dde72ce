#!/usr/bin/env bash
# Run a command on an emulated slower CPU: AVX2 kernels only (no AVX-512) and a CPU-time quota,
# so that its whole-machine fp32 throughput is about GFLOPS. For time targets stated for a
# slower machine than this one (the demo's "under 5 minutes at ~70 GFLOP/s"):
#
#     bash benchmarks/emulate_machine.sh 70 culturegan demo --out /tmp/demo-slow
#
# How: torch, oneDNN and MKL are held to AVX2 (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
# MKL_ENABLE_INSTRUCTIONS); a one-thread fp32 matmul measures one core's AVX2 peak P; the
# command then runs in a cgroup whose CFS quota is GFLOPS / P cores (10 ms periods). Work spread
# over one-thread processes gets GFLOPS in all; work on several OpenMP threads gets less (a
# throttled thread holds the others at their barriers: the two-thread matmul reads about 0.8 of
# GFLOPS), so the emulation is slower than a real machine of that peak, not faster. The peaks are
# printed before and after. Needs root and a cgroup v1 "cpu" or a cgroup v2 hierarchy.
set -euo pipefail
if [[ $# -lt 2 || ! $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "usage: bash benchmarks/emulate_machine.sh GFLOPS COMMAND [ARGS...]" >&2
    exit 2
fi
target=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
peak() {  # threads -> GFLOP/s of a 1024 x 1024 fp32 matmul, as quality_cultures.py reports it
    python -c "import sys; sys.path.insert(0, '$here'); from bench_speed import matmul_peak; \
print(f'{matmul_peak($1, 1024, 7):.1f}')"
}
core=$(OMP_NUM_THREADS=1 peak 1)
period=10000
quota=$(python -c "print(max(1000, round($target / $core * $period)))")
name=culturegan-emulated-$$
if [[ -d /sys/fs/cgroup/cpu && -w /sys/fs/cgroup/cpu ]]; then  # cgroup v1
    group=/sys/fs/cgroup/cpu/$name
    mkdir "$group"
    echo "$period" > "$group/cpu.cfs_period_us"
    echo "$quota" > "$group/cpu.cfs_quota_us"
elif [[ -f /sys/fs/cgroup/cgroup.controllers && -w /sys/fs/cgroup ]]; then  # cgroup v2
    group=/sys/fs/cgroup/$name
    mkdir "$group"
    echo "$quota $period" > "$group/cpu.max"
else
    echo "emulate_machine.sh: no writable cgroup 'cpu' controller (run as root, on Linux)" >&2
    exit 1
fi
cleanup() {
    echo $$ > "$(dirname "$group")/cgroup.procs" 2>/dev/null || true
    rmdir "$group" 2>/dev/null || true
}
trap cleanup EXIT
echo $$ > "$group/cgroup.procs"
threads=$(python -c "import torch; print(torch.get_num_threads())")
echo "emulated: AVX2, one core's peak $core GFLOP/s, quota $quota/$period us (target $target):" \
    "$threads-thread matmul $(peak "$threads") GFLOP/s" >&2
start=$(date +%s.%N)
status=0
"$@" || status=$?
seconds=$(python -c "print(f'{$(date +%s.%N) - $start:.1f}')")
echo "emulated: $seconds s; $threads-thread matmul after it $(peak "$threads") GFLOP/s" >&2
exit $status
