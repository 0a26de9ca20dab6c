//! Learning-rate schedules: the learning rate of optimiser step `k` (0-based, the number of
//! steps already taken, like Keras's `optimizer.iterations`) as a pure function of `k`, so a
//! resumed run gets exactly the rates an uninterrupted one would.

use serde::{Deserialize, Serialize};

/// How the learning rate changes with the step count `k`; `lr₀` is the configured rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// `lr₀` at every step.
    #[default]
    Constant,
    /// `lr₀ · γ^⌊max(0, k − delay) / every⌋`: multiply by `gamma` every `every` steps once
    /// `delay` steps have passed.
    ///
    /// - PyTorch `StepLR(step_size, gamma)` stepped per batch is `every = step_size, delay = 0`;
    /// - Keras `ExponentialDecay(lr₀, decay_steps, decay_rate, staircase=True)` is
    ///   `every = decay_steps, gamma = decay_rate, delay = 0`;
    /// - char-rnn's `learning_rate_decay` (× decay at the end of every epoch from epoch
    ///   `learning_rate_decay_after` on) is `every = E, gamma = decay, delay = (after − 1)·E` with
    ///   `E` steps per epoch.
    Step { every: u64, gamma: f32, delay: u64 },
    /// `lr₀ · rate^(k / decay_steps)`, continuous: Keras
    /// `ExponentialDecay(lr₀, decay_steps, decay_rate)` (staircase=False); PyTorch
    /// `ExponentialLR(gamma)` stepped once per `decay_steps` batches is its staircase form
    /// ([`LrSchedule::Step`]).
    Exponential { decay_steps: u64, decay_rate: f32 },
    /// `lr₀ / (1 + rate · k / decay_steps)`: Keras `InverseTimeDecay(lr₀, decay_steps,
    /// decay_rate)`, and the legacy Keras 2 optimiser argument `decay` (`decay_steps = 1`).
    InverseTime { decay_steps: u64, decay_rate: f32 },
}

impl LrSchedule {
    /// The learning rate of step `step` (0-based), computed in f64 and rounded once.
    ///
    /// The caller validates the schedule first ([`LrSchedule::validate`]).
    pub fn learning_rate(&self, base: f32, step: u64) -> f32 {
        let base = f64::from(base);
        let rate = match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step {
                every,
                gamma,
                delay,
            } => {
                let decays = step.saturating_sub(delay) / every;
                base * f64::from(gamma).powf(decays as f64)
            }
            LrSchedule::Exponential {
                decay_steps,
                decay_rate,
            } => base * f64::from(decay_rate).powf(step as f64 / decay_steps as f64),
            LrSchedule::InverseTime {
                decay_steps,
                decay_rate,
            } => base / (1.0 + f64::from(decay_rate) * step as f64 / decay_steps as f64),
        };
        rate as f32
    }

    /// `Err((field, expected, found))` for a schedule that cannot be evaluated: a zero period,
    /// or a negative or non-finite factor.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, &'static str, f64)> {
        let (period, factor, name) = match *self {
            LrSchedule::Constant => return Ok(()),
            LrSchedule::Step { every, gamma, .. } => (every, gamma, "gamma"),
            LrSchedule::Exponential {
                decay_steps,
                decay_rate,
            }
            | LrSchedule::InverseTime {
                decay_steps,
                decay_rate,
            } => (decay_steps, decay_rate, "decay_rate"),
        };
        if period == 0 {
            return Err(("schedule period", "at least 1 step", 0.0));
        }
        if !(factor.is_finite() && factor >= 0.0) {
            return Err((name, "a finite value ≥ 0", f64::from(factor)));
        }
        Ok(())
    }
}
