//! Input/output shapes around a recurrent network: **many-to-one** (a sequence in, one answer
//! out), **many-to-many** (an answer at every step, e.g. tagging) and **one-to-many** (a fixed
//! vector in, a sequence out), each with a classification (softmax cross-entropy) or a regression
//! (mean squared error) head.
//!
//! | shape | type | features fed to the head | loss |
//! |---|---|---|---|
//! | many-to-one | [`ManyToOne`] | the output at each row's last real step, or the final state ([`Readout`]) | mean over the B rows |
//! | many-to-many | [`ManyToMany`] | the output at every real step | mean over the Σ lengths real steps |
//! | one-to-many | [`OneToMany`] | the output at every real step, the vector setting the initial state and/or feeding each step ([`Conditioning`]) | mean over the real steps; trained with teacher forcing, generated step by step with [`crate::rnn::RnnStream`] |
//!
//! Every model is an [`Rnn`] (ragged batches through [`SeqBatch::with_lengths`]) with a
//! [`Dense`] head of PyTorch `nn.Linear` layout; classification uses the fused
//! [`recur_kernels::softmax::softmax_cross_entropy`], regression [`crate::model::loss::mse`]
//! (PyTorch's `reduction="mean"`: over every value of every real row). Padding steps contribute
//! nothing: their rows are never handed to the head, so changing padded inputs or targets leaves
//! the loss and every gradient bit-identical (tested in `engine/tests/heads.rs`).
//!
//! Parameters are named like a PyTorch module with submodules `rnn`, `head` (and `bridge` for
//! [`OneToMany`]): `rnn.weight_ih_l0`, `head.weight`, …; [`HeadGrads`] holds their gradients and
//! each model's `apply` hands both to an [`Optimizer`].
//!
//! [`Rnn`]: crate::rnn::Rnn
//! [`SeqBatch::with_lengths`]: crate::rnn::SeqBatch::with_lengths

mod many_to_many;
mod many_to_one;
mod one_to_many;

pub use many_to_many::ManyToMany;
pub use many_to_one::{ManyToOne, Readout};
pub use one_to_many::{Conditioning, Generated, OneToMany};

use recur_kernels::Par;
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy_with_isa};

use crate::model::dense::{Dense, DenseGrads};
use crate::model::loss::mse;
use crate::optim::{OptimError, Optimizer, Param};
use crate::rnn::{Rnn, RnnError, RnnGrads};

/// What a head predicts, and the loss it is trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Scores over `classes` classes, softmax cross-entropy against class ids.
    Classify {
        /// C: the head's output width; targets are ids in `0..C`.
        classes: usize,
    },
    /// `outputs` real values, mean squared error against target values.
    Regress {
        /// O: the head's output width.
        outputs: usize,
    },
}

impl Objective {
    /// The head's output width (C or O).
    pub fn width(&self) -> usize {
        match *self {
            Objective::Classify { classes } => classes,
            Objective::Regress { outputs } => outputs,
        }
    }

    fn check(&self) -> Result<(), HeadError> {
        if self.width() == 0 {
            let what = match self {
                Objective::Classify { .. } => "classes",
                Objective::Regress { .. } => "outputs",
            };
            return Err(HeadError::ZeroSize { what });
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Objective::Classify { .. } => "class ids (Targets::Classes)",
            Objective::Regress { .. } => "values (Targets::Values)",
        }
    }
}

