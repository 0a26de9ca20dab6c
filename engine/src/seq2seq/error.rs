//! Errors a caller of the encoder–decoder can cause.

use thiserror::Error;

use crate::rnn::RnnError;

/// A bad configuration, a bad batch or a bad decoding request. Every message says what was
/// expected and what was found.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Seq2SeqError {
    /// A vocabulary of no tokens.
    #[error("{which} vocabulary must have at least 1 token, found 0")]
    EmptyVocabulary {
        /// `"source"` or `"target"`.
        which: &'static str,
    },
    /// A size in the configuration was zero.
    #[error("{what} must be at least 1, found 0")]
    ZeroSize {
        /// Which size.
        what: &'static str,
    },
    /// The bridge cannot map the encoder's final state onto the decoder's initial state.
    #[error(
        "bridge `{bridge}` needs encoder_hidden = decoder_hidden, found encoder {encoder}, \
         decoder {decoder} (the `dense` bridge maps between sizes)"
    )]
    SizeMismatch {
        /// The bridge's name.
        bridge: &'static str,
        /// The encoder's hidden size.
        encoder: usize,
        /// The decoder's hidden size.
        decoder: usize,
    },
    /// The identity bridge with a bidirectional encoder (two final states per layer, one decoder
    /// state).
    #[error(
        "bridge `identity` needs a unidirectional encoder, found bidirectional = true \
         (use the `sum` or `dense` bridge)"
    )]
    BridgeDirections,
    /// Sources and targets of different counts, or no examples at all.
    #[error(
        "a batch needs as many targets as sources (at least 1), found {sources} sources and {targets} targets"
    )]
    BatchSize {
        /// Number of sources.
        sources: usize,
        /// Number of targets.
        targets: usize,
    },
    /// A source sequence with no tokens (the encoder needs at least one step).
    #[error("source {index}: expected at least 1 token, found an empty sequence")]
    EmptySource {
        /// The example's index in the batch.
        index: usize,
    },
    /// A token id outside its vocabulary.
    #[error(
        "{which} {index}, position {position}: expected a token id below {vocab}, found {found}"
    )]
    Token {
        /// `"source"` or `"target"`.
        which: &'static str,
        /// The example's index in the batch.
        index: usize,
        /// The position in the sequence.
        position: usize,
        /// The vocabulary size.
        vocab: usize,
        /// The id given.
        found: u32,
    },
    /// A teacher-forcing ratio outside `[0, 1]`.
    #[error("teacher-forcing ratio must be in [0, 1], found {found}")]
    TeacherForcing {
        /// The ratio given.
        found: f32,
    },
    /// A beam search of width 0, or a maximum output length of 0.
    #[error("{what} must be at least 1, found 0")]
    Decoding {
        /// `"beam width"` or `"max_len"`.
        what: &'static str,
    },
    /// A beam search over a decoder with another number of rows than the beam width.
    #[error("beam search of width {width} needs a decoder of {width} rows, found {rows}")]
    BeamRows {
        /// The beam width.
        width: usize,
        /// The decoder's rows.
        rows: usize,
    },
    /// A length penalty that is negative or not finite.
    #[error("length penalty α must be a finite value ≥ 0, found {found}")]
    LengthPenalty {
        /// The α given.
        found: f32,
    },
    /// A parameter tensor of the wrong length when loading.
    #[error("parameter {name}: expected {expected} values, found {found}")]
    ParameterShape {
        /// The parameter's name.
        name: String,
        /// Values the model has.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A parameter the model has was missing when loading.
    #[error("parameter {name} is missing (found {found} parameters)")]
    MissingParameter {
        /// The parameter's name.
        name: String,
        /// How many were given.
        found: usize,
    },
    /// An optimiser error (a bad hyper-parameter, a state that does not fit).
    #[error(transparent)]
    Optimizer(#[from] crate::optim::OptimError),
    /// An error from a recurrent layer.
    #[error(transparent)]
    Rnn(#[from] RnnError),
}
