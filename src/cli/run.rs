//! What the commands run once their input is validated: training, generation, evaluation.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur::engine::checkpoint::{CheckpointError, resolve_pointer};
use recur::engine::data::cache::{CacheLookup, load_token_cache};
use recur::engine::data::dataset::{BpttStreams, Dataset, LinePrefixes, SlidingWindows};
use recur::engine::data::tokenizer::VecSink;
use recur::engine::data::{Corpus, DataError, PreparedData, TokenStore, Tokenizer};
use recur::engine::model::lm::{LanguageModel, LmConfig, LmWorkspace};
use recur::engine::model::sampling::Sampling as EngineSampling;
use recur::engine::optim::{GradClip as EngineClip, LrSchedule, Optimizer, OptimizerConfig};
use recur::engine::train::{
    CheckpointBundle, DatasetSpec, EpochRecord, TrainObserver, TrainOptions, Trainer,
    evaluate_dataset, generate, load_checkpoint,
};
use recur::kernels::{Isa, Par};

use super::CliError;
use super::config::{EvalConfig, GenerateConfig, OptimizerKind, Sampling, Task, TrainConfig};

/// Runs `f` on a rayon pool of `threads` threads (all cores if `None`).
fn with_threads<T: Send>(
    threads: Option<std::num::NonZeroUsize>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, CliError> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n.get());
    }
    let pool = builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the thread pool: {e}")))?;
    Ok(pool.install(f))
}

/// `recur train` after the data is prepared.
pub fn train(config: TrainConfig, data: PreparedData) -> Result<(), CliError> {
    let dir = config.checkpoint_dir.clone();
    let has_run = resolve_pointer(&dir, "last").is_ok();
    if has_run && !config.resume {
        return Err(CliError::bad_input(format!(
            "--checkpoint-dir {}: already holds a training run; pass --resume to continue it, or \
             choose another directory",
            dir.display()
        )));
    }
    let options = TrainOptions {
        batch_size: config.batch_size,
        epochs: config.max_epochs,
        seed: config.seed,
        shuffle: true,
        clip: clip_options(&config),
        dataset: DatasetSpec::from(config.dataset),
        steps: data.train.steps(),
        sample_tokens: match config.task {
            Task::Char => 100,
            Task::Word => 0,
        },
        run_dir: Some(dir.clone()),
        checkpoint_every: config.checkpoint_every,
        max_steps: config.max_steps,
    };
    let threads = config.threads;
    let mut trainer = if config.resume {
        resume(&config, &data, options)?
    } else {
        let lm = LmConfig {
            vocab: data.tokenizer.vocab_size(),
            embedding_dim: config.model.embedding_size,
            cell: config.model.cell.name().to_string(),
            hidden: config.model.hidden_size,
            num_layers: config.model.num_layers,
            dropout: config.model.dropout,
            embed_dropout: config.model.embed_dropout,
            output_dropout: config.model.output_dropout,
            init: config.model.init,
        };
        let model = LanguageModel::new(lm, Par::Rayon(0), config.seed)
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        let optimizer = Optimizer::new(optimizer_config(&config, &data.train))
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        Trainer::new(model, optimizer, options)
    };
    if let Some(step) = nan_gradient_injection()? {
        trainer.inject_nan_gradient_at(step);
    }
    println!(
        "kernels:  {} path, {} thread(s); run directory {}",
        Isa::active(),
        threads.map_or_else(rayon::current_num_threads, |t| t.get()),
        dir.display()
    );
    let mut observer = Progress::new();
    let result = with_threads(threads, || trainer.run(&data, &mut observer))?;
    observer.finish();
    result.map_err(|e| CliError::Runtime(e.to_string()))?;
    if trainer.reached_max_steps() && trainer.epochs_done() < trainer.options.epochs {
        let at = match trainer.progress() {
            Some(p) => format!("in epoch {} after {} batches", p.epoch, p.batches_done),
            None => format!("after epoch {}", trainer.epochs_done()),
        };
        println!(
            "stopped:  at optimiser step {} (--max-steps), {at}; --resume continues from here",
            trainer.optimizer.steps()
        );
    }
    if config.task == Task::Word {
        // The seed's demonstration: seven words after a fixed prime.
        let prime = "I will close the door if";
        let text = continue_text(&trainer.model, &data.tokenizer, &trainer.options, prime, 7)?;
        println!("sample:   {text}");
    }
    println!(
        "done:     checkpoints, metrics.jsonl and loss.svg in {}",
        dir.display()
    );
    Ok(())
}

