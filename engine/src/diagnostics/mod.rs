//! Gradient-flow diagnostics: how much of the gradient of a loss at the last step of a long
//! sequence reaches each earlier step, for SimpleRNN, LSTM and GRU.
//!
//! # What is measured
//!
//! A one-layer network reads `x_1 … x_T` from the zero state; a linear read-out of the last
//! state gives `y = w·h_T + b`, and the loss is at the last step only:
//!
//! ```text
//! L = 1/(2B) Σ_b (y_b − target_b)²          (B rows, one target per row)
//! ```
//!
//! [`GradientFlowModel::gradient_profile`] returns `‖∂L/∂h_t‖` (the Frobenius norm over the B
//! rows and H units) for `t = 1 … T`. With the loss at `T` only, `∂L/∂h_t` is exactly the
//! gradient that back-propagation carries from `T` down to step `t`, so the profile shows
//! vanishing (norms falling geometrically as `t` moves away from `T`) or exploding (rising)
//! gradients directly. For an LSTM, `h_t` is the output state; the cell state has its own path.
//!
//! It is computed with the public [`Rnn`] API only: one streaming pass records the state after
//! every step, then for each `t` a forward pass over `x_{t+1} … x_T` from that state and
//! [`Rnn::backward`] with the loss gradient at the last output return `∂L/∂(state at t)` as the
//! initial-state gradient (`d_state`). That is O(T²) steps — about 20,000 for T = 200, a second
//! or two for small H — and needs nothing from inside the fused kernels.
//!
//! # The task trained on
//!
//! The adding problem (Hochreiter & Schmidhuber 1997, §5.4; Le, Jaitly & Hinton 2015): each step
//! has two inputs, a value `U(0, 1)` and a marker that is 1 at exactly two steps (one in each
//! half of the sequence); the target is the sum of the two marked values. Predicting it needs
//! information from early steps, so it is a task where vanishing gradients matter; always
//! answering the mean (1.0) gives a loss of about 1/12 (two uniform variances, halved).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::{CellKind, Par};

use crate::model::init::{InitScheme, glorot_uniform, orthogonal};
use crate::optim::{GradClip, OptimError, Optimizer, OptimizerConfig, Param};
use crate::rnn::{Mode, Rnn, RnnConfig, RnnError, RnnState, SeqBatch};

/// Inputs per step of the adding problem: value, marker.
pub const ADDING_INPUTS: usize = 2;

