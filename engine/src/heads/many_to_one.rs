//! Many-to-one: a (ragged) batch of sequences in, one prediction per sequence out.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    HeadError, HeadGrads, Objective, Targets, apply_step, check_classes, check_lengths,
    check_targets, head_loss, head_outputs, named_params, row_lengths,
};
use crate::model::dense::{Dense, DenseGrads};
use crate::optim::Optimizer;
use crate::rnn::{Mode, Rnn, RnnState, SeqBatch};

/// Which features of the network summarise a sequence for a [`ManyToOne`] head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Readout {
    /// The last layer's output at each row's last real step, `output[len_b − 1, b, :]` (D·H):
    /// PyTorch's `output[lengths - 1, range(B)]` on an unpacked sequence. For a bidirectional
    /// network its reverse half has seen only the last input.
    #[default]
    LastStep,
    /// The last layer's final state of every direction, `[h_n forward | h_n reverse]` (D·H):
    /// the usual bidirectional summary (`torch.cat([h_n[-2], h_n[-1]], 1)`; Keras' `Bidirectional`
    /// without `return_sequences`). Equal to [`Readout::LastStep`] for a unidirectional network.
    FinalState,
}

/// A recurrent network whose summary of each sequence ([`Readout`]) feeds a dense head:
/// sequence classification (softmax cross-entropy) or regression (MSE), loss averaged over the
/// batch rows.
///
/// ```
/// use recur_engine::heads::{ManyToOne, Objective, Readout, Targets};
/// use recur_engine::kernels::CellKind;
/// use recur_engine::optim::{Optimizer, OptimizerConfig};
/// use recur_engine::rnn::{RnnConfig, SeqBatch};
///
/// // Is the sum of a ragged sequence of ±1 positive? T = 6, B = 4, I = 1.
/// let rnn = RnnConfig::new(CellKind::Gru, 1, 8).init(1)?;
/// let mut model = ManyToOne::new(rnn, Objective::Classify { classes: 2 }, Readout::LastStep, 2)?;
/// let x: Vec<f32> = (0..24).map(|k| if (k * 7) % 5 < 2 { 1.0 } else { -1.0 }).collect(); // (T, B, I)
/// let lengths = [6, 3, 5, 1];
/// let labels: Vec<u32> = (0..4)
///     .map(|b| u32::from((0..lengths[b]).map(|t| x[t * 4 + b]).sum::<f32>() > 0.0))
///     .collect();
/// let batch = SeqBatch::new(&x, 6, 4).with_lengths(&lengths);
///
/// let mut optimizer = Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(0.05))?;
/// let mut grads = model.zero_grads();
/// let first = model.loss(batch, Targets::Classes(&labels))?;
/// for step in 0..30 {
///     grads.zero();
///     model.loss_and_grads(batch, Targets::Classes(&labels), step, &mut grads)?;
///     model.apply(&mut optimizer, &grads)?;
/// }
/// assert!(model.loss(batch, Targets::Classes(&labels))? < first);
/// let logits = model.predict(batch)?; // (B, C)
/// assert_eq!(logits.len(), 4 * 2);
/// # Ok::<(), recur_engine::heads::HeadError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ManyToOne {
    pub rnn: Rnn,
    /// (O, D·H)
    pub head: Dense,
    pub objective: Objective,
    pub readout: Readout,
}

