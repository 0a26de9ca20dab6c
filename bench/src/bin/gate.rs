//! `gate`: the workloads of the performance regression gate (`scripts/regression_gate.sh`).
//!
//! ```text
//! gate list                 # the workload names
//! gate run WORKLOAD         # set up, then run WORKLOAD once inside `gate_measured` (for callgrind)
//! gate ratios [--pairs N]   # in-process wall-clock ratios against fixed references, JSON lines
//! ```
//!
//! **Instruction counts.** `gate run` does all set-up (allocation, packing-independent data) outside
//! the `#[inline(never)]` function `gate_measured`, so `valgrind --tool=callgrind
//! --toggle-collect='*gate_measured*'` counts the workload alone. Valgrind cannot run AVX-512, so
//! the script forces `RECUR_ISA=avx2`; everything runs on one thread. Instruction counts are
//! deterministic, which is what makes a 2% threshold usable on a noisy machine.
//!
//! **Ratios.** `gate ratios` times recur against references that do not change with recur's code —
//! SGEMM against matrixmultiply, the fused LSTM layer against the plain reference LSTM — in
//! interleaved pairs on one thread (a pair: five calls of each, alternating; each side keeps its
//! fastest call) and prints the median of the per-pair ratios recur/reference. Both sides see the
//! same machine noise, so the ratio is far steadier than either time.
//!
//! The workloads use only long-standing public APIs, so the script can copy this file into an
//! older checkout and measure a baseline commit with the same code.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use recur_engine::data::TokenStore;
use recur_engine::data::dataset::{EpochOrder, Minibatch, SlidingWindows};
use recur_engine::model::lm::{LanguageModel, LmConfig, LmWorkspace};
use recur_engine::reference::network::RefNetwork;
use recur_engine::rnn::{Mode, RnnConfig, SeqBatch};
use recur_kernels::gemm::{MatMut, MatRef, sgemm};
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy};
use recur_kernels::{CellKind, Par, RnnActivation};

const WORKLOADS: [&str; 9] = [
    "gemm_kernel",
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "softmax_ce",
    "train_step",
];

/// The code whose instructions are counted: one call of `work`.
#[inline(never)]
fn gate_measured(work: &mut dyn FnMut()) {
    work();
}

fn cell(name: &str) -> CellKind {
    match name {
        "rnn" => CellKind::Rnn(RnnActivation::Tanh),
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru,
        other => panic!("unknown cell {other}"),
    }
}

fn data(len: usize, seed: u64) -> Vec<f32> {
    recur_bench::uniform_data(len, seed)
}

/// Sets up `workload` and returns the closure to measure.
fn workload(name: &str) -> Box<dyn FnMut()> {
    match name {
        // One MC×KC block of A against a few NR panels: the micro-kernel dominates.
        "gemm_kernel" => {
            let (m, n, k) = (96, 256, 256);
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let mut c = vec![0.0f32; m * n];
            Box::new(move || {
                sgemm(
                    Par::Seq,
                    1.0,
                    MatRef::row_major(&a, m, k),
                    MatRef::row_major(&b, k, n),
                    0.0,
                    MatMut::row_major(&mut c, m, n),
                );
                black_box(&c);
            })
        }
        "rnn_forward" | "lstm_forward" | "gru_forward" | "rnn_backward" | "lstm_backward"
        | "gru_backward" => {
            let (kind, pass) = name.split_once('_').expect("cell_pass");
            let (steps, batch, input, hidden) = (8, 16, 64, 128);
            let rnn = RnnConfig::new(cell(kind), input, hidden)
                .with_par(Par::Seq)
                .init(1)
                .expect("valid layer");
            let x = data(steps * batch * input, 3);
            let dy = data(steps * batch * hidden, 4);
            let mut grads = rnn.zero_grads();
            let backward = pass == "backward";
            if !backward {
                return Box::new(move || {
                    let out = rnn
                        .forward(
                            SeqBatch::new(&x, steps, batch),
                            None,
                            Mode::Training { dropout_seed: 0 },
                        )
                        .expect("forward");
                    black_box(&out);
                });
            }
            // Backward alone: the forward (and its cache) is made before each measured call.
            let mut cache = None;
            Box::new(move || {
                if cache.is_none() {
                    let (_, c) = rnn
                        .forward(
                            SeqBatch::new(&x, steps, batch),
                            None,
                            Mode::Training { dropout_seed: 0 },
                        )
                        .expect("forward");
                    cache = Some(c);
                    return;
                }
                let back = rnn
                    .backward(cache.take().expect("cache"), &dy, None, &mut grads)
                    .expect("backward");
                black_box(&back);
            })
        }
        "softmax_ce" => {
            let (rows, vocab) = (32, 8192);
            let logits: Vec<f32> = data(rows * vocab, 5).iter().map(|v| 4.0 * v).collect();
            let targets: Vec<u32> = (0..rows as u32).map(|r| (r * 997) % vocab as u32).collect();
            let mut losses = vec![0.0f32; rows];
            let mut d_logits = vec![0.0f32; rows * vocab];
            Box::new(move || {
                softmax_cross_entropy(
                    &logits,
                    vocab,
                    &targets,
                    &mut losses,
                    Some(LogitsGrad {
                        d_logits: &mut d_logits,
                        scale: 1.0 / rows as f32,
                    }),
                );
                black_box(&d_logits);
            })
        }
        // The seed's character model, smaller: one-hot(48) → SimpleRNN(64) → Dense(48), T = 10, B = 32.
        "train_step" => {
            let vocab = 48;
            let config: LmConfig = serde_json::from_value(serde_json::json!({
                "vocab": vocab, "embedding_dim": null, "cell": "rnn", "hidden": 64,
                "num_layers": 1, "dropout": 0.0
            }))
            .expect("an LmConfig");
            let model = LanguageModel::new(config, Par::Seq, 1).expect("model");
            let ids: Vec<u32> = (0..4000u32)
                .map(|i| (i * 31 + i / 7) % vocab as u32)
                .collect();
            let store = Arc::new(TokenStore::from_ids(ids, Vec::new()).expect("store"));
            let windows = SlidingWindows::new(store, 0..4000, 10, 1).expect("windows");
            let order = EpochOrder::sequential(3990, 32);
            let mut batch = Minibatch::new();
            order.fill(&windows, 0, &mut batch);
            let mut grads = model.zero_grads();
            let mut ws = LmWorkspace::default();
            Box::new(move || {
                grads.zero();
                let out = model
                    .train_step(&batch, None, 0, &mut grads, &mut ws)
                    .expect("train step");
                black_box(&out);
            })
        }
        other => {
            eprintln!("unknown workload {other}; `gate list` names them");
            std::process::exit(2);
        }
    }
}

