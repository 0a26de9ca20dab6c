//! `recur ngram`: n-gram baselines (unigram, bigram, … with Kneser–Ney or add-k smoothing)
//! scored on the same held-out split as `recur train --val-frac`, and sampled.
//!
//! The tokeniser and dataset flags mean what they mean for `recur train` — they are turned into a
//! [`TrainConfig`] by the same code — so `recur ngram --task word --dataset stream --val-frac 0.1`
//! scores exactly the validation targets of `recur train --task word --dataset stream
//! --val-frac 0.1` (same `--batch-size` and `--seq-length`).

use std::ffi::OsString;
use std::time::Instant;

use clap::{Args, Parser, ValueEnum};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur::engine::data::corpus::{ChecksumStatus, verify_named_corpus};
use recur::engine::data::{Corpus, PrepareOptions, prepare};
use recur::engine::ngram::{
    NgramConfig, NgramError, NgramModel, NgramScore, Smoothing, fit_ranges, score_dataset,
    training_ranges,
};

use super::CliError;
use super::args::{Cli, Command, DatasetArg, TaskArg, positive_usize, unit_fraction};
use super::commands::resolve_corpus;
use super::config::{Task, TrainConfig};

/// Smoothing method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SmoothingArg {
    /// Interpolated modified Kneser–Ney (discounts estimated per order).
    Kn,
    /// Add-k (Lidstone; k from --k), for contrast.
    AddK,
}

/// `recur ngram`.
#[derive(Debug, Args)]
#[command(
    after_help = "The held-out split is recur train's: --val-frac holds out the last \
    fraction of tokens (windows, stream) or of line-prefix samples (the word default), and the \
    n-gram predicts exactly the validation targets the recurrent model is scored on, from the same \
    inputs (its last n − 1 of them).\n\n\
    Examples:\n  \
    recur ngram --task word --corpus sherlock --order 1,2,3,4 --smoothing kn,add-k\n  \
    recur ngram --task word --dataset stream --order 3 --sample 30 --seed 7\n  \
    recur ngram --task char --corpus alice --dataset stream --order 1,3,5,7"
)]
pub struct NgramArgs {
    /// Character or word tokens.
    #[arg(long, value_enum, default_value_t = TaskArg::Char)]
    pub task: TaskArg,

    /// Text file, or a named corpus: alice, sherlock [default: alice (char), sherlock (word)].
    #[arg(long, value_name = "PATH|NAME")]
    pub corpus: Option<String>,

    /// n: condition on the previous n − 1 tokens; a comma-separated list scores each.
    #[arg(
        long,
        value_name = "N[,N…]",
        value_delimiter = ',',
        default_value = "3",
        allow_negative_numbers = true
    )]
    pub order: Vec<usize>,

    /// Smoothing; a comma-separated list scores each.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kn")]
    pub smoothing: Vec<SmoothingArg>,

    /// The k of add-k smoothing (> 0; 1 is Laplace's rule).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub k: f64,

    /// Hold out the last fraction of the data, as recur train does, in (0, 1).
    #[arg(long, value_name = "F", default_value_t = 0.1, allow_negative_numbers = true,
          value_parser = unit_fraction)]
    pub val_frac: f64,

    /// How validation samples are cut, as for recur train [default: windows (char),
    /// line-prefixes (word)].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,

    /// Steps per sequence, as for recur train (which targets a window or stream covers).
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = positive_usize)]
    pub seq_length: Option<usize>,

    /// Streams per minibatch for --dataset stream, as for recur train.
    #[arg(long, value_name = "B", allow_negative_numbers = true, value_parser = positive_usize)]
    pub batch_size: Option<usize>,

    /// Keep only the N most frequent word ids (padding and <unk> included), as for recur train.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_usize)]
    pub max_vocab: Option<usize>,

    /// Drop non-ASCII bytes [default: true (char), false (word)].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          require_equals = true)]
    pub ascii_only: Option<bool>,

    /// Lower-case the text.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          require_equals = true, default_value_t = true)]
    pub lowercase: bool,

    /// Keep line breaks and spacing (char task).
    #[arg(long)]
    pub keep_lines: bool,

    /// After scoring, sample N tokens from the model with the lowest held-out perplexity.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_usize)]
    pub sample: Option<usize>,

    /// Text the sample continues (tokens outside the vocabulary are skipped).
    #[arg(long, value_name = "TEXT", requires = "sample")]
    pub prime: Option<String>,

    /// Sampling seed.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// The tokeniser, corpus and dataset of `recur train` with the same flags: parsed by the same