impl ManyToOne {
    /// `rnn` with a dense head of width [`Objective::width`], initialised as PyTorch's
    /// `nn.Linear` from a `ChaCha8Rng` seeded with `seed`.
    ///
    /// # Errors
    /// [`HeadError::ZeroSize`] for 0 classes or outputs.
    pub fn new(
        rnn: Rnn,
        objective: Objective,
        readout: Readout,
        seed: u64,
    ) -> Result<Self, HeadError> {
        objective.check()?;
        let features = rnn.config().directions() * rnn.config().hidden_size;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let head = Dense::init(features, objective.width(), &mut rng);
        Ok(ManyToOne {
            rnn,
            head,
            objective,
            readout,
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

    /// The head's outputs (logits or values) for each sequence. (B, O)
    ///
    /// # Errors
    /// As [`crate::rnn::Rnn::forward`] for a malformed batch.
    pub fn predict(&self, input: SeqBatch<'_>) -> Result<Vec<f32>, HeadError> {
        check_lengths(input.lengths, input.steps, input.batch)?;
        let out = self.rnn.infer(input, None)?;
        let features = self.features(&out.output, &out.state, input);
        Ok(head_outputs(
            &self.head,
            self.rnn.config().par,
            &features,
            input.batch,
        ))
    }

    /// The mean loss over the batch, without gradients (no dropout).
    ///
    /// `targets`: (B) class ids, or (B, O) values.
    ///
    /// # Errors
    /// [`HeadError`] for a malformed batch, targets of the wrong kind or length, or a class id
    /// outside `0..C`.
    pub fn loss(&self, input: SeqBatch<'_>, targets: Targets<'_>) -> Result<f64, HeadError> {
        self.check(input, targets)?;
        let out = self.rnn.infer(input, None)?;
        let features = self.features(&out.output, &out.state, input);
        let cfg = self.rnn.config();
        Ok(head_loss(
            &self.head,
            self.objective,
            cfg.isa,
            cfg.par,
            &features,
            input.batch,
            targets,
            None,
        ))
    }

    /// [`ManyToOne::loss`] with backpropagation: accumulates (`+=`) every parameter's gradient
    /// into `grads`. Dropout (if configured) draws its masks from `dropout_seed`.
    ///
    /// # Errors
    /// As [`ManyToOne::loss`], and [`HeadError::Rnn`] if `grads` does not match the network.
    pub fn loss_and_grads(
        &self,
        input: SeqBatch<'_>,
        targets: Targets<'_>,
        dropout_seed: u64,
        grads: &mut HeadGrads,
    ) -> Result<f64, HeadError> {
        self.check(input, targets)?;
        let cfg = self.rnn.config();
        let (out, cache) = self
            .rnn
            .forward(input, None, Mode::Training { dropout_seed })?;
        let features = self.features(&out.output, &out.state, input);
        let (batch, width) = (input.batch, self.head.input);
        let mut d_features = vec![0.0f32; batch * width]; // (B, D·H)
        let loss = head_loss(
            &self.head,
            self.objective,
            cfg.isa,
            cfg.par,
            &features,
            batch,
            targets,
            Some((&mut grads.d_head, &mut d_features)),
        );
        let mut d_output = vec![0.0f32; out.output.len()]; // (T, B, D·H)
        let mut d_final = None;
        match self.readout {
            Readout::LastStep => {
                let lengths = row_lengths(input.lengths, input.steps, batch);
                for (b, &len) in lengths.iter().enumerate() {
                    let at = ((len - 1) * batch + b) * width;
                    d_output[at..at + width]
                        .copy_from_slice(&d_features[b * width..(b + 1) * width]);
                }
            }
            Readout::FinalState => {
                let mut state = RnnState::zeros(cfg, batch);
                let (h, d) = (cfg.hidden_size, cfg.directions());
                for dir in 0..d {
                    let index = (cfg.num_layers - 1) * d + dir;
                    for b in 0..batch {
                        let at = (index * batch + b) * h;
                        state.h[at..at + h].copy_from_slice(
                            &d_features[b * width + dir * h..b * width + (dir + 1) * h],
                        );
                    }
                }
                d_final = Some(state);
            }
        }
        self.rnn
            .backward(cache, &d_output, d_final.as_ref(), &mut grads.d_rnn)?;
        Ok(loss)
    }

    /// One optimiser step on every parameter from `grads`.
    ///
    /// # Errors
    /// [`HeadError::Optim`] if the optimiser rejects the step (gradient lengths, its state).
    pub fn apply(&mut self, optimizer: &mut Optimizer, grads: &HeadGrads) -> Result<(), HeadError> {
        apply_step(optimizer, &mut self.rnn, &mut self.head, None, grads)
    }

    fn check(&self, input: SeqBatch<'_>, targets: Targets<'_>) -> Result<(), HeadError> {
        check_lengths(input.lengths, input.steps, input.batch)?;
        let batch = input.batch;
        check_targets(self.objective, targets, batch, || {
            format!("(B={batch}, O={})", self.objective.width())
        })?;
        check_classes(self.objective, targets, 0..batch)
    }

    /// The readout of each row. (B, D·H)
    fn features(&self, output: &[f32], state: &RnnState, input: SeqBatch<'_>) -> Vec<f32> {
        let cfg = self.rnn.config();
        let (batch, width) = (input.batch, self.head.input);
        let mut features = vec![0.0f32; batch * width];
        match self.readout {
            Readout::LastStep => {
                let lengths = row_lengths(input.lengths, input.steps, batch);
                for (b, &len) in lengths.iter().enumerate() {
                    let at = ((len - 1) * batch + b) * width;
                    features[b * width..(b + 1) * width].copy_from_slice(&output[at..at + width]);
                }
            }
            Readout::FinalState => {
                let (h, d) = (cfg.hidden_size, cfg.directions());
                for dir in 0..d {
                    let index = (cfg.num_layers - 1) * d + dir;
                    for b in 0..batch {
                        let at = (index * batch + b) * h;
                        features[b * width + dir * h..b * width + (dir + 1) * h]
                            .copy_from_slice(&state.h[at..at + h]);
                    }
                }
            }
        }
        features
    }
}
