//! Fused recurrent cells (SimpleRNN, LSTM, GRU): to be written (issue 3).

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellKind {
    Rnn(RnnActivation),
    Lstm,
    Gru,
}

impl CellKind {
    /// Gate blocks stacked in the weights: G in `(G·H, I)`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Whether the cell carries a cell state `c` beside `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, CellKind::Lstm)
    }

    /// Lower-case name (`rnn_tanh`, `rnn_relu`, `lstm`, `gru`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(RnnActivation::Tanh) => "rnn_tanh",
            CellKind::Rnn(RnnActivation::Relu) => "rnn_relu",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}
