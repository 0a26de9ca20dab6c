//! recur: fast recurrent neural networks (SimpleRNN, LSTM, GRU) on the CPU.
//!
//! This crate is the facade: it re-exports the engine ([`engine`]) and the kernels ([`kernels`]),
//! and carries the `recur` command line. No numeric code lives here.
//!
//! Embedding recur in a program: [`engine::rnn`] (build and run SimpleRNN/LSTM/GRU networks,
//! BPTT, streaming steps), [`engine::interop`] (PyTorch `state_dict`s and Keras weights in and
//! out, with runnable examples of loading, running a batch, streaming and a training step), and
//! `examples/pytorch_lstm_generate.rs` (a PyTorch-trained LSTM language model generating text).

#![forbid(unsafe_code)]

pub use recur_engine as engine;
pub use recur_kernels as kernels;
