//! [`Rnn`]: a stacked, optionally bidirectional recurrent network — forward over ragged sequence
//! batches, BPTT, named parameters and gradients.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::CellKind;
use recur_kernels::cells::{PackFor, PackedRecurrent};

use super::direction::{DirInput, DirectionCache, backward_direction, forward_direction};
use super::params::{RnnGrads, RnnParams};
use super::plan::Plan;
use super::workspace::{PackCache, Workspace};
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

/// A batch of token-id sequences standing for one-hot input vectors, time-major: the input of
/// [`Rnn::forward_one_hot`].
#[derive(Clone, Copy, Debug)]
pub struct TokenBatch<'a> {
    /// (T, B) ids, each `< input_size`.
    pub ids: &'a [u32],
    /// T
    pub steps: usize,
    /// B
    pub batch: usize,
    /// Per-row lengths in `1..=T`, or `None` for all `T` (as [`SeqBatch::lengths`]).
    pub lengths: Option<&'a [usize]>,
}

impl<'a> TokenBatch<'a> {
    /// `ids` (T, B) with every row `T` steps long.
    pub fn new(ids: &'a [u32], steps: usize, batch: usize) -> Self {
        TokenBatch {
            ids,
            steps,
            batch,
            lengths: None,
        }
    }

    /// Gives each row its own length (see [`SeqBatch::with_lengths`]).
    pub fn with_lengths(mut self, lengths: &'a [usize]) -> Self {
        self.lengths = Some(lengths);
        self
    }
}

/// The first layer's input as a pass sees it.
#[derive(Clone, Copy)]
enum FirstInput<'a> {
    Dense(&'a [f32]),
    OneHot(&'a [u32]),
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

/// What a forward pass returns besides the final state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outputs {
    /// The last layer's output at every step, (T, B, D·H).
    #[default]
    EveryStep,
    /// The final state only ([`RnnForward::output`] is empty): for many-to-one models, whose
    /// loss reads the final state (with D = 1 and every row `T` steps long, the final state is the
    /// last step's output). Saves writing the (T, B, D·H) output; pair it with
    /// [`Rnn::backward_from_state`], which needs no (T, B, D·H) output gradient either.
    FinalState,
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
    /// Backward computes `∂L/∂(initial state)` (the default; see
    /// [`RnnCache::without_initial_state_grad`]).
    initial_state_grad: bool,
}

impl RnnCache {
    /// Backward of this pass will not compute the initial state's gradient: the first step's
    /// `dh_{-1} = δ_0·W_hh` (one step's recurrent product per layer and direction) is skipped and
    /// the returned `d_state` is all zeros. For callers that drop `d_state` (a model whose initial
    /// state is not trained and not carried back to an earlier pass).
    pub fn without_initial_state_grad(mut self) -> Self {
        self.initial_state_grad = false;
        self
    }
}

/// A layer's input, internal layout: values, or (first layer only) one-hot token ids.
#[derive(Debug)]
enum LayerInput {
    /// (T·B, I_k)
    Dense(Vec<f32>),
    /// (T·B) ids `< I_0`.
    OneHot(Vec<u32>),
}

impl LayerInput {
    fn view(&self, width: usize) -> DirInput<'_> {
        match self {
            LayerInput::Dense(x) => DirInput::Dense { x, width },
            LayerInput::OneHot(ids) => DirInput::OneHot { ids, width },
        }
    }

    fn give_to(self, ws: &Workspace) {
        if let LayerInput::Dense(x) = self {
            ws.give(x);
        }
    }
}

#[derive(Debug)]
struct LayerCache {
    /// The layer's input.
    input: LayerInput,
    /// The same reversed within each row's length (bidirectional only).
    input_rev: Option<LayerInput>,
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
    /// `∂L/∂input` (T, B, I); empty after [`Rnn::forward_one_hot`] (token ids have no gradient,
    /// and skipping it saves a GEMM).
    pub d_input: Vec<f32>,
    /// `∂L/∂(initial state)`, for truncated BPTT across chunks. (L·D, B, H)
    pub d_state: RnnState,
}

