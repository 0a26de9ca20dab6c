//! The training loop: minibatches, clipping, the optimiser step, validation, checkpoints,
//! metrics and the per-epoch sample.
//!
//! # Determinism
//!
//! Every random choice derives from `(seed, epoch, step)` alone — the shuffled order of an epoch
//! from `(seed, epoch)`, the dropout masks of a step from `(seed, step)` — and the kernels give
//! the same bits for any thread count. So a run gives bit-identical weights for any `--threads`,
//! and a run resumed from a checkpoint continues exactly as if it had never stopped.
//!
//! # Checkpoints
//!
//! A checkpoint is written after every epoch and, with [`TrainOptions::checkpoint_every`], every
//! that many optimiser steps inside an epoch. A mid-epoch checkpoint also records where the epoch
//! stands ([`EpochProgress`]: batches done, the running loss sums) and, for truncated-BPTT
//! streams, the state carried into the next chunk, so resuming from it is bit-identical too.
//!
//! # Failure
//!
//! A non-finite loss or gradient stops training with [`TrainError::NonFinite`] *before* the
//! optimiser touches the weights; the last checkpoint, written atomically at the end of the
//! previous epoch, stays as it was.

mod generate;
mod run_dir;

pub use generate::{Context, GenerateError, Generation, generate};
pub use run_dir::{CheckpointBundle, load_checkpoint, save_checkpoint};

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointError;
use crate::data::dataset::{Dataset, DatasetConfig, EpochOrder, ManyToOne, Minibatch};
use crate::data::prepare::PreparedData;
use crate::model::lm::{BatchStats, LanguageModel, LmError, LmGrads, LmWorkspace};
use crate::model::sampling::Sampling;
use crate::optim::{GradClip, OptimError, Optimizer, Param, global_norm};
use crate::rnn::RnnState;

/// How to train (what is not the model's architecture or the optimiser's rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Sequences per minibatch (B). For truncated-BPTT streams the dataset fixes B itself.
    pub batch_size: usize,
    /// Epochs to reach (a resumed run counts the epochs already done).
    pub epochs: usize,
    /// Seeds initialisation, shuffling and dropout.
    pub seed: u64,
    /// Visit many-to-one samples in a seeded shuffled order (Keras `fit` does).
    pub shuffle: bool,
    /// Gradient clipping before each optimiser step, applied in order (char-rnn clips by value;
    /// both may be given: by value, then by global norm).
    pub clip: Vec<GradClip>,
    /// The dataset trained on (what generation and evaluation must mimic).
    pub dataset: DatasetSpec,
    /// T: steps per training sequence (for line prefixes, the longest line − 1).
    pub steps: usize,
    /// After each epoch, a greedy continuation of this many tokens from a random training window
    /// (the seeds print these to show learning). 0 = none.
    pub sample_tokens: usize,
    /// Where checkpoints, `metrics.jsonl` and `loss.svg` go (`None`: nowhere).
    pub run_dir: Option<PathBuf>,
    /// Also checkpoint every this many optimiser steps inside an epoch (0: at epoch ends only).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Stop (with a checkpoint) once the optimiser has taken this many steps in all, even in the
    /// middle of an epoch; `--resume` continues from there.
    #[serde(default)]
    pub max_steps: Option<u64>,
}

/// Where an unfinished epoch stands: saved in mid-epoch checkpoints, so that a resumed run
/// continues the epoch from the next minibatch with the same running totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// 1-based epoch in progress.
    pub epoch: usize,
    /// Minibatches of it already trained on.
    pub batches_done: usize,
    /// Σ cross-entropy of those minibatches' targets (nats).
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
    /// Wall time spent on them.
    pub seconds: f64,
}

impl EpochProgress {
    fn stats(&self) -> BatchStats {
        BatchStats {
            loss_sum: self.loss_sum,
            correct: self.correct,
            count: self.count,
        }
    }
}

/// The kind of dataset a model was trained on, as saved in checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetSpec {
    Windows { steps: usize, stride: usize },
    LinePrefixes { max_steps: Option<usize> },
    Streams { batch: usize, steps: usize },
}

