//! Errors a caller of the recurrent layers can cause.

use thiserror::Error;

/// A bad configuration or a tensor of the wrong shape given to a recurrent layer. Every message
/// says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RnnError {
    /// A size in the configuration was zero.
    #[error("{what} must be at least 1, found 0")]
    ZeroSize {
        /// `"hidden_size"`, `"input_size"` or `"num_layers"`.
        what: &'static str,
    },
    /// Dropout outside `[0, 1)`.
    #[error("dropout must be in [0, 1), found {found}")]
    Dropout {
        /// The probability given.
        found: f32,
    },
    /// A buffer of the wrong length for its shape.
    #[error("{what}: expected {expected} values for shape {shape}, found {found}")]
    Shape {
        /// Which argument.
        what: &'static str,
        /// The expected shape, e.g. `(T=5, B=2, I=3)`.
        shape: String,
        /// Expected number of values.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A sequence batch with no steps or no rows.
    #[error("input: a sequence batch needs at least 1 step and 1 row, found T={steps}, B={batch}")]
    EmptyBatch {
        /// T given.
        steps: usize,
        /// B given.
        batch: usize,
    },
    /// A per-row length outside `1..=T`.
    #[error("lengths[{row}]: expected a length in 1..={steps}, found {found}")]
    Length {
        /// The batch row.
        row: usize,
        /// T.
        steps: usize,
        /// The length given.
        found: usize,
    },
    /// An LSTM state without `c`, or another cell's state with one.
    #[error("{what}: a {cell} state {expected} a cell state c, found {found}")]
    CellState {
        /// Which argument.
        what: &'static str,
        /// The cell's name.
        cell: &'static str,
        /// `"needs"` or `"has no"`.
        expected: &'static str,
        /// `"none"` or `"one"`.
        found: &'static str,
    },
    /// A parameter name that the network does not have.
    #[error("unknown parameter {found:?}: expected one of {expected}")]
    UnknownParameter {
        /// The names the network has.
        expected: String,
        /// The name given.
        found: String,
    },
    /// A token id outside the one-hot input's width.
    #[error("input ids[{index}]: expected an id below input_size = {input_size}, found {id}")]
    TokenOutOfRange {
        /// Position in the (T, B) ids.
        index: usize,
        /// The id given.
        id: u32,
        /// I.
        input_size: usize,
    },
    /// Streaming inference of a bidirectional network (the reverse direction needs the future).
    #[error("streaming steps need a unidirectional network, found bidirectional = true")]
    BidirectionalStream,
}
