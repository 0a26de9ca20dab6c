//! `rnnbench layer`: one recurrent layer over a sequence batch, inference (forward) or training
//! (forward + full BPTT with `dL/dy = 1`, like `y.sum().backward()` in PyTorch), timed as the
//! median and minimum of `reps` runs after one warm-up, printed as one JSON line.
//!
//! GFLOP/s count `2·G·H·(I+H)·B·T` per forward (G = 4, 3, 1 for LSTM, GRU, RNN), ×3 for training.

use std::time::Instant;

use clap::Args;

use recur_engine::kernels::{CellKind, Par, RnnActivation};
use recur_engine::rnn::{Mode, RnnConfig, SeqBatch};

/// Which pass `rnnbench layer` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMode {
    /// Forward only.
    Infer,
    /// Forward plus full backward.
    Train,
}

impl LayerMode {
    /// `"infer"` / `"train"`.
    pub fn name(self) -> &'static str {
        match self {
            LayerMode::Infer => "infer",
            LayerMode::Train => "train",
        }
    }

    /// Parses `infer` / `train`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "infer" => Some(LayerMode::Infer),
            "train" => Some(LayerMode::Train),
            _ => None,
        }
    }
}

/// Parses `lstm`, `gru`, `gru_reset_before`, `rnn` (= `rnn_tanh`) or `rnn_relu`.
pub fn cell_from_name(name: &str) -> Option<CellKind> {
    match name {
        "lstm" => Some(CellKind::Lstm),
        "gru" => Some(CellKind::Gru),
        "gru_reset_before" => Some(CellKind::GruResetBefore),
        "rnn" | "rnn_tanh" => Some(CellKind::Rnn(RnnActivation::Tanh)),
        "rnn_relu" => Some(CellKind::Rnn(RnnActivation::Relu)),
        _ => None,
    }
}

/// `rnnbench layer` arguments.
#[derive(Args, Clone, Debug)]
pub struct LayerArgs {
    /// lstm | gru | gru_reset_before | rnn (tanh) | rnn_relu
    #[arg(long, value_parser = parse_cell)]
    pub cell: CellKind,
    /// infer (forward) | train (forward + BPTT with dL/dy = 1)
    #[arg(long, value_parser = parse_mode)]
    pub mode: LayerMode,
    /// B
    #[arg(long)]
    pub batch: usize,
    /// T
    #[arg(long)]
    pub steps: usize,
    /// I
    #[arg(long)]
    pub input: usize,
    /// H
    #[arg(long)]
    pub hidden: usize,
    /// Threads of the rayon pool the layer runs in.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed repetitions after one warm-up; median and minimum are reported.
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
}

fn parse_cell(s: &str) -> Result<CellKind, String> {
    cell_from_name(s).ok_or_else(|| format!("expected lstm, gru, rnn or rnn_relu, found {s:?}"))
}

fn parse_mode(s: &str) -> Result<LayerMode, String> {
    LayerMode::from_name(s).ok_or_else(|| format!("expected infer or train, found {s:?}"))
}

/// `rnnbench layer`: runs and prints the JSON line (exit code 2 with a message on bad input).
pub fn layer_command(args: &LayerArgs) {
    let bench = LayerBench {
        cell: args.cell,
        mode: args.mode,
        batch: args.batch,
        steps: args.steps,
        input: args.input,
        hidden: args.hidden,
        threads: args.threads,
        reps: args.reps,
    };
    match run_layer(&bench) {
        Ok(line) => println!("{line}"),
        Err(message) => {
            eprintln!("rnnbench layer: {message}");
            std::process::exit(2);
        }
    }
}

/// One `rnnbench layer` measurement.
#[derive(Clone, Debug)]
pub struct LayerBench {
    pub cell: CellKind,
    pub mode: LayerMode,
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub hidden: usize,
    /// Threads of the rayon pool the layer runs in.
    pub threads: usize,
    pub reps: usize,
}

/// Floating-point operations of one forward pass: `2·G·H·(I+H)·B·T`.
pub fn layer_flops(b: &LayerBench) -> f64 {
    2.0 * (b.cell.gates() * b.hidden * (b.input + b.hidden) * b.batch * b.steps) as f64
}

/// Peak resident set size of this process in MiB (`VmHWM`), if the OS reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the measurement and returns the JSON line.
///
/// # Errors
/// A message if the configuration is invalid (zero sizes) or the thread pool cannot be built.
pub fn run_layer(b: &LayerBench) -> Result<String, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(b.threads.max(1))
        .build()
        .map_err(|e| format!("cannot build a pool of {} threads: {e}", b.threads))?;
    let rnn = RnnConfig::new(b.cell, b.input, b.hidden)
        .with_par(if b.threads > 1 {
            Par::Rayon(0)
        } else {
            Par::Seq
        })
        .init(1)
        .map_err(|e| e.to_string())?;
    let x: Vec<f32> = (0..b.steps * b.batch * b.input)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let mut grads = rnn.zero_grads();
    let mut dy = Vec::new();
    let mut once = || -> Result<(f64, Option<f64>), String> {
        let cpu_start = crate::thread_cpu_seconds();
        let start = Instant::now();
        let input = SeqBatch::new(&x, b.steps, b.batch);
        match b.mode {
            LayerMode::Infer => {
                let out = rnn.infer(input, None).map_err(|e| e.to_string())?;
                std::hint::black_box(&out.output);
            }
            LayerMode::Train => {
                let (out, cache) = rnn
                    .forward(input, None, Mode::Training { dropout_seed: 0 })
                    .map_err(|e| e.to_string())?;
                dy.resize(out.output.len(), 1.0);
                grads.zero();
                let back = rnn
                    .backward(cache, &dy, None, &mut grads)
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(&back.d_input);
            }
        }
        let wall = start.elapsed().as_secs_f64() * 1e3;
        let cpu = cpu_start
            .zip(crate::thread_cpu_seconds())
            .map(|(a, z)| (z - a) * 1e3);
        Ok((wall, cpu))
    };
    let times = pool.install(|| -> Result<Vec<(f64, Option<f64>)>, String> {
        once()?;
        (0..b.reps.max(1)).map(|_| once()).collect()
    })?;
    let mut sorted: Vec<f64> = times.iter().map(|t| t.0).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let min = sorted[0];
    // On-CPU time of the calling thread: with 1 thread it excludes the time the thread was
    // descheduled (the noise of a loaded machine); with more it only covers the caller's share.
    let mut cpu: Vec<f64> = times.iter().filter_map(|t| t.1).collect();
    cpu.sort_by(f64::total_cmp);
    let cpu_median = (b.threads == 1 && !cpu.is_empty()).then(|| cpu[cpu.len() / 2]);
    let flops = layer_flops(b) * if b.mode == LayerMode::Train { 3.0 } else { 1.0 };
    let line = serde_json::json!({
        "op": "layer",
        "cell": match b.cell { CellKind::Rnn(RnnActivation::Tanh) => "rnn", c => c.name() },
        "mode": b.mode.name(),
        "batch": b.batch,
        "steps": b.steps,
        "input": b.input,
        "hidden": b.hidden,
        "threads": b.threads,
        "isa": rnn.config().isa.clamp_to_host().name(),
        "ms_median": median,
        "ms_min": min,
        "gflops": flops / (median * 1e-3) / 1e9,
        "cpu_ms_median": cpu_median,
        "peak_rss_mib": peak_rss_mib(),
    });
    Ok(line.to_string())
}
