#!/usr/bin/env bash
# The performance regression gate: compares the working tree against a baseline commit, in one
# job on one machine, and exits non-zero on a real regression.
#
#   scripts/regression_gate.sh [BASELINE]        # default BASELINE: HEAD (the last commit)
#
# 1. Instruction counts (callgrind, deterministic): every workload of `gate list` (the GEMM
#    micro-kernel block, each cell's layer forward and backward, softmax + cross-entropy, one
#    training step of a small model) runs once under `valgrind --tool=callgrind`, counting only the
#    `gate_measured` function, on the AVX2 path (`RECUR_ISA=avx2`: valgrind cannot run AVX-512)
#    and one thread. More than +2% instructions against the baseline FAILS.
# 2. Wall-clock ratios (noisy, so only a warning unless confirmed): `gate ratios` times recur
#    against fixed references in the same process (SGEMM vs matrixmultiply, fused LSTM vs the
#    reference LSTM), median of 21 interleaved pairs (GATE_PAIRS; at least 11). A ratio more than
#    10% above the baseline's WARNS and is measured again; if the rerun confirms it, the gate FAILS.
#
# The baseline is checked out into a git worktree (target/gate-baseline-src, kept for reruns) and
# built with the same gate program (bench/src/bin/gate.rs is copied in), so both sides run
# identical workloads. Needs valgrind.
# Report: one line per measurement with baseline, current and the change.
set -euo pipefail

baseline="${1:-HEAD}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/recur-gate.XXXXXX)"
trap 'rm -rf "$work"' EXIT

command -v valgrind >/dev/null || { echo "regression_gate: valgrind is required" >&2; exit 2; }
rev="$(git -C "$root" rev-parse --verify --quiet "$baseline^{commit}")" ||
    { echo "regression_gate: $baseline is not a commit" >&2; exit 2; }
# The baseline's checkout is kept between runs (a git worktree under target/, ignored by git), so a
# rerun against the same commit rebuilds nothing.
src="$root/target/gate-baseline-src"
if [ ! -f "$src/.git" ] || [ "$(git -C "$src" rev-parse HEAD)" != "$rev" ] ||
    ! git -C "$src" diff --quiet HEAD -- . ':!bench/src/bin/gate.rs'; then
    git -C "$root" worktree remove --force "$src" >/dev/null 2>&1 || rm -rf "$src"
    git -C "$root" worktree prune
    git -C "$root" worktree add --detach "$src" "$rev" >/dev/null 2>&1
fi
cmp -s "$root/bench/src/bin/gate.rs" "$src/bench/src/bin/gate.rs" ||
    cp "$root/bench/src/bin/gate.rs" "$src/bench/src/bin/gate.rs"

echo "regression gate: working tree vs baseline ${rev:0:12} ($(uptime | sed 's/.*load/load/'))"
for side in current baseline; do
    dir="$root"; [ "$side" = baseline ] && dir="$src"
    (cd "$dir" && CARGO_TARGET_DIR="$root/target/gate-$side" \
        cargo build --release --quiet -p recur-bench --bin gate)
done
gate_current="$root/target/gate-current/release/gate"
gate_baseline="$root/target/gate-baseline/release/gate"

instructions() { # BINARY WORKLOAD -> Ir of gate_measured (inclusive)
    local out="$work/callgrind.$RANDOM"
    RECUR_ISA=avx2 RAYON_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect='*gate_measured*' \
        --callgrind-out-file="$out" "$1" run "$2" >/dev/null 2>&1
    sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$out" | tail -1
}

status=0
printf '%-16s %14s %14s %9s\n' "instructions" "baseline" "current" "change"
for w in $("$gate_current" list); do
    base=$(instructions "$gate_baseline" "$w")
    cur=$(instructions "$gate_current" "$w")
    verdict=$(awk -v b="$base" -v c="$cur" 'BEGIN {
        d = (c - b) / b * 100; printf "%+8.2f%% %s", d, (d > 2 ? "FAIL (> +2%)" : "ok") }')
    printf '%-16s %14s %14s %s\n' "$w" "$base" "$cur" "$verdict"
    case "$verdict" in *FAIL*) status=1 ;; esac
done

# matrixmultiply reads its thread count once per process: one thread, like recur here.
export MATMUL_NUM_THREADS=1 RAYON_NUM_THREADS=1
pairs="${GATE_PAIRS:-21}"
ratio_check() { # prints "name base cur change verdict" per ratio; returns 1 if any is > +10%
    # One after the other (never concurrently: they would compete for the cores).
    "$gate_baseline" ratios --pairs "$pairs" >"$work/ratios.baseline"
    "$gate_current" ratios --pairs "$pairs" >"$work/ratios.current"
    paste "$work/ratios.baseline" "$work/ratios.current" | while IFS=$'\t' read -r b c; do
        name=$(sed -nE 's/.*"ratio":"([^"]+)".*/\1/p' <<<"$c")
        rb=$(sed -nE 's/.*"median":([0-9.]+).*/\1/p' <<<"$b")
        rc=$(sed -nE 's/.*"median":([0-9.]+).*/\1/p' <<<"$c")
        awk -v n="$name" -v b="$rb" -v c="$rc" 'BEGIN {
            d = (c - b) / b * 100
            printf "%-28s %8.4f %8.4f %+8.2f%% %s\n", n, b, c, d, (d > 10 ? "WARN" : "ok")
            exit (d > 10) }' || echo "worse"
    done
}

echo
printf '%-28s %8s %8s %9s\n' "wall-clock ratio (median)" "baseline" "current" "change"
first=$(ratio_check)
echo "$first" | grep -v '^worse$'
if grep -q '^worse$' <<<"$first"; then
    echo "a ratio is more than 10% worse; measuring again to confirm"
    second=$(ratio_check)
    echo "$second" | grep -v '^worse$'
    if grep -q '^worse$' <<<"$second"; then
        echo "FAIL: confirmed on the rerun"
        status=1
    else
        echo "not confirmed on the rerun: machine noise"
    fi
fi

echo
if [ "$status" -eq 0 ]; then echo "regression gate: PASS"; else echo "regression gate: FAIL"; fi
exit "$status"
