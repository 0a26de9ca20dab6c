#!/usr/bin/env python3
"""The two Keras experiments that motivated recur, as the seed documents wrote them, timed.

1. char: Alice in Wonderland, windows of 10 characters (step 1) -> next character;
   one-hot -> SimpleRNN(128, tanh) -> Dense(vocab) -> softmax; RMSprop (Keras defaults); batch 128;
   each epoch followed by a 100-character greedy continuation of a random window.
2. word: Sherlock Holmes, Keras-Tokenizer word ids, every prefix (length >= 2) of every line
   left-padded to the longest; Embedding(vocab, 100) -> LSTM(150) -> Dense(vocab, softmax); Adam;
   batch 32; greedy generation of 7 words after "I will close the door if".

Prints one JSON line per epoch: {"experiment", "epoch", "loss", "seconds", "threads"} and the
samples, so recur's RESULTS.md can set them side by side. Run through run_keras_seeds.sh, which
creates the virtual environment.
"""
import argparse
import json
import os
import sys
import time


def find_corpus(name):
    for base in (os.environ.get("RECUR_DATA"), "data", "../shared/data",
                 os.path.join(os.path.dirname(__file__), "../../../shared/data")):
        if base and os.path.isfile(os.path.join(base, name)):
            return os.path.join(base, name)
    sys.exit(f"cannot find {name}: set RECUR_DATA")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment", choices=["char", "word"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import keras

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(json.dumps({
                "experiment": args.experiment, "epoch": self.epoch_base + epoch + 1,
                "loss": float(logs["loss"]), "seconds": time.perf_counter() - self.start,
                "threads": args.threads, "keras": keras.__version__, "tensorflow": tf.__version__,
            }), flush=True)

    log = EpochLog()
    log.epoch_base = 0

    if args.experiment == "char":
        lines = []
        with open(find_corpus("alice.txt"), "rb") as f:
            for line in f:
                line = line.strip().lower().decode("ascii", "ignore")
                if len(line) == 0:
                    continue
                lines.append(line)
        text = " ".join(lines)
        chars = sorted(set(text))
        index = {c: i for i, c in enumerate(chars)}
        seq_len, step = 10, 1
        inputs, labels = [], []
        for i in range(0, len(text) - seq_len, step):
            inputs.append(text[i:i + seq_len])
            labels.append(text[i + seq_len])
        print(json.dumps({"experiment": "char", "windows": len(inputs), "vocab": len(chars)}), flush=True)
        X = np.zeros((len(inputs), seq_len, len(chars)), dtype=bool)
        Y = np.zeros((len(inputs), len(chars)), dtype=bool)
        for i, window in enumerate(inputs):
            for j, ch in enumerate(window):
                X[i, j, index[ch]] = 1
            Y[i, index[labels[i]]] = 1
        model = keras.Sequential([
            keras.Input((seq_len, len(chars))),
            keras.layers.SimpleRNN(128, return_sequences=False, unroll=True),
            keras.layers.Dense(len(chars)),
            keras.layers.Activation("softmax"),
        ])
        model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
        rng = np.random.default_rng(args.seed)
        for epoch in range(args.epochs):
            log.epoch_base = epoch
            model.fit(X, Y, batch_size=128, epochs=1, verbose=0, callbacks=[log])
            seed = inputs[rng.integers(len(inputs))]
            out = seed
            for _ in range(100):
                x = np.zeros((1, seq_len, len(chars)))
                for j, ch in enumerate(seed):
                    x[0, j, index[ch]] = 1
                pred = chars[int(np.argmax(model.predict(x, verbose=0)[0]))]
                out += pred
                seed = seed[1:] + pred
            print(json.dumps({"experiment": "char", "epoch": epoch + 1, "sample": out}), flush=True)
    else:
        with open(find_corpus("sherlock.txt"), encoding="utf-8") as f:
            lines = f.read().lower().split("\n")
        tok = keras.preprocessing.text.Tokenizer() if hasattr(keras, "preprocessing") and hasattr(keras.preprocessing, "text") else None
        if tok is None:
            from tensorflow.keras.preprocessing.text import Tokenizer  # noqa: F401
            tok = Tokenizer()
        tok.fit_on_texts(lines)
        vocab = len(tok.word_index) + 1
        seqs = []
        for line in lines:
            ids = tok.texts_to_sequences([line])[0]
            for i in range(1, len(ids)):
                seqs.append(ids[:i + 1])
        max_len = max(len(s) for s in seqs)
        padded = np.array([[0] * (max_len - len(s)) + s for s in seqs])
        X, y = padded[:, :-1], padded[:, -1]
        print(json.dumps({"experiment": "word", "samples": len(seqs), "vocab": vocab, "max_len": max_len}), flush=True)
        model = keras.Sequential([
            keras.Input((max_len - 1,)),
            keras.layers.Embedding(vocab, 100),
            keras.layers.LSTM(150),
            keras.layers.Dense(vocab, activation="softmax"),
        ])
        model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
        model.fit(X, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[log])
        text = "I will close the door if"
        for _ in range(7):
            ids = tok.texts_to_sequences([text])[0]
            ids = [0] * max(0, max_len - 1 - len(ids)) + ids[-(max_len - 1):]
            pred = int(np.argmax(model.predict(np.array([ids]), verbose=0)[0]))
            text += " " + tok.index_word.get(pred, "?")
        print(json.dumps({"experiment": "word", "sample": text}), flush=True)


if __name__ == "__main__":
    main()
