//! Many-to-many (tagging): a prediction at every real step, the loss masked by each row's length.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    HeadError, HeadGrads, Objective, Targets, apply_step, check_classes, check_lengths,
    check_targets, head_loss, head_outputs, named_params,
};
use crate::model::dense::{Dense, DenseGrads};
use crate::optim::Optimizer;
use crate::rnn::{Mode, Rnn, RnnConfig, SeqBatch};

/// A recurrent network with a dense head applied at every step: sequence tagging
/// (softmax cross-entropy per step) or per-step regression (MSE).
///
/// The loss is the mean over the real steps (Σ_b len_b of them; PyTorch's
/// `CrossEntropyLoss(ignore_index=…)` / `MSELoss` over a packed sequence): padding steps are never
/// handed to the head, so their inputs and targets cannot change the loss or any gradient.
///
/// ```
/// use recur_engine::heads::{ManyToMany, Objective, Targets};
/// use recur_engine::kernels::CellKind;
/// use recur_engine::optim::{Optimizer, OptimizerConfig};
/// use recur_engine::rnn::{RnnConfig, SeqBatch};
///
/// // Tag each step with whether the running sum so far is positive. T = 5, B = 3, I = 1.
/// let rnn = RnnConfig::new(CellKind::Lstm, 1, 8).init(3)?;
/// let mut model = ManyToMany::new(rnn, Objective::Classify { classes: 2 }, 4)?;
/// let x: Vec<f32> = (0..15).map(|k| if (k * 5) % 7 < 3 { 1.0 } else { -1.0 }).collect(); // (T, B, I)
/// let mut tags = vec![0u32; 15]; // (T, B); padding steps may hold anything
/// for b in 0..3 {
///     let mut sum = 0.0;
///     for t in 0..5 {
///         sum += x[t * 3 + b];
///         tags[t * 3 + b] = u32::from(sum > 0.0);
///     }
/// }
/// let lengths = [5, 2, 4];
/// let batch = SeqBatch::new(&x, 5, 3).with_lengths(&lengths);
///
/// let mut optimizer = Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(0.05))?;
/// let mut grads = model.zero_grads();
/// let first = model.loss(batch, Targets::Classes(&tags))?;
/// for step in 0..30 {
///     grads.zero();
///     model.loss_and_grads(batch, Targets::Classes(&tags), step, &mut grads)?;
///     model.apply(&mut optimizer, &grads)?;
/// }
/// assert!(model.loss(batch, Targets::Classes(&tags))? < first);
/// assert_eq!(model.predict(batch)?.len(), 5 * 3 * 2); // (T, B, C), 0 past each length
/// # Ok::<(), recur_engine::heads::HeadError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ManyToMany {
    pub rnn: Rnn,
    /// (O, D·H)
    pub head: Dense,
    pub objective: Objective,
}

impl ManyToMany {
    /// `rnn` with a dense head of width [`Objective::width`], initialised as PyTorch's
    /// `nn.Linear` from a `ChaCha8Rng` seeded with `seed`.
    ///
    /// # Errors
    /// [`HeadError::ZeroSize`] for 0 classes or outputs.
    pub fn new(rnn: Rnn, objective: Objective, seed: u64) -> Result<Self, HeadError> {
        objective.check()?;
        let features = rnn.config().directions() * rnn.config().hidden_size;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let head = Dense::init(features, objective.width(), &mut rng);
        Ok(ManyToMany {
            rnn,
            head,
            objective,
        })
    }

    /// Zero gradients shaped like the parameters.
    pub fn zero_grads(&self) -> HeadGrads {
        HeadGrads {
            d_rnn: self.rnn.zero_grads(),
            d_head: DenseGrads::zeros(&self.head),
            d_bridge: None,
        }
    }

    /// `(name, values)` of every parameter: `rnn.weight_ih_l0`, …, `head.weight`, `head.bias`.
    pub fn named_params(&self) -> Vec<(String, &[f32])> {
        named_params(&self.rnn, &self.head, None)
    }

    /// The head's outputs (logits or values) at every step, 0 past each row's length. (T, B, O)
    ///
    /// # Errors
    /// As [`crate::rnn::Rnn::forward`] for a malformed batch.
    pub fn predict(&self, input: SeqBatch<'_>) -> Result<Vec<f32>, HeadError> {
        check_lengths(input.lengths, input.steps, input.batch)?;
        let out = self.rnn.infer(input, None)?;
        let rows = real_rows(input);
        let par = self.rnn.config().par;
        Ok(step_outputs(
            &self.head,
            self.objective,
            par,
            &out.output,
            &rows,
            input.steps * input.batch,
        ))
    }

    /// The mean loss over the real steps, without gradients (no dropout).
    ///
    /// `targets`: (T, B) class ids, or (T, B, O) values; entries past a row's length are ignored
    /// (never read, never validated).
    ///
    /// # Errors
    /// [`HeadError`] for a malformed batch, targets of the wrong kind or length, or a class id of
    /// a real step outside `0..C`.
    pub fn loss(&self, input: SeqBatch<'_>, targets: Targets<'_>) -> Result<f64, HeadError> {
        let rows = self.check(input, targets)?;
        let out = self.rnn.infer(input, None)?;
        Ok(step_loss(
            &self.head,
            self.objective,
            self.rnn.config(),
            &out.output,
            &rows,
            targets,
        ))
    }

