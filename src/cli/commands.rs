//! The commands: find and load the data, print what will happen, then hand over to the
//! `run_*` seams where the trainer, sampler and evaluator plug in.

use std::path::{Path, PathBuf};

use recur::engine::data::corpus::{
    ChecksumStatus, NamedCorpus, corpus_search_dirs, locate_named_corpus, verify_named_corpus,
};
use recur::engine::data::{
    CacheStatus, Corpus, Dataset, LineMode, PrepareOptions, PreparedData, Tokenizer,
    TokenizerConfig, prepare,
};

use super::CliError;
use super::config::{CorpusChoice, EvalConfig, GenerateConfig, TrainConfig};

/// The token cache's file name inside a run directory.
pub const TOKEN_CACHE_FILE: &str = "tokens.bin";

/// Resolves a corpus choice to a file, searching the data directories for named corpora.
pub fn resolve_corpus(
    choice: &CorpusChoice,
) -> Result<(PathBuf, Option<&'static NamedCorpus>), CliError> {
    match choice {
        CorpusChoice::Path(p) => Ok((p.clone(), None)),
        CorpusChoice::Named(named) => {
            let recur_data = std::env::var_os("RECUR_DATA");
            let dirs = corpus_search_dirs(recur_data.as_deref());
            let path = locate_named_corpus(named, &dirs)?;
            Ok((path, Some(*named)))
        }
    }
}

/// Opens a corpus; for a named one, warns (on stderr) when its checksum differs from the
/// experiments' copy.
fn open_corpus(choice: &CorpusChoice) -> Result<(Corpus, String), CliError> {
    let (path, named) = resolve_corpus(choice)?;
    let corpus = Corpus::open(&path)?;
    let provenance = match named {
        None => String::new(),
        Some(named) => match verify_named_corpus(&corpus, named) {
            ChecksumStatus::Match => format!(
                "; SHA-256 matches Project Gutenberg ebook #{}",
                named.gutenberg_ebook
            ),
            ChecksumStatus::Mismatch { expected, found } => {
                eprintln!(
                    "warning: corpus {}: SHA-256 {found} differs from the expected {expected} \
                     (another edition of ebook #{}?); results will not match the documented ones",
                    path.display(),
                    named.gutenberg_ebook
                );
                "; SHA-256 differs from the experiments' copy".to_string()
            }
        },
    };
    Ok((corpus, provenance))
}

/// `recur train`: load and tokenise the corpus (through the token cache in the run
/// directory), build the datasets, print a summary, then train.
pub fn train_command(config: TrainConfig) -> Result<(), CliError> {
    if config.resume && !config.checkpoint_dir.is_dir() {
        return Err(CliError::bad_input(format!(
            "--resume: no run directory {} to resume from",
            config.checkpoint_dir.display()
        )));
    }
    if config.checkpoint_dir.exists() && !config.checkpoint_dir.is_dir() {
        return Err(CliError::bad_input(format!(
            "--checkpoint-dir {}: is a file, expected a directory",
            config.checkpoint_dir.display()
        )));
    }
    let (corpus, provenance) = open_corpus(&config.corpus)?;
    super::run::check_run_dir(&config, &corpus)?;
    let data = prepare(
        &corpus,
        &PrepareOptions {
            tokenizer: config.tokenizer.clone(),
            dataset: config.dataset,
            val_frac: config.val_frac,
            cache_path: Some(config.checkpoint_dir.join(TOKEN_CACHE_FILE)),
        },
    )?;
    print!("{}", train_summary(&config, &corpus, &provenance, &data));
    drop(corpus);
    if config.dry_run {
        println!("dry run: stopping before training");
        return Ok(());
    }
    run_train(config, data)
}