impl From<DatasetConfig> for DatasetSpec {
    fn from(c: DatasetConfig) -> Self {
        match c {
            DatasetConfig::Windows { steps, stride } => DatasetSpec::Windows { steps, stride },
            DatasetConfig::LinePrefixes { max_steps } => DatasetSpec::LinePrefixes { max_steps },
            DatasetConfig::Streams { batch, steps } => DatasetSpec::Streams { batch, steps },
        }
    }
}

impl From<DatasetSpec> for DatasetConfig {
    fn from(c: DatasetSpec) -> Self {
        match c {
            DatasetSpec::Windows { steps, stride } => DatasetConfig::Windows { steps, stride },
            DatasetSpec::LinePrefixes { max_steps } => DatasetConfig::LinePrefixes { max_steps },
            DatasetSpec::Streams { batch, steps } => DatasetConfig::Streams { batch, steps },
        }
    }
}

impl TrainOptions {
    /// How generation should feed the model: as it saw text in training.
    pub fn generation_context(&self) -> Context {
        match self.dataset {
            DatasetSpec::Streams { .. } => Context::Stateful,
            DatasetSpec::Windows { .. } => Context::Window {
                steps: self.steps,
                pad: None,
            },
            DatasetSpec::LinePrefixes { .. } => Context::Window {
                steps: self.steps,
                pad: Some(0),
            },
        }
    }
}

/// What one finished epoch measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimiser steps so far.
    pub step: u64,
    /// Mean training cross-entropy over the epoch's targets (nats), as Keras reports it.
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Mean validation cross-entropy (nats), if there is a validation split.
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch's training pass (validation and sampling excluded).
    pub seconds: f64,
    /// Training targets per second.
    pub targets_per_second: f64,
    /// The greedy continuation printed after the epoch, if any.
    pub sample: Option<String>,
}

