"""Golden fixtures for tests/interop/keras.rs: Keras 3 SimpleRNN/LSTM/GRU/Embedding/Dense layers
with random weights, their weights exported to safetensors as "{layer.name}.{variable.name}"
(kernel, recurrent_kernel, bias, embeddings) and Keras' outputs.

Each tests/fixtures/keras/<case>.safetensors holds the exported weights (f32) and
  golden.input    (B, T, I) batch-first, as Keras takes it (golden.ids for the "lm" case)
  golden.lengths  (B) valid steps per row (as f32); steps past them are masked
  golden.h0, golden.c0   the initial state given to the first layer (lstm case)
  golden.output   (B, T, F) the last layer's output (compare only the valid steps)
  golden.h_n.<k>, golden.c_n.<k>  final state of layer k (at each row's last valid step); for
        Bidirectional wrappers k = 2*layer + direction, as PyTorch orders h_n
Bidirectional wrappers (merge_mode="concat") export their layers as
  "{wrapper.name}.forward.{variable}" and "{wrapper.name}.backward.{variable}".
Weights are drawn in float32 and Keras computes in float64 (floatx) from those exact values.

Needs tensorflow-cpu (Keras 3) and numpy; writes safetensors itself.
Run: target/interop-venv/bin/python scripts/interop/keras_fixtures.py
 (or any Python with tensorflow-cpu + keras 3, e.g. a venv made by setup_venv.sh)
"""

import json
import os
import struct

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "keras")

B, T, I, H = 3, 5, 3, 4
LENGTHS = [5, 2, 4]


