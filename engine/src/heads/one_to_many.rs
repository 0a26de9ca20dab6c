//! One-to-many: a fixed vector in, a sequence out — trained with teacher forcing, generated step
//! by step with [`RnnStream`](crate::rnn::RnnStream).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur_kernels::CellKind;

use super::many_to_many::{
    gather_rows, gather_targets, real_rows, scatter_rows, step_loss, step_outputs,
};
use super::{
    HeadError, HeadGrads, Objective, Targets, apply_step, check_classes, check_lengths,
    check_targets, head_loss, named_params,
};
use crate::model::dense::{Dense, DenseGrads};
use crate::model::sampling::argmax;
use crate::optim::Optimizer;
use crate::rnn::{Mode, Rnn, RnnState, SeqBatch};

/// How the fixed vector `v` (F) conditions a [`OneToMany`] model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditioning {
    /// `v` sets the initial state through a bridge, `[h₀ | c₀] = tanh(W_b·v + b_b)` (one block of
    /// H per layer, and the cell states after the hidden states for an LSTM): the "encoder state
    /// initialises the decoder" arrangement (Sutskever et al. 2014; Karpathy's image captioning
    /// feeds the image once).
    InitialState,
    /// The state starts at zero and `v` is concatenated to every step's input,
    /// `x_t = [y_{t−1} | v]` (Cho et al. 2014 feed the summary to every step).
    EveryStep,
    /// Both.
    Both,
}

impl Conditioning {
    fn has_bridge(self) -> bool {
        matches!(self, Conditioning::InitialState | Conditioning::Both)
    }

    fn feeds_steps(self) -> bool {
        matches!(self, Conditioning::EveryStep | Conditioning::Both)
    }
}

/// What [`OneToMany::generate`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The head's outputs at each step (logits or values). (T, B, O)
    pub outputs: Vec<f32>,
    /// Classification only: the greedy choice at each step (fed back as the next input). (T, B)
    pub classes: Option<Vec<u32>>,
}

/// A sequence generated from a fixed vector: the input at step `t` is the previous output `y_{t−1}`
/// (a one-hot class for [`Objective::Classify`], the values for [`Objective::Regress`]; zeros at
/// `t = 0`), followed by `v` when [`Conditioning`] feeds every step.
///
/// Training uses teacher forcing (`y_{t−1}` is the *target*), the loss is the mean over the real
/// steps of each row (ragged lengths as in [`super::ManyToMany`]); generation feeds back the
/// model's own (greedy) outputs through an [`crate::rnn::RnnStream`].
///
/// The network's `input_size` must be [`OneToMany::input_size`]; it must be unidirectional.
///
/// ```
/// use recur_engine::heads::{Conditioning, Objective, OneToMany, Targets};
/// use recur_engine::kernels::CellKind;
/// use recur_engine::optim::{Optimizer, OptimizerConfig};
/// use recur_engine::rnn::RnnConfig;
///
/// // From v = (a) produce the ramp a, 2a, 3a, 4a. F = 1, T = 4, B = 3, one output.
/// let (objective, conditioning) = (Objective::Regress { outputs: 1 }, Conditioning::Both);
/// let input = OneToMany::input_size(objective, 1, conditioning);
/// let rnn = RnnConfig::new(CellKind::Gru, input, 12).init(5)?;
/// let mut model = OneToMany::new(rnn, 1, objective, conditioning, 6)?;
/// let v = [0.1f32, -0.2, 0.15]; // (B, F)
/// let ramp: Vec<f32> = (0..12).map(|k| (k / 3 + 1) as f32 * v[k % 3]).collect(); // (T, B, O)
///
/// let mut optimizer = Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(0.02))?;
/// let mut grads = model.zero_grads();
/// let first = model.loss(&v, Targets::Values(&ramp), 4, None)?;
/// for step in 0..40 {
///     grads.zero();
///     model.loss_and_grads(&v, Targets::Values(&ramp), 4, None, step, &mut grads)?;
///     model.apply(&mut optimizer, &grads)?;
/// }
/// assert!(model.loss(&v, Targets::Values(&ramp), 4, None)? < first / 2.0);
/// let generated = model.generate(&v, 4)?; // fed its own outputs, step by step
/// assert_eq!(generated.outputs.len(), 4 * 3);
/// # Ok::<(), recur_engine::heads::HeadError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OneToMany {
    pub rnn: Rnn,
    /// (O, H)
    pub head: Dense,
    /// `v` → the initial state, (L·H·S, F) with S = 2 for an LSTM (h then c), else 1; `None`
    /// when the vector only feeds the steps.
    pub bridge: Option<Dense>,
    pub objective: Objective,
    pub conditioning: Conditioning,
    /// F.
    pub vector_size: usize,
}