/// The summary printed before training.
fn train_summary(
    config: &TrainConfig,
    corpus: &Corpus,
    provenance: &str,
    data: &PreparedData,
) -> String {
    let vocab = data.tokenizer.vocab_size();
    let tokens = match &data.tokenizer {
        Tokenizer::Char(v) => format!(
            "{} characters, {} symbols ({})",
            data.stats.tokens,
            vocab,
            describe_tokenizer(&TokenizerConfig::Char(*v.config()))
        ),
        Tokenizer::Word(v) => format!(
            "{} words in {} lines (longest {}), {} word ids with 0 = padding{} ({})",
            data.stats.tokens,
            data.stats.lines,
            data.stats.longest_line,
            vocab,
            if v.oov_id().is_some() {
                ", 1 = <unk>"
            } else {
                ""
            },
            describe_tokenizer(&TokenizerConfig::Word(v.config().clone()))
        ),
    };
    let validation = match &data.val {
        None => "no validation split".to_string(),
        Some(v) => format!(
            "validation: {} (last {} of the data)",
            v.describe(),
            config.val_frac
        ),
    };
    let cache = match &data.cache_status {
        CacheStatus::Reused => "reused".to_string(),
        CacheStatus::Built(reason) => format!("built: {reason}"),
        CacheStatus::InMemory => "in memory".to_string(),
    };
    let input = match config.model.embedding_size {
        Some(e) => format!("Embedding({vocab}, {e})"),
        None => format!("one-hot({vocab})"),
    };
    let clip = match (config.clip.value, config.clip.norm) {
        (None, None) => "no clipping".to_string(),
        (Some(v), None) => format!("clip each gradient to ±{v}"),
        (None, Some(n)) => format!("clip gradient norm to {n}"),
        (Some(v), Some(n)) => format!("clip each gradient to ±{v}, then the norm to {n}"),
    };
    let threads = config
        .threads
        .map_or("all cores".to_string(), |t| t.to_string());
    let mut s = String::new();
    s.push_str(&format!(
        "corpus:   {} ({} bytes{provenance})\n",
        corpus.path().display(),
        corpus.len()
    ));
    s.push_str(&format!("tokens:   {tokens}\n"));
    s.push_str(&format!(
        "dataset:  {}; {validation}\n",
        describe_dataset(&data.train)
    ));
    s.push_str(&format!(
        "cache:    {} ({cache})\n",
        data.cache_path
            .as_deref()
            .unwrap_or(Path::new("-"))
            .display()
    ));
    s.push_str(&format!(
        "model:    {input} → {} {} × {} layer(s), dropout {} → Dense({vocab}) → softmax{}\n",
        config.model.cell.name(),
        config.model.hidden_size,
        config.model.num_layers,
        config.model.dropout,
        match (config.model.embed_dropout, config.model.output_dropout) {
            (0.0, 0.0) => String::new(),
            (e, o) => format!("; dropout {e} on the embedding, {o} before the decoder"),
        }
    ));
    let decay = config.lr_decay.map_or(String::new(), |d| {
        format!(" × {} per epoch after epoch {}", d.gamma, d.after)
    });
    s.push_str(&format!(
        "training: {} lr {}{decay}, batch {}, {} epochs, {clip}, seed {}, threads: {threads}{}\n",
        config.optimizer.name(),
        config.learning_rate,
        config.batch_size,
        config.max_epochs,
        config.seed,
        if config.resume { ", resuming" } else { "" }
    ));
    s
}

fn describe_dataset(d: &Dataset) -> String {
    format!("train: {}", d.describe())
}

fn describe_tokenizer(config: &TokenizerConfig) -> String {
    let mut parts = Vec::new();
    let (lowercase, ascii_only) = match config {
        TokenizerConfig::Char(c) => (c.lowercase, c.ascii_only),
        TokenizerConfig::Word(w) => (w.lowercase, w.ascii_only),
    };
    if lowercase {
        parts.push("lower-cased");
    }
    if ascii_only {
        parts.push("non-ASCII dropped");
    }
    match config {
        TokenizerConfig::Char(c) => parts.push(match c.lines {
            LineMode::StripAndJoin => "lines stripped and joined with spaces",
            LineMode::Keep => "line breaks kept",
        }),
        TokenizerConfig::Word(_) => parts.push("Keras punctuation filters"),
    }
    parts.join(", ")
}

/// THE TRAINING SEAM. Everything before this point is validated: the flags (`config`), the
/// corpus, the token cache and the datasets (`data`). The trainer replaces this body.
pub fn run_train(config: TrainConfig, data: PreparedData) -> Result<(), CliError> {
    super::run::train(config, data)
}

/// Checks that `dir` is an existing run directory.
fn check_checkpoint_dir(dir: &Path) -> Result<(), CliError> {
    if !dir.exists() {
        return Err(CliError::bad_input(format!(
            "--checkpoint {}: no such directory",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(CliError::bad_input(format!(
            "--checkpoint {}: is a file, expected a run directory",
            dir.display()
        )));
    }
    Ok(())
}

/// `recur generate`.
pub fn generate_command(config: GenerateConfig) -> Result<(), CliError> {
    check_checkpoint_dir(&config.checkpoint)?;
    run_generate(config)
}

/// THE SAMPLING SEAM: load the checkpoint in `config.checkpoint` and sample. Replaced when
/// checkpoints and sampling land.
pub fn run_generate(config: GenerateConfig) -> Result<(), CliError> {
    super::run::generate_text(config)
}

/// `recur eval`.
pub fn eval_command(config: EvalConfig) -> Result<(), CliError> {
    check_checkpoint_dir(&config.checkpoint)?;
    let (corpus, _) = open_corpus(&config.corpus)?;
    run_eval(config, corpus)
}

/// THE EVALUATION SEAM: load the checkpoint, tokenise `corpus` with its vocabulary, report
/// loss, perplexity, bits per character and accuracy. Replaced when checkpoints land.
pub fn run_eval(config: EvalConfig, corpus: Corpus) -> Result<(), CliError> {
    super::run::evaluate(config, corpus)
}