def save_safetensors(path, tensors, metadata):
    """The safetensors format: u64 header length, JSON header, little-endian row-major data."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(tensors[name])),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomize(layer, rng):
    """Random f32 values (biases included: Keras initialises them to zero) for every weight."""
    layer.set_weights([rng.uniform(-0.6, 0.6, size=w.shape).astype(np.float32).astype(np.float64)
                       for w in layer.get_weights()])


def export(layer):
    if isinstance(layer, keras.layers.Bidirectional):
        out = {}
        for direction, inner in (("forward", layer.forward_layer),
                                 ("backward", layer.backward_layer)):
            out.update({f"{layer.name}.{direction}.{w.name}": np.asarray(w.numpy(), np.float32)
                        for w in inner.weights})
        return out
    return {f"{layer.name}.{w.name}": np.asarray(w.numpy(), dtype=np.float32)
            for w in layer.weights}


def mask():
    return np.array([[t < n for t in range(T)] for n in LENGTHS])


def stacked_case(name, make_layers, rng, initial=None, built=False):
    """Stacked recurrent layers over a masked batch; returns the tensors to save. With `built`,
    the layers already hold their weights (no build, no draw from `rng`)."""
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    m = mask()
    tensors = {"golden.input": x, "golden.lengths": np.array(LENGTHS, dtype=np.float32)}
    h = x.astype(np.float64)
    for k, layer in enumerate(make_layers()):
        if not built:
            layer.build((B, T, h.shape[-1]))
            randomize(layer, rng)
        state_in = None
        if k == 0 and initial is not None:
            state_in = [s.astype(np.float64) for s in initial]
        result = layer(h, mask=m, initial_state=state_in)
        h = np.asarray(result[0])
        states = [np.asarray(s) for s in result[1:]]
        if isinstance(layer, keras.layers.Bidirectional):
            # [h_fwd, (c_fwd,) h_bwd, (c_bwd)]: PyTorch's (layer, direction) order.
            half = len(states) // 2
            for direction, chunk in ((0, states[:half]), (1, states[half:])):
                tensors[f"golden.h_n.{2 * k + direction}"] = chunk[0]
                if len(chunk) > 1:
                    tensors[f"golden.c_n.{2 * k + direction}"] = chunk[1]
        else:
            tensors[f"golden.h_n.{k}"] = states[0]
            if len(states) > 1:
                tensors[f"golden.c_n.{k}"] = states[1]
        tensors.update(export(layer))
    tensors["golden.output"] = h
    return tensors


def main():
    keras.config.set_floatx("float64")
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2024)
    seq = dict(return_sequences=True, return_state=True)
    cases = {}
    cases["simple_rnn"] = stacked_case("simple_rnn", lambda: [
        keras.layers.SimpleRNN(H, name="simple_rnn_0", **seq),
        keras.layers.SimpleRNN(H, name="simple_rnn_1", **seq),
    ], rng)
    cases["simple_rnn_relu_nobias"] = stacked_case("simple_rnn_relu_nobias", lambda: [
        keras.layers.SimpleRNN(H, activation="relu", use_bias=False, name="rnn", **seq),
    ], rng)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((B, H))).astype(np.float32)
    lstm = stacked_case("lstm", lambda: [keras.layers.LSTM(H, name="lstm", **seq)], rng,
                        initial=[h0, c0])
    lstm.update({"golden.h0": h0, "golden.c0": c0})
    cases["lstm"] = lstm
    cases["gru"] = stacked_case("gru", lambda: [
        keras.layers.GRU(H, name="gru_0", **seq),
        keras.layers.GRU(H, name="gru_1", **seq),
    ], rng)
    cases["gru_bidirectional"] = stacked_case("gru_bidirectional", lambda: [
        keras.layers.Bidirectional(keras.layers.GRU(H, **seq), name="bigru_0"),
        keras.layers.Bidirectional(keras.layers.GRU(H, **seq), name="bigru_1"),
    ], rng)
    cases["lstm_bidirectional"] = stacked_case("lstm_bidirectional", lambda: [
        keras.layers.Bidirectional(keras.layers.LSTM(H, **seq), name="bilstm"),
    ], rng)
    # reset_after=False: a (3H) bias and the reset gate before the recurrent matmul (recur's
    # GruResetBefore cell). Its weights are drawn here, in the stream the later cases follow;
    # its input, initial state and the bidirectional case below come from a second generator so
    # that the fixtures made before these cases existed stay as they were.
    before = keras.layers.GRU(H, reset_after=False, name="gru_before", **seq)
    before.build((B, T, I))
    randomize(before, rng)
    rng_before = np.random.default_rng(2025)
    h0_before = (0.5 * rng_before.standard_normal((B, H))).astype(np.float32)
    before_case = stacked_case("gru_reset_before", lambda: [before], rng_before,
                               initial=[h0_before], built=True)
    before_case["golden.h0"] = h0_before
    cases["gru_reset_before"] = before_case
    cases["gru_reset_before_bidirectional"] = stacked_case("gru_reset_before_bidirectional", lambda: [
        keras.layers.Bidirectional(keras.layers.GRU(H, reset_after=False, **seq), name="bigru_rb_0"),
        keras.layers.Bidirectional(keras.layers.GRU(H, reset_after=False, **seq), name="bigru_rb_1"),
    ], rng_before)

    # Embedding -> LSTM -> Dense on token ids, every step (no mask).
    vocab, dim, classes = 7, 3, 5
    ids = rng.integers(0, vocab, size=(B, T))
    embedding = keras.layers.Embedding(vocab, dim, name="embedding")
    lm_lstm = keras.layers.LSTM(H, return_sequences=True, name="lstm")
    dense = keras.layers.Dense(classes, name="dense")
    embedding.build((B, T))
    lm_lstm.build((B, T, dim))
    dense.build((B, T, H))
    for layer in (embedding, lm_lstm, dense):
        randomize(layer, rng)
    logits = np.asarray(dense(lm_lstm(embedding(ids))))
    lm = {"golden.ids": ids.astype(np.float32), "golden.output": logits}
    for layer in (embedding, lm_lstm, dense):
        lm.update(export(layer))
    cases["lm"] = lm

    metadata = {"keras": keras.__version__, "generator": "scripts/interop/keras_fixtures.py"}
    for name, tensors in cases.items():
        path = os.path.join(OUT, name + ".safetensors")
        save_safetensors(path, tensors, metadata)
        print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes, "
              f"{sorted(k for k in tensors if not k.startswith('golden.'))}")


if __name__ == "__main__":
    main()
