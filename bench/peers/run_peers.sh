#!/usr/bin/env bash
# Times PyTorch, ONNX Runtime and TensorFlow (CPU) against `rnnbench layer` on issue 3's shapes,
# interleaved in one run at 1 and 2 threads, and writes a markdown table.
#
#   bench/peers/run_peers.sh [--reps R] [--out FILE] [--shapes quick|issue]
#
# Creates a virtual environment (default ~/.cache/recur-peers-venv, override with
# RECUR_PEERS_VENV) and pip-installs torch, onnxruntime and tensorflow-cpu into it the first time.
# Builds rnnbench in release mode. Everything else is in run_peers.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${RECUR_PEERS_VENV:-$HOME/.cache/recur-peers-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, onnxruntime, tensorflow, onnx" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --upgrade pip
    # PyTorch's CPU-only wheels live on its own index; PyPI's default wheel also runs on the CPU.
    "$venv/bin/pip" install --quiet torch ${RECUR_TORCH_INDEX:+--index-url "$RECUR_TORCH_INDEX"}
    "$venv/bin/pip" install --quiet onnx onnxruntime tensorflow-cpu
fi
(cd "$root" && cargo build --release -p recur-bench --bin rnnbench)
exec "$venv/bin/python" "$here/run_peers.py" --rnnbench "$root/target/release/rnnbench" "$@"
