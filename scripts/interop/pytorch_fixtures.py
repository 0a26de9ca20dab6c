"""Golden fixtures for tests/interop/pytorch.rs: small nn.RNN/LSTM/GRU modules with random
weights, ragged-length inputs, PyTorch's outputs, final states and gradients.

For each case the file tests/fixtures/pytorch/<case>.safetensors holds
  <prefix><param>        the module's state_dict under a module prefix (f32)
  golden.input           (T, B, I), or (B, T, I) when batch_first
  golden.lengths         (B) row lengths (as f32), unsorted: packed with enforce_sorted=False
  golden.h0, golden.c0   (L*D, B, H) initial state (c0 for LSTM only)
  golden.output          (T, B, D*H) (or batch-first), zero past each row's length
  golden.h_n, golden.c_n (L*D, B, H) state at each row's last valid step
  golden.r_output, golden.r_h, golden.r_c   random weights of the scalar loss
        loss = sum(output * r_output) + sum(h_n * r_h) [+ sum(c_n * r_c)]
  golden.grad.<param>    d loss / d param, for every parameter
  golden.grad.input, golden.grad.h0, golden.grad.c0
Weights are stored as drawn in float32 (or cast to float16/bfloat16 for the *_f16/*_bf16
cases) and inputs in float32; PyTorch computes in float64 from those exact values,
so the goldens are the true values rounded once to f32.

Run: target/interop-venv/bin/python scripts/interop/pytorch_fixtures.py
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(__file__))
from recur_lm import make_rnn  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch")

T, B, I, H = 5, 3, 3, 4
LENGTHS = [5, 2, 4]

CASES = [
    # name, cell, layers, bidirectional, bias, batch_first, prefix, weight dtype
    ("rnn_tanh", "rnn_tanh", 2, True, True, False, "encoder.rnn.", torch.float32),
    ("rnn_relu", "rnn_relu", 2, False, True, False, "rnn.", torch.float32),
    ("lstm", "lstm", 2, True, True, False, "encoder.lstm.", torch.float32),
    ("lstm_nobias_batch_first", "lstm", 1, True, False, True, "model.lstm.", torch.float32),
    ("gru", "gru", 2, True, True, False, "encoder.gru.", torch.float32),
    ("gru_nobias", "gru", 2, False, False, False, "gru.", torch.float32),
    # Half-precision state_dicts: the goldens are computed from the half values (widened).
    ("lstm_f16", "lstm", 1, False, True, False, "lstm.", torch.float16),
    ("gru_bf16", "gru", 1, True, True, False, "gru.", torch.bfloat16),
]


def case(name, cell, layers, bidirectional, bias, batch_first, prefix, dtype, seed):
    torch.manual_seed(seed)
    module32 = make_rnn(cell, I, H, layers, bidirectional=bidirectional, bias=bias,
                        batch_first=batch_first)
    state32 = {k: v.detach().to(dtype).contiguous() for k, v in module32.state_dict().items()}
    d = 2 if bidirectional else 1
    lstm = cell == "lstm"
    x32 = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
    h0_32 = 0.5 * torch.randn(layers * d, B, H)
    c0_32 = 0.5 * torch.randn(layers * d, B, H)
    r_out32 = torch.randn(B, T, d * H) if batch_first else torch.randn(T, B, d * H)
    r_h32 = torch.randn(layers * d, B, H)
    r_c32 = torch.randn(layers * d, B, H)

    module = make_rnn(cell, I, H, layers, bidirectional=bidirectional, bias=bias,
                      batch_first=batch_first).double()
    module.load_state_dict({k: v.double() for k, v in state32.items()})
    x = x32.double().requires_grad_(True)
    h0 = h0_32.double().requires_grad_(True)
    c0 = c0_32.double().requires_grad_(True)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=batch_first,
                                  enforce_sorted=False)
    out_packed, state = module(packed, (h0, c0) if lstm else h0)
    output, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    h_n, c_n = state if lstm else (state, None)
    loss = (output * r_out32.double()).sum() + (h_n * r_h32.double()).sum()
    if lstm:
        loss = loss + (c_n * r_c32.double()).sum()
    loss.backward()

    tensors = {prefix + k: v for k, v in state32.items()}
    golden = {
        "input": x32,
        "lengths": torch.tensor(LENGTHS, dtype=torch.float32),
        "h0": h0_32,
        "output": output,
        "h_n": h_n,
        "r_output": r_out32,
        "r_h": r_h32,
        "grad.input": x.grad,
        "grad.h0": h0.grad,
    }
    if lstm:
        golden.update({"c0": c0_32, "c_n": c_n, "r_c": r_c32, "grad.c0": c0.grad})
    for k, p in module.named_parameters():
        golden["grad." + k] = p.grad
    for k, v in golden.items():
        tensors["golden." + k] = v.detach().float().contiguous()
    metadata = {
        "cell": cell,
        "num_layers": str(layers),
        "bidirectional": json.dumps(bidirectional),
        "bias": json.dumps(bias),
        "batch_first": json.dumps(batch_first),
        "prefix": prefix,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "generator": "scripts/interop/pytorch_fixtures.py",
    }
    path = os.path.join(OUT, name + ".safetensors")
    save_file(tensors, path, metadata=metadata)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, spec in enumerate(CASES):
        path = case(*spec, seed=1000 + seed)
        print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
