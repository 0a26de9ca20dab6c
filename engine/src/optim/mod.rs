//! Optimisers (SGD with momentum or Nesterov, RMSprop, Adam/AdamW), weight decay, learning-rate
//! schedules and gradient clipping, over flat `f32` parameter and gradient slices.
//!
//! A model hands its parameters over as a list of [`Param`]s — a name, the values and their
//! gradient, all flat `&[f32]` — and [`Optimizer::step`] updates them in place. Per-parameter
//! state (momentum, running means) is keyed by name in an [`OptimizerState`] that serialises
//! with serde (and exposes its buffers by name for a safetensors checkpoint), so a resumed run
//! continues bit-identically. Every update is a plain element-wise loop in a fixed order: the
//! same inputs give the same bits.
//!
//! Each optimiser can reproduce either library's arithmetic ([`Convention`]); the presets carry
//! each library's defaults:
//!
//! | preset | learning rate | other defaults | ε placement |
//! |---|---|---|---|
//! | [`OptimizerConfig::pytorch_sgd`] | 1e-3 | momentum 0, dampening 0, nesterov off | — |
//! | [`OptimizerConfig::keras_sgd`] | 0.01 | momentum 0, nesterov off | — |
//! | [`OptimizerConfig::pytorch_rmsprop`] | 0.01 | α (ρ) 0.99, ε 1e-8, momentum 0, uncentred | `g/(√v + ε)` |
//! | [`OptimizerConfig::keras_rmsprop`] | 0.001 | ρ 0.9, ε 1e-7, momentum 0, uncentred | `g/√(v + ε)` |
//! | [`OptimizerConfig::pytorch_adam`] | 0.001 | β (0.9, 0.999), ε 1e-8 | after bias correction |
//! | [`OptimizerConfig::keras_adam`] | 0.001 | β (0.9, 0.999), ε 1e-7 | before bias correction (ε̂) |
//! | [`OptimizerConfig::pytorch_adamw`] | 0.001 | as Adam, decoupled weight decay 0.01 | after |
//! | [`OptimizerConfig::keras_adamw`] | 0.001 | as Adam, decoupled weight decay 0.004 | before |
//!
//! Sources: the PyTorch docs of `torch.optim.SGD`, `RMSprop`, `Adam`, `AdamW` (each page's
//! "Algorithm" box and signature), and Keras 3's `keras/src/optimizers/{sgd,rmsprop,adam,adamw}.py`
//! and `base_optimizer.py`. The formulas are in [`sgd`], [`rmsprop`] and [`adam`].
//!
//! Weight decay ([`WeightDecay`]): PyTorch's `weight_decay` argument of SGD, RMSprop and Adam is
//! an L2 penalty added to the gradient (`g ← g + λθ`); `AdamW` and every Keras 3 optimiser's
//! `weight_decay` are decoupled (`θ ← θ − lr·λ·θ` before the update; Keras
//! `_apply_weight_decay`, Loshchilov & Hutter 2019). In Keras, gradient clipping comes first,
//! then weight decay, then the update; here clipping ([`GradClip`]) is applied by the caller
//! before [`Optimizer::step`], which matches.

pub mod adam;
pub mod clip;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use recur_kernels::Par;
use serde::{Deserialize, Serialize};

pub use clip::{GradClip, clip_by_global_norm, clip_by_value, global_norm};
pub use schedule::LrSchedule;
pub use sgd::SgdMomentum;

/// Whose update arithmetic to reproduce where PyTorch and Keras differ (ε placement in RMSprop
/// and Adam, where the learning rate enters momentum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    PyTorch,
    Keras,
}

/// Weight decay, applied inside the step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "rate", rename_all = "snake_case")]
pub enum WeightDecay {
    #[default]
    None,
    /// L2 penalty: `g ← g + λ·θ` before the update (PyTorch's `weight_decay` of SGD, RMSprop,
    /// Adam; a Keras `kernel_regularizer=l2(λ/2)`).
    L2(f32),
    /// Decoupled: `θ ← θ·(1 − lr·λ)` before the update (PyTorch `AdamW`, Keras 3's
    /// `weight_decay` on every optimiser).
    Decoupled(f32),
}

/// The update rule and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Algorithm {
    Sgd {
        momentum: SgdMomentum,
    },
    RmsProp {
        /// decay of the running mean of g² (Keras `rho`, PyTorch `alpha`)
        rho: f32,
        epsilon: f32,
        /// 0 for none
        momentum: f32,
        centered: bool,
    },
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
}

