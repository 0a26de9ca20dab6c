//! Plain, readable reference implementations of the recurrent cells — forward and
//! backpropagation through time — generic over `f32`/`f64`.
//!
//! This is the oracle the fast fused kernels are tested against (min-char-rnn / llm.c style:
//! scalar loops, one batch row and one time step at a time, a shape comment on every buffer).
//! It is deliberately slow. Semantics are PyTorch's `nn.RNN`, `nn.LSTM`, `nn.GRU` (see
//! [`recur_kernels::CellKind`]), including packed-sequence handling of ragged batches.
//!
//! - [`cell`]: [`RefCell`] (weights, PyTorch layout), [`RefState`], one step of one row, and the
//!   backward formulas in its module doc;
//! - [`sequence`]: one layer and one direction over a time-major batch,
//!   [`sequence_forward`] / [`sequence_backward`];
//! - [`network`]: [`RefNetwork`], stacked and bidirectional, with optional dropout masks.
//!
//! Shape errors panic with a message: this module is a test oracle, not a user-facing API.
//!
//! ```
//! use recur_engine::reference::{Direction, RefCell, RefState, sequence_backward, sequence_forward};
//! use recur_engine::kernels::CellKind;
//!
//! let (steps, batch, input, hidden) = (3, 2, 4, 5);
//! let cell = RefCell::<f64>::seeded(CellKind::Lstm, input, hidden, 7);
//! let x = vec![0.1; steps * batch * input]; // (T, B, I)
//! let init = RefState::zeros(CellKind::Lstm, batch, hidden);
//! let fwd = sequence_forward(&cell, &x, steps, batch, &[3, 2], &init, Direction::Forward);
//! assert_eq!(fwd.y.len(), steps * batch * hidden); // (T, B, H)
//! let dy = vec![1.0; fwd.y.len()]; // loss = Σ y
//! let d_final = RefState::zeros(CellKind::Lstm, batch, hidden);
//! let grads = sequence_backward(&cell, &x, &fwd, &dy, &d_final);
//! assert_eq!(grads.d_w_ih.len(), 4 * hidden * input); // (G·H, I)
//! ```

pub mod cell;
pub mod network;
pub mod real;
pub mod sequence;

pub use cell::{RefCell, RefState};
pub use network::{RefNetwork, RefNetworkForward, RefNetworkGrads};
pub use real::{Real, cast_slice, seeded_uniform, sigmoid};
pub use sequence::{Direction, RefGrads, RefSequence, sequence_backward, sequence_forward};
