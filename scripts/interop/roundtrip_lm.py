"""Round trip: a recur-trained LanguageModel checkpoint loads into the equivalent PyTorch module
(load_state_dict with strict=True) and PyTorch's logits on a fixed batch are saved for
tests/interop/lm.rs to compare with recur's.

For each run directory copy D in tests/fixtures/roundtrip/ (the GRU with an embedding) and
tests/fixtures/roundtrip/onehot/ (the default char model: one-hot input, 2-layer tanh RNN):
Reads  D/model.safetensors, D/lm_config.json
Writes D/torch_logits.safetensors ("ids" (T, B) as f32, "logits" (T, B, V))

Run: target/interop-venv/bin/python scripts/interop/roundtrip_lm.py
"""

import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from recur_lm import RecurLM  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIRS = [os.path.join(ROOT, "tests", "fixtures", "roundtrip"),
        os.path.join(ROOT, "tests", "fixtures", "roundtrip", "onehot")]


def main():
    for directory in DIRS:
        round_trip(directory)


def round_trip(DIR):
    with open(os.path.join(DIR, "lm_config.json")) as f:
        config = json.load(f)
    state = load_file(os.path.join(DIR, "model.safetensors"))
    model = RecurLM.from_config(config).double()
    # strict=True: every tensor recur wrote is one the module has, with the module's shape.
    model.load_state_dict({k: v.double() for k, v in state.items()}, strict=True)
    generator = torch.Generator().manual_seed(3)
    steps, batch = 7, 3
    ids = torch.randint(0, config["vocab"], (steps, batch), generator=generator)
    with torch.no_grad():
        logits, _ = model(ids)
    path = os.path.join(DIR, "torch_logits.safetensors")
    save_file({"ids": ids.float(), "logits": logits.float().contiguous()}, path,
              metadata={"torch": torch.__version__, "generator": "scripts/interop/roundtrip_lm.py"})
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