/// Everything that defines an optimiser: serialisable into a run's JSON config.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub algorithm: Algorithm,
    /// lr₀, before the schedule
    pub learning_rate: f32,
    pub weight_decay: WeightDecay,
    pub schedule: LrSchedule,
    pub convention: Convention,
}

impl OptimizerConfig {
    fn new(algorithm: Algorithm, learning_rate: f32, convention: Convention) -> Self {
        OptimizerConfig {
            algorithm,
            learning_rate,
            weight_decay: WeightDecay::None,
            schedule: LrSchedule::Constant,
            convention,
        }
    }

    /// `torch.optim.SGD` defaults: lr 1e-3, no momentum.
    pub fn pytorch_sgd() -> Self {
        let algorithm = Algorithm::Sgd {
            momentum: SgdMomentum::None,
        };
        Self::new(algorithm, 1e-3, Convention::PyTorch)
    }

    /// `keras.optimizers.SGD` defaults: lr 0.01, no momentum.
    pub fn keras_sgd() -> Self {
        let algorithm = Algorithm::Sgd {
            momentum: SgdMomentum::None,
        };
        Self::new(algorithm, 0.01, Convention::Keras)
    }

    /// `torch.optim.RMSprop` defaults: lr 0.01, α 0.99, ε 1e-8 outside the root.
    pub fn pytorch_rmsprop() -> Self {
        let algorithm = Algorithm::RmsProp {
            rho: 0.99,
            epsilon: 1e-8,
            momentum: 0.0,
            centered: false,
        };
        Self::new(algorithm, 0.01, Convention::PyTorch)
    }

    /// `keras.optimizers.RMSprop` defaults: lr 0.001, ρ 0.9, ε 1e-7 inside the root.
    pub fn keras_rmsprop() -> Self {
        let algorithm = Algorithm::RmsProp {
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.0,
            centered: false,
        };
        Self::new(algorithm, 1e-3, Convention::Keras)
    }

    /// `torch.optim.Adam` defaults: lr 0.001, β (0.9, 0.999), ε 1e-8.
    pub fn pytorch_adam() -> Self {
        let algorithm = Algorithm::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        };
        Self::new(algorithm, 1e-3, Convention::PyTorch)
    }

    /// `keras.optimizers.Adam` defaults: lr 0.001, β (0.9, 0.999), ε̂ 1e-7.
    pub fn keras_adam() -> Self {
        let algorithm = Algorithm::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        };
        Self::new(algorithm, 1e-3, Convention::Keras)
    }

    /// `torch.optim.AdamW` defaults: Adam's, plus decoupled weight decay 0.01.
    pub fn pytorch_adamw() -> Self {
        Self::pytorch_adam().with_weight_decay(WeightDecay::Decoupled(0.01))
    }

    /// `keras.optimizers.AdamW` defaults: Adam's, plus decoupled weight decay 0.004.
    pub fn keras_adamw() -> Self {
        Self::keras_adam().with_weight_decay(WeightDecay::Decoupled(0.004))
    }

    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    pub fn with_weight_decay(mut self, weight_decay: WeightDecay) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    pub fn with_schedule(mut self, schedule: LrSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Checks every hyper-parameter against the ranges both libraries accept.
    pub fn validate(&self) -> Result<(), OptimError> {
        fn check(
            ok: bool,
            name: &'static str,
            expected: &'static str,
            found: f32,
        ) -> Result<(), OptimError> {
            if ok {
                Ok(())
            } else {
                Err(OptimError::InvalidHyperparameter {
                    name,
                    expected,
                    found: f64::from(found),
                })
            }
        }
        let finite_nonneg = |x: f32| x.is_finite() && x >= 0.0;
        let unit = |x: f32| (0.0..1.0).contains(&x);
        let lr = self.learning_rate;
        check(finite_nonneg(lr), "learning rate", "a finite value ≥ 0", lr)?;
        match self.weight_decay {
            WeightDecay::None => {}
            WeightDecay::L2(rate) | WeightDecay::Decoupled(rate) => {
                check(
                    finite_nonneg(rate),
                    "weight decay",
                    "a finite value ≥ 0",
                    rate,
                )?;
            }
        }
        self.schedule
            .validate()
            .map_err(
                |(name, expected, found)| OptimError::InvalidHyperparameter {
                    name,
                    expected,
                    found,
                },
            )?;
        match self.algorithm {
            Algorithm::Sgd { momentum } => match momentum {
                SgdMomentum::None => {}
                SgdMomentum::Classical {
                    momentum,
                    dampening,
                } => {
                    check(
                        finite_nonneg(momentum),
                        "momentum",
                        "a finite value ≥ 0",
                        momentum,
                    )?;
                    check(
                        (0.0..=1.0).contains(&dampening),
                        "dampening",
                        "a value in [0, 1]",
                        dampening,
                    )?;
                    check(
                        self.convention == Convention::PyTorch || dampening == 0.0,
                        "dampening",
                        "0 under the Keras convention (Keras SGD has no dampening)",
                        dampening,
                    )?;
                }
                SgdMomentum::Nesterov { momentum } => {
                    let ok = momentum.is_finite() && momentum > 0.0;
                    check(ok, "Nesterov momentum", "a finite value > 0", momentum)?;
                }
            },
            Algorithm::RmsProp {
                rho,
                epsilon,
                momentum,
                ..
            } => {
                check(unit(rho), "rho", "a value in [0, 1)", rho)?;
                check(
                    finite_nonneg(epsilon),
                    "epsilon",
                    "a finite value ≥ 0",
                    epsilon,
                )?;
                check(
                    finite_nonneg(momentum),
                    "momentum",
                    "a finite value ≥ 0",
                    momentum,
                )?;
            }
            Algorithm::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                check(unit(beta1), "beta1", "a value in [0, 1)", beta1)?;
                check(unit(beta2), "beta2", "a value in [0, 1)", beta2)?;
                check(
                    finite_nonneg(epsilon),
                    "epsilon",
                    "a finite value ≥ 0",
                    epsilon,
                )?;
            }
        }
        Ok(())
    }
}

