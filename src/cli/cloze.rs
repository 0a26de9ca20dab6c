//! `recur cloze`: the character cloze task ("I am ___ hungry") on a corpus — the same recurrent
//! model reading only the left context, both sides bidirectionally, or (optionally) the whole
//! window left to right — with held-out accuracies side by side.

use std::time::Instant;

use clap::{Args, ValueEnum};
use recur::engine::data::Corpus;
use recur::engine::optim::{GradClip, OptimizerConfig};
use recur::engine::tasks::cloze::{
    ClozeModel, ClozeModelConfig, ClozeReader, ClozeStats, ClozeTask, ClozeTrainConfig, train_cloze,
};
use recur::kernels::{CellKind, Isa, Par, RnnActivation};

use super::CliError;
use super::args::{ModelArg, positive_f32, positive_usize};
use super::commands::resolve_corpus;
use super::config::CorpusChoice;

/// A reader of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReaderArg {
    /// Unidirectional, predicting at the gap: sees the left context only.
    Left,
    /// Bidirectional, predicting at the gap from both directions.
    Bidirectional,
    /// Unidirectional over the whole window, predicting from its final state.
    WholeWindow,
}

/// `recur cloze`.
#[derive(Debug, Args)]
#[command(after_help = "Example (the RESULTS.md run):\n  recur cloze\n  \
    recur cloze --readers left,bidirectional,whole-window --steps 3000")]
pub struct ClozeArgs {
    /// Text file, or a named corpus: alice, sherlock.
    #[arg(long, value_name = "PATH|NAME", default_value = "alice")]
    pub corpus: String,
    /// Characters on each side of the gap.
    #[arg(long, default_value_t = 10, value_parser = positive_usize)]
    pub context: usize,
    /// Readers to train and compare, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "left,bidirectional"
    )]
    pub readers: Vec<ReaderArg>,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = ModelArg::Lstm)]
    pub cell: ModelArg,
    /// Hidden units per direction.
    #[arg(long, default_value_t = 128, value_parser = positive_usize)]
    pub hidden: usize,
    /// Character embedding width.
    #[arg(long, default_value_t = 32, value_parser = positive_usize)]
    pub embed: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 64, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Optimiser (Adam) steps per reader.
    #[arg(long, default_value_t = 3000, value_parser = positive_usize)]
    pub steps: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.003, value_parser = positive_f32)]
    pub learning_rate: f32,
    /// Fraction of the corpus (its end) held out, in (0, 1).
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    pub held_out: f64,
    /// Seed of initialisation and training windows (the same for every reader).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = positive_usize)]
    pub threads: Option<usize>,
}

fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, found {s:?}"))?;
    if !(v > 0.0 && v < 1.0) {
        return Err(format!("expected a fraction in (0, 1), found {s}"));
    }
    Ok(v)
}

fn reader(r: ReaderArg) -> ClozeReader {
    match r {
        ReaderArg::Left => ClozeReader::Left,
        ReaderArg::Bidirectional => ClozeReader::Bidirectional,
        ReaderArg::WholeWindow => ClozeReader::WholeWindow,
    }
}

/// Runs `recur cloze`.
pub fn cloze_command(a: ClozeArgs) -> Result<(), CliError> {
    let (path, _) = resolve_corpus(&CorpusChoice::parse(&a.corpus)?)?;
    let corpus = Corpus::open(&path)?;
    let task = ClozeTask::from_corpus(&corpus, a.held_out, a.context)
        .map_err(|e| CliError::bad_input(format!("--corpus {}: {e}", path.display())))?;
    let cell = match a.cell {
        ModelArg::Rnn => CellKind::Rnn(RnnActivation::Tanh),
        ModelArg::Lstm => CellKind::Lstm,
        ModelArg::Gru => CellKind::Gru,
    };
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = a.threads {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the thread pool: {e}")))?;
    pool.install(|| {
        let (train_chars, held_chars) = task.part_sizes();
        println!(
            "cloze: {} ({} characters: {} training, {} held out; {} symbols + mask), windows of \
             {} + gap + {}; {} hidden {} embed {}; batch {}, {} steps, Adam lr {}, seed {}, \
             threads {}, ISA {}",
            path.display(),
            train_chars + held_chars,
            train_chars,
            held_chars,
            task.vocab_size(),
            a.context,
            a.context,
            cell.name(),
            a.hidden,
            a.embed,
            a.batch_size,
            a.steps,
            a.learning_rate,
            a.seed,
            rayon::current_num_threads(),
            Isa::active(),
        );
        let gap = task.held_out_gaps().start + 137;
        println!("a held-out window: {:?}", task.render(gap));
        let mut results: Vec<(ClozeReader, ClozeStats, f64)> = Vec::new();
        for &r in &a.readers {
            let config = ClozeModelConfig {
                reader: reader(r),
                cell,
                embed_dim: a.embed,
                hidden: a.hidden,
                par: Par::Rayon(0),
                isa: Isa::active(),
            };
            let mut model = ClozeModel::init(config, task.vocab_size(), a.seed)
                .map_err(|e| CliError::bad_input(e.to_string()))?;
            let train = ClozeTrainConfig {
                batch: a.batch_size,
                steps: a.steps,
                optimizer: OptimizerConfig::pytorch_adam().with_learning_rate(a.learning_rate),
                clip: GradClip::GlobalNorm(5.0),
                seed: a.seed,
            };
            let started = Instant::now();
            let mut window = ClozeStats::default();
            let every = (a.steps / 6).max(1);
            train_cloze(&mut model, &task, &train, |step, stats| {
                window.loss_sum += stats.loss_sum;
                window.correct += stats.correct;
                window.total += stats.total;
                if (step + 1) % every == 0 {
                    println!(
                        "  {:>13} step {:6}  train loss {:.4}  accuracy {:.2}%  {:.0} s",
                        config.reader.name(),
                        step + 1,
                        window.mean_loss(),
                        100.0 * window.accuracy(),
                        started.elapsed().as_secs_f64()
                    );
                    window = ClozeStats::default();
                }
            })
            .map_err(|e| CliError::Runtime(e.to_string()))?;
            let secs = started.elapsed().as_secs_f64();
            let held = model
                .evaluate(&task, 512)
                .map_err(|e| CliError::Runtime(e.to_string()))?;
            println!(
                "{:>15}: held-out accuracy {:.2}% ({}/{}), loss {:.4} nats; {} parameters, {:.0} s",
                config.reader.name(),
                100.0 * held.accuracy(),
                held.correct,
                held.total,
                held.mean_loss(),
                model.num_params(),
                secs
            );
            results.push((config.reader, held, secs));
        }
        if results.len() > 1 {
            println!("summary (held-out accuracy): {}", {
                results
                    .iter()
                    .map(|(r, s, _)| format!("{} {:.2}%", r.name(), 100.0 * s.accuracy()))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        }
        Ok(())
    })
}
