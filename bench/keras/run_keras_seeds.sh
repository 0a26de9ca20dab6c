#!/usr/bin/env bash
# Runs the seeds' Keras experiments in a virtual environment this script creates (under target/).
# Usage: bench/keras/run_keras_seeds.sh char|word [--epochs N] [--threads N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${KERAS_VENV:-$root/target/keras-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu
fi
cd "$root"
exec "$venv/bin/python" bench/keras/seed_experiments.py "$@"
