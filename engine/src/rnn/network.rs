//! [`Rnn`]: a stacked, optionally bidirectional recurrent network — forward over ragged sequence
//! batches, BPTT, named parameters and gradients.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::CellKind;
use recur_kernels::cells::PackFor;

use super::direction::{DirectionCache, backward_direction, forward_direction};
use super::params::{RnnGrads, RnnParams};
use super::plan::Plan;
use super::{RnnConfig, RnnError};

/// A batch of sequences, time-major like PyTorch's default (`batch_first = False`).
#[derive(Clone, Copy, Debug)]
pub struct SeqBatch<'a> {
    /// (T, B, I)
    pub data: &'a [f32],
    /// T
    pub steps: usize,
    /// B
    pub batch: usize,
    /// Per-row lengths in `1..=T` (PyTorch packed-sequence semantics), or `None` for all `T`.
    /// (B)
    pub lengths: Option<&'a [usize]>,
}

impl<'a> SeqBatch<'a> {
    /// `data` (T, B, I) with every row `T` steps long.
    pub fn new(data: &'a [f32], steps: usize, batch: usize) -> Self {
        SeqBatch {
            data,
            steps,
            batch,
            lengths: None,
        }
    }

    /// Gives each row its own length: steps past it neither change that row's state nor receive
    /// gradient, its outputs there are 0, and the reverse direction starts at its own end.
    pub fn with_lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }
}

/// Forward for inference, or for training (dropout between layers, seeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No dropout.
    Inference,
    /// Dropout (if configured) with masks drawn from a `ChaCha8Rng` seeded with `dropout_seed`.
    Training {
        /// Seed of the dropout masks.
        dropout_seed: u64,
    },
}

/// The recurrent state of every layer and direction.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnState {
    /// Rows ordered `(layer, direction)` like PyTorch's `h_n`. (L·D, B, H)
    pub h: Vec<f32>,
    /// LSTM only. (L·D, B, H)
    pub c: Option<Vec<f32>>,
}

impl RnnState {
    /// The zero state (PyTorch's default when no `h_0` is given).
    pub fn zeros(config: &RnnConfig, batch: usize) -> Self {
        let n = config.num_layers * config.directions() * batch * config.hidden_size;
        RnnState {
            h: vec![0.0; n],
            c: config.cell.has_cell_state().then(|| vec![0.0; n]),
        }
    }

    fn check(&self, config: &RnnConfig, batch: usize, what: &'static str) -> Result<(), RnnError> {
        let (l, d, h) = (config.num_layers, config.directions(), config.hidden_size);
        let shape = format!("(L·D={}, B={batch}, H={h})", l * d);
        let expected = l * d * batch * h;
        if self.h.len() != expected {
            return Err(RnnError::Shape {
                what,
                shape,
                expected,
                found: self.h.len(),
            });
        }
        match (&self.c, config.cell.has_cell_state()) {
            (Some(c), true) if c.len() != expected => Err(RnnError::Shape {
                what,
                shape,
                expected,
                found: c.len(),
            }),
            (None, true) => Err(RnnError::CellState {
                what,
                cell: config.cell.name(),
                expected: "needs",
                found: "none",
            }),
            (Some(_), false) => Err(RnnError::CellState {
                what,
                cell: config.cell.name(),
                expected: "has no",
                found: "one",
            }),
            _ => Ok(()),
        }
    }
}

/// The result of [`Rnn::forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RnnForward {
    /// The last layer's output, `[forward, reverse]` along the last axis; 0 past each row's
    /// length. (T, B, D·H)
    pub output: Vec<f32>,
    /// The state at each row's last valid step. (L·D, B, H)
    pub state: RnnState,
}

/// What [`Rnn::forward`] keeps for [`Rnn::backward`].
///
/// Per layer and direction, per (time step, batch row): LSTM keeps the gates `i,f,g,o` (4H
/// floats), `c` and `h` (2H) = 6H floats; GRU the gates `r,z,n`, `u_n` and `h` = 5H; RNN the
/// (unused) projection and `h` = 2H; plus each layer's input (I_k, and again reversed when
/// bidirectional).
#[derive(Debug)]
pub struct RnnCache {
    plan: Plan,
    layers: Vec<LayerCache>,
}

#[derive(Debug)]
struct LayerCache {
    /// (T·B, I_k): the layer's input, internal layout.
    input: Vec<f32>,
    /// (T·B, I_k): the same reversed within each row's length (bidirectional only).
    input_rev: Vec<f32>,
    directions: Vec<DirectionCache>,
    /// (T·B, D·H): the dropout mask applied to this layer's output (0 or 1/(1−p)), if any.
    dropout_mask: Option<Vec<f32>>,
}

