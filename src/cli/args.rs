//! The command-line surface (clap derive). Every value parser here rejects out-of-range values
//! with a message naming what was expected; cross-flag rules live in [`super::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Train and sample recurrent language models on text, fast, on the CPU.
#[derive(Debug, Parser)]
#[command(
    name = "recur",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  \
        recur train                       # experiment 1: SimpleRNN(128) on Alice, characters\n  \
        recur train --task word           # experiment 2: Embedding(100) + LSTM(150) on Sherlock, words\n  \
        recur generate --checkpoint runs/char-alice --prime \"alice was\" --length 200\n  \
        recur eval --checkpoint runs/char-alice --corpus held-out.txt\n  \
        recur isa                         # which SIMD path the kernels use"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a character- or word-level language model on a text corpus.
    Train(Box<TrainArgs>),
    /// Sample text from a trained checkpoint.
    Generate(GenerateArgs),
    /// Evaluate a checkpoint on a text: loss, perplexity, bits per character, accuracy.
    Eval(EvalArgs),
    /// N-gram baselines (Kneser–Ney, add-k) scored on the held-out split, and sampled.
    Ngram(super::ngram::NgramArgs),
    /// Gradient-flow diagnostics: ‖∂L/∂h_t‖ per step for SimpleRNN, LSTM and GRU, as CSV and SVG.
    Diagnose(super::diagnose::DiagnoseArgs),
    /// Print the instruction-set path the kernels use on this CPU.
    Isa,
    /// Forecast a generated signal (noisy sines, AR(2)) with an RNN against simple baselines.
    Forecast(Box<super::forecast::ForecastArgs>),
    /// Encoder–decoder on a generated transduction task (reverse, sort, add digit strings).
    Seq2seq(super::seq2seq::Seq2SeqArgs),
    /// Character cloze ("I am ___ hungry"): unidirectional vs bidirectional readers on a corpus.
    Cloze(super::cloze::ClozeArgs),
    /// Train a CRNN (Conv1D → GRU/LSTM) on a synthetic audio-like task; accuracy and clips/s.
    Crnn(super::crnn::CrnnArgs),
}

/// Character or word model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// One token per character (experiment 1).
    Char,
    /// Keras-style word tokens (experiment 2).
    Word,
}

/// Recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// SimpleRNN (Elman) with tanh.
    Rnn,
    /// LSTM (gates i, f, g, o).
    Lstm,
    /// GRU (linear-before-reset, as PyTorch and cuDNN).
    Gru,
}

/// Optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Rmsprop,
    Adam,
}

/// Whose default weight initialisation to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// Keras 3: Glorot-uniform input and output weights, orthogonal recurrent weights, zero
    /// biases (LSTM forget gate 1), embeddings U(±0.05) — what the seed experiments used.
    Keras,
    /// PyTorch: U(±1/√H) everywhere in the recurrent layers, Kaiming-uniform dense, N(0,1)
    /// embeddings.
    Pytorch,
}

/// How samples are cut from the token stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    /// Sliding windows of --seq-length, label = next token (the character experiment).
    Windows,
    /// Every prefix of every line, left-padded, label = last word (the word experiment).
    LinePrefixes,
    /// Contiguous streams, truncated BPTT with state carried between chunks (char-rnn).
    Stream,
}

/// `recur train`.
#[derive(Debug, Args)]
#[command(
    after_help = "Defaults depend on --task: `char` reproduces experiment 1 (alice, SimpleRNN 128, \
                  one-hot input, windows of 10, batch 128, RMSprop lr 0.001, 25 epochs); `word` \
                  reproduces experiment 2 (sherlock, Embedding 100, LSTM 150, line prefixes, \
                  batch 32, Adam lr 0.001).\n\n\
                  Named corpora (alice, sherlock) are looked up in $RECUR_DATA, ./data and \
                  ../shared/data; any other --corpus value is a file path (write ./alice for a \
                  file called alice).\n\n\
                  Examples:\n  \
                  recur train\n  \
                  recur train --task word\n  \
                  recur train --corpus input.txt --model lstm --rnn-size 512 --num-layers 2 \\\n      \
                  --dataset stream --seq-length 50 --batch-size 50 --learning-rate 2e-3 \\\n      \
                  --grad-clip 5 --val-frac 0.05 --checkpoint-dir runs/shakespeare\n  \
                  recur train --checkpoint-dir runs/shakespeare --resume"
)]
pub struct TrainArgs {
    /// Character or word model.
    #[arg(long, value_enum, default_value_t = TaskArg::Char)]
    pub task: TaskArg,