/// One named parameter tensor and its gradient, flat, of equal length.
#[derive(Debug)]
pub struct Param<'a> {
    /// Stable across steps and runs (e.g. PyTorch's `state_dict` name `weight_ih_l0`): the key
    /// of this tensor's optimiser state.
    pub name: &'a str,
    pub value: &'a mut [f32],
    pub grad: &'a [f32],
    /// Whether the configured [`WeightDecay`] applies to this tensor (Keras
    /// `exclude_from_weight_decay`, PyTorch parameter groups with `weight_decay=0`; biases are
    /// often excluded). `true` from [`Param::new`].
    pub weight_decay: bool,
}

impl<'a> Param<'a> {
    pub fn new(name: &'a str, value: &'a mut [f32], grad: &'a [f32]) -> Self {
        Param {
            name,
            value,
            grad,
            weight_decay: true,
        }
    }

    /// The same parameter, exempt from weight decay.
    pub fn without_weight_decay(mut self) -> Self {
        self.weight_decay = false;
        self
    }
}

/// The optimiser state of one parameter tensor; a buffer is empty until its optimiser first
/// needs it. Names map to the libraries' as follows.
///
/// | field | SGD | RMSprop | Adam |
/// |---|---|---|---|
/// | `momentum` | PyTorch `momentum_buffer` / Keras `momentum` (velocity) | `momentum_buffer` / `momentum` | — |
/// | `mean` | — | centred: `grad_avg` / `average_gradient` | `exp_avg` / `momentum` (m) |
/// | `mean_square` | — | `square_avg` / `velocity` | `exp_avg_sq` / `velocity` (v) |
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamState {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub momentum: Vec<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean_square: Vec<f32>,
}

impl ParamState {
    /// The non-empty buffers with their field names.
    pub fn buffers(&self) -> impl Iterator<Item = (&'static str, &Vec<f32>)> {
        [
            ("momentum", &self.momentum),
            ("mean", &self.mean),
            ("mean_square", &self.mean_square),
        ]
        .into_iter()
        .filter(|(_, buffer)| !buffer.is_empty())
    }

    fn buffer_mut(&mut self, name: &str) -> Option<&mut Vec<f32>> {
        match name {
            "momentum" => Some(&mut self.momentum),
            "mean" => Some(&mut self.mean),
            "mean_square" => Some(&mut self.mean_square),
            _ => None,
        }
    }
}