/// Timed calls per side in one pair: each side's time in the pair is the fastest of these.
///
/// One call lasts well under a scheduler time slice, so on a loaded machine most calls run
/// undisturbed and the fastest of a few is a clean time; a mean or a long multi-call sample would
/// instead absorb whatever preemption happened to fall inside it.
const CALLS_PER_PAIR: usize = 5;

/// Median over `pairs` pairs of `min time(recur) / min time(reference)`, the calls of a pair
/// alternating recur, reference, recur, … so both sides see the same moment of machine load.
fn ratio(pairs: usize, recur: &mut dyn FnMut(), reference: &mut dyn FnMut()) -> f64 {
    recur();
    reference();
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..pairs)
        .map(|_| {
            let (mut best_recur, mut best_reference) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..CALLS_PER_PAIR {
                best_recur = best_recur.min(timed(recur));
                best_reference = best_reference.min(timed(reference));
            }
            best_recur / best_reference
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn ratios(pairs: usize) {
    let (m, n, k) = (192, 256, 256);
    let a = data(m * k, 1);
    let b = data(k * n, 2);
    let mut c = vec![0.0f32; m * n];
    let mut c2 = c.clone();
    let r = ratio(
        pairs,
        &mut || {
            sgemm(
                Par::Seq,
                1.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                0.0,
                MatMut::row_major(&mut c, m, n),
            )
        },
        &mut || {
            recur_kernels::gemm::baseline::matrixmultiply_sgemm(
                1.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                0.0,
                MatMut::row_major(&mut c2, m, n),
            )
        },
    );
    println!(
        "{{\"ratio\":\"sgemm_vs_matrixmultiply\",\"shape\":\"{m}x{n}x{k}\",\"pairs\":{pairs},\"median\":{r:.4}}}"
    );

    let (steps, batch, input, hidden) = (8, 8, 32, 64);
    let lstm = RnnConfig::new(CellKind::Lstm, input, hidden)
        .with_par(Par::Seq)
        .init(1)
        .expect("layer");
    let reference = RefNetwork::<f32>::seeded(CellKind::Lstm, input, hidden, 1, false, 1);
    let x = data(steps * batch * input, 3);
    let lengths = vec![steps; batch];
    let r = ratio(
        pairs,
        &mut || {
            black_box(
                lstm.infer(SeqBatch::new(&x, steps, batch), None)
                    .expect("infer"),
            );
        },
        &mut || {
            black_box(reference.forward(&x, steps, batch, &lengths, None, None));
        },
    );
    println!(
        "{{\"ratio\":\"fused_lstm_vs_reference\",\"shape\":\"T{steps} B{batch} I{input} H{hidden}\",\"pairs\":{pairs},\"median\":{r:.4}}}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => WORKLOADS.iter().for_each(|w| println!("{w}")),
        ["run", name] => {
            let mut work = workload(name);
            // Backward workloads make their forward cache on the first call.
            if name.ends_with("_backward") {
                work();
            }
            gate_measured(&mut *work);
        }
        ["ratios"] => ratios(11),
        ["ratios", "--pairs", n] => ratios(n.parse().expect("--pairs N")),
        _ => {
            eprintln!("usage: gate list | gate run WORKLOAD | gate ratios [--pairs N]");
            std::process::exit(2);
        }
    }
}
