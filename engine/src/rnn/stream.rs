//! Streaming inference: `state ← step(x_t, state)`, one time step at a time, for generation and
//! batch-1 serving. Weights are packed once when the stream is built; a step allocates nothing.

use recur_kernels::cells::{
    ForwardStep, PackFor, PackedMatrix, PackedRecurrent, forward_step, packed_matmul,
};
use recur_kernels::{CellKind, Par};

use super::network::{Rnn, RnnState};
use super::{RnnConfig, RnnError};

/// A unidirectional network stepping through time one input row block at a time.
///
/// ```
/// use recur_engine::rnn::RnnConfig;
/// use recur_engine::kernels::CellKind;
///
/// let gru = RnnConfig::new(CellKind::Gru, 3, 5).with_num_layers(2).init(1).unwrap();
/// let mut stream = gru.stream(1).unwrap();
/// for t in 0..4 {
///     let h = stream.step(&[t as f32, 0.5, -0.5]).unwrap(); // x_t (B=1, I=3) → h_t (1, 5)
///     assert_eq!(h.len(), 5);
/// }
/// ```
#[derive(Debug)]
pub struct RnnStream {
    config: RnnConfig,
    batch: usize,
    layers: Vec<StreamLayer>,
}

#[derive(Debug)]
struct StreamLayer {
    input: usize,
    /// `W_ihᵀ` (I_k × G·H), packed once.
    w_ih_t: PackedMatrix,
    /// `W_hh`, packed once into gate-interleaved panels.
    recurrent: PackedRecurrent,
    /// `b_ih + b_hh` (GRU: `b_hn` excluded, the step adds it). (G·H)
    bias: Vec<f32>,
    /// (B, G·H)
    gates: Vec<f32>,
    /// (B, H): the current state and the next one (swapped after each step).
    h: Vec<f32>,
    h_next: Vec<f32>,
    /// LSTM (B, H), else empty.
    c: Vec<f32>,
    c_next: Vec<f32>,
    /// GRU `u_n` or reset-before GRU `r⊙h_{t-1}` (B, H), else empty.
    hn: Vec<f32>,
}

impl Rnn {
    /// A stream of `batch` rows from the zero state, with the weights packed now.
    ///
    /// # Errors
    /// [`RnnError::BidirectionalStream`] for a bidirectional network (its reverse direction needs
    /// the future); [`RnnError::EmptyBatch`] for `batch = 0`.
    pub fn stream(&self, batch: usize) -> Result<RnnStream, RnnError> {
        let cfg = self.config().clone();
        if cfg.bidirectional {
            return Err(RnnError::BidirectionalStream);
        }
        if batch == 0 {
            return Err(RnnError::EmptyBatch { steps: 1, batch });
        }
        let (g, h) = (cfg.cell.gates(), cfg.hidden_size);
        let gru = cfg.cell == CellKind::Gru;
        let lstm = cfg.cell == CellKind::Lstm;
        let layers = self
            .params()
            .directions
            .iter()
            .enumerate()
            .map(|(layer, p)| {
                let input = if layer == 0 { cfg.input_size } else { h };
                StreamLayer {
                    input,
                    w_ih_t: PackedMatrix::with_isa(cfg.isa, &p.weight_ih, input, g * h, 1, input),
                    recurrent: PackedRecurrent::with_isa(
                        cfg.isa,
                        cfg.cell,
                        h,
                        &p.weight_hh,
                        &p.bias_hh,
                        PackFor::Inference,
                    ),
                    bias: (0..g * h)
                        .map(|m| p.bias_ih[m] + if gru && m >= 2 * h { 0.0 } else { p.bias_hh[m] })
                        .collect(),
                    gates: vec![0.0; batch * g * h],
                    h: vec![0.0; batch * h],
                    h_next: vec![0.0; batch * h],
                    c: vec![0.0; if lstm { batch * h } else { 0 }],
                    c_next: vec![0.0; if lstm { batch * h } else { 0 }],
                    hn: vec![0.0; if cfg.cell.is_gru() { batch * h } else { 0 }],
                }
            })
            .collect();
        Ok(RnnStream {
            config: cfg,
            batch,
            layers,
        })
    }
}