/// `RECUR_FAULT_INJECT=nan-grad@step:N`: a test hook that puts a NaN into the gradient of
/// optimiser step N (0-based) to exercise the non-finite stop (`tests/cli/faults.rs`).
fn nan_gradient_injection() -> Result<Option<u64>, CliError> {
    let Some(value) = std::env::var_os("RECUR_FAULT_INJECT") else {
        return Ok(None);
    };
    let value = value.to_string_lossy();
    value
        .strip_prefix("nan-grad@step:")
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            CliError::bad_input(format!(
                "RECUR_FAULT_INJECT={value:?}: expected nan-grad@step:N with N a step number"
            ))
        })
}

fn clip_options(config: &TrainConfig) -> Vec<EngineClip> {
    let mut clip = Vec::new();
    if let Some(v) = config.clip.value {
        clip.push(EngineClip::Value(v));
    }
    if let Some(n) = config.clip.norm {
        clip.push(EngineClip::GlobalNorm(n));
    }
    clip
}

/// Keras's arithmetic and defaults (the seeds are Keras programs), at the requested rate and
/// decay (per epoch of `train`, as a step schedule so a resumed run gets the same rates).
fn optimizer_config(config: &TrainConfig, train: &Dataset) -> OptimizerConfig {
    let base = match config.optimizer {
        OptimizerKind::Sgd => OptimizerConfig::keras_sgd(),
        OptimizerKind::RmsProp => OptimizerConfig::keras_rmsprop(),
        OptimizerKind::Adam => OptimizerConfig::keras_adam(),
    };
    let base = base.with_learning_rate(config.learning_rate);
    match config.lr_decay {
        None => base,
        Some(decay) => {
            let epoch = match train {
                Dataset::Streams(streams) => streams.chunks(),
                other => other.num_samples().div_ceil(config.batch_size),
            } as u64;
            // The first decay comes at the end of epoch `after`.
            base.with_schedule(LrSchedule::Step {
                every: epoch.max(1),
                gamma: decay.gamma,
                delay: (decay.after as u64 - 1) * epoch,
            })
        }
    }
}

/// Loads the run's last checkpoint and checks it fits the data and flags given now.
fn resume(
    config: &TrainConfig,
    data: &PreparedData,
    mut options: TrainOptions,
) -> Result<Trainer, CliError> {
    let bundle =
        load_checkpoint(&config.checkpoint_dir, "last", Par::Rayon(0)).map_err(checkpoint_error)?;
    check_resumable(config, &data.tokenizer, &bundle)?;
    // The saved seed, order and clipping stay; only where to stop and how often to checkpoint
    // may change.
    let (epochs, max_steps, every) = (options.epochs, options.max_steps, options.checkpoint_every);
    options = bundle.options;
    options.epochs = epochs;
    options.max_steps = max_steps;
    options.checkpoint_every = every;
    Ok(
        Trainer::resumed(bundle.model, bundle.optimizer, options, bundle.history)
            .with_progress(bundle.progress, bundle.carry),
    )
}

/// Checks, before anything is written (the token cache included), that `recur train` may use its
/// run directory: one holding a run needs `--resume`, and a run to resume must load and match the
/// model flags and the vocabulary the corpus gives. The vocabulary comes from the token cache
/// when it is valid for this corpus, else from fitting the corpus (one extra read of it, only
/// when resuming on a changed corpus).
pub fn check_run_dir(config: &TrainConfig, corpus: &Corpus) -> Result<(), CliError> {
    let dir = &config.checkpoint_dir;
    let has_run = resolve_pointer(dir, "last").is_ok();
    if has_run && !config.resume {
        return Err(CliError::bad_input(format!(
            "--checkpoint-dir {}: already holds a training run; pass --resume to continue it, or \
             choose another directory",
            dir.display()
        )));
    }
    if !config.resume {
        return Ok(());
    }
    let bundle = load_checkpoint(dir, "last", Par::Seq).map_err(checkpoint_error)?;
    let cache = dir.join(super::commands::TOKEN_CACHE_FILE);
    let tokenizer = match load_token_cache(&cache, &config.tokenizer, corpus.fingerprint())? {
        CacheLookup::Hit(tokenizer, _) => tokenizer,
        CacheLookup::Stale(_) => Tokenizer::fit(corpus, &config.tokenizer)?.0,
    };
    check_resumable(config, &tokenizer, &bundle)
}

