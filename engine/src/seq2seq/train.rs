//! A small training loop for [`Seq2Seq`] over a stream of generated (source, target) pairs, and
//! exact-match evaluation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Seq2SeqError;
use super::decode::BeamConfig;
use super::model::{Feeding, LossStats, Seq2Seq, Seq2SeqGrads};
use crate::optim::{GradClip, Optimizer, OptimizerConfig};

/// The teacher-forcing ratio over training: `start` at step 0, moving linearly to `end` at the
/// last step (scheduled sampling, Bengio et al. 2015, with a linear decay; `start = end = 1` is
/// plain teacher forcing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TeacherSchedule {
    /// Ratio at the first step, in `[0, 1]`.
    pub start: f32,
    /// Ratio at the last step, in `[0, 1]`.
    pub end: f32,
}

impl TeacherSchedule {
    /// Always feed the reference token.
    pub const ALWAYS: TeacherSchedule = TeacherSchedule {
        start: 1.0,
        end: 1.0,
    };

    /// The ratio at `step` of `steps`.
    pub fn ratio(&self, step: usize, steps: usize) -> f32 {
        let f = if steps <= 1 {
            0.0
        } else {
            step as f32 / (steps - 1) as f32
        };
        self.start + (self.end - self.start) * f
    }
}

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Pairs per step.
    pub batch: usize,
    /// Optimiser steps.
    pub steps: usize,
    pub optimizer: OptimizerConfig,
    pub clip: GradClip,
    pub teacher: TeacherSchedule,
    /// Seed of the pair stream and the teacher-forcing coin flips.
    pub seed: u64,
}

/// Training state: the optimiser, the gradient buffers, the pair stream and the step count.
#[derive(Debug)]
pub struct Trainer {
    config: TrainConfig,
    optimizer: Optimizer,
    grads: Seq2SeqGrads,
    rng: ChaCha8Rng,
    step: usize,
}

impl Trainer {
    /// A trainer for `model` (gradients shaped like it), the pair stream seeded with
    /// `config.seed`.
    ///
    /// # Errors
    /// [`Seq2SeqError::TeacherForcing`] or [`Seq2SeqError::Optimizer`] for a bad `config`.
    pub fn new(model: &Seq2Seq, config: &TrainConfig) -> Result<Self, Seq2SeqError> {
        for ratio in [config.teacher.start, config.teacher.end] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(Seq2SeqError::TeacherForcing { found: ratio });
            }
        }
        config.clip.validate()?;
        Ok(Trainer {
            config: *config,
            optimizer: Optimizer::new(config.optimizer)?,
            grads: Seq2SeqGrads::zeros(model),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            step: 0,
        })
    }

    /// Steps taken.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// One step on a batch drawn from `sample`: the loss statistics of that batch (measured
    /// before the update).
    ///
    /// # Errors
    /// [`Seq2SeqError`] from a bad pair or the optimiser.
    pub fn step(
        &mut self,
        model: &mut Seq2Seq,
        mut sample: impl FnMut(&mut ChaCha8Rng) -> (Vec<u32>, Vec<u32>),
    ) -> Result<LossStats, Seq2SeqError> {
        let (sources, targets): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (0..self.config.batch)
            .map(|_| sample(&mut self.rng))
            .unzip();
        let ratio = self.config.teacher.ratio(self.step, self.config.steps);
        let feeding = if ratio >= 1.0 {
            Feeding::Teacher
        } else {
            Feeding::Mixed {
                teacher_ratio: ratio,
                seed: self.config.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            }
        };
        self.grads.zero();
        let stats = model.loss(&sources, &targets, feeding, Some(&mut self.grads))?;
        self.config.clip.apply(&mut self.grads.buffers_mut());
        model.apply(&mut self.optimizer, &self.grads)?;
        self.step += 1;
        Ok(stats)
    }
}

/// Trains `model` for `config.steps` steps on batches drawn from `sample` (called with a
/// `ChaCha8Rng` seeded from `config.seed`), calling `on_step(step, &stats)` after each step.
///
/// # Errors
/// As [`Trainer::new`] and [`Trainer::step`].
pub fn train(
    model: &mut Seq2Seq,
    mut sample: impl FnMut(&mut ChaCha8Rng) -> (Vec<u32>, Vec<u32>),
    config: &TrainConfig,
    mut on_step: impl FnMut(usize, &LossStats),
) -> Result<(), Seq2SeqError> {
    let mut trainer = Trainer::new(model, config)?;
    for step in 0..config.steps {
        let stats = trainer.step(model, &mut sample)?;
        on_step(step, &stats);
    }
    Ok(())
}

/// Exact-match counts of a decoder on held-out pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExactMatch {
    /// Outputs equal to the target, token for token and in length.
    pub correct: usize,
    /// Pairs decoded.
    pub total: usize,
}

impl ExactMatch {
    /// `correct / total`.
    pub fn rate(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Greedy exact match over `pairs`, decoded `batch` at a time, each output at most `max_len`
/// tokens (EOS included).
///
/// # Errors
/// As [`Seq2Seq::greedy`].
pub fn exact_match_greedy(
    model: &Seq2Seq,
    pairs: &[(Vec<u32>, Vec<u32>)],
    batch: usize,
    max_len: usize,
) -> Result<ExactMatch, Seq2SeqError> {
    let mut out = ExactMatch::default();
    for chunk in pairs.chunks(batch.max(1)) {
        let sources: Vec<&[u32]> = chunk.iter().map(|(s, _)| &s[..]).collect();
        let decoded = model.greedy(&sources, max_len)?;
        out.total += chunk.len();
        out.correct += decoded
            .iter()
            .zip(chunk)
            .filter(|(d, (_, t))| *d == t)
            .count();
    }
    Ok(out)
}

/// Beam-search exact match over `pairs` (the best hypothesis of each).
///
/// # Errors
/// As [`Seq2Seq::beam`].
pub fn exact_match_beam(
    model: &Seq2Seq,
    pairs: &[(Vec<u32>, Vec<u32>)],
    config: &BeamConfig,
) -> Result<ExactMatch, Seq2SeqError> {
    let mut out = ExactMatch::default();
    for (source, target) in pairs {
        let best = model.beam(source, config)?;
        out.total += 1;
        if best.first().is_some_and(|h| &h.tokens == target) {
            out.correct += 1;
        }
    }
    Ok(out)
}

/// Teacher-forced loss and token accuracy over `pairs`, `batch` at a time.
///
/// # Errors
/// As [`Seq2Seq::loss`].
pub fn evaluate_loss(
    model: &Seq2Seq,
    pairs: &[(Vec<u32>, Vec<u32>)],
    batch: usize,
) -> Result<LossStats, Seq2SeqError> {
    let mut total = LossStats::default();
    for chunk in pairs.chunks(batch.max(1)) {
        let sources: Vec<&[u32]> = chunk.iter().map(|(s, _)| &s[..]).collect();
        let targets: Vec<&[u32]> = chunk.iter().map(|(_, t)| &t[..]).collect();
        total.add(&model.loss(&sources, &targets, Feeding::Teacher, None)?);
    }
    Ok(total)
}
