#!/usr/bin/env python3
"""Peer comparison for recur's recurrent layers (issue 3): PyTorch, ONNX Runtime and TensorFlow
against `rnnbench layer`, on the same shapes, interleaved, at 1 and 2 threads.

Every contender runs in its own long-lived worker process (one per framework and thread count,
so each framework's thread pool is configured once, explicitly, before it starts). The driver
walks the shapes; for each shape and thread count it runs `--rounds` rounds, and in each round
asks every contender in turn for `--reps-per-round` timed runs (after that worker's own warm-up),
so the machine's load drifts over all contenders alike. Medians over all runs are reported.

Modes, as in `rnnbench layer`: `infer` = forward over the sequence; `train` = forward plus full
backward (gradients of every weight and of the input) of `y.sum()`. GFLOP/s = 2·G·H·(I+H)·B·T,
×3 for train. ONNX Runtime is inference-only.

Usage (see run_peers.sh, which makes the virtual environment):
    run_peers.py --rnnbench target/release/rnnbench [--shapes issue|quick] [--out table.md]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

GATES = {"lstm": 4, "gru": 3, "rnn": 1}

# (cell, B, T, I, H, modes)
ISSUE_SHAPES = [
    ("lstm", 64, 50, 512, 512, ("train", "infer")),
    ("gru", 64, 50, 512, 512, ("train", "infer")),
    ("rnn", 64, 50, 512, 512, ("train", "infer")),
    ("lstm", 32, 25, 1024, 1024, ("train", "infer")),
    ("lstm", 32, 50, 64, 128, ("train", "infer")),
    ("gru", 16, 150, 256, 256, ("train", "infer")),
    ("lstm", 1, 100, 512, 512, ("infer",)),
    ("gru", 1, 100, 512, 512, ("infer",)),
    ("rnn", 1, 100, 512, 512, ("infer",)),
]
QUICK_SHAPES = [
    ("lstm", 16, 10, 64, 64, ("train", "infer")),
    ("gru", 1, 20, 64, 64, ("infer",)),
]


def flops(cell, b, t, i, h, mode):
    f = 2.0 * GATES[cell] * h * (i + h) * b * t
    return f * 3 if mode == "train" else f


# ----------------------------------------------------------------------------------------------
# Workers: one per (framework, threads). Protocol: one JSON request per stdin line,
# {"cell","mode","b","t","i","h","reps"} → one JSON line {"ms": [...]} or {"error": "..."}.
# ----------------------------------------------------------------------------------------------


def torch_worker(threads):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    cache = {}

    def build(cell, b, t, i, h, mode):
        key = (cell, b, t, i, h, mode)
        if key not in cache:
            cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
            model = cls(i, h)
            x = torch.rand(t, b, i) * 2 - 1
            if mode == "train":
                x.requires_grad_(True)

                def run():
                    model.zero_grad(set_to_none=True)
                    x.grad = None
                    y, _ = model(x)
                    y.sum().backward()

            else:

                def run():
                    with torch.no_grad():
                        model(x)

            run()  # warm-up
            cache[key] = run
        return cache[key]

    return build


def ort_worker(threads):
    import onnxruntime as ort
    import numpy as np
    import torch

    torch.set_num_threads(1)
    cache = {}

    def build(cell, b, t, i, h, mode):
        if mode != "infer":
            raise ValueError("ONNX Runtime is inference-only")
        key = (cell, b, t, i, h)
        if key not in cache:
            cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
            model = cls(i, h).eval()
            x = torch.rand(t, b, i) * 2 - 1
            path = os.path.join(tempfile.mkdtemp(), f"{cell}.onnx")
            kwargs = {"input_names": ["x"], "opset_version": 17}
            try:
                torch.onnx.export(model, (x,), path, dynamo=False, **kwargs)
            except TypeError:
                torch.onnx.export(model, (x,), path, **kwargs)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            feed = {"x": x.numpy().astype(np.float32)}

            def run():
                sess.run(None, feed)

            run()
            cache[key] = run
        return cache[key]

    return build


def tf_worker(threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cache = {}

    def build(cell, b, t, i, h, mode):
        key = (cell, b, t, i, h, mode)
        if key not in cache:
            cls = {"lstm": tf.keras.layers.LSTM, "gru": tf.keras.layers.GRU, "rnn": tf.keras.layers.SimpleRNN}[cell]
            layer = cls(h, return_sequences=True)
            x = tf.Variable(tf.random.uniform((b, t, i), -1, 1))
            layer(x)  # build the weights
            if mode == "train":

                @tf.function
                def step():
                    with tf.GradientTape() as tape:
                        y = layer(x)
                        loss = tf.reduce_sum(y)
                    return tape.gradient(loss, layer.trainable_variables + [x])

            else:

                @tf.function
                def step():
                    return layer(x)

            def run():
                out = step()
                # Force completion (results are eager tensors once returned).
                _ = [o.numpy() for o in tf.nest.flatten(out)[:1]]

            run()
            cache[key] = run
        return cache[key]

    return build


def worker_main(kind, threads):
    os.environ["OMP_NUM_THREADS"] = str(threads)
    build = {"torch": torch_worker, "ort": ort_worker, "tf": tf_worker}[kind](threads)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            run = build(req["cell"], req["b"], req["t"], req["i"], req["h"], req["mode"])
            ms = []
            for _ in range(req["reps"]):
                start = time.perf_counter()
                run()
                ms.append((time.perf_counter() - start) * 1e3)
            print(json.dumps({"ms": ms}), flush=True)
        except Exception as e:  # report and keep serving
            print(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}), flush=True)


class Worker:
    def __init__(self, kind, threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        # PASSIVE: OpenMP threads sleep instead of spinning at barriers. On a shared, loaded
        # machine the default (spinning) policy makes PyTorch's per-step barriers collapse (a
        # descheduled spinner stalls every step); PASSIVE is the peers' best setting there.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError(f"{kind} worker failed to start")

    def time(self, cell, mode, b, t, i, h, reps):
        req = {"cell": cell, "mode": mode, "b": b, "t": t, "i": i, "h": h, "reps": reps}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["ms"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def time_recur(rnnbench, cell, mode, b, t, i, h, threads, reps):
    out = subprocess.run(
        [rnnbench, "layer", "--cell", cell, "--mode", mode, "--batch", str(b), "--steps", str(t),
         "--input", str(i), "--hidden", str(h), "--threads", str(threads), "--reps", str(reps)],
        check=True, capture_output=True, text=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    return record


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--rnnbench", default="target/release/rnnbench")
    ap.add_argument("--shapes", choices=["issue", "quick"], default="issue")
    ap.add_argument("--thread-counts", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps-per-round", type=int, default=3)
    ap.add_argument("--peers", default="torch,ort,tf")
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    ap.add_argument("--json-out", default=None, help="write every raw measurement here (JSON lines)")
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker, args.threads)
        return

    shapes = ISSUE_SHAPES if args.shapes == "issue" else QUICK_SHAPES
    thread_counts = [int(x) for x in args.thread_counts.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    raw = open(args.json_out, "w") if args.json_out else None
    load_before = uptime()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for threads in thread_counts:
        workers = {}
        for p in peers:
            try:
                workers[p] = Worker(p, threads)
            except Exception as e:
                print(f"# {p} ({threads}t) unavailable: {e}", file=sys.stderr)
        for cell, b, t, i, h, modes in shapes:
            for mode in modes:
                times = {"recur": [], **{p: [] for p in workers}}
                errors = {}
                isa = "?"
                for _ in range(args.rounds):
                    rec = time_recur(args.rnnbench, cell, mode, b, t, i, h, threads, args.reps_per_round)
                    isa = rec["isa"]
                    # rnnbench reports the median and min of its reps; keep its median per round.
                    times["recur"].append(rec["ms_median"])
                    for p, w in workers.items():
                        if p in errors:
                            continue
                        try:
                            times[p].extend(w.time(cell, mode, b, t, i, h, args.reps_per_round))
                        except Exception as e:
                            errors[p] = str(e)
                row = {"cell": cell, "mode": mode, "b": b, "t": t, "i": i, "h": h, "threads": threads, "isa": isa}
                for name, ms in times.items():
                    row[name] = statistics.median(ms) if ms and name not in errors else None
                rows.append(row)
                if raw:
                    raw.write(json.dumps({**row, "raw": times, "errors": errors}) + "\n")
                    raw.flush()
                print(json.dumps(row), file=sys.stderr, flush=True)
        for w in workers.values():
            w.close()
    load_after = uptime()

    names = ["recur"] + peers
    label = {"recur": "recur", "torch": "PyTorch", "ort": "ONNX Runtime", "tf": "TensorFlow"}
    lines = [
        f"Run {started}; load average before {load_before}, after {load_after}; "
        f"median of {args.rounds}×{args.reps_per_round} runs per contender (recur: median of "
        f"{args.rounds} per-round medians), interleaved per round.",
        "",
        "| cell B T I H | mode | threads | " + " | ".join(f"{label[n]} ms (GF/s)" for n in names)
        + " | recur vs PyTorch | recur vs ORT |",
        "|---|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for r in rows:
        f = flops(r["cell"], r["b"], r["t"], r["i"], r["h"], r["mode"])
        cells = []
        for n in names:
            ms = r.get(n)
            cells.append("—" if ms is None else f"{ms:.1f} ({f / (ms * 1e-3) / 1e9:.0f})")

        def ratio(peer):
            if r.get(peer) is None or r.get("recur") is None:
                return "—"
            return f"{r[peer] / r['recur']:.2f}×"

        lines.append(
            f"| {r['cell'].upper()} {r['b']} {r['t']} {r['i']} {r['h']} | {r['mode']} | {r['threads']} | "
            + " | ".join(cells) + f" | {ratio('torch')} | {ratio('ort')} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
