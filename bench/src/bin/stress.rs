//! `stress`: long-running checks of recur's memory behaviour (issue 7). Not run in CI: each takes
//! from seconds to minutes. Every line printed is one JSON object.
//!
//! ```text
//! stress soak [--streams 48] [--steps 100000] [--rounds 20] [--threads 2] [--hidden 32] [--input 16]
//! stress long [--cell lstm] [--steps 100000] [--chunk 100] [--batch 4] [--input 32] [--hidden 64] [--whole]
//! ```
//!
//! **soak**: `--streams` streaming models ([`RnnStream`], batch 1) over three networks (SimpleRNN,
//! LSTM and GRU, two layers each), stepped concurrently on a rayon pool of `--threads`, `--steps`
//! steps each in `--rounds` rounds. After every round the process's resident set (`VmRSS`) is
//! sampled; a stream's state is read back and restored (`state`/`set_state`) every round and one in
//! eight streams is `reset`. The run fails (exit 1) if the resident set grows by more than 1 MiB
//! after the first round, if an output is not finite, or if stream 0, replayed alone on one thread,
//! does not end in a bit-identical state (concurrency must not change results).
//!
//! **long**: a `--steps`-long sequence (T = 100,000 by default) in chunks of `--chunk` steps, the
//! state carried from chunk to chunk: first the forward pass (`Rnn::infer`), then truncated BPTT
//! (forward in training mode + backward per chunk, gradients accumulated, the state detached at
//! chunk boundaries). The resident set is sampled 20 times per pass; the run fails if it grows
//! by more than 4 MiB after the first sample, a value is not finite or the two passes end in
//! different states. `--whole` adds, at the end, a single `infer` call over the whole sequence
//! and reports the peak resident set it needed (the unchunked API keeps every step's activations,
//! so that figure grows with T by design).

use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;
use recur_engine::rnn::{Mode, Rnn, RnnConfig, RnnState, RnnStream, SeqBatch};
use recur_kernels::{CellKind, Par, RnnActivation};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "stress",
    about = "recur stress runs: memory stays flat over millions of steps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Many concurrent streaming models on rayon, millions of steps, resident set sampled.
    Soak(SoakArgs),
    /// A very long sequence: chunked forward and truncated BPTT with bounded memory.
    Long(LongArgs),
}

#[derive(Args, Debug)]
struct SoakArgs {
    /// Concurrent streams (spread over a SimpleRNN, an LSTM and a GRU network).
    #[arg(long, default_value_t = 48)]
    streams: usize,
    /// Steps per stream.
    #[arg(long, default_value_t = 100_000)]
    steps: usize,
    /// Rounds (the resident set is sampled after each).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Threads of the rayon pool.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 16)]
    input: usize,
    #[arg(long, default_value_t = 32)]
    hidden: usize,
}

#[derive(Args, Debug)]
struct LongArgs {
    /// rnn | lstm | gru
    #[arg(long, default_value = "lstm")]
    cell: String,
    /// Sequence length T.
    #[arg(long, default_value_t = 100_000)]
    steps: usize,
    /// Steps per chunk (the truncation length of BPTT).
    #[arg(long, default_value_t = 100)]
    chunk: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 32)]
    input: usize,
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Also run one unchunked `infer` over the whole sequence and report its peak memory.
    #[arg(long)]
    whole: bool,
}

/// A `/proc/self/status` field in MiB (`VmRSS`: now; `VmHWM`: peak).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a size in kB");
    kib / 1024.0
}

