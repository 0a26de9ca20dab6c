//! Fused recurrent cells (SimpleRNN, LSTM, GRU): the per-time-step kernels, forward and backward.
//!
//! The sequence-level work around them (the hoisted input projection, the weight-gradient GEMMs
//! over all T·B rows, batch partitioning, ragged lengths, stacking) lives in `recur_engine::rnn`;
//! this module owns what must be `unsafe` and fast: the recurrent weights packed into
//! gate-interleaved panels ([`PackedRecurrent`]) and the fused step kernels ([`forward_step`],
//! [`backward_step`]). The layout is drawn in `README.md` beside this file.

mod gru_rb;
mod pack;
mod step;
mod sums;

pub use pack::{PackFor, PackedMatrix, PackedRecurrent};
pub use step::{
    BackwardStep, COLUMN_SPLIT_MAX_ROWS, ForwardStep, StepExtras, backward_step,
    backward_step_with, forward_step, forward_step_with, packed_matmul,
};
pub use sums::accumulate_rows;

#[cold]
#[inline(never)]
pub(crate) fn shape_mismatch(what: &str, expected: usize, found: usize) -> ! {
    panic!("recur-kernels cell: {what}: expected {expected}, found {found}")
}
/// The nonlinearity of a SimpleRNN (Elman) cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RnnActivation {
    Tanh,
    Relu,
}

/// Which recurrent cell, with PyTorch's semantics and gate order.
///
/// - `Rnn`: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, one gate.
/// - `Lstm`: gates `i, f, g, o`; `c_t = f⊙c_{t-1} + i⊙g`, `h_t = o⊙tanh(c_t)`.
/// - `Gru` (linear-before-reset): gates `r, z, n`;
///   `n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))`, `h_t = (1−z)⊙n + z⊙h_{t-1}`.
/// - `GruResetBefore`: the same weights and gates, but the reset gate multiplies `h` before the
///   recurrent matmul of the candidate, `n = tanh(W_in x + b_in + W_hn (r⊙h) + b_hn)` — Keras'
///   `GRU(reset_after=False)` and ONNX's `linear_before_reset = 0` (PyTorch and cuDNN have only
///   `Gru`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellKind {
    Rnn(RnnActivation),
    Lstm,
    Gru,
    GruResetBefore,
}

impl CellKind {
    /// Gate blocks stacked in the weights: G in `(G·H, I)`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru | CellKind::GruResetBefore => 3,
        }
    }

    /// Whether the cell carries a cell state `c` beside `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, CellKind::Lstm)
    }

    /// Whether the cell is a GRU of either kind (gates `r, z, n`; a per-step `(B, H)` cache beside
    /// the gates: `u_n` for `Gru`, `r⊙h_{t-1}` for `GruResetBefore`).
    pub fn is_gru(self) -> bool {
        matches!(self, CellKind::Gru | CellKind::GruResetBefore)
    }

    /// Lower-case name (`rnn_tanh`, `rnn_relu`, `lstm`, `gru`, `gru_reset_before`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(RnnActivation::Tanh) => "rnn_tanh",
            CellKind::Rnn(RnnActivation::Relu) => "rnn_relu",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::GruResetBefore => "gru_reset_before",
        }
    }
}

#[cfg(test)]
mod tests;