/// The checkpoint in `bundle` can continue with the flags of `config` on a corpus whose
/// vocabulary is `tokenizer`.
fn check_resumable(
    config: &TrainConfig,
    tokenizer: &Tokenizer,
    bundle: &CheckpointBundle,
) -> Result<(), CliError> {
    let dir = &config.checkpoint_dir;
    if bundle.tokenizer != *tokenizer {
        return Err(CliError::bad_input(format!(
            "--resume: the corpus gives a different vocabulary ({} ids) than the run in {} ({} \
             ids); resume with the same corpus and tokeniser flags",
            tokenizer.vocab_size(),
            dir.display(),
            bundle.tokenizer.vocab_size()
        )));
    }
    let requested = LmConfig {
        vocab: tokenizer.vocab_size(),
        embedding_dim: config.model.embedding_size,
        cell: config.model.cell.name().to_string(),
        hidden: config.model.hidden_size,
        num_layers: config.model.num_layers,
        dropout: config.model.dropout,
        embed_dropout: config.model.embed_dropout,
        output_dropout: config.model.output_dropout,
        init: config.model.init,
    };
    if requested != bundle.model.config {
        return Err(CliError::bad_input(format!(
            "--resume: the flags ask for {} but the run in {} is {}",
            describe_model(&requested),
            dir.display(),
            describe_model(&bundle.model.config)
        )));
    }
    Ok(())
}

fn describe_model(c: &LmConfig) -> String {
    format!(
        "{} {}×{} over {} ids{}, dropout {} (between layers) / {} (embedding) / {} (output)",
        c.cell,
        c.num_layers,
        c.hidden,
        c.vocab,
        c.embedding_dim
            .map_or(String::new(), |d| format!(", embedding {d}")),
        c.dropout,
        c.embed_dropout,
        c.output_dropout
    )
}

fn checkpoint_error(e: CheckpointError) -> CliError {
    CliError::bad_input(format!("checkpoint: {e}"))
}

/// Greedy continuation of `prime` by `length` tokens, as text.
fn continue_text(
    model: &LanguageModel,
    tokenizer: &Tokenizer,
    options: &TrainOptions,
    prime: &str,
    length: usize,
) -> Result<String, CliError> {
    let encoded = tokenizer.encode_text(prime);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let out = generate(
        model,
        &encoded.ids,
        length,
        options.generation_context(),
        EngineSampling::Greedy,
        &mut rng,
    )
    .map_err(|e| CliError::bad_input(format!("--prime {prime:?}: {e}")))?;
    let mut text = prime.to_string();
    let continuation = tokenizer.decode(&out.tokens);
    if matches!(tokenizer, Tokenizer::Word(_)) {
        text.push(' ');
    }
    text.push_str(&continuation);
    Ok(text)
}

/// `recur generate`.
pub fn generate_text(config: GenerateConfig) -> Result<(), CliError> {
    let bundle =
        load_checkpoint(&config.checkpoint, "last", Par::Rayon(0)).map_err(checkpoint_error)?;
    let prime = config
        .prime
        .clone()
        .unwrap_or_else(|| match &bundle.tokenizer {
            Tokenizer::Char(_) => "the ".to_string(),
            Tokenizer::Word(_) => "the".to_string(),
        });
    let encoded = bundle.tokenizer.encode_text(&prime);
    // Refused before warning: bad input is one line on stderr.
    if encoded.ids.is_empty() {
        return Err(CliError::bad_input(format!(
            "--prime {prime:?}: nothing of it is in the model's vocabulary"
        )));
    }
    if !encoded.unknown.is_empty() {
        eprintln!(
            "warning: --prime: not in the vocabulary, left out: {}",
            encoded.unknown.join(" ")
        );
    }
    let sampling = match config.sampling {
        Sampling::Greedy => EngineSampling::Greedy,
        Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } => EngineSampling::Random {
            temperature,
            top_k: top_k.map(|k| k.get()),
            top_p,
        },
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let out = generate(
        &bundle.model,
        &encoded.ids,
        config.length,
        bundle.options.generation_context(),
        sampling,
        &mut rng,
    )
    .map_err(|e| CliError::bad_input(e.to_string()))?;
    let mut text = prime;
    if matches!(bundle.tokenizer, Tokenizer::Word(_)) {
        text.push(' ');
    }
    text.push_str(&bundle.tokenizer.decode(&out.tokens));
    println!("{text}");
    Ok(())
}

