//! The reset-before GRU (`CellKind::GruResetBefore`, Keras `reset_after=False`) against the
//! linear-before-reset GRU (`CellKind::Gru`, Keras' default) at one shape, side by side in one
//! process: each round times the two back to back (inference, then training = forward + BPTT
//! with `dL/dy = 1`; each sample ≥ 0.25 s of repeated calls), so machine load hits both alike; the report is the median over rounds of the
//! time ratio `reset-before / reset-after`, and each cell's median time and GFLOP/s
//! (`2·3·H·(I+H)·B·T` per forward, ×3 for training — the same count for both cells).
//!
//! Time is the thread's on-CPU time (`/proc/thread-self/schedstat`, first field, ns) where Linux
//! provides it — it does not advance while the thread waits for a core, which on a shared machine
//! is most of the noise — and wall time otherwise. One thread (`Par::Seq`).
//!
//! ```sh
//! cargo bench -p recur-bench --bench gru_reset_before            # B=32 T=25 I=256 H=256, 9 rounds
//! cargo bench -p recur-bench --bench gru_reset_before -- 64 50 128 512 15  # B T I H rounds
//! ```

use std::time::Instant;

use recur_engine::kernels::{CellKind, Isa, Par};
use recur_engine::rnn::{Mode, Rnn, RnnConfig, SeqBatch};

/// On-CPU nanoseconds of this thread, if the kernel reports them.
fn on_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Seconds per call of `f`, over `reps` calls: on-CPU time if available, else wall time.
fn time_calls(f: &mut dyn FnMut(), reps: usize) -> f64 {
    let (cpu0, wall0) = (on_cpu_ns(), Instant::now());
    for _ in 0..reps {
        f();
    }
    let total = match (cpu0, on_cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 * 1e-9,
        _ => wall0.elapsed().as_secs_f64(),
    };
    total / reps as f64
}

/// Calls per sample so that a sample lasts at least 0.25 s: the on-CPU clock of a VM may advance
/// in scheduler ticks (4 ms here), far too coarse for one call.
fn calibrate(f: &mut dyn FnMut()) -> usize {
    let mut reps = 1;
    while time_calls(f, reps) * (reps as f64) < 0.25 && reps < 1 << 16 {
        reps *= 2;
    }
    reps
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Shape {
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
}

fn layer(cell: CellKind, s: &Shape) -> Rnn {
    RnnConfig::new(cell, s.input, s.hidden)
        .with_par(Par::Seq)
        .init(1)
        .expect("valid config")
}

fn infer(rnn: &Rnn, x: &[f32], s: &Shape) {
    std::hint::black_box(rnn.infer(SeqBatch::new(x, s.steps, s.batch), None).unwrap());
}

fn train(rnn: &Rnn, x: &[f32], s: &Shape) {
    let (out, cache) = rnn
        .forward(
            SeqBatch::new(x, s.steps, s.batch),
            None,
            Mode::Training { dropout_seed: 0 },
        )
        .unwrap();
    let dy = vec![1.0f32; out.output.len()];
    let mut grads = rnn.zero_grads();
    std::hint::black_box(rnn.backward(cache, &dy, None, &mut grads).unwrap());
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |k: usize, default: usize| numbers.get(k).copied().unwrap_or(default);
    let s = Shape {
        batch: arg(0, 32),
        steps: arg(1, 25),
        input: arg(2, 256),
        hidden: arg(3, 256),
    };
    let rounds = arg(4, 9);
    let after = layer(CellKind::Gru, &s);
    let before = layer(CellKind::GruResetBefore, &s);
    let x: Vec<f32> = (0..s.steps * s.batch * s.input)
        .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
        .collect();
    let flops = (2 * 3 * s.hidden * (s.input + s.hidden) * s.batch * s.steps) as f64;
    let clock = if on_cpu_ns().is_some() {
        "on-CPU"
    } else {
        "wall"
    };
    println!(
        "GRU reset-before vs reset-after, B={} T={} I={} H={}, {} path, 1 thread, {rounds} rounds, \
         {clock} time, medians",
        s.batch,
        s.steps,
        s.input,
        s.hidden,
        Isa::active()
    );
    type Pass = fn(&Rnn, &[f32], &Shape);
    for (mode, pass, factor) in [("infer", infer as Pass, 1.0), ("train", train as Pass, 3.0)] {
        // warm-up (page faults) and calls per sample, the same for both cells
        let reps = calibrate(&mut || pass(&after, &x, &s));
        pass(&before, &x, &s);
        let (mut t_after, mut t_before, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let a = time_calls(&mut || pass(&after, &x, &s), reps);
            let b = time_calls(&mut || pass(&before, &x, &s), reps);
            t_after.push(a);
            t_before.push(b);
            ratios.push(b / a);
        }
        let (a, b) = (median(t_after), median(t_before));
        println!(
            "{mode}: reset_after=True {:.2} ms ({:.1} GFLOP/s), reset_after=False {:.2} ms \
             ({:.1} GFLOP/s), time ratio (False/True) {:.3}",
            a * 1e3,
            factor * flops / a * 1e-9,
            b * 1e3,
            factor * flops / b * 1e-9,
            median(ratios)
        );
    }
}