/// clap definition and validated by [`TrainConfig::from_args`], so defaults cannot drift apart.
fn train_config(a: &NgramArgs) -> Result<TrainConfig, CliError> {
    let mut argv: Vec<OsString> = vec!["recur".into(), "train".into()];
    let mut flag = |name: &str, value: String| {
        argv.push(format!("--{name}").into());
        argv.push(value.into());
    };
    flag(
        "task",
        match a.task {
            TaskArg::Char => "char",
            TaskArg::Word => "word",
        }
        .into(),
    );
    if let Some(c) = &a.corpus {
        flag("corpus", c.clone());
    }
    if let Some(d) = a.dataset {
        let name = d
            .to_possible_value()
            .expect("every dataset has a name")
            .get_name()
            .to_string();
        flag("dataset", name);
    }
    if let Some(t) = a.seq_length {
        flag("seq-length", t.to_string());
    }
    if let Some(b) = a.batch_size {
        flag("batch-size", b.to_string());
    }
    if let Some(m) = a.max_vocab {
        flag("max-vocab", m.to_string());
    }
    flag("val-frac", a.val_frac.to_string());
    if let Some(ascii) = a.ascii_only {
        argv.push(format!("--ascii-only={ascii}").into());
    }
    argv.push(format!("--lowercase={}", a.lowercase).into());
    if a.keep_lines {
        argv.push("--keep-lines".into());
    }
    let cli = Cli::try_parse_from(argv).map_err(|e| CliError::bad_input(e.to_string()))?;
    let Command::Train(train) = cli.command else {
        unreachable!("the argv names the train command")
    };
    TrainConfig::from_args(&train)
}

fn smoothings(a: &NgramArgs) -> Vec<Smoothing> {
    a.smoothing
        .iter()
        .map(|s| match s {
            SmoothingArg::Kn => Smoothing::KNESER_NEY,
            SmoothingArg::AddK => Smoothing::AddK(a.k),
        })
        .collect()
}

fn bad(e: NgramError) -> CliError {
    CliError::bad_input(e.to_string())
}

/// Runs `recur ngram`.
pub fn ngram_command(a: &NgramArgs) -> Result<(), CliError> {
    if a.val_frac == 0.0 {
        return Err(CliError::bad_input(
            "--val-frac: the n-gram is scored on the held-out part, expected a fraction in \
             (0, 1), found 0",
        ));
    }
    let config = train_config(a)?;
    let smoothings = smoothings(a);
    // Check every model's options before reading the corpus.
    for &order in &a.order {
        for &smoothing in &smoothings {
            NgramConfig { order, smoothing }.validate().map_err(bad)?;
        }
    }

    let (path, named) = resolve_corpus(&config.corpus)?;
    let corpus = Corpus::open(&path)?;
    if let Some(named) = named
        && let ChecksumStatus::Mismatch { expected, found } = verify_named_corpus(&corpus, named)
    {
        eprintln!(
            "warning: corpus {}: SHA-256 {found} differs from the expected {expected}",
            path.display()
        );
    }
    let data = prepare(
        &corpus,
        &PrepareOptions {
            tokenizer: config.tokenizer.clone(),
            dataset: config.dataset,
            val_frac: config.val_frac,
            cache_path: None,
        },
    )?;
    let val = data
        .val
        .as_ref()
        .expect("val_frac > 0 always builds a validation set");
    let ranges = training_ranges(&data, &config.dataset, config.val_frac)?;
    let train_tokens: usize = ranges.iter().map(|r| r.len()).sum();
    println!(
        "corpus:   {} ({} {}s, {} ids)",
        path.display(),
        data.stats.tokens,
        config.task.name(),
        data.tokenizer.vocab_size()
    );
    println!(
        "split:    train {train_tokens} tokens in {} sequence(s); validation: {} (last {} of the \
         data, as recur train --val-frac)",
        ranges.len(),
        val.describe(),
        config.val_frac
    );
    let unit = match config.task {
        Task::Char => "bits/char",
        Task::Word => "bits/word",
    };
    println!(
        "{:>5}  {:<12} {:>10} {:>10} {:>11} {:>10} {:>8} {:>7}",
        "order", "smoothing", "targets", "loss", "perplexity", unit, "unseen", "seconds"
    );
    let mut best: Option<(NgramScore, NgramModel)> = None;
    for &order in &a.order {
        for &smoothing in &smoothings {
            let started = Instant::now();
            let model =
                fit_ranges(NgramConfig { order, smoothing }, &data, &ranges).map_err(bad)?;
            let score = score_dataset(&model, val).map_err(bad)?;
            println!(
                "{order:>5}  {:<12} {:>10} {:>10.4} {:>11.2} {:>10.4} {:>8} {:>7.1}",
                smoothing.name(),
                score.tokens,
                score.mean_loss(),
                score.perplexity(),
                score.bits_per_token(),
                score.unseen_targets,
                started.elapsed().as_secs_f64()
            );
            if best
                .as_ref()
                .is_none_or(|(b, _)| score.mean_loss() < b.mean_loss())
            {
                best = Some((score, model));
            }
        }
    }
    let (score, model) = best.expect("at least one order and one smoothing");
    println!(
        "best:     order {} {}: perplexity {:.2}, {:.4} {unit} on {} held-out targets",
        model.order(),
        model.smoothing().name(),
        score.perplexity(),
        score.bits_per_token(),
        score.tokens
    );
    if let Some(length) = a.sample {
        let prime = a.prime.as_deref().unwrap_or("");
        let encoded = data.tokenizer.encode_text(prime);
        let context: Vec<u32> = encoded
            .ids
            .into_iter()
            .filter(|&id| model.vocab().is_predictable(id))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
        let ids = model.sample(&mut rng, &context, length).map_err(bad)?;
        let joiner = match config.task {
            Task::Char => "",
            Task::Word => " ",
        };
        let mut text = data.tokenizer.decode(&context);
        if !text.is_empty() {
            text.push_str(joiner);
        }
        text.push_str(&data.tokenizer.decode(&ids));
        println!("sample:   {text}");
    }
    Ok(())
}