/// Everything an optimiser carries between steps: the step count and per-parameter buffers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Steps taken so far (Keras `iterations`); the next step is number `steps + 1` for Adam's
    /// bias correction and uses the schedule's rate for `steps`.
    pub steps: u64,
    /// Keyed by parameter name, in name order (a `BTreeMap`: deterministic serialisation).
    pub params: BTreeMap<String, ParamState>,
}

impl OptimizerState {
    /// Every buffer as `("{buffer}.{param}", values)`, e.g. `("mean.weight_ih_l0", …)`: names
    /// for the tensors of a safetensors checkpoint.
    pub fn named_buffers(&self) -> Vec<(String, &[f32])> {
        let mut named = Vec::new();
        for (param, state) in &self.params {
            for (buffer, values) in state.buffers() {
                named.push((format!("{buffer}.{param}"), &values[..]));
            }
        }
        named
    }

    /// Rebuilds a state from [`OptimizerState::named_buffers`] output and the step count.
    pub fn from_named_buffers<'a>(
        steps: u64,
        buffers: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    ) -> Result<Self, OptimError> {
        let mut state = OptimizerState {
            steps,
            params: BTreeMap::new(),
        };
        for (name, values) in buffers {
            let unknown = || OptimError::UnknownBuffer {
                name: name.to_string(),
            };
            let (buffer, param) = name.split_once('.').ok_or_else(unknown)?;
            let entry = state.params.entry(param.to_string()).or_default();
            let slot = entry.buffer_mut(buffer).ok_or_else(unknown)?;
            *slot = values.to_vec();
        }
        Ok(state)
    }
}

/// What can go wrong configuring or stepping an optimiser.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptimError {
    #[error("invalid {name}: expected {expected}, found {found}")]
    InvalidHyperparameter {
        name: &'static str,
        expected: &'static str,
        found: f64,
    },
    #[error("invalid gradient clipping limit: expected a finite value > 0, found {found}")]
    InvalidClip { found: f32 },
    #[error(
        "parameter {name:?}: its gradient has {grad} values, expected {value} (one per parameter value)"
    )]
    GradientLength {
        name: String,
        value: usize,
        grad: usize,
    },
    #[error("parameter {name:?} is handed to the optimiser twice in one step")]
    DuplicateParameter { name: String },
    #[error(
        "parameter {name:?}: optimiser state `{buffer}` has {found} values, expected {expected} \
         (does the checkpoint belong to a model of another shape?)"
    )]
    StateLength {
        name: String,
        buffer: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "optimiser state buffer {name:?}: expected `momentum.`, `mean.` or `mean_square.` followed by a parameter name"
    )]
    UnknownBuffer { name: String },
}

/// An optimiser: its configuration and its state.
///
/// ```
/// use recur_engine::optim::{Optimizer, OptimizerConfig, Param};
///
/// let mut opt = Optimizer::new(OptimizerConfig::keras_rmsprop().with_learning_rate(0.1))?;
/// let mut weight = vec![10.0f32];
/// let grad = weight.clone(); // loss = w²/2
/// opt.step(&mut [Param::new("w", &mut weight, &grad)])?;
/// // Keras's own doc example: 10 − 0.1·10/√(0.1·100 + 1e-7) = 9.683772
/// assert!((weight[0] - 9.683772).abs() < 1e-6);
/// # Ok::<(), recur_engine::optim::OptimError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    config: OptimizerConfig,
    state: OptimizerState,
}