/// The targets of a batch: class ids for [`Objective::Classify`], values for
/// [`Objective::Regress`]. Their shape depends on the model (each method's docs say which).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Targets<'a> {
    /// Class ids.
    Classes(&'a [u32]),
    /// Real values.
    Values(&'a [f32]),
}

impl Targets<'_> {
    fn len(&self) -> usize {
        match self {
            Targets::Classes(t) => t.len(),
            Targets::Values(t) => t.len(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Targets::Classes(_) => "class ids (Targets::Classes)",
            Targets::Values(_) => "values (Targets::Values)",
        }
    }
}

/// What a caller can get wrong using a head: every message says what was expected and found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    /// From the recurrent network (input shape, lengths, state).
    #[error(transparent)]
    Rnn(#[from] RnnError),
    /// From the optimiser (gradient lengths, state).
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// A size that must be at least 1.
    #[error("{what} must be at least 1, found 0")]
    ZeroSize {
        /// Which size.
        what: &'static str,
    },
    /// A buffer of the wrong length for its shape.
    #[error("{what}: expected {expected} values for shape {shape}, found {found}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The expected shape, e.g. `(T=5, B=2)`.
        shape: String,
        /// Expected number of values.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// Two sizes that must agree do not.
    #[error("{what}: expected {expected}, found {found}")]
    Mismatch {
        /// What must agree, e.g. `"rnn input_size (feedback + vector)"`.
        what: &'static str,
        /// The size required by the rest of the model.
        expected: usize,
        /// The size given.
        found: usize,
    },
    /// Class-id targets for a regression head or values for a classifier.
    #[error("targets: this head expects {expected}, found {found}")]
    TargetKind {
        /// The kind the head needs.
        expected: &'static str,
        /// The kind given.
        found: &'static str,
    },
    /// A class id outside `0..C`.
    #[error("targets[{index}]: expected a class id in 0..{classes}, found {found}")]
    Class {
        /// Position in the targets buffer.
        index: usize,
        /// C.
        classes: usize,
        /// The id given.
        found: u32,
    },
    /// A model that must stream step by step was given a bidirectional network.
    #[error("{what} needs a unidirectional network, found bidirectional = true")]
    Bidirectional {
        /// Which model.
        what: &'static str,
    },
}

/// Gradients of a model's parameters, named after them: `d_rnn` (`d_weight_ih_l0`, …), `d_head`
/// (`d_weight`, `d_bias`) and, for [`OneToMany`] with an initial-state bridge, `d_bridge`.
/// Backward passes accumulate (`+=`); [`HeadGrads::zero`] clears them between steps.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadGrads {
    pub d_rnn: RnnGrads,
    pub d_head: DenseGrads,
    pub d_bridge: Option<DenseGrads>,
}

impl HeadGrads {
    /// Sets every gradient to 0.
    pub fn zero(&mut self) {
        self.d_rnn.zero();
        self.d_head.zero();
        if let Some(b) = self.d_bridge.as_mut() {
            b.zero();
        }
    }

    /// `(name, gradient)` of every parameter, in the order of the models' `named_params`.
    pub fn named(&self) -> Vec<(String, &[f32])> {
        let mut out: Vec<(String, &[f32])> = self
            .d_rnn
            .named("d_")
            .into_iter()
            .map(|(n, g)| (format!("rnn.{}", &n[2..]), g))
            .collect();
        out.push(("head.weight".into(), &self.d_head.d_weight));
        out.push(("head.bias".into(), &self.d_head.d_bias));
        if let Some(b) = &self.d_bridge {
            out.push(("bridge.weight".into(), &b.d_weight));
            out.push(("bridge.bias".into(), &b.d_bias));
        }
        out
    }
}

/// `(name, values)` of an RNN, its head and an optional bridge: `rnn.weight_ih_l0`, …,
/// `head.weight`, `head.bias`, `bridge.weight`, `bridge.bias`.
fn named_params<'a>(
    rnn: &'a Rnn,
    head: &'a Dense,
    bridge: Option<&'a Dense>,
) -> Vec<(String, &'a [f32])> {
    let mut out: Vec<(String, &[f32])> = rnn
        .params()
        .named("")
        .into_iter()
        .map(|(n, p)| (format!("rnn.{n}"), p))
        .collect();
    out.push(("head.weight".into(), &head.weight));
    out.push(("head.bias".into(), &head.bias));
    if let Some(b) = bridge {
        out.push(("bridge.weight".into(), &b.weight));
        out.push(("bridge.bias".into(), &b.bias));
    }
    out
}

/// One optimiser step over the RNN, the head and an optional bridge, named as [`named_params`].
fn apply_step(
    optimizer: &mut Optimizer,
    rnn: &mut Rnn,
    head: &mut Dense,
    bridge: Option<&mut Dense>,
    grads: &HeadGrads,
) -> Result<(), HeadError> {
    let rnn_names: Vec<String> = rnn
        .params()
        .named("")
        .into_iter()
        .map(|(n, _)| format!("rnn.{n}"))
        .collect();
    let mut slots: Vec<(&mut [f32], &[f32])> = Vec::new();
    for (p, g) in rnn
        .params_mut()
        .directions
        .iter_mut()
        .zip(&grads.d_rnn.directions)
    {
        slots.push((&mut p.weight_ih, &g.weight_ih));
        slots.push((&mut p.weight_hh, &g.weight_hh));
        slots.push((&mut p.bias_ih, &g.bias_ih));
        slots.push((&mut p.bias_hh, &g.bias_hh));
    }
    let mut params: Vec<Param<'_>> = rnn_names
        .iter()
        .zip(slots)
        .map(|(name, (value, grad))| Param::new(name, value, grad))
        .collect();
    params.push(Param::new(
        "head.weight",
        &mut head.weight,
        &grads.d_head.d_weight,
    ));
    params
        .push(Param::new("head.bias", &mut head.bias, &grads.d_head.d_bias).without_weight_decay());
    match (bridge, &grads.d_bridge) {
        (Some(b), Some(g)) => {
            params.push(Param::new("bridge.weight", &mut b.weight, &g.d_weight));
            params.push(Param::new("bridge.bias", &mut b.bias, &g.d_bias).without_weight_decay());
        }
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(HeadError::Mismatch {
                what: "bridge gradients (1 if the model has a bridge, else 0)",
                expected: usize::from(grads.d_bridge.is_none()),
                found: usize::from(grads.d_bridge.is_some()),
            });
        }
    }
    optimizer.step(&mut params)?;
    Ok(())
}