    /// [`ManyToMany::loss`] with backpropagation: accumulates (`+=`) every parameter's gradient
    /// into `grads`. Dropout (if configured) draws its masks from `dropout_seed`.
    ///
    /// # Errors
    /// As [`ManyToMany::loss`], and [`HeadError::Rnn`] if `grads` does not match the network.
    pub fn loss_and_grads(
        &self,
        input: SeqBatch<'_>,
        targets: Targets<'_>,
        dropout_seed: u64,
        grads: &mut HeadGrads,
    ) -> Result<f64, HeadError> {
        let rows = self.check(input, targets)?;
        let cfg = self.rnn.config();
        let (out, cache) = self
            .rnn
            .forward(input, None, Mode::Training { dropout_seed })?;
        let width = self.head.input;
        let features = gather_rows(&out.output, width, &rows);
        let compact_targets = gather_targets(targets, self.objective.width(), &rows);
        let mut d_features = vec![0.0f32; features.len()]; // (N, D·H)
        let loss = head_loss(
            &self.head,
            self.objective,
            cfg.isa,
            cfg.par,
            &features,
            rows.len(),
            compact_targets.as_targets(),
            Some((&mut grads.d_head, &mut d_features)),
        );
        let mut d_output = vec![0.0f32; out.output.len()]; // (T, B, D·H), 0 on padding
        scatter_rows(&d_features, width, &rows, &mut d_output);
        self.rnn
            .backward(cache, &d_output, None, &mut grads.d_rnn)?;
        Ok(loss)
    }

    /// One optimiser step on every parameter from `grads`.
    ///
    /// # Errors
    /// [`HeadError::Optim`] if the optimiser rejects the step (gradient lengths, its state).
    pub fn apply(&mut self, optimizer: &mut Optimizer, grads: &HeadGrads) -> Result<(), HeadError> {
        apply_step(optimizer, &mut self.rnn, &mut self.head, None, grads)
    }

    /// Validates the batch and the targets; returns the real rows.
    fn check(&self, input: SeqBatch<'_>, targets: Targets<'_>) -> Result<Vec<usize>, HeadError> {
        check_lengths(input.lengths, input.steps, input.batch)?;
        let (steps, batch) = (input.steps, input.batch);
        check_targets(self.objective, targets, steps * batch, || {
            format!("(T={steps}, B={batch}, O={})", self.objective.width())
        })?;
        let rows = real_rows(input);
        check_classes(self.objective, targets, rows.iter().copied())?;
        Ok(rows)
    }
}

/// The head's outputs at the real steps `rows` of a network output (T·B, F), scattered back to
/// (T·B, O) with zeros at padded steps.
pub(super) fn step_outputs(
    head: &Dense,
    objective: Objective,
    par: recur_kernels::Par,
    output: &[f32],
    rows: &[usize],
    total_rows: usize,
) -> Vec<f32> {
    let features = gather_rows(output, head.input, rows);
    let compact = head_outputs(head, par, &features, rows.len());
    let width = objective.width();
    let mut outputs = vec![0.0f32; total_rows * width];
    scatter_rows(&compact, width, rows, &mut outputs);
    outputs
}

/// The head's mean loss over the real steps `rows` of a network output (T·B, F), without
/// gradients; `targets` are per step (T·B) and gathered to the same rows.
pub(super) fn step_loss(
    head: &Dense,
    objective: Objective,
    cfg: &RnnConfig,
    output: &[f32],
    rows: &[usize],
    targets: Targets<'_>,
) -> f64 {
    let features = gather_rows(output, head.input, rows);
    let compact_targets = gather_targets(targets, objective.width(), rows);
    head_loss(
        head,
        objective,
        cfg.isa,
        cfg.par,
        &features,
        rows.len(),
        compact_targets.as_targets(),
        None,
    )
}

/// The indices `t·B + b` of the real steps, in (t, b) order.
pub(super) fn real_rows(input: SeqBatch<'_>) -> Vec<usize> {
    let (steps, batch) = (input.steps, input.batch);
    let mut rows = Vec::with_capacity(steps * batch);
    for t in 0..steps {
        for b in 0..batch {
            if input.lengths.is_none_or(|l| t < l[b]) {
                rows.push(t * batch + b);
            }
        }
    }
    rows
}

/// `out[k] = data[rows[k]]`, rows of `width`.
pub(super) fn gather_rows(data: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        out.extend_from_slice(&data[r * width..(r + 1) * width]);
    }
    out
}

/// `out[rows[k]] = compact[k]`, rows of `width`; other rows untouched.
pub(super) fn scatter_rows(compact: &[f32], width: usize, rows: &[usize], out: &mut [f32]) {
    for (k, &r) in rows.iter().enumerate() {
        out[r * width..(r + 1) * width].copy_from_slice(&compact[k * width..(k + 1) * width]);
    }
}

/// Targets gathered to the real rows.
pub(super) enum OwnedTargets {
    Classes(Vec<u32>),
    Values(Vec<f32>),
}

impl OwnedTargets {
    pub(super) fn as_targets(&self) -> Targets<'_> {
        match self {
            OwnedTargets::Classes(c) => Targets::Classes(c),
            OwnedTargets::Values(v) => Targets::Values(v),
        }
    }
}

pub(super) fn gather_targets(targets: Targets<'_>, width: usize, rows: &[usize]) -> OwnedTargets {
    match targets {
        Targets::Classes(ids) => OwnedTargets::Classes(rows.iter().map(|&r| ids[r]).collect()),
        Targets::Values(values) => OwnedTargets::Values(gather_rows(values, width, rows)),
    }
}