/// What can go wrong in a diagnostic run.
#[derive(Debug, thiserror::Error)]
pub enum DiagnosticsError {
    /// A size of 0, a sequence too short for the task, or a non-finite or non-positive scale.
    #[error("gradient-flow {name}: {message}")]
    InvalidOption { name: &'static str, message: String },
    #[error(transparent)]
    Rnn(#[from] RnnError),
    #[error(transparent)]
    Optim(#[from] OptimError),
}

/// The network and task sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientFlowConfig {
    /// SimpleRNN (tanh), LSTM or GRU.
    pub cell: CellKind,
    /// H.
    pub hidden: usize,
    /// T: steps per sequence (≥ 2: the adding problem marks one step in each half).
    pub steps: usize,
    /// B: rows per minibatch.
    pub batch: usize,
    /// Keras (Glorot input weights, orthogonal recurrent weights, LSTM forget bias 1) or
    /// PyTorch (U(±1/√H)) initialisation.
    pub init: InitScheme,
    /// Multiplies the initial recurrent weights `W_hh` (1 = the scheme's own); above 1 a
    /// SimpleRNN's gradients explode at initialisation, below 1 they vanish faster.
    pub recurrent_gain: f32,
    /// Seed of the initialisation.
    pub seed: u64,
}

impl GradientFlowConfig {
    /// H = 64, T = 200, B = 16, Keras initialisation, gain 1, seed 1.
    pub fn new(cell: CellKind) -> GradientFlowConfig {
        GradientFlowConfig {
            cell,
            hidden: 64,
            steps: 200,
            batch: 16,
            init: InitScheme::Keras,
            recurrent_gain: 1.0,
            seed: 1,
        }
    }

    fn validate(&self) -> Result<(), DiagnosticsError> {
        let positive = |name, value: usize| {
            if value == 0 {
                Err(DiagnosticsError::InvalidOption {
                    name,
                    message: "expected a positive number, found 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("hidden size", self.hidden)?;
        positive("batch", self.batch)?;
        if self.steps < 2 {
            return Err(DiagnosticsError::InvalidOption {
                name: "steps",
                message: format!(
                    "the adding problem marks one step in each half, so T ≥ 2 is needed, found {}",
                    self.steps
                ),
            });
        }
        if !(self.recurrent_gain.is_finite() && self.recurrent_gain > 0.0) {
            return Err(DiagnosticsError::InvalidOption {
                name: "recurrent gain",
                message: format!(
                    "expected a finite number > 0, found {}",
                    self.recurrent_gain
                ),
            });
        }
        Ok(())
    }
}

/// One minibatch of the adding problem.
#[derive(Clone, Debug, PartialEq)]
pub struct AddingBatch {
    /// (T, B, 2): value, marker.
    pub inputs: Vec<f32>,
    /// (B)
    pub targets: Vec<f32>,
    pub steps: usize,
    pub batch: usize,
}

impl AddingBatch {
    /// A random minibatch: values `U(0, 1)`, one marker in each half of every row.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R, steps: usize, batch: usize) -> AddingBatch {
        let mut inputs = vec![0.0f32; steps * batch * ADDING_INPUTS];
        let mut targets = vec![0.0f32; batch];
        let half = steps / 2;
        for (b, target) in targets.iter_mut().enumerate() {
            for t in 0..steps {
                inputs[(t * batch + b) * ADDING_INPUTS] = rng.random::<f32>();
            }
            let first = rng.random_range(0..half);
            let second = rng.random_range(half..steps);
            for t in [first, second] {
                inputs[(t * batch + b) * ADDING_INPUTS + 1] = 1.0;
                *target += inputs[(t * batch + b) * ADDING_INPUTS];
            }
        }
        AddingBatch {
            inputs,
            targets,
            steps,
            batch,
        }
    }
}

/// `‖∂L/∂h_t‖` for `t = 1 … T`, and the loss of the batch it was measured on.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientProfile {
    /// `norms[t − 1] = ‖∂L/∂h_t‖`. (T)
    pub norms: Vec<f64>,
    /// The loss L of the batch.
    pub loss: f64,
}

impl GradientProfile {
    /// `‖∂L/∂h_1‖ / ‖∂L/∂h_T‖`: how much of the gradient at the last step reaches the first
    /// (≪ 1: vanishing, ≫ 1: exploding).
    pub fn first_to_last_ratio(&self) -> f64 {
        self.norms[0] / self.norms[self.norms.len() - 1]
    }
}

/// How [`GradientFlowModel::train`] trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainSettings {
    /// Optimiser steps, one fresh minibatch each.
    pub steps: usize,
    /// Adam (PyTorch convention) learning rate.
    pub learning_rate: f32,
    /// Applied to all gradients together before each step.
    pub clip: GradClip,
    /// Seed of the minibatches.
    pub seed: u64,
}

/// A recurrent layer with a linear read-out of its last state (see the module docs).
#[derive(Clone, Debug)]
pub struct GradientFlowModel {
    config: GradientFlowConfig,
    rnn: Rnn,
    /// (H)
    w_out: Vec<f32>,
    /// (1)
    b_out: Vec<f32>,
}

impl GradientFlowModel {
    /// A freshly initialised model.
    ///
    /// # Errors
    ///
    /// [`DiagnosticsError::InvalidOption`] for a bad size or gain.
    pub fn new(config: GradientFlowConfig) -> Result<GradientFlowModel, DiagnosticsError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let (g, h) = (config.cell.gates(), config.hidden);
        let mut rnn = RnnConfig::new(config.cell, ADDING_INPUTS, h)
            .with_par(Par::Seq)
            .init(config.seed ^ 0x9e37_79b9)?;
        if config.init == InitScheme::Keras {
            for p in &mut rnn.params_mut().directions {
                p.weight_ih = glorot_uniform(&mut rng, ADDING_INPUTS, g * h);
                p.weight_hh = orthogonal(&mut rng, g * h, h);
                p.bias_ih.fill(0.0);
                p.bias_hh.fill(0.0);
                if config.cell == CellKind::Lstm {
                    p.bias_ih[h..2 * h].fill(1.0);
                }
            }
        }
        for p in &mut rnn.params_mut().directions {
            p.weight_hh
                .iter_mut()
                .for_each(|w| *w *= config.recurrent_gain);
        }
        let w_out = glorot_uniform(&mut rng, h, 1);
        Ok(GradientFlowModel {
            config,
            rnn,
            w_out,
            b_out: vec![0.0],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GradientFlowConfig {
        &self.config
    }

    /// The recurrent layer.
    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// `y = w·h_T + b` per row, and `∂L/∂h_T` (B, H) for the loss of `batch`.
    fn readout(&self, h_last: &[f32], targets: &[f32]) -> (f64, Vec<f32>, Vec<f32>) {
        let (b, h) = (targets.len(), self.config.hidden);
        let mut loss = 0.0f64;
        let mut d_h = vec![0.0f32; b * h];
        let mut d_y = vec![0.0f32; b];
        for row in 0..b {
            let hr = &h_last[row * h..(row + 1) * h];
            let y: f32 =
                hr.iter().zip(&self.w_out).map(|(a, w)| a * w).sum::<f32>() + self.b_out[0];
            let err = y - targets[row];
            loss += 0.5 * f64::from(err) * f64::from(err);
            // ∂L/∂y_b = (y_b − target_b) / B
            d_y[row] = err / b as f32;
            for (d, w) in d_h[row * h..(row + 1) * h].iter_mut().zip(&self.w_out) {
                *d = d_y[row] * w;
            }
        }
        (loss / b as f64, d_h, d_y)
    }

    fn check_batch(&self, batch: &AddingBatch) -> Result<(), DiagnosticsError> {
        if batch.inputs.len() != batch.steps * batch.batch * ADDING_INPUTS
            || batch.targets.len() != batch.batch
            || batch.steps == 0
        {
            return Err(DiagnosticsError::InvalidOption {
                name: "batch",
                message: format!(
                    "expected inputs (T, B, 2) and targets (B) with T ≥ 1, found {} inputs and {} \
                     targets for T = {}, B = {}",
                    batch.inputs.len(),
                    batch.targets.len(),
                    batch.steps,
                    batch.batch
                ),
            });
        }
        Ok(())
    }

    /// `∂L/∂h_T` (B, H) of `batch`: where back-propagation starts.
    ///
    /// # Errors
    ///
    /// [`DiagnosticsError::InvalidOption`] if `batch` is malformed.
    pub fn last_step_gradient(&self, batch: &AddingBatch) -> Result<Vec<f32>, DiagnosticsError> {
        self.check_batch(batch)?;
        let (steps, b, h) = (batch.steps, batch.batch, self.config.hidden);
        let out = self
            .rnn
            .infer(SeqBatch::new(&batch.inputs, steps, b), None)?;
        Ok(self
            .readout(&out.output[(steps - 1) * b * h..], &batch.targets)
            .1)
    }

    /// `‖∂L/∂h_t‖` for every step of `batch` (see the module docs).
    ///
    /// # Errors
    ///
    /// [`DiagnosticsError::InvalidOption`] if `batch` is malformed.
    pub fn gradient_profile(
        &self,
        batch: &AddingBatch,
    ) -> Result<GradientProfile, DiagnosticsError> {
        self.check_batch(batch)?;
        let (steps, b, h) = (batch.steps, batch.batch, self.config.hidden);
        let row = b * ADDING_INPUTS;
        // The state after each step t = 1 … T − 1 (the start of the suffix x_{t+1} … x_T).
        let mut stream = self.rnn.stream(b)?;
        let mut states: Vec<RnnState> = Vec::with_capacity(steps);
        let mut h_last = Vec::new();
        for t in 0..steps {
            h_last = stream.step(&batch.inputs[t * row..(t + 1) * row])?.to_vec();
            states.push(stream.state());
        }
        let (loss, d_h_last, _) = self.readout(&h_last, &batch.targets);
        let mut norms = vec![0.0f64; steps];
        norms[steps - 1] = l2(&d_h_last);
        let mut grads = self.rnn.zero_grads();
        let mut d_output = Vec::new();
        for t in 1..steps {
            // From the state after step t over x_{t+1} … x_T; the loss gradient at the last
            // output; d_state = ∂L/∂h_t.
            let suffix = steps - t;
            let (_, cache) = self.rnn.forward(
                SeqBatch::new(&batch.inputs[t * row..], suffix, b),
                Some(&states[t - 1]),
                Mode::Training { dropout_seed: 0 },
            )?;
            d_output.clear();
            d_output.resize(suffix * b * h, 0.0);
            d_output[(suffix - 1) * b * h..].copy_from_slice(&d_h_last);
            let back = self.rnn.backward(cache, &d_output, None, &mut grads)?;
            norms[t - 1] = l2(&back.d_state.h);
        }
        Ok(GradientProfile { norms, loss })
    }

    /// The loss of `batch` and the gradients of every parameter (RNN, then `w_out`, `b_out`).
    fn loss_and_grads(
        &self,
        batch: &AddingBatch,
    ) -> Result<(f64, crate::rnn::RnnGrads, Vec<f32>, Vec<f32>), DiagnosticsError> {
        let (steps, b, h) = (batch.steps, batch.batch, self.config.hidden);
        let (fwd, cache) = self.rnn.forward(
            SeqBatch::new(&batch.inputs, steps, b),
            None,
            Mode::Training { dropout_seed: 0 },
        )?;
        let h_last = &fwd.output[(steps - 1) * b * h..];
        let (loss, d_h_last, d_y) = self.readout(h_last, &batch.targets);
        let mut d_w_out = vec![0.0f32; h];
        for row in 0..b {
            for (d, a) in d_w_out.iter_mut().zip(&h_last[row * h..(row + 1) * h]) {
                *d += d_y[row] * a;
            }
        }
        let d_b_out = vec![d_y.iter().sum::<f32>()];
        let mut d_output = vec![0.0f32; steps * b * h];
        d_output[(steps - 1) * b * h..].copy_from_slice(&d_h_last);
        let mut grads = self.rnn.zero_grads();
        self.rnn.backward(cache, &d_output, None, &mut grads)?;
        Ok((loss, grads, d_w_out, d_b_out))
    }

    /// Trains with Adam on fresh adding-problem minibatches; returns the loss of each step.
    ///
    /// # Errors
    ///
    /// [`DiagnosticsError::InvalidOption`] for a bad learning rate or clip limit.
    pub fn train(&mut self, settings: TrainSettings) -> Result<Vec<f64>, DiagnosticsError> {
        settings.clip.validate()?;
        let mut optimizer = Optimizer::new(
            OptimizerConfig::pytorch_adam().with_learning_rate(settings.learning_rate),
        )?;
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let mut losses = Vec::with_capacity(settings.steps);
        for _ in 0..settings.steps {
            let batch = AddingBatch::generate(&mut rng, self.config.steps, self.config.batch);
            let (loss, mut grads, mut d_w_out, mut d_b_out) = self.loss_and_grads(&batch)?;
            losses.push(loss);
            let mut flat: Vec<&mut [f32]> = Vec::new();
            for d in &mut grads.directions {
                flat.push(&mut d.weight_ih);
                flat.push(&mut d.weight_hh);
                flat.push(&mut d.bias_ih);
                flat.push(&mut d.bias_hh);
            }
            flat.push(&mut d_w_out);
            flat.push(&mut d_b_out);
            settings.clip.apply(&mut flat);
            let d = &grads.directions[0];
            let p = &mut self.rnn.params_mut().directions[0];
            let mut params = [
                Param::new("weight_ih_l0", &mut p.weight_ih, &d.weight_ih),
                Param::new("weight_hh_l0", &mut p.weight_hh, &d.weight_hh),
                Param::new("bias_ih_l0", &mut p.bias_ih, &d.bias_ih),
                Param::new("bias_hh_l0", &mut p.bias_hh, &d.bias_hh),
                Param::new("w_out", &mut self.w_out, &d_w_out),
                Param::new("b_out", &mut self.b_out, &d_b_out),
            ];
            optimizer.step(&mut params)?;
        }
        Ok(losses)
    }
}

fn l2(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}