impl RnnCache {
    /// The dropout masks that were applied, one per layer except the last, each (T, B, D·H) in
    /// the caller's row order (for checking against a reference).
    pub fn dropout_masks(&self) -> Vec<Option<Vec<f32>>> {
        let width = self
            .layers
            .first()
            .map_or(0, |l| l.directions.len() * l.directions[0].packed.hidden());
        self.layers
            .iter()
            .map(|layer| {
                layer.dropout_mask.as_ref().map(|mask| {
                    let mut user = vec![0.0; mask.len()];
                    self.plan.scatter(mask, width, false, &mut user, width, 0);
                    user
                })
            })
            .collect()
    }
}

/// Gradients of [`Rnn::backward`] other than the parameters'.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnInputGrads {
    /// `∂L/∂input`. (T, B, I)
    pub d_input: Vec<f32>,
    /// `∂L/∂(initial state)`, for truncated BPTT across chunks. (L·D, B, H)
    pub d_state: RnnState,
}

/// A stacked, optionally bidirectional SimpleRNN/LSTM/GRU network (see [`RnnConfig`]).
#[derive(Clone, Debug)]
pub struct Rnn {
    config: RnnConfig,
    params: RnnParams,
}

impl Rnn {
    /// A network with the given parameters.
    pub(crate) fn from_params(config: RnnConfig, params: RnnParams) -> Self {
        Rnn { config, params }
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The parameters, PyTorch names and layout.
    pub fn params(&self) -> &RnnParams {
        &self.params
    }

    /// The parameters, mutable (an optimiser step, a checkpoint load).
    pub fn params_mut(&mut self) -> &mut RnnParams {
        &mut self.params
    }

    /// Zero gradients shaped like the parameters.
    pub fn zero_grads(&self) -> RnnGrads {
        RnnParams::zeros(&self.config)
    }

    fn input_width(&self, layer: usize) -> usize {
        if layer == 0 {
            self.config.input_size
        } else {
            self.config.directions() * self.config.hidden_size
        }
    }

    /// Runs the network over `input` from `initial` (zeros if `None`).
    ///
    /// Returns the output (T, B, D·H), the final state, and the cache for [`Rnn::backward`].
    ///
    /// # Errors
    /// [`RnnError`] if `input.data` is not (T, B, I), T or B is 0, a length is outside `1..=T`,
    /// or `initial` is not (L·D, B, H) (with `c` exactly for LSTM).
    pub fn forward(
        &self,
        input: SeqBatch<'_>,
        initial: Option<&RnnState>,
        mode: Mode,
    ) -> Result<(RnnForward, RnnCache), RnnError> {
        let cfg = &self.config;
        let plan = Plan::new(input.steps, input.batch, input.lengths)?;
        let (steps, batch, h) = (input.steps, input.batch, cfg.hidden_size);
        let expected = steps * batch * cfg.input_size;
        if input.data.len() != expected {
            return Err(RnnError::Shape {
                what: "input",
                shape: format!("(T={steps}, B={batch}, I={})", cfg.input_size),
                expected,
                found: input.data.len(),
            });
        }
        if let Some(state) = initial {
            state.check(cfg, batch, "initial state")?;
        }
        let d = cfg.directions();
        let lstm = cfg.cell == CellKind::Lstm;
        let purpose = match mode {
            Mode::Inference => PackFor::Inference,
            Mode::Training { .. } => PackFor::Training,
        };
        let mut rng = match mode {
            Mode::Training { dropout_seed } if cfg.dropout > 0.0 => {
                Some(ChaCha8Rng::seed_from_u64(dropout_seed))
            }
            _ => None,
        };
        let rows_total = steps * batch;
        let mut final_state = RnnState::zeros(cfg, batch);
        let mut layer_input = vec![0.0f32; rows_total * cfg.input_size];
        plan.gather(input.data, cfg.input_size, false, &mut layer_input);
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for layer in 0..cfg.num_layers {
            let width = self.input_width(layer);
            let input_rev = if d == 2 {
                let mut rev = vec![0.0f32; rows_total * width];
                plan.internal_columns(
                    &layer_input,
                    width,
                    0,
                    width,
                    true,
                    &mut rev,
                    width,
                    0,
                    false,
                );
                rev
            } else {
                Vec::new()
            };
            let run = |dir: usize| {
                let index = layer * d + dir;
                let mut h0 = vec![0.0f32; batch * h];
                let mut c0 = vec![0.0f32; if lstm { batch * h } else { 0 }];
                if let Some(state) = initial {
                    let rows = index * batch * h..(index + 1) * batch * h;
                    plan.gather_state(&state.h[rows.clone()], h, &mut h0);
                    if let Some(c) = &state.c {
                        plan.gather_state(&c[rows], h, &mut c0);
                    }
                }
                let x = if dir == 0 { &layer_input } else { &input_rev };
                forward_direction(
                    cfg.cell,
                    h,
                    &self.params.directions[index],
                    x,
                    width,
                    &plan,
                    h0,
                    c0,
                    purpose,
                    cfg.isa,
                    cfg.par,
                )
            };
            let directions = if d == 2 {
                let (a, b) = if cfg.par.threads() > 1 {
                    rayon::join(|| run(0), || run(1))
                } else {
                    (run(0), run(1))
                };
                vec![a, b]
            } else {
                vec![run(0)]
            };
            for (dir, cache) in directions.iter().enumerate() {
                let index = layer * d + dir;
                for s in 0..batch {
                    let last = plan.row(plan.lengths[s] - 1, s) * h;
                    let user = (index * batch + plan.order[s]) * h;
                    final_state.h[user..user + h].copy_from_slice(&cache.h[last..last + h]);
                    if let Some(c) = final_state.c.as_mut() {
                        c[user..user + h].copy_from_slice(&cache.c[last..last + h]);
                    }
                }
            }
            let is_last = layer + 1 == cfg.num_layers;
            let mut dropout_mask = None;
            let next_input = if is_last {
                Vec::new()
            } else {
                let mut out = vec![0.0f32; rows_total * d * h];
                for (dir, cache) in directions.iter().enumerate() {
                    plan.internal_columns(
                        &cache.h,
                        h,
                        0,
                        h,
                        dir == 1,
                        &mut out,
                        d * h,
                        dir * h,
                        false,
                    );
                }
                if let Some(rng) = rng.as_mut() {
                    let mask = dropout_mask_internal(rng, &plan, d * h, cfg.dropout);
                    out.iter_mut().zip(&mask).for_each(|(o, m)| *o *= m);
                    dropout_mask = Some(mask);
                }
                out
            };
            layers.push(LayerCache {
                input: std::mem::replace(&mut layer_input, next_input),
                input_rev,
                directions,
                dropout_mask,
            });
        }
        let mut output = vec![0.0f32; rows_total * d * h];
        let last = layers.last().expect("num_layers ≥ 1 (validated)");
        for (dir, cache) in last.directions.iter().enumerate() {
            plan.scatter(&cache.h, h, dir == 1, &mut output, d * h, dir * h);
        }
        Ok((
            RnnForward {
                output,
                state: final_state,
            },
            RnnCache { plan, layers },
        ))
    }

    /// Forward without keeping what backward needs beyond the pass.
    ///
    /// # Errors
    /// As [`Rnn::forward`].
    pub fn infer(
        &self,
        input: SeqBatch<'_>,
        initial: Option<&RnnState>,
    ) -> Result<RnnForward, RnnError> {
        self.forward(input, initial, Mode::Inference)
            .map(|(out, _)| out)
    }

    /// Backpropagation through time over the whole sequence of `cache`.
    ///
    /// `d_output` (T, B, D·H) is `∂L/∂output` (ignored past each row's length); `d_final`
    /// (L·D, B, H) is `∂L/∂(final state)` (zeros if `None`). Parameter gradients are accumulated
    /// (`+=`) into `grads` (`d_weight_ih_l0`, …; see [`RnnParams::named`]); the input and
    /// initial-state gradients are returned.
    ///
    /// # Errors
    /// [`RnnError::Shape`]/[`RnnError::CellState`] if `d_output`, `d_final` or `grads` do not
    /// match the network and the batch of `cache`.
    pub fn backward(
        &self,
        mut cache: RnnCache,
        d_output: &[f32],
        d_final: Option<&RnnState>,
        grads: &mut RnnGrads,
    ) -> Result<RnnInputGrads, RnnError> {
        let cfg = &self.config;
        let plan = &cache.plan;
        let (steps, batch, h, d) = (plan.steps, plan.batch, cfg.hidden_size, cfg.directions());
        let rows_total = steps * batch;
        let expected = rows_total * d * h;
        if d_output.len() != expected {
            return Err(RnnError::Shape {
                what: "d_output",
                shape: format!("(T={steps}, B={batch}, D·H={})", d * h),
                expected,
                found: d_output.len(),
            });
        }
        if let Some(state) = d_final {
            state.check(cfg, batch, "d_final")?;
        }
        let zeros = RnnParams::zeros(cfg);
        for ((name, want), (_, got)) in zeros.named("d_").into_iter().zip(grads.named("d_")) {
            if want.len() != got.len() {
                return Err(RnnError::Shape {
                    what: "grads",
                    shape: name,
                    expected: want.len(),
                    found: got.len(),
                });
            }
        }
        let lstm = cfg.cell == CellKind::Lstm;
        let mut d_state = RnnState::zeros(cfg, batch);
        let mut d_out = vec![0.0f32; expected];
        plan.gather(d_output, d * h, false, &mut d_out);
        for layer in (0..cfg.num_layers).rev() {
            let width = self.input_width(layer);
            let lc = &mut cache.layers[layer];
            if let Some(mask) = &lc.dropout_mask {
                d_out.iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
            }
            let (input, input_rev) = (&lc.input, &lc.input_rev);
            let (first, second) = lc.directions.split_at_mut(1);
            let (grads_first, grads_second) =
                grads.directions[layer * d..layer * d + d].split_at_mut(1);
            let d_out_ref = &d_out;
            let run = |dir: usize,
                       cache: &mut DirectionCache,
                       g: &mut super::params::DirectionParams| {
                let index = layer * d + dir;
                let mut dy = vec![0.0f32; rows_total * h];
                plan.internal_columns(d_out_ref, d * h, dir * h, h, dir == 1, &mut dy, h, 0, false);
                let mut dh_n = vec![0.0f32; batch * h];
                let mut dc_n = vec![0.0f32; if lstm { batch * h } else { 0 }];
                if let Some(state) = d_final {
                    let rows = index * batch * h..(index + 1) * batch * h;
                    plan.gather_state(&state.h[rows.clone()], h, &mut dh_n);
                    if let Some(c) = &state.c {
                        plan.gather_state(&c[rows], h, &mut dc_n);
                    }
                }
                let x = if dir == 0 { input } else { input_rev };
                backward_direction(
                    cfg.cell,
                    h,
                    &self.params.directions[index],
                    cache,
                    x,
                    width,
                    plan,
                    &dy,
                    dh_n,
                    dc_n,
                    g,
                    cfg.isa,
                    cfg.par,
                )
            };
            let results = if d == 2 {
                let (a, b) = if cfg.par.threads() > 1 {
                    rayon::join(
                        || run(0, &mut first[0], &mut grads_first[0]),
                        || run(1, &mut second[0], &mut grads_second[0]),
                    )
                } else {
                    (
                        run(0, &mut first[0], &mut grads_first[0]),
                        run(1, &mut second[0], &mut grads_second[0]),
                    )
                };
                vec![a, b]
            } else {
                vec![run(0, &mut first[0], &mut grads_first[0])]
            };
            let mut results = results.into_iter();
            let forward = results.next().expect("one direction at least");
            let mut d_in = forward.dx;
            let mut store_state = |dir: usize, dh0: &[f32], dc0: &[f32]| {
                let index = layer * d + dir;
                let rows = index * batch * h..(index + 1) * batch * h;
                plan.scatter_state(dh0, h, &mut d_state.h[rows.clone()]);
                if let Some(c) = d_state.c.as_mut() {
                    plan.scatter_state(dc0, h, &mut c[rows]);
                }
            };
            store_state(0, &forward.dh0, &forward.dc0);
            if let Some(reverse) = results.next() {
                plan.internal_columns(
                    &reverse.dx,
                    width,
                    0,
                    width,
                    true,
                    &mut d_in,
                    width,
                    0,
                    true,
                );
                store_state(1, &reverse.dh0, &reverse.dc0);
            }
            d_out = d_in;
        }
        let mut d_input = vec![0.0f32; rows_total * cfg.input_size];
        plan.scatter(
            &d_out,
            cfg.input_size,
            false,
            &mut d_input,
            cfg.input_size,
            0,
        );
        Ok(RnnInputGrads { d_input, d_state })
    }
}

/// A dropout mask (0 or `1/(1−p)`), drawn in the caller's (T, B, width) order so it does not
/// depend on the internal layout, returned in internal layout.
fn dropout_mask_internal(rng: &mut ChaCha8Rng, plan: &Plan, width: usize, p: f32) -> Vec<f32> {
    let keep = 1.0 / (1.0 - p);
    let user: Vec<f32> = (0..plan.steps * plan.batch * width)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    let mut internal = vec![0.0f32; user.len()];
    plan.gather(&user, width, false, &mut internal);
    internal
}
