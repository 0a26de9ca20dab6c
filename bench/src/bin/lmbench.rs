//! `lmbench`: a fixed number of language-model training steps (forward, backward, optimiser) on
//! random token ids — a small, deterministic workload for instruction counts
//! (`valgrind --tool=callgrind`) and CPU-time comparisons of the training path.
//!
//! Defaults are the seed's character model: one-hot input over 42 symbols, SimpleRNN(128, tanh),
//! windows of 10, batch 128, RMSprop (Keras defaults). Prints one JSON line.
//!
//! ```text
//! lmbench [--steps N] [--threads N] [--cell rnn_tanh|lstm|gru] [--vocab V] [--hidden H]
//!         [--seq T] [--batch B] [--embedding D]
//! ```

use std::time::Instant;

use clap::Parser;
use recur_engine::data::dataset::{Minibatch, Targets};
use recur_engine::kernels::Par;
use recur_engine::model::init::InitScheme;
use recur_engine::model::lm::{LanguageModel, LmConfig, LmWorkspace};
use recur_engine::optim::{Optimizer, OptimizerConfig, Param};

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
    let mut model = LanguageModel::new(config, par, 7).map_err(|e| e.to_string())?;
    let mut optimizer =
        Optimizer::new(OptimizerConfig::keras_rmsprop()).map_err(|e| e.to_string())?;
    let mut grads = model.zero_grads();
    let mut ws = LmWorkspace::default();
    // A fixed pseudo-random id stream (xorshift), so every run does the same work.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next_id = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % args.vocab as u64) as u32
    };
    let mut batches: Vec<Minibatch> = Vec::new();
    for _ in 0..4 {
        let mut b = Minibatch::new();
        b.steps = args.seq;
        b.batch = args.batch;
        b.inputs = (0..args.seq * args.batch).map(|_| next_id()).collect();
        b.targets = (0..args.batch).map(|_| next_id()).collect();
        b.targets_kind = Targets::LastStep;
        batches.push(b);
    }
    let mut loss = 0.0;
    let mut times = Vec::with_capacity(args.steps);
    for step in 0..=args.steps {
        let start = Instant::now();
        grads.zero();
        let (stats, _) = model
            .train_step(&batches[step % batches.len()], None, 0, &mut grads, &mut ws)
            .map_err(|e| e.to_string())?;
        loss = stats.mean_loss();
        let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
        let mut pairs = model.params_and_grads(&mut grads);
        let mut params: Vec<Param<'_>> = pairs
            .iter_mut()
            .zip(&names)
            .map(|((p, g), name)| Param::new(name, p, g))
            .collect();
        optimizer.step(&mut params).map_err(|e| e.to_string())?;
        if step > 0 {
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{{\"op\":\"lm_train\",\"cell\":\"{}\",\"vocab\":{},\"hidden\":{},\"seq\":{},\"batch\":{},\"threads\":{},\"steps\":{},\"ms_median\":{median:.3},\"final_loss\":{loss:.6}}}",
        args.cell, args.vocab, args.hidden, args.seq, args.batch, args.threads, args.steps
    );
    Ok(())
}
