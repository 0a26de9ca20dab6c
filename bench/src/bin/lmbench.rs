//! `lmbench`: a fixed number of language-model training steps (forward, backward, optimiser) on
//! random token ids — a small, deterministic workload for instruction counts
//! (`valgrind --tool=callgrind`) and CPU-time comparisons of the training path.
//!
//! Defaults are the seed's character model: one-hot input over 42 symbols, SimpleRNN(128, tanh),
//! windows of 10, batch 128, RMSprop (Keras defaults). Prints one JSON line.
//!
//! ```text
//! lmbench [--steps N] [--threads N] [--cell rnn_tanh|lstm|gru] [--vocab V] [--hidden H]
//!         [--seq T] [--batch B] [--embedding D] [--optimizer rmsprop|adam] [--pad]
//! ```
//!
//! Each step is [`Trainer::train_batch`], the step an epoch of `recur train` takes. The seed's
//! word model: `--cell lstm --vocab 8639 --embedding 100 --hidden 150 --seq 19 --batch 32
//! --optimizer adam --pad`.

use std::time::Instant;

use clap::Parser;
use recur_engine::data::dataset::{Minibatch, Targets};
use recur_engine::kernels::Par;
use recur_engine::model::init::InitScheme;
use recur_engine::model::lm::{LanguageModel, LmConfig};
use recur_engine::optim::{Optimizer, OptimizerConfig};
use recur_engine::train::{DatasetSpec, TrainOptions, Trainer};

#[derive(Parser, Debug)]
#[command(about = "Language-model training steps on random ids (one JSON line)")]
struct Args {
    /// Training steps to run (after one warm-up step).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Threads of the rayon pool.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// rnn_tanh | rnn_relu | lstm | gru
    #[arg(long, default_value = "rnn_tanh")]
    cell: String,
    #[arg(long, default_value_t = 42)]
    vocab: usize,
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// T (window length).
    #[arg(long, default_value_t = 10)]
    seq: usize,
    /// B.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Embedding width (one-hot input when absent).
    #[arg(long)]
    embedding: Option<usize>,
    /// rmsprop | adam (Keras defaults).
    #[arg(long, default_value = "rmsprop")]
    optimizer: String,
    /// Front-pad each row with a random number (< T) of padding ids, as the word task's line
    /// prefixes are (the shared-padding path then runs).
    #[arg(long)]
    pad: bool,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| run(&args))
}

fn run(args: &Args) -> Result<(), String> {
    let par = if args.threads > 1 {
        Par::Rayon(0)
    } else {
        Par::Seq
    };
    let config = LmConfig {
        vocab: args.vocab,
        embedding_dim: args.embedding,
        cell: args.cell.clone(),
        hidden: args.hidden,
        num_layers: 1,
        dropout: 0.0,
        embed_dropout: 0.0,
        output_dropout: 0.0,
        init: InitScheme::Keras,
    };
    let model = LanguageModel::new(config, par, 7).map_err(|e| e.to_string())?;
    let optimizer_config = match args.optimizer.as_str() {
        "rmsprop" => OptimizerConfig::keras_rmsprop(),
        "adam" => OptimizerConfig::keras_adam(),
        other => {
            return Err(format!(
                "--optimizer: expected rmsprop or adam, found {other:?}"
            ));
        }
    };
    let optimizer = Optimizer::new(optimizer_config).map_err(|e| e.to_string())?;
    let options = TrainOptions {
        batch_size: args.batch,
        epochs: 1,
        seed: 7,
        shuffle: false,
        clip: Vec::new(),
        dataset: DatasetSpec::LinePrefixes { max_steps: None },
        steps: args.seq,
        sample_tokens: 0,
        run_dir: None,
        checkpoint_every: 0,
        max_steps: None,
    };
    let mut trainer = Trainer::new(model, optimizer, options);
    // A fixed pseudo-random id stream (xorshift), so every run does the same work.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let mut batches: Vec<Minibatch> = Vec::new();
    for _ in 0..4 {
        let mut b = Minibatch::new();
        b.steps = args.seq;
        b.batch = args.batch;
        // Row r starts with pads[r] padding ids (0), as the word task's front-padded prefixes.
        let pads: Vec<usize> = (0..args.batch)
            .map(|_| if args.pad { next(args.seq) } else { 0 })
            .collect();
        b.inputs = (0..args.seq * args.batch)
            .map(|i| {
                let (t, r) = (i / args.batch, i % args.batch);
                if t < pads[r] {
                    0
                } else {
                    1 + next(args.vocab - 1) as u32
                }
            })
            .collect();
        b.targets = (0..args.batch)
            .map(|_| 1 + next(args.vocab - 1) as u32)
            .collect();
        b.targets_kind = Targets::LastStep;
        batches.push(b);
    }
    let mut loss = 0.0;
    let mut times = Vec::with_capacity(args.steps);
    let mut cpu_before = Vec::new();
    for step in 0..=args.steps {
        if step == 1 {
            // Per pool thread, after the warm-up step: see `busiest_ms` below.
            cpu_before = rayon::broadcast(|_| recur_bench::thread_cpu_seconds());
        }
        let start = Instant::now();
        let stats = trainer
            .train_batch(&batches[step % batches.len()], 1)
            .map_err(|e| e.to_string())?;
        loss = stats.mean_loss();
        if step > 0 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    // The busiest pool thread's on-CPU time per step: what a step would take with a core per
    // thread (time spent waiting for a descheduled thread is not in it), so 2-thread runs can be
    // compared on a loaded machine.
    let cpu_after = rayon::broadcast(|_| recur_bench::thread_cpu_seconds());
    let busiest_ms =
        recur_bench::busiest_thread(&cpu_before, &cpu_after) * 1e3 / args.steps.max(1) as f64;
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{{\"op\":\"lm_train\",\"cell\":\"{}\",\"vocab\":{},\"hidden\":{},\"seq\":{},\"batch\":{},\"threads\":{},\"steps\":{},\"ms_median\":{median:.3},\"busiest_ms\":{busiest_ms:.3},\"final_loss\":{loss:.6}}}",
        args.cell, args.vocab, args.hidden, args.seq, args.batch, args.threads, args.steps
    );
    Ok(())
}
