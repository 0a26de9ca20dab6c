#!/usr/bin/env bash
# Peak anonymous memory (heap, stacks: RssAnon) of `recur train` against corpus size: builds
# corpora of the given sizes by repeating a seed corpus, trains a few hundred steps on each, and
# samples /proc/<pid>/status every 10 ms. The corpus and its token cache are memory-mapped, so
# they show up as file-backed pages (RssFile), not as heap.
#
#   scripts/heap_vs_corpus.sh [--sizes-mib "16 1024"] [--steps 300] [--task char|word]
#                             [--workdir DIR] [-- extra recur train flags]
#
# Writes the corpora and runs under --workdir (default: a temporary directory, removed after).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sizes="16 1024"
steps=300
task=char
workdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes-mib) sizes="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --task) task="$2"; shift 2 ;;
        --workdir) workdir="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
extra=("$@")
if [ -z "$workdir" ]; then
    workdir="$(mktemp -d)"
    trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
(cd "$root" && cargo build --release -q -p recur)
recur="$root/target/release/recur"
seed_corpus=""
for dir in "${RECUR_DATA:-}" "$root/data" "$root/../shared/data"; do
    name=$([ "$task" = word ] && echo sherlock.txt || echo alice.txt)
    if [ -n "$dir" ] && [ -f "$dir/$name" ]; then seed_corpus="$dir/$name"; break; fi
done
[ -n "$seed_corpus" ] || { echo "seed corpus not found (set RECUR_DATA)" >&2; exit 1; }

kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$2/status" 2>/dev/null || true; }

printf '| corpus | steps | peak RssAnon | peak RssFile | peak VmHWM | wall |\n|---|---|---|---|---|---|\n'
for mib in $sizes; do
    corpus="$workdir/corpus-${mib}MiB.txt"
    if [ ! -f "$corpus" ]; then
        target=$((mib * 1024 * 1024))
        : > "$corpus"
        while [ "$(stat -c %s "$corpus")" -lt "$target" ]; do cat "$seed_corpus" >> "$corpus"; done
        truncate -s "$target" "$corpus"
    fi
    run="$workdir/run-${mib}MiB"
    rm -rf "$run"
    # Build the token cache first (a pass over the corpus), so the measurement is training.
    "$recur" train --task "$task" --corpus "$corpus" --checkpoint-dir "$run" --dry-run \
        "${extra[@]}" > /dev/null
    start=$(date +%s.%N)
    "$recur" train --task "$task" --corpus "$corpus" --checkpoint-dir "$run" \
        --max-steps "$steps" --checkpoint-every 0 "${extra[@]}" > "$run.log" 2>&1 &
    pid=$!
    anon=0; file=0; hwm=0
    while kill -0 "$pid" 2>/dev/null; do
        a=$(kib RssAnon "$pid"); f=$(kib RssFile "$pid"); h=$(kib VmHWM "$pid")
        [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
        [ -n "$f" ] && [ "$f" -gt "$file" ] && file=$f
        [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
        sleep 0.01
    done
    wait "$pid" || { echo "recur train failed on $corpus:" >&2; cat "$run.log" >&2; exit 1; }
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    printf '| %s MiB | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f s |\n' "$mib" "$steps" \
        "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)" "$(echo "$hwm/1024" | bc -l)" "$wall"
done