/// A stacked, optionally bidirectional SimpleRNN/LSTM/GRU network (see [`RnnConfig`]).
///
/// Besides its parameters it keeps, behind interior locks, a pool of buffers reused from pass to
/// pass and `W_hh` packed for the step kernels (repacked after [`Rnn::params_mut`]); neither
/// affects results. Hand buffers it returned back with [`Rnn::recycle`] /
/// [`Rnn::recycle_cache`] to keep a loop allocation-free.
#[derive(Clone, Debug)]
pub struct Rnn {
    config: RnnConfig,
    params: RnnParams,
    workspace: Workspace,
    packs: PackCache,
}

impl Rnn {
    /// A network with the given parameters.
    pub(crate) fn from_params(config: RnnConfig, params: RnnParams) -> Self {
        Rnn {
            config,
            params,
            workspace: Workspace::default(),
            packs: PackCache::default(),
        }
    }

    /// Hands back a buffer this network returned (an output, `d_input`) for reuse by later passes.
    pub fn recycle(&self, buffer: Vec<f32>) {
        self.workspace.give(buffer);
    }

    /// Hands back the buffers of a cache that will not go through [`Rnn::backward`] (which
    /// recycles its cache itself).
    pub fn recycle_cache(&self, cache: RnnCache) {
        for layer in cache.layers {
            self.recycle_layer(layer);
        }
    }

    fn recycle_layer(&self, layer: LayerCache) {
        let ws = &self.workspace;
        layer.input.give_to(ws);
        if let Some(rev) = layer.input_rev {
            rev.give_to(ws);
        }
        for dir in layer.directions {
            for buffer in [dir.gates, dir.h, dir.c, dir.hn, dir.h0, dir.c0] {
                ws.give(buffer);
            }
        }
    }

    /// Idle buffers in the pool and directions with packed weights (for tests).
    #[doc(hidden)]
    pub fn workspace_stats(&self) -> (usize, usize) {
        (self.workspace.pooled(), self.packs.packed())
    }

    /// Fills every idle pooled buffer with NaN (for tests: results must not depend on it).
    #[doc(hidden)]
    pub fn poison_workspace(&self) {
        self.workspace.poison();
    }

