#!/usr/bin/env bash
# Creates target/interop-venv with what the fixture generators need: torch (CPU), safetensors,
# numpy and tensorflow-cpu (Keras 3). Only the fixture generators use it; `cargo test` never does.
#
#   bash scripts/interop/setup_venv.sh            # torch + safetensors + tensorflow-cpu
#   INTEROP_SKIP_TF=1 bash scripts/interop/setup_venv.sh   # torch + safetensors only
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/interop-venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
# The CPU-only wheel index is smaller; fall back to PyPI's default wheel when it is unreachable.
if ! "$venv/bin/pip" install --quiet torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch
fi
"$venv/bin/pip" install --quiet safetensors numpy
if [ -z "${INTEROP_SKIP_TF:-}" ]; then
    "$venv/bin/pip" install --quiet tensorflow-cpu
fi
"$venv/bin/python" - <<'PY'
import importlib
for name in ("torch", "safetensors", "numpy", "tensorflow", "keras"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {module.__version__}")
    except ImportError:
        print(f"{name}: not installed")
PY
