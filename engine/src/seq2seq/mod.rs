//! Encoder–decoder (sequence-to-sequence) models over token sequences: an encoder
//! RNN/LSTM/GRU (optionally bidirectional) whose final state, through a [`Bridge`], initialises a
//! decoder trained with teacher forcing or scheduled sampling, decoded greedily or by beam
//! search, with ragged sources and targets and end-of-sequence handling.
//!
//! - [`model`]: [`Seq2SeqConfig`], [`Seq2Seq`] (the loss and its gradients), [`Bridge`],
//!   [`Feeding`];
//! - [`decode`]: [`greedy_search`], [`beam_search`] over any [`StepDecoder`], and the
//!   [`Seq2Seq`] decoder session stepping an [`crate::rnn::RnnStream`];
//! - [`train`]: a small training loop over a stream of generated pairs, with exact-match
//!   evaluation;
//! - [`reference`]: the f64 oracle of the loss, for gradient checks.

pub mod decode;
mod error;
pub mod model;
pub mod reference;
pub mod train;

pub use decode::{BeamConfig, DecoderSession, Hypothesis, StepDecoder, beam_search, greedy_search};
pub use error::Seq2SeqError;
pub use model::{Bridge, Feeding, LossStats, Seq2Seq, Seq2SeqConfig, Seq2SeqGrads};
