"""A small PyTorch character LSTM language model for recur to load: the model of
examples/pytorch_lstm_generate.rs and the golden logits of tests/interop/lm.rs.

Writes
  tests/fixtures/pytorch/lstm_lm.safetensors         the state_dict (embedding.weight, rnn.*,
        decoder.*), with __metadata__ "lm_config" (recur's LmConfig as JSON) and "vocab" (a JSON
        list of the characters, id order)
  tests/fixtures/pytorch/lstm_lm_golden.safetensors  "ids" (T, B) as f32 and "logits" (T, B, V)
        computed in float64 from the stored f32 weights; __metadata__ "greedy": the greedy
        continuation of "greedy_prompt" (60 characters)

Run: target/interop-venv/bin/python scripts/interop/pytorch_lm.py
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from recur_lm import RecurLM  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch")

# A short, repetitive text (written for this fixture) that a tiny model learns in seconds.
TEXT = (
    "the cat sat on the mat. the dog sat on the log. the cat saw the dog. "
    "the dog saw the cat. a cat and a dog sat on a mat and a log. "
    "the hen sat on the pen. the fox saw the hen. the hen saw the fox. "
) * 4

CONFIG = {
    "vocab": None,
    "embedding_dim": 12,
    "cell": "lstm",
    "hidden": 32,
    "num_layers": 2,
    "dropout": 0.0,
}


def main():
    torch.set_num_threads(1)
    torch.manual_seed(7)
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in TEXT])
    config = dict(CONFIG, vocab=len(chars))
    model = RecurLM.from_config(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    steps, batch = 32, 16
    for step in range(400):
        starts = torch.randint(0, len(data) - steps - 1, (batch,))
        x = torch.stack([data[s:s + steps] for s in starts], dim=1)       # (T, B)
        y = torch.stack([data[s + 1:s + steps + 1] for s in starts], dim=1)
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"final training loss {loss.item():.3f} nats/char")

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "lm_config": json.dumps(config),
        "vocab": json.dumps(chars),
        "torch": torch.__version__,
        "generator": "scripts/interop/pytorch_lm.py",
    }
    os.makedirs(OUT, exist_ok=True)
    save_file(state, os.path.join(OUT, "lstm_lm.safetensors"), metadata=metadata)

    prompts = ["the cat", "a dog s"]
    ids = torch.tensor([[stoi[c] for c in p] for p in prompts]).t().contiguous()  # (T, B)
    double = RecurLM.from_config(config).double()
    double.load_state_dict({k: v.double() for k, v in state.items()})
    with torch.no_grad():
        logits, _ = double(ids)
        # Greedy continuation of "the ", one character per step from the carried state.
        prompt = "the "
        out, state = double(torch.tensor([[stoi[c]] for c in prompt]))
        greedy = []
        for _ in range(60):
            next_id = int(out[-1, 0].argmax())
            greedy.append(chars[next_id])
            out, state = double(torch.tensor([[next_id]]), state)
    save_file(
        {"ids": ids.float(), "logits": logits.float().contiguous()},
        os.path.join(OUT, "lstm_lm_golden.safetensors"),
        metadata={"prompts": json.dumps(prompts), "greedy_prompt": json.dumps(prompt),
                  "greedy": json.dumps("".join(greedy))},
    )
    for name in ("lstm_lm.safetensors", "lstm_lm_golden.safetensors"):
        path = os.path.join(OUT, name)
        print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