    /// Text file, or a named corpus: alice, sherlock [default: alice (char), sherlock (word)].
    #[arg(long, value_name = "PATH|NAME")]
    pub corpus: Option<String>,

    /// Recurrent cell [default: rnn (char), lstm (word)].
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,

    /// Hidden units per layer [default: 128 (char), 150 (word)].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub rnn_size: Option<usize>,

    /// Stacked recurrent layers.
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub num_layers: usize,

    /// Embedding width; without it characters are one-hot [default: none (char), 100 (word)].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub embedding_size: Option<usize>,

    /// How samples are cut [default: windows (char), line-prefixes (word)].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetArg>,

    /// Steps per sequence [default: 10 for windows, 50 for stream; line prefixes: longest line − 1,
    /// and a given value caps it].
    #[arg(long, value_name = "T", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub seq_length: Option<usize>,

    /// Sequences per minibatch [default: 128 (char), 32 (word)].
    #[arg(long, value_name = "B", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub batch_size: Option<usize>,

    /// Optimiser [default: rmsprop (char), adam (word)].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,

    /// Weight initialisation: keras (the seeds') or pytorch.
    #[arg(long, value_enum, default_value = "keras")]
    pub init: InitArg,

    /// Learning rate (> 0).
    #[arg(long, value_name = "LR", default_value_t = 0.001, allow_negative_numbers = true,
          value_parser = positive_f32)]
    pub learning_rate: f32,

    /// Clamp every gradient element to [−V, V] (char-rnn's grad_clip).
    #[arg(long, value_name = "V", allow_negative_numbers = true, value_parser = positive_f32)]
    pub grad_clip: Option<f32>,

    /// Rescale gradients whose global L2 norm exceeds N.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_f32)]
    pub clip_norm: Option<f32>,

    /// Dropout probability between stacked recurrent layers, in [0, 1) (char-rnn's; acts only
    /// with --num-layers ≥ 2).
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = dropout_fraction)]
    pub dropout: f32,

    /// Dropout probability on the embedding's output (the first layer's input), in [0, 1);
    /// training only. Needs an embedding (--embedding-size).
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = dropout_fraction)]
    pub embed_dropout: f32,

    /// Dropout probability on the last recurrent layer's output (the decoder's input), in
    /// [0, 1); training only. With --embed-dropout and --dropout: Zaremba et al. (2014).
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = dropout_fraction)]
    pub output_dropout: f32,

    /// Multiply the learning rate by G at the end of every epoch from --lr-decay-after on
    /// (char-rnn's learning_rate_decay), G in (0, 1]. Saved with the run.
    #[arg(long, value_name = "G", allow_negative_numbers = true, value_parser = decay_factor)]
    pub lr_decay: Option<f32>,

    /// First epoch at whose end --lr-decay applies.
    #[arg(long, value_name = "E", default_value_t = 1, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub lr_decay_after: usize,

    /// Passes over the training data.
    #[arg(long, value_name = "N", default_value_t = 25, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub max_epochs: usize,

    /// Stop after this many optimiser steps in all (even inside an epoch), with a checkpoint;
    /// `--resume` continues from there exactly.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = positive_u64)]
    pub max_steps: Option<u64>,

    /// Also checkpoint every N optimiser steps inside an epoch (0: only at epoch ends), so an
    /// interrupted run loses at most N steps.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub checkpoint_every: u64,

    /// Seed of initialisation, shuffling and dropout (same seed, same result).
    #[arg(long, default_value_t = 123)]
    pub seed: u64,

    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub threads: Option<usize>,

    /// Run directory: checkpoints, metrics, token cache [default: runs/<task>-<corpus name>].
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Continue from the last checkpoint in --checkpoint-dir.
    #[arg(long)]
    pub resume: bool,

    /// Prepare the data (and its token cache), print the plan, and stop before training.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep only the N most frequent ids, padding and <unk> included (word task; rarer words
    /// become <unk>).
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub max_vocab: Option<usize>,

    /// Drop non-ASCII bytes (no UTF-8 needed) [default: true (char), false (word)].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          require_equals = true)]
    pub ascii_only: Option<bool>,

    /// Lower-case the text.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          require_equals = true, default_value_t = true)]
    pub lowercase: bool,

    /// Keep line breaks and spacing (char task) instead of the seed's strip-and-join.
    #[arg(long)]
    pub keep_lines: bool,

    /// Hold out the last fraction of the data for validation, in [0, 1).
    #[arg(long, value_name = "F", default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = unit_fraction)]
    pub val_frac: f64,
}

