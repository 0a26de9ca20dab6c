#!/usr/bin/env bash
# Runs every cargo-fuzz target of recur for SECONDS each, one after the other, and prints one
# summary line per target (executions, coverage, corpus size, verdict).
#
#   scripts/fuzz_all.sh 600            # 10 minutes per target
#   scripts/fuzz_all.sh 60 gemm softmax
#
# Stable toolchain: no sanitizer (`--sanitizer none`), but debug assertions and overflow checks
# on (`-a`). libFuzzer grows its corpus in fuzz/work/<target>/ (ignored by git), reading the
# committed seeds in fuzz/corpus/<target>/ and the reproducers in fuzz/regressions/<target>/.
# A crash is saved under fuzz/artifacts/<target>/: minimise it (`cargo fuzz tmin`), commit it to
# fuzz/regressions/<target>/ under a name that says what broke, and fix the bug;
# tests/fuzz_replay.rs then replays it in every `cargo test`.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Full logs: fuzz/work/<target>.log.
set -euo pipefail

seconds="${1:?usage: scripts/fuzz_all.sh SECONDS [TARGET...]}"
shift
cd "$(dirname "$0")/../fuzz"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build --sanitizer none -a

status=0
for target in "${targets[@]}"; do
    mkdir -p "work/$target" "regressions/$target"
    log="work/$target.log"
    set +e
    cargo fuzz run "$target" --sanitizer none -a \
        "work/$target" "corpus/$target" "regressions/$target" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1
    code=$?
    set -e
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")
    if [ "$code" -eq 0 ]; then
        verdict="ok"
    else
        verdict="FAILED (exit $code; see fuzz/$log and fuzz/artifacts/$target/)"
        status=1
    fi
    printf '%-22s %6ss  execs %-10s cov %-6s ft %-6s corpus %-5s %s\n' \
        "$target" "$seconds" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$verdict"
done
exit "$status"