/// A value in [-1, 1) that depends only on `(stream, t, i)`: inputs are made on the fly, so the
/// soak holds no input buffers that grow with its length.
fn input_value(stream: u64, t: u64, i: u64) -> f32 {
    let mut z = stream
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(t.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(i.wrapping_mul(0x94D0_49BB_1331_11EB));
    z ^= z >> 31;
    z = z.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^= z >> 29;
    ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn fill_input(x: &mut [f32], stream: u64, t: u64) {
    for (i, v) in x.iter_mut().enumerate() {
        *v = input_value(stream, t, i as u64);
    }
}

struct SoakStream {
    id: u64,
    stream: RnnStream,
    x: Vec<f32>,
    t: u64,
    finite: bool,
}

impl SoakStream {
    fn advance(&mut self, steps: usize) {
        for _ in 0..steps {
            fill_input(&mut self.x, self.id, self.t);
            let h = self
                .stream
                .step(&self.x)
                .expect("x_t has the stream's shape");
            self.finite &= h.iter().all(|v| v.is_finite());
            self.t += 1;
        }
    }

    /// Round-trips the state through `state`/`set_state` (which allocate), and resets one stream
    /// in eight.
    fn end_of_round(&mut self, round: usize) {
        let state = self.stream.state();
        self.stream
            .set_state(&state)
            .expect("a stream's own state fits it");
        if self.id % 8 == 7 && round % 5 == 4 {
            self.stream.reset();
        }
    }
}

fn soak(args: &SoakArgs) -> bool {
    let cells = [
        CellKind::Rnn(RnnActivation::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ];
    let networks: Vec<Rnn> = cells
        .iter()
        .enumerate()
        .map(|(i, &cell)| {
            RnnConfig::new(cell, args.input, args.hidden)
                .with_num_layers(2)
                .with_par(Par::Seq)
                .init(i as u64 + 1)
                .expect("valid network")
        })
        .collect();
    let make = |id: usize| SoakStream {
        id: id as u64,
        stream: networks[id % networks.len()]
            .stream(1)
            .expect("batch 1, unidirectional"),
        x: vec![0.0; args.input],
        t: 0,
        finite: true,
    };
    let mut streams: Vec<SoakStream> = (0..args.streams).map(make).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .expect("rayon pool");
    let per_round = args.steps.div_ceil(args.rounds);
    let start = Instant::now();
    let mut rss = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let steps = per_round.min(args.steps - round * per_round);
        pool.install(|| {
            streams.par_iter_mut().for_each(|s| {
                s.advance(steps);
                s.end_of_round(round);
            })
        });
        let now = status_mib("VmRSS:");
        rss.push(now);
        println!(
            "{}",
            json!({"soak": "round", "round": round + 1, "steps_per_stream": streams[0].t,
                   "total_steps": streams.iter().map(|s| s.t).sum::<u64>(),
                   "seconds": start.elapsed().as_secs_f64(), "rss_mib": now})
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let total: u64 = streams.iter().map(|s| s.t).sum();
    let finite = streams.iter().all(|s| s.finite);

    // Stream 0 again, alone on this thread, with the same inputs and round-trips.
    let mut replay = make(0);
    for round in 0..args.rounds {
        replay.advance(per_round.min(args.steps - round * per_round));
        replay.end_of_round(round);
    }
    let identical = replay.stream.state() == streams[0].stream.state();

    let after_first = rss[0];
    let max_after = rss.iter().copied().fold(after_first, f64::max);
    let growth = max_after - after_first;
    let ok = finite && identical && growth <= 1.0;
    println!(
        "{}",
        json!({"soak": "summary", "streams": args.streams, "threads": args.threads,
               "networks": "rnn, lstm, gru; 2 layers each",
               "input": args.input, "hidden": args.hidden, "total_steps": total,
               "seconds": seconds, "steps_per_second": total as f64 / seconds,
               "rss_after_round_1_mib": after_first, "rss_max_mib": max_after,
               "rss_growth_mib": growth, "all_finite": finite,
               "stream_0_replay_bit_identical": identical, "ok": ok})
    );
    ok
}

fn cell_kind(name: &str) -> CellKind {
    match name {
        "rnn" => CellKind::Rnn(RnnActivation::Tanh),
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru,
        other => {
            eprintln!("stress: --cell must be rnn, lstm or gru, found {other:?}");
            std::process::exit(2);
        }
    }
}

/// Fills `x` (T=chunk, B, I) with the inputs of steps `t0..t0+chunk` of the long sequence.
fn fill_chunk(x: &mut [f32], t0: usize, batch: usize, input: usize) {
    for (r, row) in x.chunks_exact_mut(input).enumerate() {
        let (t, b) = (t0 + r / batch, r % batch);
        fill_input(row, b as u64, t as u64);
    }
}

fn long(args: &LongArgs) -> bool {
    let cell = cell_kind(&args.cell);
    if args.chunk == 0 || !args.steps.is_multiple_of(args.chunk) {
        eprintln!(
            "stress: --steps must be a multiple of --chunk (≥ 1), found {} and {}",
            args.steps, args.chunk
        );
        std::process::exit(2);
    }
    let rnn = RnnConfig::new(cell, args.input, args.hidden)
        .with_par(Par::Seq)
        .init(7)
        .expect("valid layer");
    let (b, chunk) = (args.batch, args.chunk);
    let chunks = args.steps / chunk;
    let mut x = vec![0.0f32; chunk * b * args.input];
    let sample_every = (chunks / 20).max(1);
    let mut ok = true;

    // 1. Forward over the whole sequence, chunk by chunk, the state carried over.
    let start = Instant::now();
    let mut state: Option<RnnState> = None;
    let mut rss = Vec::new();
    let mut finite = true;
    for i in 0..chunks {
        fill_chunk(&mut x, i * chunk, b, args.input);
        let out = rnn
            .infer(SeqBatch::new(&x, chunk, b), state.as_ref())
            .expect("forward");
        finite &= out.output.iter().all(|v| v.is_finite());
        state = Some(out.state);
        if (i + 1) % sample_every == 0 {
            rss.push(status_mib("VmRSS:"));
        }
    }
    let forward_seconds = start.elapsed().as_secs_f64();
    let forward_state = state.take().expect("at least one chunk");
    let growth = rss.iter().copied().fold(rss[0], f64::max) - rss[0];
    ok &= finite && growth <= 4.0;
    println!(
        "{}",
        json!({"long": "forward", "cell": args.cell, "steps": args.steps, "chunk": chunk,
               "batch": b, "input": args.input, "hidden": args.hidden,
               "seconds": forward_seconds,
               "steps_per_second": args.steps as f64 / forward_seconds,
               "rss_first_sample_mib": rss[0], "rss_last_mib": rss[rss.len() - 1],
               "rss_growth_mib": growth, "peak_rss_mib": status_mib("VmHWM:"),
               "all_finite": finite})
    );

    // 2. Truncated BPTT: forward (training) + backward per chunk, gradients accumulated.
    let start = Instant::now();
    let mut grads = rnn.zero_grads();
    let d_output = vec![1e-4f32; chunk * b * args.hidden];
    let mut rss = Vec::new();
    let mut finite = true;
    for i in 0..chunks {
        fill_chunk(&mut x, i * chunk, b, args.input);
        let (out, cache) = rnn
            .forward(
                SeqBatch::new(&x, chunk, b),
                state.as_ref(),
                Mode::Training { dropout_seed: 0 },
            )
            .expect("forward");
        let back = rnn
            .backward(cache, &d_output, None, &mut grads)
            .expect("backward");
        finite &= back.d_input.iter().all(|v| v.is_finite());
        state = Some(out.state); // detached: no gradient flows across the chunk boundary
        if (i + 1) % sample_every == 0 {
            rss.push(status_mib("VmRSS:"));
        }
    }
    let tbptt_seconds = start.elapsed().as_secs_f64();
    let grads_finite = grads
        .named("")
        .iter()
        .all(|(_, g)| g.iter().all(|v| v.is_finite()));
    let same_forward = state.as_ref() == Some(&forward_state);
    let growth = rss.iter().copied().fold(rss[0], f64::max) - rss[0];
    ok &= finite && grads_finite && same_forward && growth <= 4.0;
    println!(
        "{}",
        json!({"long": "truncated_bptt", "cell": args.cell, "steps": args.steps,
               "chunk": chunk, "batch": b, "seconds": tbptt_seconds,
               "steps_per_second": args.steps as f64 / tbptt_seconds,
               "rss_first_sample_mib": rss[0], "rss_last_mib": rss[rss.len() - 1],
               "rss_growth_mib": growth, "peak_rss_mib": status_mib("VmHWM:"),
               "all_finite": finite && grads_finite,
               "final_state_equals_forward_pass": same_forward})
    );

    // 3. Optionally, the unchunked API over the whole sequence, for contrast.
    if args.whole {
        let before = status_mib("VmHWM:");
        let mut all = vec![0.0f32; args.steps * b * args.input];
        fill_chunk(&mut all, 0, b, args.input);
        let start = Instant::now();
        let out = rnn
            .infer(SeqBatch::new(&all, args.steps, b), None)
            .expect("forward");
        let seconds = start.elapsed().as_secs_f64();
        let same = out.state == forward_state;
        println!(
            "{}",
            json!({"long": "whole_infer", "cell": args.cell, "steps": args.steps, "batch": b,
                   "seconds": seconds, "peak_rss_before_mib": before,
                   "peak_rss_mib": status_mib("VmHWM:"),
                   "input_and_output_mib": ((all.len() + out.output.len()) * 4) as f64 / 1048576.0,
                   "final_state_equals_chunked": same})
        );
    }
    ok
}

fn main() {
    let cli = Cli::parse();
    let ok = match &cli.command {
        Command::Soak(args) => soak(args),
        Command::Long(args) => long(args),
    };
    if !ok {
        eprintln!("stress: FAILED (see the summary line)");
        std::process::exit(1);
    }
}