/// Checks that `targets` suit `objective` and hold `rows` targets (`rows·O` values).
fn check_targets(
    objective: Objective,
    targets: Targets<'_>,
    rows: usize,
    shape: impl Fn() -> String,
) -> Result<(), HeadError> {
    let expected = match (objective, targets) {
        (Objective::Classify { .. }, Targets::Classes(_)) => rows,
        (Objective::Regress { outputs }, Targets::Values(_)) => rows * outputs,
        _ => {
            return Err(HeadError::TargetKind {
                expected: objective.name(),
                found: targets.kind(),
            });
        }
    };
    if targets.len() != expected {
        return Err(HeadError::Shape {
            what: "targets",
            shape: shape(),
            expected,
            found: targets.len(),
        });
    }
    Ok(())
}

/// Checks the class ids of the rows the loss will read (padding is never read, so never checked).
fn check_classes(
    objective: Objective,
    targets: Targets<'_>,
    rows: impl Iterator<Item = usize>,
) -> Result<(), HeadError> {
    if let (Objective::Classify { classes }, Targets::Classes(ids)) = (objective, targets) {
        for index in rows {
            if ids[index] as usize >= classes {
                return Err(HeadError::Class {
                    index,
                    classes,
                    found: ids[index],
                });
            }
        }
    }
    Ok(())
}

/// The head's loss over `rows` feature rows, mean over rows (cross-entropy) or over every value
/// (MSE), with the targets already gathered to the same rows. With `grads`, accumulates the head's
/// parameter gradients and writes `∂L/∂features` (rows, F) into `d_features`.
///
/// `features` (rows, F), `targets` (rows) ids or (rows, O) values, both checked by the caller.
fn head_loss(
    head: &Dense,
    objective: Objective,
    isa: recur_kernels::Isa,
    par: Par,
    features: &[f32],
    rows: usize,
    targets: Targets<'_>,
    grads: Option<(&mut DenseGrads, &mut [f32])>,
) -> f64 {
    let width = objective.width();
    let mut out = vec![0.0f32; rows * width]; // (rows, O)
    head.forward(par, features, rows, &mut out);
    let mut d_out = vec![0.0f32; if grads.is_some() { rows * width } else { 0 }];
    let loss = match targets {
        Targets::Classes(ids) => {
            let mut losses = vec![0.0f32; rows];
            let grad = grads.is_some().then(|| LogitsGrad {
                d_logits: &mut d_out,
                scale: 1.0 / rows as f32,
            });
            softmax_cross_entropy_with_isa(isa, &out, width, ids, &mut losses, grad);
            losses.iter().map(|&l| l as f64).sum::<f64>() / rows as f64
        }
        Targets::Values(values) => mse(&out, values, grads.is_some().then_some(&mut d_out[..])),
    };
    if let Some((d_head, d_features)) = grads {
        head.backward(par, features, &d_out, rows, d_head, Some(d_features));
    }
    loss
}

/// The head's outputs (rows, O) for `features` (rows, F).
fn head_outputs(head: &Dense, par: Par, features: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * head.output];
    head.forward(par, features, rows, &mut out);
    out
}

/// The lengths of a batch, `T` for every row when `None`, after the RNN has validated them.
fn row_lengths(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Vec<usize> {
    lengths.map_or_else(|| vec![steps; batch], <[usize]>::to_vec)
}

/// Validates lengths the way the RNN will (so the head can index before running it).
fn check_lengths(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Result<(), HeadError> {
    if steps == 0 || batch == 0 {
        return Err(RnnError::EmptyBatch { steps, batch }.into());
    }
    if let Some(lengths) = lengths {
        if lengths.len() != batch {
            return Err(HeadError::Shape {
                what: "lengths",
                shape: format!("(B={batch})"),
                expected: batch,
                found: lengths.len(),
            });
        }
        if let Some((row, &found)) = lengths
            .iter()
            .enumerate()
            .find(|&(_, &l)| l == 0 || l > steps)
        {
            return Err(RnnError::Length { row, steps, found }.into());
        }
    }
    Ok(())
}