/// Told about progress as training runs (a progress bar, log lines).
pub trait TrainObserver {
    /// After each minibatch: 0-based batch index within the epoch, the number of batches, and
    /// the running mean loss of the epoch so far.
    fn on_batch(&mut self, _epoch: usize, _batch: usize, _batches: usize, _mean_loss: f64) {}
    /// After each epoch (and its checkpoint).
    fn on_epoch(&mut self, _record: &EpochRecord) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;
impl TrainObserver for Quiet {}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "epoch {epoch}, batch {batch}: the {what} is not finite ({value}); training stopped before \
         the weights were updated, the last checkpoint is untouched"
    )]
    NonFinite {
        epoch: usize,
        batch: usize,
        what: &'static str,
        value: f64,
    },
    #[error(transparent)]
    Model(#[from] LmError),
    #[error(transparent)]
    Optimizer(#[from] OptimError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{0}")]
    Incompatible(String),
}

impl From<crate::rnn::RnnError> for TrainError {
    fn from(e: crate::rnn::RnnError) -> Self {
        TrainError::Model(LmError::Rnn(e))
    }
}

/// A model, its optimiser and where training stands.
#[derive(Debug)]
pub struct Trainer {
    pub model: LanguageModel,
    pub optimizer: Optimizer,
    pub options: TrainOptions,
    /// Finished epochs, oldest first.
    pub history: Vec<EpochRecord>,
    /// The unfinished epoch a mid-epoch checkpoint left, to be continued.
    progress: Option<EpochProgress>,
    /// The state carried into the next chunk of a truncated-BPTT stream at `progress`.
    carry: Option<RnnState>,
    grads: LmGrads,
    ws: LmWorkspace,
    batch: Minibatch,
    /// Fault injection for tests: poison a gradient at this optimiser step.
    nan_gradient_at_step: Option<u64>,
}

impl Trainer {
    /// A trainer at epoch 0.
    pub fn new(model: LanguageModel, optimizer: Optimizer, options: TrainOptions) -> Self {
        let grads = model.zero_grads();
        Trainer {
            model,
            optimizer,
            options,
            history: Vec::new(),
            progress: None,
            carry: None,
            grads,
            ws: LmWorkspace::default(),
            batch: Minibatch::new(),
            nan_gradient_at_step: None,
        }
    }

    /// Fault injection (`RECUR_FAULT_INJECT=nan-grad@step:N`, `tests/cli/faults.rs`): the gradient
    /// computed at optimiser step `step` (0-based) gets a NaN, as a diverging model's would, so
    /// the non-finite stop can be tested end to end.
    pub fn inject_nan_gradient_at(&mut self, step: u64) {
        self.nan_gradient_at_step = Some(step);
    }

    /// A trainer continuing from a checkpoint's state (`history` says how many epochs are done).
    pub fn resumed(
        model: LanguageModel,
        optimizer: Optimizer,
        options: TrainOptions,
        history: Vec<EpochRecord>,
    ) -> Self {
        let mut t = Trainer::new(model, optimizer, options);
        t.history = history;
        t
    }

    /// Continue an unfinished epoch (from a mid-epoch checkpoint) rather than start it afresh.
    /// `carry` is the state a truncated-BPTT stream carries into the next chunk.
    pub fn with_progress(
        mut self,
        progress: Option<EpochProgress>,
        carry: Option<RnnState>,
    ) -> Self {
        self.progress = progress;
        self.carry = carry;
        self
    }

    /// Where the unfinished epoch stands, if training stopped inside one.
    pub fn progress(&self) -> Option<&EpochProgress> {
        self.progress.as_ref()
    }

    /// The state carried into the next stream chunk at [`Trainer::progress`].
    pub fn carry(&self) -> Option<&RnnState> {
        self.carry.as_ref()
    }

    /// Epochs already done.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// Whether `--max-steps` has been reached.
    pub fn reached_max_steps(&self) -> bool {
        self.options
            .max_steps
            .is_some_and(|max| self.optimizer.steps() >= max)
    }

    /// Trains until `options.epochs` are done (or `options.max_steps` is reached), checkpointing
    /// after every epoch and every `options.checkpoint_every` steps.
    pub fn run(
        &mut self,
        data: &PreparedData,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        while self.epochs_done() < self.options.epochs && !self.reached_max_steps() {
            let epoch = self.epochs_done() + 1;
            let Some((train, seconds)) = self.train_epoch(data, epoch, observer)? else {
                return Ok(()); // stopped inside the epoch at --max-steps, checkpointed
            };
            let val = match &data.val {
                Some(val) => Some(self.evaluate(val)?),
                None => None,
            };
            let sample = if self.options.sample_tokens > 0 {
                Some(self.epoch_sample(data, epoch)?)
            } else {
                None
            };
            let record = EpochRecord {
                epoch,
                step: self.optimizer.steps(),
                train_loss: train.mean_loss(),
                train_accuracy: train.correct as f64 / train.count.max(1) as f64,
                val_loss: val.as_ref().map(BatchStats::mean_loss),
                val_accuracy: val
                    .as_ref()
                    .map(|v| v.correct as f64 / v.count.max(1) as f64),
                seconds,
                targets_per_second: train.count as f64 / seconds.max(1e-9),
                sample,
            };
            self.history.push(record.clone());
            if let Some(dir) = self.options.run_dir.clone() {
                run_dir::save_epoch(&dir, self, &data.tokenizer)?;
            }
            observer.on_epoch(&record);
        }
        Ok(())
    }

    /// One epoch (or the rest of one, after a mid-epoch checkpoint): its training totals and
    /// wall time, or `None` when `--max-steps` stopped it before its end.
    fn train_epoch(
        &mut self,
        data: &PreparedData,
        epoch: usize,
        observer: &mut dyn TrainObserver,
    ) -> Result<Option<(BatchStats, f64)>, TrainError> {
        let started = Instant::now();
        let (first, mut total, earlier_seconds, mut state) = match self.progress.take() {
            Some(p) if p.epoch == epoch => {
                (p.batches_done, p.stats(), p.seconds, self.carry.take())
            }
            _ => (0, BatchStats::default(), 0.0, None),
        };
        self.carry = None;
        let dataset = &data.train;
        let order = match dataset {
            Dataset::Streams(_) => None,
            Dataset::Windows(d) => Some(self.epoch_order(d.len(), epoch)),
            Dataset::LinePrefixes(d) => Some(self.epoch_order(d.len(), epoch)),
        };
        let batches = match dataset {
            Dataset::Streams(streams) => streams.chunks(),
            _ => order.as_ref().map_or(0, EpochOrder::num_batches),
        };
        for b in first..batches {
            let stats = match dataset {
                Dataset::Streams(streams) => {
                    // char-rnn: chunks in order, the state carried from one to the next.
                    streams.fill(b, &mut self.batch);
                    let (stats, next) = self.step(epoch, b, state.as_ref())?;
                    state = Some(next);
                    stats
                }
                Dataset::Windows(d) => self.ordered_step(d, order.as_ref(), epoch, b)?,
                Dataset::LinePrefixes(d) => self.ordered_step(d, order.as_ref(), epoch, b)?,
            };
            total.add(&stats);
            observer.on_batch(epoch, b, batches, total.mean_loss());
            let done = b + 1;
            if done == batches {
                break; // the epoch's own checkpoint follows
            }
            let steps = self.optimizer.steps();
            let stop = self.reached_max_steps();
            let every = self.options.checkpoint_every;
            if stop || (every > 0 && steps.is_multiple_of(every)) {
                self.progress = Some(EpochProgress {
                    epoch,
                    batches_done: done,
                    loss_sum: total.loss_sum,
                    correct: total.correct,
                    count: total.count,
                    seconds: earlier_seconds + started.elapsed().as_secs_f64(),
                });
                self.carry = state.clone();
                if let Some(dir) = self.options.run_dir.clone() {
                    run_dir::save_progress(&dir, self, &data.tokenizer)?;
                }
                if stop {
                    return Ok(None);
                }
                self.progress = None;
                self.carry = None;
            }
        }
        Ok(Some((
            total,
            earlier_seconds + started.elapsed().as_secs_f64(),
        )))
    }

    /// One optimiser step on `batch`, exactly as [`Trainer::run`] takes each step (gradients
    /// zeroed, forward and backward, the finiteness check, clipping, the update), counted in
    /// epoch `epoch` for error messages. For benchmarks and tests that bring their own batches.
    pub fn train_batch(
        &mut self,
        batch: &Minibatch,
        epoch: usize,
    ) -> Result<BatchStats, TrainError> {
        self.batch.clone_from(batch);
        Ok(self.step(epoch, 0, None)?.0)
    }

    /// One step on minibatch `b` of a many-to-one dataset in the epoch's order.
    fn ordered_step<D: ManyToOne>(
        &mut self,
        data: &D,
        order: Option<&EpochOrder>,
        epoch: usize,
        b: usize,
    ) -> Result<BatchStats, TrainError> {
        let order = order.expect("many-to-one datasets have an epoch order");
        order.fill(data, b, &mut self.batch);
        Ok(self.step(epoch, b, None)?.0)
    }

    fn epoch_order(&self, len: usize, epoch: usize) -> EpochOrder {
        if self.options.shuffle {
            EpochOrder::shuffled(
                len,
                self.options.batch_size,
                self.options.seed,
                epoch as u64,
            )
        } else {
            EpochOrder::sequential(len, self.options.batch_size)
        }
    }

    /// One optimiser step on `self.batch`.
    fn step(
        &mut self,
        epoch: usize,
        batch_index: usize,
        initial: Option<&RnnState>,
    ) -> Result<(BatchStats, RnnState), TrainError> {
        let step = self.optimizer.steps();
        let dropout_seed = mix(self.options.seed, step);
        // The decoder's gradient is overwritten by the step rather than zeroed first.
        self.grads.reset_written();
        let (stats, state) = self.model.train_step(
            &self.batch,
            initial,
            dropout_seed,
            &mut self.grads,
            &mut self.ws,
        )?;
        if self.nan_gradient_at_step == Some(step) {
            self.grads.decoder.d_bias[0] = f32::NAN;
        }
        let non_finite = |what, value: f64| TrainError::NonFinite {
            epoch,
            batch: batch_index + 1,
            what,
            value,
        };
        if !stats.loss_sum.is_finite() {
            return Err(non_finite("loss", stats.loss_sum));
        }
        let names: Vec<String> = self
            .model
            .named_params()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // Without clipping, a finiteness scan of what the step wrote stands in for the norm. The
        // decoder's weight gradient (V·H floats, the largest) is left out when its operands
        // (rows·V and rows·H floats) already bound it.
        let unclipped_finite = self.options.clip.is_empty().then(|| {
            let bounded = self.model.decoder_weight_grad_finite(&self.grads, &self.ws);
            self.grads.written_finite_par(self.model.par, !bounded)
        });
        let par = self.model.par;
        let mut pairs = self.model.params_and_grads(&mut self.grads);
        let mut grads: Vec<&mut [f32]> = pairs.iter_mut().map(|(_, g)| &mut **g).collect();
        // Clipping reports the norm before it clips; without clipping a cheap finiteness scan
        // does (the f64 norm of every gradient costs 10% of a word-model step).
        let mut norm = None;
        for clip in &self.options.clip {
            let before = clip.apply(&mut grads);
            norm.get_or_insert(before);
        }
        let finite = match norm {
            Some(n) => n.is_finite(),
            None => unclipped_finite.unwrap_or(true),
        };
        drop(grads);
        if !finite {
            let n = global_norm(pairs.iter().map(|(_, g)| &**g));
            return Err(non_finite("gradient norm", n));
        }
        let mut params: Vec<Param<'_>> = pairs
            .iter_mut()
            .zip(&names)
            .map(|((p, g), name)| Param::new(name, p, g))
            .collect();
        // Element-wise, so bit-identical for any thread count (`Optimizer::step_par`).
        self.optimizer.step_par(&mut params, par)?;
        Ok((stats, state))
    }

    /// Mean loss and accuracy over a dataset, forward only, in order.
    pub fn evaluate(&mut self, dataset: &Dataset) -> Result<BatchStats, TrainError> {
        evaluate_dataset(
            &self.model,
            dataset,
            self.options.batch_size,
            &mut self.batch,
            &mut self.ws,
        )
    }

    /// The seeds' per-epoch demonstration: a random training window, continued greedily.
    fn epoch_sample(&mut self, data: &PreparedData, epoch: usize) -> Result<String, TrainError> {
        let steps = data.train.steps();
        let store = &data.store;
        let span = store.len().saturating_sub(steps + 1).max(1);
        let start = (mix(self.options.seed ^ 0xa11ce, epoch as u64) % span as u64) as usize;
        let prime: Vec<u32> = (start..(start + steps).min(store.len()))
            .map(|i| store.ids().get(i))
            .collect();
        let context = self.options.generation_context();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(mix(self.options.seed, epoch as u64));
        let out = generate(
            &self.model,
            &prime,
            self.options.sample_tokens,
            context,
            Sampling::Greedy,
            &mut rng,
        )
        .map_err(|e| TrainError::Incompatible(e.to_string()))?;
        let all: Vec<u32> = prime.iter().chain(&out.tokens).copied().collect();
        Ok(data.tokenizer.decode(&all))
    }
}

/// Loss and accuracy of `model` over `dataset`, forward only, in order (streams carry their
/// state from chunk to chunk as in training).
pub fn evaluate_dataset(
    model: &LanguageModel,
    dataset: &Dataset,
    batch_size: usize,
    batch: &mut Minibatch,
    ws: &mut LmWorkspace,
) -> Result<BatchStats, TrainError> {
    let mut total = BatchStats::default();
    match dataset {
        Dataset::Streams(streams) => {
            let mut state: Option<RnnState> = None;
            for chunk in 0..streams.chunks() {
                streams.fill(chunk, batch);
                let (stats, next) = model.evaluate(batch, state.as_ref(), ws)?;
                state = Some(next);
                total.add(&stats);
            }
        }
        Dataset::Windows(d) => evaluate_many_to_one(model, d, batch_size, batch, ws, &mut total)?,
        Dataset::LinePrefixes(d) => {
            evaluate_many_to_one(model, d, batch_size, batch, ws, &mut total)?
        }
    }
    Ok(total)
}

fn evaluate_many_to_one<D: ManyToOne>(
    model: &LanguageModel,
    data: &D,
    batch_size: usize,
    batch: &mut Minibatch,
    ws: &mut LmWorkspace,
    total: &mut BatchStats,
) -> Result<(), TrainError> {
    // Larger batches for evaluation: no gradients to hold.
    let order = EpochOrder::sequential(data.len(), batch_size.max(256));
    for b in 0..order.num_batches() {
        order.fill(data, b, batch);
        let (stats, _) = model.evaluate(batch, None, ws)?;
        total.add(&stats);
    }
    Ok(())
}

use rand::SeedableRng;

/// SplitMix64 of `a` and `b`: independent-looking seeds from (seed, counter) pairs.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
