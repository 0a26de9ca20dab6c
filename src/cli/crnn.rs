//! `recur crnn`: trains a CRNN (Conv1d → ReLU → MaxPool → GRU/LSTM → Dense → softmax) on the
//! synthetic audio-like task of [`recur::engine::tasks::audio`] and reports held-out accuracy and
//! throughput in clips (samples) per second.

use std::time::Instant;

use clap::{Args, ValueEnum};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use recur::engine::model::crnn::{Crnn, CrnnConfig, predictions};
use recur::engine::optim::{Optimizer, OptimizerConfig};
use recur::engine::tasks::audio::{AudioDataset, AudioTaskConfig};
use recur::kernels::{CellKind, Isa, Par};

use super::CliError;
use super::args::{positive_f32, positive_usize};

/// Mixed into `--seed` for the held-out clips, so they come from a stream of their own.
const HELD_OUT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Recurrent cell of the CRNN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CrnnCellArg {
    Gru,
    Lstm,
}

/// `recur crnn`.
#[derive(Debug, Args)]
#[command(
    after_help = "The task: clips of 100 frames × 40 bands (log-energy), one sound event \
                        per clip — steady, rising, falling, chord, vibrato, pulsed, arch or burst — \
                        at a random onset, base band and loudness, in exponential noise. Training \
                        and held-out clips are generated from different seeds.\n\n\
                        Example:\n  recur crnn --seed 1"
)]
pub struct CrnnArgs {
    /// Seed of the data, the initialisation and the shuffling (same seed, same result).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CrnnCellArg::Gru)]
    pub cell: CrnnCellArg,
    /// Training clips (balanced over the classes).
    #[arg(long, value_name = "N", default_value_t = 4000, value_parser = positive_usize)]
    pub train_clips: usize,
    /// Held-out clips.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = positive_usize)]
    pub test_clips: usize,
    /// Passes over the training clips.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = positive_usize)]
    pub epochs: usize,
    /// Clips per minibatch.
    #[arg(long, value_name = "B", default_value_t = 32, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, value_name = "LR", default_value_t = 0.003, value_parser = positive_f32)]
    pub learning_rate: f32,
    /// Output channels of the convolution.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive_usize)]
    pub conv_channels: usize,
    /// Max-pooling window (and stride) over time, in frames.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = positive_usize)]
    pub pool: usize,
    /// Hidden units of the recurrent layer.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive_usize)]
    pub hidden: usize,
    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N", value_parser = positive_usize)]
    pub threads: Option<usize>,
}

/// Runs `recur crnn`.
pub fn crnn_command(args: &CrnnArgs) -> Result<(), CliError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the worker threads: {e}")))?;
    pool.install(|| run(args))
}

fn run(args: &CrnnArgs) -> Result<(), CliError> {
    let task = AudioTaskConfig::default();
    let config = CrnnConfig {
        in_channels: task.bands,
        conv_channels: args.conv_channels,
        cell: match args.cell {
            CrnnCellArg::Gru => CellKind::Gru,
            CrnnCellArg::Lstm => CellKind::Lstm,
        },
        pool: args.pool,
        hidden: args.hidden,
        classes: task.classes,
        par: Par::Rayon(0),
        ..CrnnConfig::default()
    };
    let bad = |e: &dyn std::fmt::Display| CliError::bad_input(e.to_string());
    let start = Instant::now();
    let train = AudioDataset::generate(task, args.train_clips, args.seed).map_err(|e| bad(&e))?;
    let test = AudioDataset::generate(task, args.test_clips, args.seed ^ HELD_OUT_SEED)
        .map_err(|e| bad(&e))?;
    let generated = start.elapsed().as_secs_f64();
    let mut model = Crnn::init(&config, args.seed).map_err(|e| bad(&e))?;
    let mut adam =
        Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(args.learning_rate))
            .map_err(|e| bad(&e))?;
    let mut grads = model.zero_grads();
    println!(
        "task:     {} training + {} held-out clips of {} frames × {} bands, {} classes (chance {:.1}%), \
         generated in {generated:.1} s",
        train.len(),
        test.len(),
        task.frames,
        task.bands,
        task.classes,
        100.0 / task.classes as f64
    );
    println!(
        "model:    Conv1d({} → {}, K = {}, pad {}) → ReLU → MaxPool({}) → {}({}) → Dense({}) → softmax",
        config.in_channels,
        config.conv_channels,
        config.kernel_width,
        config.kernel_width / 2,
        config.pool,
        config.cell.name(),
        config.hidden,
        config.classes
    );
    println!(
        "training: Adam lr {}, batch {}, {} epochs, seed {}, isa {}, threads {}",
        args.learning_rate,
        args.batch_size,
        args.epochs,
        args.seed,
        Isa::active(),
        rayon::current_num_threads()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    let mut train_seconds = 0.0;
    let mut trained_clips = 0usize;
    let mut accuracy = 0.0;
    let mut eval_rate = 0.0;
    for epoch in 1..=args.epochs {
        order.shuffle(&mut rng);
        let epoch_start = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut batches = 0usize;
        for chunk in order.chunks(args.batch_size) {
            train.batch(chunk, &mut x, &mut labels);
            grads.zero();
            let loss = model
                .loss_and_grads(&x, task.frames, chunk.len(), &labels, &mut grads)
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            if !loss.is_finite() {
                return Err(CliError::Runtime(format!(
                    "training diverged at epoch {epoch} (loss {loss}); try a lower --learning-rate"
                )));
            }
            model
                .step(&grads, &mut adam)
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            loss_sum += f64::from(loss);
            batches += 1;
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        train_seconds += seconds;
        trained_clips += train.len();
        let eval_start = Instant::now();
        accuracy = evaluate(&model, &test, args.batch_size.max(64))?;
        eval_rate = test.len() as f64 / eval_start.elapsed().as_secs_f64();
        println!(
            "epoch {epoch:>2}: train loss {:.4}, held-out accuracy {:.2}%, {:.1} s, \
             {:.0} clips/s training, {eval_rate:.0} clips/s inference",
            loss_sum / batches.max(1) as f64,
            100.0 * accuracy,
            seconds,
            train.len() as f64 / seconds
        );
    }
    println!(
        "result:   held-out accuracy {:.2}% ({} clips, chance {:.1}%); training {:.0} clips/s \
         (forward + backward + Adam), inference {eval_rate:.0} clips/s; total {:.1} s",
        100.0 * accuracy,
        test.len(),
        100.0 / task.classes as f64,
        trained_clips as f64 / train_seconds,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Fraction of `set` classified correctly, in batches of `batch` clips.
fn evaluate(model: &Crnn, set: &AudioDataset, batch: usize) -> Result<f64, CliError> {
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut correct = 0usize;
    for chunk in indices.chunks(batch) {
        set.batch(chunk, &mut x, &mut labels);
        let logits = model
            .logits(&x, set.config.frames, chunk.len())
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        correct += predictions(&logits, model.classes())
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
    }
    Ok(correct as f64 / set.len().max(1) as f64)
}