impl RnnStream {
    /// Advances every layer by one step on `x` (B, I) and returns the last layer's `h_t` (B, H).
    ///
    /// # Errors
    /// [`RnnError::Shape`] if `x` is not (B, I).
    pub fn step(&mut self, x: &[f32]) -> Result<&[f32], RnnError> {
        let (b, h, cell) = (self.batch, self.config.hidden_size, self.config.cell);
        let expected = b * self.config.input_size;
        if x.len() != expected {
            return Err(RnnError::Shape {
                what: "x_t",
                shape: format!("(B={b}, I={})", self.config.input_size),
                expected,
                found: x.len(),
            });
        }
        let par = self.config.par;
        let gh = cell.gates() * h;
        for k in 0..self.layers.len() {
            let (below, rest) = self.layers.split_at_mut(k);
            let layer = &mut rest[0];
            let input: &[f32] = if k == 0 { x } else { &below[k - 1].h };
            for row in layer.gates.chunks_exact_mut(gh) {
                row.copy_from_slice(&layer.bias);
            }
            packed_matmul(
                &layer.w_ih_t,
                b,
                input,
                layer.input,
                &mut layer.gates,
                gh,
                true,
                par,
            );
            let lstm = cell == CellKind::Lstm;
            let keeps_hn = cell.is_gru();
            forward_step(
                &layer.recurrent,
                ForwardStep {
                    rows: b,
                    h_prev: &layer.h,
                    c_prev: lstm.then_some(&layer.c[..]),
                    gates: &mut layer.gates,
                    h: &mut layer.h_next,
                    c: if lstm {
                        Some(&mut layer.c_next[..])
                    } else {
                        None
                    },
                    hn: if keeps_hn {
                        Some(&mut layer.hn[..])
                    } else {
                        None
                    },
                },
                par,
            );
            std::mem::swap(&mut layer.h, &mut layer.h_next);
            std::mem::swap(&mut layer.c, &mut layer.c_next);
        }
        Ok(&self.layers.last().expect("num_layers ≥ 1 (validated)").h)
    }

    /// The current state of every layer. (L, B, H)
    pub fn state(&self) -> RnnState {
        RnnState {
            h: self
                .layers
                .iter()
                .flat_map(|l| l.h.iter().copied())
                .collect(),
            c: (self.config.cell == CellKind::Lstm).then(|| {
                self.layers
                    .iter()
                    .flat_map(|l| l.c.iter().copied())
                    .collect()
            }),
        }
    }

    /// Replaces the state (e.g. the final state of a forward pass over a prompt).
    ///
    /// # Errors
    /// [`RnnError::Shape`]/[`RnnError::CellState`] if `state` is not (L, B, H).
    pub fn set_state(&mut self, state: &RnnState) -> Result<(), RnnError> {
        let n = self.batch * self.config.hidden_size;
        let expected = self.layers.len() * n;
        let shape = || {
            format!(
                "(L={}, B={}, H={})",
                self.layers.len(),
                self.batch,
                self.config.hidden_size
            )
        };
        if state.h.len() != expected {
            return Err(RnnError::Shape {
                what: "state",
                shape: shape(),
                expected,
                found: state.h.len(),
            });
        }
        let lstm = self.config.cell == CellKind::Lstm;
        match (&state.c, lstm) {
            (Some(c), true) if c.len() != expected => {
                return Err(RnnError::Shape {
                    what: "state",
                    shape: shape(),
                    expected,
                    found: c.len(),
                });
            }
            (None, true) => {
                return Err(RnnError::CellState {
                    what: "state",
                    cell: "lstm",
                    expected: "needs",
                    found: "none",
                });
            }
            (Some(_), false) => {
                return Err(RnnError::CellState {
                    what: "state",
                    cell: self.config.cell.name(),
                    expected: "has no",
                    found: "one",
                });
            }
            _ => {}
        }
        for (k, layer) in self.layers.iter_mut().enumerate() {
            layer.h.copy_from_slice(&state.h[k * n..(k + 1) * n]);
            if let Some(c) = &state.c {
                layer.c.copy_from_slice(&c[k * n..(k + 1) * n]);
            }
        }
        Ok(())
    }

    /// Back to the zero state.
    pub fn reset(&mut self) {
        for layer in &mut self.layers {
            layer.h.fill(0.0);
            layer.c.fill(0.0);
        }
    }

    /// How the stream uses threads (batch 1 splits each step's hidden units across threads).
    pub fn par(&self) -> Par {
        self.config.par
    }
}