    /// `W_hh` of direction `index` packed for `purpose`, from the cache.
    fn packed(&self, index: usize, purpose: PackFor) -> Arc<PackedRecurrent> {
        let cfg = &self.config;
        let p = &self.params.directions[index];
        self.packs.get(index, purpose, || {
            PackedRecurrent::with_isa(
                cfg.isa,
                cfg.cell,
                cfg.hidden_size,
                &p.weight_hh,
                &p.bias_hh,
                purpose,
            )
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The parameters, PyTorch names and layout.
    pub fn params(&self) -> &RnnParams {
        &self.params
    }

    /// The parameters, mutable (an optimiser step, a checkpoint load). Drops the packed weights:
    /// the next pass packs the new values.
    pub fn params_mut(&mut self) -> &mut RnnParams {
        self.packs.clear();
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
        self.forward_with(input, initial, mode, Outputs::EveryStep)
    }

    /// [`Rnn::forward`] returning the outputs `outputs` asks for.
    ///
    /// # Errors
    /// As [`Rnn::forward`].
    pub fn forward_with(
        &self,
        input: SeqBatch<'_>,
        initial: Option<&RnnState>,
        mode: Mode,
        outputs: Outputs,
    ) -> Result<(RnnForward, RnnCache), RnnError> {
        let (steps, batch, i) = (input.steps, input.batch, self.config.input_size);
        let plan = Plan::new(steps, batch, input.lengths)?;
        let expected = steps * batch * i;
        if input.data.len() != expected {
            return Err(RnnError::Shape {
                what: "input",
                shape: format!("(T={steps}, B={batch}, I={i})"),
                expected,
                found: input.data.len(),
            });
        }
        self.forward_plan(plan, FirstInput::Dense(input.data), initial, mode, outputs)
    }

    /// [`Rnn::forward`] of one-hot input vectors given as token ids: the same results (up to f32
    /// rounding in the gradients) without multiplying by zeros — the input projection gathers
    /// columns of `W_ih`, backward adds into the used columns of `dW_ih` only and returns no
    /// `d_input`.
    ///
    /// # Errors
    /// As [`Rnn::forward`] with `ids` (T, B) in place of the input, and
    /// [`RnnError::TokenOutOfRange`] for an id ≥ `input_size`.
    pub fn forward_one_hot(
        &self,
        input: TokenBatch<'_>,
        initial: Option<&RnnState>,
        mode: Mode,
    ) -> Result<(RnnForward, RnnCache), RnnError> {
        self.forward_one_hot_with(input, initial, mode, Outputs::EveryStep)
    }

    /// [`Rnn::forward_one_hot`] returning the outputs `outputs` asks for.
    ///
    /// # Errors
    /// As [`Rnn::forward_one_hot`].
    pub fn forward_one_hot_with(
        &self,
        input: TokenBatch<'_>,
        initial: Option<&RnnState>,
        mode: Mode,
        outputs: Outputs,
    ) -> Result<(RnnForward, RnnCache), RnnError> {
        let (steps, batch, i) = (input.steps, input.batch, self.config.input_size);
        let plan = Plan::new(steps, batch, input.lengths)?;
        let expected = steps * batch;
        if input.ids.len() != expected {
            return Err(RnnError::Shape {
                what: "input ids",
                shape: format!("(T={steps}, B={batch})"),
                expected,
                found: input.ids.len(),
            });
        }
        if let Some((index, &id)) = input
            .ids
            .iter()
            .enumerate()
            .find(|(_, id)| **id as usize >= i)
        {
            return Err(RnnError::TokenOutOfRange {
                index,
                id,
                input_size: i,
            });
        }
        self.forward_plan(plan, FirstInput::OneHot(input.ids), initial, mode, outputs)
    }

    fn forward_plan(
        &self,
        plan: Plan,
        first: FirstInput<'_>,
        initial: Option<&RnnState>,
        mode: Mode,
        outputs: Outputs,
    ) -> Result<(RnnForward, RnnCache), RnnError> {
        let cfg = &self.config;
        let ws = &self.workspace;
        let (steps, batch, h) = (plan.steps, plan.batch, cfg.hidden_size);
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
        let mut layer_input = match first {
            FirstInput::Dense(data) => {
                // Written whole by the gather (zeros past each length).
                let mut x = ws.take(rows_total * cfg.input_size);
                plan.gather(data, cfg.input_size, false, &mut x);
                LayerInput::Dense(x)
            }
            FirstInput::OneHot(ids) => {
                let mut internal = vec![0u32; rows_total];
                plan.gather(ids, 1, false, &mut internal);
                LayerInput::OneHot(internal)
            }
        };
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for layer in 0..cfg.num_layers {
            let width = self.input_width(layer);
            let input_rev = if d == 2 {
                Some(match &layer_input {
                    LayerInput::OneHot(ids) => {
                        let mut rev = vec![0u32; rows_total];
                        for (s, &len) in plan.lengths.iter().enumerate() {
                            for t in 0..len {
                                rev[plan.row(t, s)] = ids[plan.row(len - 1 - t, s)];
                            }
                        }
                        LayerInput::OneHot(rev)
                    }
                    LayerInput::Dense(x) => {
                        // Written whole (zeros past each length).
                        let mut rev = ws.take(rows_total * width);
                        plan.internal_columns(x, width, 0, width, true, &mut rev, width, 0, false);
                        LayerInput::Dense(rev)
                    }
                })
            } else {
                None
            };
            let run = |dir: usize| {
                let index = layer * d + dir;
                let mut h0 = ws.take_zeroed(batch * h);
                let mut c0 = ws.take_zeroed(if lstm { batch * h } else { 0 });
                if let Some(state) = initial {
                    let rows = index * batch * h..(index + 1) * batch * h;
                    plan.gather_state(&state.h[rows.clone()], h, &mut h0);
                    if let Some(c) = &state.c {
                        plan.gather_state(&c[rows], h, &mut c0);
                    }
                }
                let x = if dir == 0 {
                    &layer_input
                } else {
                    input_rev.as_ref().expect("bidirectional")
                };
                forward_direction(
                    cfg.cell,
                    h,
                    &self.params.directions[index],
                    x.view(width),
                    &plan,
                    h0,
                    c0,
                    // Without an initial state, h0 (and c0) are the zeroed buffers above.
                    initial.is_none(),
                    self.packed(index, purpose),
                    ws,
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
                LayerInput::Dense(Vec::new())
            } else {
                // Every column block is written by one direction, whole.
                let mut out = ws.take(rows_total * d * h);
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
                LayerInput::Dense(out)
            };
            layers.push(LayerCache {
                input: std::mem::replace(&mut layer_input, next_input),
                input_rev,
                directions,
                dropout_mask,
            });
        }
        let output = match outputs {
            Outputs::EveryStep => {
                // Every column block is written by one direction, whole (zeros past each length).
                let mut output = ws.take(rows_total * d * h);
                let last = layers.last().expect("num_layers ≥ 1 (validated)");
                for (dir, cache) in last.directions.iter().enumerate() {
                    plan.scatter(&cache.h, h, dir == 1, &mut output, d * h, dir * h);
                }
                output
            }
            Outputs::FinalState => Vec::new(),
        };
        Ok((
            RnnForward {
                output,
                state: final_state,
            },
            RnnCache {
                plan,
                layers,
                initial_state_grad: true,
            },
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
            .map(|(out, cache)| {
                self.recycle_cache(cache);
                out
            })
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
        cache: RnnCache,
        d_output: &[f32],
        d_final: Option<&RnnState>,
        grads: &mut RnnGrads,
    ) -> Result<RnnInputGrads, RnnError> {
        self.backward_impl(cache, Some(d_output), d_final, grads)
    }

    /// Backpropagation through time when the loss reads only the final state (many-to-one, with
    /// [`Outputs::FinalState`]): [`Rnn::backward`] with a zero `d_output`, without building one.
    /// `d_final` (L·D, B, H) is `∂L/∂(final state)`.
    ///
    /// # Errors
    /// As [`Rnn::backward`].
    pub fn backward_from_state(
        &self,
        cache: RnnCache,
        d_final: &RnnState,
        grads: &mut RnnGrads,
    ) -> Result<RnnInputGrads, RnnError> {
        self.backward_impl(cache, None, Some(d_final), grads)
    }

    /// [`Rnn::backward`]; `d_output = None` is a zero output gradient.
    fn backward_impl(
        &self,
        cache: RnnCache,
        d_output: Option<&[f32]>,
        d_final: Option<&RnnState>,
        grads: &mut RnnGrads,
    ) -> Result<RnnInputGrads, RnnError> {
        let cfg = &self.config;
        let RnnCache {
            plan,
            mut layers,
            initial_state_grad,
        } = cache;
        let plan = &plan;
        let (steps, batch, h, d) = (plan.steps, plan.batch, cfg.hidden_size, cfg.directions());
        let rows_total = steps * batch;
        let expected = rows_total * d * h;
        if let Some(d_output) = d_output
            && d_output.len() != expected
        {
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
        // The shapes `RnnParams::zeros(cfg)` would have, checked without building it (the
        // names are built only for an error).
        let (g, d_dirs) = (cfg.cell.gates(), cfg.directions());
        let same = grads.directions.iter().enumerate().all(|(index, got)| {
            let input = if index < d_dirs {
                cfg.input_size
            } else {
                d_dirs * h
            };
            [
                got.weight_ih.len(),
                got.weight_hh.len(),
                got.bias_ih.len(),
                got.bias_hh.len(),
            ] == [g * h * input, g * h * h, g * h, g * h]
        });
        if !same {
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
        }
        let lstm = cfg.cell == CellKind::Lstm;
        let ws = &self.workspace;
        let mut d_state = RnnState::zeros(cfg, batch);
        // The gradient of the current layer's output, internal layout (T·B, D·H); `None`: zero
        // (only ever for the last layer, from `backward_from_state`).
        let mut d_out = d_output.map(|d_output| {
            // Written whole by the gather.
            let mut d_out = ws.take(expected);
            plan.gather(d_output, d * h, false, &mut d_out);
            d_out
        });
        for layer in (0..cfg.num_layers).rev() {
            let width = self.input_width(layer);
            let lc = &mut layers[layer];
            if let (Some(mask), Some(d_out)) = (&lc.dropout_mask, d_out.as_mut()) {
                d_out.iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
            }
            let (input, input_rev) = (&lc.input, &lc.input_rev);
            let (first, second) = lc.directions.split_at_mut(1);
            let (grads_first, grads_second) =
                grads.directions[layer * d..layer * d + d].split_at_mut(1);
            let d_out_ref = d_out.as_deref();
            let run = |dir: usize,
                       cache: &mut DirectionCache,
                       g: &mut super::params::DirectionParams| {
                let index = layer * d + dir;
                if !cache.packed.has_backward() {
                    cache.packed = self.packed(index, PackFor::Training);
                }
                let dy = d_out_ref.map(|d_out| {
                    // Written whole (zeros past each length).
                    let mut dy = ws.take(rows_total * h);
                    plan.internal_columns(d_out, d * h, dir * h, h, dir == 1, &mut dy, h, 0, false);
                    dy
                });
                let mut dh_n = ws.take_zeroed(batch * h);
                let mut dc_n = ws.take_zeroed(if lstm { batch * h } else { 0 });
                if let Some(state) = d_final {
                    let rows = index * batch * h..(index + 1) * batch * h;
                    plan.gather_state(&state.h[rows.clone()], h, &mut dh_n);
                    if let Some(c) = &state.c {
                        plan.gather_state(&c[rows], h, &mut dc_n);
                    }
                }
                let x = if dir == 0 {
                    input
                } else {
                    input_rev.as_ref().expect("bidirectional")
                };
                let grads = backward_direction(
                    cfg.cell,
                    h,
                    &self.params.directions[index],
                    cache,
                    x.view(width),
                    plan,
                    dy.as_deref(),
                    dh_n,
                    dc_n,
                    initial_state_grad,
                    g,
                    ws,
                    cfg.isa,
                    cfg.par,
                );
                if let Some(dy) = dy {
                    ws.give(dy);
                }
                grads
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
            for buffer in [forward.dh0, forward.dc0] {
                ws.give(buffer);
            }
            if let Some(reverse) = results.next() {
                if !d_in.is_empty() {
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
                }
                store_state(1, &reverse.dh0, &reverse.dc0);
                for buffer in [reverse.dx, reverse.dh0, reverse.dc0] {
                    ws.give(buffer);
                }
            }
            if let Some(d_out) = d_out.replace(d_in) {
                ws.give(d_out);
            }
        }
        for layer in layers {
            self.recycle_layer(layer);
        }
        let d_out = d_out.expect("every layer leaves its input gradient");
        let d_input = if d_out.is_empty() {
            // One-hot input: no input gradient.
            Vec::new()
        } else {
            // Written whole (zeros past each length).
            let mut d_input = ws.take(rows_total * cfg.input_size);
            plan.scatter(
                &d_out,
                cfg.input_size,
                false,
                &mut d_input,
                cfg.input_size,
                0,
            );
            ws.give(d_out);
            d_input
        };
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