impl OneToMany {
    /// The `input_size` the network needs: the fed-back output (C or O) plus F when the vector
    /// feeds every step.
    pub fn input_size(
        objective: Objective,
        vector_size: usize,
        conditioning: Conditioning,
    ) -> usize {
        objective.width()
            + if conditioning.feeds_steps() {
                vector_size
            } else {
                0
            }
    }

    /// `rnn` with a dense head and (for [`Conditioning::InitialState`]/[`Conditioning::Both`]) a
    /// bridge, both initialised as PyTorch's `nn.Linear` from a `ChaCha8Rng` seeded with `seed`.
    ///
    /// # Errors
    /// [`HeadError::ZeroSize`] for F = 0 or 0 classes/outputs; [`HeadError::Bidirectional`];
    /// [`HeadError::Mismatch`] if `rnn`'s input size is not [`OneToMany::input_size`].
    pub fn new(
        rnn: Rnn,
        vector_size: usize,
        objective: Objective,
        conditioning: Conditioning,
        seed: u64,
    ) -> Result<Self, HeadError> {
        objective.check()?;
        if vector_size == 0 {
            return Err(HeadError::ZeroSize {
                what: "vector_size",
            });
        }
        let cfg = rnn.config();
        if cfg.bidirectional {
            return Err(HeadError::Bidirectional {
                what: "a one-to-many model",
            });
        }
        let expected = Self::input_size(objective, vector_size, conditioning);
        if cfg.input_size != expected {
            return Err(HeadError::Mismatch {
                what: "rnn input_size (fed-back output width + vector size if fed every step)",
                expected,
                found: cfg.input_size,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let head = Dense::init(cfg.hidden_size, objective.width(), &mut rng);
        let bridge = conditioning
            .has_bridge()
            .then(|| Dense::init(vector_size, state_width(&rnn), &mut rng));
        Ok(OneToMany {
            rnn,
            head,
            bridge,
            objective,
            conditioning,
            vector_size,
        })
    }

    /// Zero gradients shaped like the parameters.
    pub fn zero_grads(&self) -> HeadGrads {
        HeadGrads {
            d_rnn: self.rnn.zero_grads(),
            d_head: DenseGrads::zeros(&self.head),
            d_bridge: self.bridge.as_ref().map(DenseGrads::zeros),
        }
    }

    /// `(name, values)` of every parameter: `rnn.*`, `head.*`, then `bridge.*` if any.
    pub fn named_params(&self) -> Vec<(String, &[f32])> {
        named_params(&self.rnn, &self.head, self.bridge.as_ref())
    }

    /// Teacher-forced outputs (logits or values) at every step, 0 past each row's length.
    /// (T, B, O)
    ///
    /// `vectors` (B, F); `targets` (T, B) class ids or (T, B, O) values; `lengths` (B) in
    /// `1..=T` or `None` for all T.
    ///
    /// # Errors
    /// As [`OneToMany::loss`].
    pub fn predict(
        &self,
        vectors: &[f32],
        targets: Targets<'_>,
        steps: usize,
        lengths: Option<&[usize]>,
    ) -> Result<Vec<f32>, HeadError> {
        let batch = self.check(vectors, targets, steps, lengths)?;
        let x = self.teacher_forced_inputs(vectors, targets, steps, batch, lengths);
        let input = seq_batch(&x, steps, batch, lengths);
        let initial = self.initial_state(vectors, batch).map(|(state, _)| state);
        let out = self.rnn.infer(input, initial.as_ref())?;
        let rows = real_rows(input);
        let par = self.rnn.config().par;
        Ok(step_outputs(
            &self.head,
            self.objective,
            par,
            &out.output,
            &rows,
            steps * batch,
        ))
    }

    /// The teacher-forced mean loss over the real steps, without gradients (no dropout).
    /// Arguments as [`OneToMany::predict`]; targets past a row's length are never read.
    ///
    /// # Errors
    /// [`HeadError`] if `vectors` is not (B, F) for some B ≥ 1, the targets are of the wrong kind
    /// or length for (T, B), a length is outside `1..=T`, or a real step's class id is outside
    /// `0..C`.
    pub fn loss(
        &self,
        vectors: &[f32],
        targets: Targets<'_>,
        steps: usize,
        lengths: Option<&[usize]>,
    ) -> Result<f64, HeadError> {
        let batch = self.check(vectors, targets, steps, lengths)?;
        let x = self.teacher_forced_inputs(vectors, targets, steps, batch, lengths);
        let input = seq_batch(&x, steps, batch, lengths);
        let initial = self.initial_state(vectors, batch).map(|(state, _)| state);
        let out = self.rnn.infer(input, initial.as_ref())?;
        let rows = real_rows(input);
        Ok(step_loss(
            &self.head,
            self.objective,
            self.rnn.config(),
            &out.output,
            &rows,
            targets,
        ))
    }

    /// [`OneToMany::loss`] with backpropagation through the head, the network and the bridge:
    /// accumulates (`+=`) every parameter's gradient into `grads`.
    ///
    /// # Errors
    /// As [`OneToMany::loss`], and [`HeadError::Rnn`] if `grads` does not match the network.
    pub fn loss_and_grads(
        &self,
        vectors: &[f32],
        targets: Targets<'_>,
        steps: usize,
        lengths: Option<&[usize]>,
        dropout_seed: u64,
        grads: &mut HeadGrads,
    ) -> Result<f64, HeadError> {
        let batch = self.check(vectors, targets, steps, lengths)?;
        let x = self.teacher_forced_inputs(vectors, targets, steps, batch, lengths);
        let input = seq_batch(&x, steps, batch, lengths);
        let initial = self.initial_state(vectors, batch);
        let cfg = self.rnn.config();
        let (out, cache) = self.rnn.forward(
            input,
            initial.as_ref().map(|(state, _)| state),
            Mode::Training { dropout_seed },
        )?;
        let width = self.head.input;
        let rows = real_rows(input);
        let features = gather_rows(&out.output, width, &rows);
        let compact_targets = gather_targets(targets, self.objective.width(), &rows);
        let mut d_features = vec![0.0f32; features.len()]; // (N, H)
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
        let mut d_output = vec![0.0f32; out.output.len()]; // (T, B, H), 0 on padding
        scatter_rows(&d_features, width, &rows, &mut d_output);
        let back = self
            .rnn
            .backward(cache, &d_output, None, &mut grads.d_rnn)?;
        if let (Some(bridge), Some((_, s))) = (&self.bridge, &initial) {
            let d_bridge = grads.d_bridge.as_mut().ok_or(HeadError::Mismatch {
                what: "bridge gradients (1 if the model has a bridge, else 0)",
                expected: 1,
                found: 0,
            })?;
            // s = tanh(z): ∂L/∂z = ∂L/∂s · (1 − s²), with ∂L/∂s laid out as the bridge output.
            let mut d_z = state_to_bridge(&back.d_state, &self.rnn, batch);
            for (g, &s) in d_z.iter_mut().zip(s) {
                *g *= 1.0 - s * s;
            }
            bridge.backward(cfg.par, vectors, &d_z, batch, d_bridge, None);
        }
        Ok(loss)
    }

    /// Generates `steps` steps for each vector of `vectors` (B, F), one step at a time on an
    /// [`crate::rnn::RnnStream`], feeding back the model's own outputs (the greedy class for a
    /// classifier).
    ///
    /// # Errors
    /// [`HeadError`] if `vectors` is not (B, F) for some B ≥ 1 or `steps` is 0.
    pub fn generate(&self, vectors: &[f32], steps: usize) -> Result<Generated, HeadError> {
        let batch = self.batch_of(vectors)?;
        if steps == 0 {
            return Err(HeadError::ZeroSize { what: "steps" });
        }
        let cfg = self.rnn.config();
        let (width, f, input) = (self.objective.width(), self.vector_size, cfg.input_size);
        let mut stream = self.rnn.stream(batch)?;
        if let Some((state, _)) = self.initial_state(vectors, batch) {
            stream.set_state(&state)?;
        }
        let mut x = vec![0.0f32; batch * input]; // (B, I) = [y_{t−1} | v]
        if self.conditioning.feeds_steps() {
            for b in 0..batch {
                x[b * input + width..(b + 1) * input].copy_from_slice(&vectors[b * f..(b + 1) * f]);
            }
        }
        let mut outputs = Vec::with_capacity(steps * batch * width);
        let mut classes = matches!(self.objective, Objective::Classify { .. })
            .then(|| Vec::with_capacity(steps * batch));
        let mut y = vec![0.0f32; batch * width]; // (B, O)
        for _ in 0..steps {
            let h = stream.step(&x)?;
            self.head.forward(cfg.par, h, batch, &mut y);
            outputs.extend_from_slice(&y);
            for b in 0..batch {
                let feedback = &mut x[b * input..b * input + width];
                let row = &y[b * width..(b + 1) * width];
                match classes.as_mut() {
                    Some(classes) => {
                        let class = argmax(row);
                        classes.push(class as u32);
                        feedback.fill(0.0);
                        feedback[class] = 1.0;
                    }
                    None => feedback.copy_from_slice(row),
                }
            }
        }
        Ok(Generated { outputs, classes })
    }

    /// One optimiser step on every parameter from `grads`.
    ///
    /// # Errors
    /// [`HeadError::Optim`] if the optimiser rejects the step; [`HeadError::Mismatch`] if
    /// `grads` has a bridge gradient exactly when the model has no bridge (or the reverse).
    pub fn apply(&mut self, optimizer: &mut Optimizer, grads: &HeadGrads) -> Result<(), HeadError> {
        apply_step(
            optimizer,
            &mut self.rnn,
            &mut self.head,
            self.bridge.as_mut(),
            grads,
        )
    }

    /// B from `vectors` (B, F).
    fn batch_of(&self, vectors: &[f32]) -> Result<usize, HeadError> {
        let f = self.vector_size;
        if vectors.is_empty() || !vectors.len().is_multiple_of(f) {
            return Err(HeadError::Shape {
                what: "vectors",
                shape: format!("(B ≥ 1, F={f})"),
                expected: f * (vectors.len() / f).max(1),
                found: vectors.len(),
            });
        }
        Ok(vectors.len() / f)
    }

    /// Validates every argument; returns B.
    fn check(
        &self,
        vectors: &[f32],
        targets: Targets<'_>,
        steps: usize,
        lengths: Option<&[usize]>,
    ) -> Result<usize, HeadError> {
        let batch = self.batch_of(vectors)?;
        check_lengths(lengths, steps, batch)?;
        check_targets(self.objective, targets, steps * batch, || {
            format!("(T={steps}, B={batch}, O={})", self.objective.width())
        })?;
        let empty = [];
        let probe = SeqBatch::new(&empty, steps, batch);
        let probe = match lengths {
            Some(l) => probe.with_lengths(l),
            None => probe,
        };
        check_classes(self.objective, targets, real_rows(probe).into_iter())?;
        Ok(batch)
    }

    /// `x_t = [y_{t−1} | v]` with the targets as `y` (teacher forcing), `y_{−1} = 0`; padding
    /// steps stay 0. (T, B, I)
    fn teacher_forced_inputs(
        &self,
        vectors: &[f32],
        targets: Targets<'_>,
        steps: usize,
        batch: usize,
        lengths: Option<&[usize]>,
    ) -> Vec<f32> {
        let (width, f) = (self.objective.width(), self.vector_size);
        let input = self.rnn.config().input_size;
        let mut x = vec![0.0f32; steps * batch * input];
        for t in 0..steps {
            for b in 0..batch {
                if lengths.is_some_and(|l| t >= l[b]) {
                    continue;
                }
                let row = &mut x[(t * batch + b) * input..(t * batch + b + 1) * input];
                if t > 0 {
                    let previous = (t - 1) * batch + b;
                    match targets {
                        Targets::Classes(ids) => row[ids[previous] as usize] = 1.0,
                        Targets::Values(values) => row[..width]
                            .copy_from_slice(&values[previous * width..(previous + 1) * width]),
                    }
                }
                if self.conditioning.feeds_steps() {
                    row[width..].copy_from_slice(&vectors[b * f..(b + 1) * f]);
                }
            }
        }
        x
    }

    /// The initial state from the bridge, and the bridge's output `s = tanh(W_b·v + b_b)`
    /// (B, L·H·S) that backward needs; `None` without a bridge.
    fn initial_state(&self, vectors: &[f32], batch: usize) -> Option<(RnnState, Vec<f32>)> {
        let bridge = self.bridge.as_ref()?;
        let mut s = vec![0.0f32; batch * bridge.output];
        bridge.forward(self.rnn.config().par, vectors, batch, &mut s);
        s.iter_mut().for_each(|v| *v = v.tanh());
        let state = bridge_to_state(&s, &self.rnn, batch);
        Some((state, s))
    }
}

/// L·H·S: the bridge's output width (S = 2 for an LSTM's h and c).
fn state_width(rnn: &Rnn) -> usize {
    let cfg = rnn.config();
    let s = if cfg.cell == CellKind::Lstm { 2 } else { 1 };
    cfg.num_layers * cfg.hidden_size * s
}

/// Bridge output (B, [h of layer 0..L | c of layer 0..L]) → state (L, B, H).
fn bridge_to_state(s: &[f32], rnn: &Rnn, batch: usize) -> RnnState {
    let cfg = rnn.config();
    let (layers, h) = (cfg.num_layers, cfg.hidden_size);
    let mut state = RnnState::zeros(cfg, batch);
    let width = state_width(rnn);
    for l in 0..layers {
        for b in 0..batch {
            let from = b * width + l * h;
            let to = (l * batch + b) * h;
            state.h[to..to + h].copy_from_slice(&s[from..from + h]);
            if let Some(c) = state.c.as_mut() {
                let from = from + layers * h;
                c[to..to + h].copy_from_slice(&s[from..from + h]);
            }
        }
    }
    state
}

/// The inverse layout of [`bridge_to_state`]: state (L, B, H) → (B, L·H·S).
fn state_to_bridge(state: &RnnState, rnn: &Rnn, batch: usize) -> Vec<f32> {
    let cfg = rnn.config();
    let (layers, h) = (cfg.num_layers, cfg.hidden_size);
    let width = state_width(rnn);
    let mut s = vec![0.0f32; batch * width];
    for l in 0..layers {
        for b in 0..batch {
            let to = b * width + l * h;
            let from = (l * batch + b) * h;
            s[to..to + h].copy_from_slice(&state.h[from..from + h]);
            if let Some(c) = &state.c {
                let to = to + layers * h;
                s[to..to + h].copy_from_slice(&c[from..from + h]);
            }
        }
    }
    s
}

fn seq_batch<'a>(
    x: &'a [f32],
    steps: usize,
    batch: usize,
    lengths: Option<&'a [usize]>,
) -> SeqBatch<'a> {
    let input = SeqBatch::new(x, steps, batch);
    match lengths {
        Some(l) => input.with_lengths(l),
        None => input,
    }
}