/// `recur eval`.
pub fn evaluate(config: EvalConfig, corpus: Corpus) -> Result<(), CliError> {
    let bundle =
        load_checkpoint(&config.checkpoint, "last", Par::Rayon(0)).map_err(checkpoint_error)?;
    let mut sink = VecSink::default();
    bundle.tokenizer.encode_corpus(&corpus, &mut sink)?;
    let n = sink.ids.len();
    let store = std::sync::Arc::new(TokenStore::from_ids(sink.ids, sink.line_ends)?);
    let dataset = match bundle.options.dataset {
        DatasetSpec::Windows { steps, stride } => {
            SlidingWindows::new(store, 0..n, steps, stride).map(Dataset::Windows)
        }
        DatasetSpec::LinePrefixes { .. } => {
            LinePrefixes::all(store, Some(bundle.options.steps)).map(Dataset::LinePrefixes)
        }
        DatasetSpec::Streams { batch, steps } => {
            BpttStreams::new(store, 0..n, batch, steps).map(Dataset::Streams)
        }
    }
    .map_err(|e| name_the_corpus(e, &corpus))?;
    let started = Instant::now();
    let stats = evaluate_dataset(
        &bundle.model,
        &dataset,
        config.batch_size,
        &mut Default::default(),
        &mut LmWorkspace::default(),
    )
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    let loss = stats.mean_loss();
    let unit = match bundle.tokenizer {
        Tokenizer::Char(_) => "character",
        Tokenizer::Word(_) => "word",
    };
    println!(
        "{}: {} targets, loss {loss:.4} nats, perplexity {:.3}, {:.4} bits per {unit}, accuracy \
         {:.2}% ({:.1} s)",
        corpus.path().display(),
        stats.count,
        loss.exp(),
        loss / std::f64::consts::LN_2,
        100.0 * stats.correct as f64 / stats.count.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Datasets over in-memory ids call their source `<tokens>`; say which corpus it was.
fn name_the_corpus(e: DataError, corpus: &Corpus) -> DataError {
    match e {
        DataError::CorpusTooShort { found, needed, .. } => DataError::CorpusTooShort {
            path: corpus.path().to_path_buf(),
            found,
            needed,
        },
        other => other,
    }
}

/// A progress bar on a terminal; plain log lines otherwise (CI logs, pipes).
struct Progress {
    bar: Option<ProgressBar>,
    last_log: Instant,
    epoch_started: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            bar: None,
            last_log: Instant::now(),
            epoch_started: Instant::now(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl TrainObserver for Progress {
    fn on_batch(&mut self, epoch: usize, batch: usize, batches: usize, mean_loss: f64) {
        if batch == 0 {
            self.epoch_started = Instant::now();
            self.finish();
            if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(batches as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} batches, {msg} ({eta} left)",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(epoch.to_string());
                self.bar = Some(bar);
            }
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(batch as u64 + 1);
                bar.set_message(format!("loss {mean_loss:.4}"));
            }
            None => {
                if self.last_log.elapsed().as_secs_f64() >= 10.0 {
                    self.last_log = Instant::now();
                    eprintln!(
                        "epoch {epoch}: batch {}/{batches}, loss {mean_loss:.4}, {:.0} s",
                        batch + 1,
                        self.epoch_started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    fn on_epoch(&mut self, r: &EpochRecord) {
        self.finish();
        let val = match (r.val_loss, r.val_accuracy) {
            (Some(l), Some(a)) => format!(", val loss {l:.4} (accuracy {:.1}%)", 100.0 * a),
            _ => String::new(),
        };
        println!(
            "epoch {:>3}: loss {:.4} (accuracy {:.1}%){val}, {:.2} s, {:.0} targets/s",
            r.epoch,
            r.train_loss,
            100.0 * r.train_accuracy,
            r.seconds,
            r.targets_per_second
        );
        if let Some(sample) = &r.sample {
            println!("           {sample:?}");
        }
    }
}
