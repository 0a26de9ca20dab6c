"""The PyTorch module equivalent to recur's LanguageModel (engine/src/model/lm.rs).

Submodules `embedding` (nn.Embedding, absent for one-hot input), `rnn` (nn.RNN/LSTM/GRU,
time-major) and `decoder` (nn.Linear), so `load_state_dict` reads recur's `model.safetensors`
as it is, with strict=True.
"""

import torch
from torch import nn


def make_rnn(cell, input_size, hidden, num_layers, **kwargs):
    if cell in ("rnn", "rnn_tanh"):
        return nn.RNN(input_size, hidden, num_layers, nonlinearity="tanh", **kwargs)
    if cell == "rnn_relu":
        return nn.RNN(input_size, hidden, num_layers, nonlinearity="relu", **kwargs)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden, num_layers, **kwargs)
    if cell == "gru":
        return nn.GRU(input_size, hidden, num_layers, **kwargs)
    raise ValueError(f"unknown cell {cell!r}")


class RecurLM(nn.Module):
    """ids (T, B) -> logits (T, B, V), from the zero state."""

    def __init__(self, vocab, embedding_dim, cell, hidden, num_layers):
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, embedding_dim) if embedding_dim else None
        input_size = embedding_dim if embedding_dim else vocab
        self.rnn = make_rnn(cell, input_size, hidden, num_layers)
        self.decoder = nn.Linear(hidden, vocab)

    @classmethod
    def from_config(cls, config):
        """`config` is recur's LmConfig as saved in state.json's "model"."""
        return cls(
            config["vocab"],
            config.get("embedding_dim"),
            config["cell"],
            config["hidden"],
            config["num_layers"],
        )

    def embed(self, ids):
        if self.embedding is not None:
            return self.embedding(ids)
        return nn.functional.one_hot(ids, self.vocab).to(self.decoder.weight.dtype)

    def forward(self, ids, state=None):
        output, state = self.rnn(self.embed(ids), state)
        return self.decoder(output), state