/// `recur generate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    recur generate --checkpoint runs/char-alice --greedy --length 100\n  \
    recur generate --checkpoint runs/word-sherlock --prime \"I will close the door if\" --length 7 --greedy\n  \
    recur generate --checkpoint runs/char-alice --temperature 0.8 --top-p 0.95 --seed 7")]
pub struct GenerateArgs {
    /// Run directory of a trained model.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,

    /// Text to start from (symbols outside the vocabulary are reported and skipped).
    #[arg(long, value_name = "TEXT")]
    pub prime: Option<String>,

    /// Tokens to generate.
    #[arg(long, value_name = "N", default_value_t = 100, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub length: usize,

    /// Always take the most likely token (arg-max), as the seed experiments do.
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p"])]
    pub greedy: bool,

    /// Softmax temperature (> 0; below 1 is more conservative).
    #[arg(long, value_name = "T", default_value_t = 1.0, allow_negative_numbers = true,
          value_parser = positive_f32)]
    pub temperature: f32,

    /// Sample only among the K most likely tokens.
    #[arg(long, value_name = "K", allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub top_k: Option<usize>,

    /// Sample only among the most likely tokens whose probabilities sum to P, in (0, 1].
    #[arg(long, value_name = "P", allow_negative_numbers = true, value_parser = top_p_fraction)]
    pub top_p: Option<f32>,

    /// Sampling seed.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// `recur eval`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  recur eval --checkpoint runs/char-alice --corpus held-out.txt")]
pub struct EvalArgs {
    /// Run directory of a trained model.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,

    /// Text to evaluate on: a file, or a named corpus (alice, sherlock).
    #[arg(long, value_name = "PATH|NAME")]
    pub corpus: String,

    /// Sequences per minibatch.
    #[arg(long, value_name = "B", default_value_t = 128, allow_negative_numbers = true,
          value_parser = positive_usize)]
    pub batch_size: usize,
}

/// A whole number ≥ 1 (64-bit).
pub fn positive_u64(s: &str) -> Result<u64, String> {
    positive_usize(s).map(|v| v as u64)
}

/// A whole number ≥ 1.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    let v: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a positive whole number, found {s:?}"))?;
    if v == 0 {
        return Err("expected a positive whole number, found 0".into());
    }
    Ok(v)
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a number, found {s:?}"))
}

/// A finite number > 0.
pub fn positive_f32(s: &str) -> Result<f32, String> {
    let v = parse_f64(s)?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("expected a finite number > 0, found {s}"));
    }
    let v32 = v as f32;
    if v32 == 0.0 || !v32.is_finite() {
        return Err(format!("expected a number representable in f32, found {s}"));
    }
    Ok(v32)
}

/// A fraction in [0, 1).
pub fn unit_fraction(s: &str) -> Result<f64, String> {
    let v = parse_f64(s)?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!("expected a fraction in [0, 1), found {s}"));
    }
    Ok(v)
}

/// A dropout probability in [0, 1).
pub fn dropout_fraction(s: &str) -> Result<f32, String> {
    unit_fraction(s).map(|v| v as f32)
}

/// A learning-rate decay factor in (0, 1].
pub fn decay_factor(s: &str) -> Result<f32, String> {
    let v = parse_f64(s)?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!("expected a factor in (0, 1], found {s}"));
    }
    Ok(v as f32)
}

/// A nucleus mass in (0, 1].
pub fn top_p_fraction(s: &str) -> Result<f32, String> {
    let v = parse_f64(s)?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!("expected a probability in (0, 1], found {s}"));
    }
    Ok(v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers_reject_out_of_range_values() {
        assert_eq!(positive_usize("3"), Ok(3));
        assert!(positive_usize("0").unwrap_err().contains("found 0"));
        assert!(positive_usize("-1").is_err());
        assert!(positive_usize("x").is_err());
        assert_eq!(positive_f32("1e-3"), Ok(0.001));
        for bad in [
            "0", "-0.1", "nan", "NaN", "inf", "-inf", "1e-50", "1e50", "",
        ] {
            assert!(positive_f32(bad).is_err(), "{bad}");
        }
        assert_eq!(unit_fraction("0"), Ok(0.0));
        assert!(unit_fraction("1").is_err());
        assert!(unit_fraction("-0.1").is_err());
        assert!(unit_fraction("nan").is_err());
        assert_eq!(top_p_fraction("1"), Ok(1.0));
        assert!(top_p_fraction("0").is_err());
        assert!(top_p_fraction("1.01").is_err());
        assert!(top_p_fraction("nan").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