impl Optimizer {
    /// A fresh optimiser (no state yet), after validating `config`.
    pub fn new(config: OptimizerConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Optimizer {
            config,
            state: OptimizerState::default(),
        })
    }

    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    pub fn state(&self) -> &OptimizerState {
        &self.state
    }

    /// Replaces the state (resuming from a checkpoint). Buffer lengths are checked against the
    /// parameters at the next [`Optimizer::step`].
    pub fn load_state(&mut self, state: OptimizerState) {
        self.state = state;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.state.steps
    }

    /// The learning rate the next step will use (lr₀ through the schedule).
    pub fn learning_rate(&self) -> f32 {
        self.config
            .schedule
            .learning_rate(self.config.learning_rate, self.state.steps)
    }

    /// Updates every parameter in place from its gradient and counts one step, on the calling
    /// thread. Parameters not handed over keep their state untouched.
    ///
    /// Nothing is changed if any check fails: gradient lengths, duplicate names, and state
    /// buffers whose length disagrees with their parameter.
    pub fn step(&mut self, params: &mut [Param<'_>]) -> Result<(), OptimError> {
        self.step_par(params, Par::Seq)
    }

    /// [`Optimizer::step`], with the element-wise update split into chunks of
    /// [`UPDATE_CHUNK`] elements run on the current rayon pool under [`Par::Rayon`]. Each
    /// element's update reads and writes only that element, so the result is bit-identical for
    /// every `par`.
    pub fn step_par(&mut self, params: &mut [Param<'_>], par: Par) -> Result<(), OptimError> {
        self.check(params)?;
        let rule = self.rule();
        // make sure every parameter has the buffers its update needs (zeros at first)
        let mut first_step = BTreeMap::new();
        for param in params.iter() {
            let state = self.state.params.entry(param.name.to_string()).or_default();
            first_step.insert(param.name, state.momentum.is_empty());
            rule.allocate(state, param.value.len());
        }
        let mut states: BTreeMap<&str, &mut ParamState> = self
            .state
            .params
            .iter_mut()
            .map(|(name, state)| (name.as_str(), state))
            .collect();
        let mut jobs = Vec::new();
        for param in params.iter_mut() {
            let state = states.remove(param.name).expect("allocated above");
            let slices = Slices {
                value: &mut *param.value,
                grad: param.grad,
                momentum: &mut state.momentum,
                mean: &mut state.mean,
                mean_square: &mut state.mean_square,
            };
            let first = first_step[param.name];
            let decays = param.weight_decay;
            jobs.extend(
                slices
                    .chunks(UPDATE_CHUNK)
                    .map(|chunk| (first, decays, chunk)),
            );
        }
        match par {
            Par::Seq => jobs
                .into_iter()
                .for_each(|(first, decays, chunk)| rule.apply(first, decays, chunk)),
            Par::Rayon(_) => {
                let per_task = jobs.len().div_ceil(par.threads().max(1)).max(1);
                jobs.into_par_iter()
                    .with_min_len(per_task)
                    .for_each(|(first, decays, chunk)| rule.apply(first, decays, chunk));
            }
        }
        self.state.steps += 1;
        Ok(())
    }

    fn check(&self, params: &[Param<'_>]) -> Result<(), OptimError> {
        let mut seen = BTreeSet::new();
        for param in params {
            if param.grad.len() != param.value.len() {
                return Err(OptimError::GradientLength {
                    name: param.name.to_string(),
                    value: param.value.len(),
                    grad: param.grad.len(),
                });
            }
            if !seen.insert(param.name) {
                return Err(OptimError::DuplicateParameter {
                    name: param.name.to_string(),
                });
            }
            if let Some(state) = self.state.params.get(param.name) {
                for (buffer, values) in state.buffers() {
                    if values.len() != param.value.len() {
                        return Err(OptimError::StateLength {
                            name: param.name.to_string(),
                            buffer,
                            expected: param.value.len(),
                            found: values.len(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The update of the coming step with its scalars resolved (rate, bias corrections).
    fn rule(&self) -> Rule {
        let config = &self.config;
        let lr = self.learning_rate();
        let decay = Decay::new(config.weight_decay, lr);
        let convention = config.convention;
        match config.algorithm {
            Algorithm::Sgd { momentum } => Rule::Sgd {
                momentum,
                convention,
                lr,
                decay,
            },
            Algorithm::RmsProp {
                rho,
                epsilon,
                momentum,
                centered,
            } => Rule::RmsProp(
                rmsprop::RmsProp {
                    rho,
                    epsilon,
                    momentum,
                    centered,
                    convention,
                    lr,
                },
                decay,
            ),
            Algorithm::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let t = self.state.steps + 1;
                let adam = adam::Adam::at_step(beta1, beta2, epsilon, convention, lr, t);
                Rule::Adam(adam, decay)
            }
        }
    }
}

/// Elements per task of a parallel update: 16 Ki f32 = 64 KiB per buffer, so a task's five
/// streams stay within L2. A constant, so the split never depends on the thread count (and each
/// element's update is independent anyway).
pub const UPDATE_CHUNK: usize = 16 * 1024;

/// One step's update with everything but the data resolved.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Sgd {
        momentum: SgdMomentum,
        convention: Convention,
        lr: f32,
        decay: Decay,
    },
    RmsProp(rmsprop::RmsProp, Decay),
    Adam(adam::Adam, Decay),
}

impl Rule {
    /// Gives `state` zero-filled buffers of `len` for everything this rule reads.
    fn allocate(&self, state: &mut ParamState, len: usize) {
        let zeros = |buffer: &mut Vec<f32>| {
            if buffer.is_empty() {
                *buffer = vec![0.0; len];
            }
        };
        match self {
            Rule::Sgd { momentum, .. } => {
                if *momentum != SgdMomentum::None {
                    zeros(&mut state.momentum);
                }
            }
            Rule::RmsProp(p, _) => {
                zeros(&mut state.mean_square);
                if p.centered {
                    zeros(&mut state.mean);
                }
                if p.momentum > 0.0 {
                    zeros(&mut state.momentum);
                }
            }
            Rule::Adam(..) => {
                zeros(&mut state.mean);
                zeros(&mut state.mean_square);
            }
        }
    }

    /// Updates one chunk; `decays`: whether weight decay applies to this tensor.
    fn apply(&self, first_step: bool, decays: bool, chunk: Slices<'_>) {
        let keep = |decay: Decay| if decays { decay } else { Decay::NONE };
        match *self {
            Rule::Sgd {
                momentum,
                convention,
                lr,
                decay,
            } => sgd::sgd_update(momentum, convention, lr, keep(decay), first_step, chunk),
            Rule::RmsProp(p, decay) => rmsprop::rmsprop_update(p, keep(decay), chunk),
            Rule::Adam(p, decay) => adam::adam_update(p, keep(decay), chunk),
        }
    }
}

/// Matching pieces of one parameter's value, gradient and state buffers; a buffer the rule does
/// not use is empty.
#[derive(Debug)]
pub(crate) struct Slices<'a> {
    pub value: &'a mut [f32],
    pub grad: &'a [f32],
    pub momentum: &'a mut [f32],
    pub mean: &'a mut [f32],
    pub mean_square: &'a mut [f32],
}

impl<'a> Slices<'a> {
    /// Consecutive pieces of at most `size` elements.
    fn chunks(mut self, size: usize) -> impl Iterator<Item = Slices<'a>> {
        std::iter::from_fn(move || {
            if self.value.is_empty() {
                return None;
            }
            let mid = size.min(self.value.len());
            let (head, tail) = self.split_at(mid);
            self = tail;
            Some(head)
        })
    }

    fn split_at(&mut self, mid: usize) -> (Slices<'a>, Slices<'a>) {
        fn split<'s>(buffer: &mut &'s mut [f32], mid: usize) -> (&'s mut [f32], &'s mut [f32]) {
            let whole = std::mem::take(buffer);
            if whole.is_empty() {
                (&mut [], &mut [])
            } else {
                whole.split_at_mut(mid)
            }
        }
        let (value_head, value_tail) = split(&mut self.value, mid);
        let (grad_head, grad_tail) = self.grad.split_at(mid);
        let (momentum_head, momentum_tail) = split(&mut self.momentum, mid);
        let (mean_head, mean_tail) = split(&mut self.mean, mid);
        let (square_head, square_tail) = split(&mut self.mean_square, mid);
        (
            Slices {
                value: value_head,
                grad: grad_head,
                momentum: momentum_head,
                mean: mean_head,
                mean_square: square_head,
            },
            Slices {
                value: value_tail,
                grad: grad_tail,
                momentum: momentum_tail,
                mean: mean_tail,
                mean_square: square_tail,
            },
        )
    }
}

/// Weight decay as two per-step constants, so the update loops stay branch-free:
/// `g ← g + l2·θ`, then `θ ← shrink·θ`. With no decay, `l2 = 0` and `shrink = 1` leave both
/// exactly unchanged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decay {
    l2: f32,
    shrink: f32,
}

impl Decay {
    const NONE: Decay = Decay {
        l2: 0.0,
        shrink: 1.0,
    };

    fn new(decay: WeightDecay, lr: f32) -> Self {
        match decay {
            WeightDecay::None => Decay::NONE,
            WeightDecay::L2(rate) => Decay {
                l2: rate,
                shrink: 1.0,
            },
            WeightDecay::Decoupled(rate) => Decay {
                l2: 0.0,
                shrink: 1.0 - lr * rate,
            },
        }
    }

    /// Returns the gradient to use for the element `theta` and applies decoupled decay to it.
    #[inline(always)]
    pub(crate) fn apply(&self, theta: &mut f32, g: f32) -> f32 {
        let g = g + self.l2 * *theta;
        *theta *= self.shrink;
        g
    }
}

#[cfg(test)]
mod tests;
