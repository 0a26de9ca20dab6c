//! recur: fast recurrent neural networks (SimpleRNN, LSTM, GRU) on the CPU.
//!
//! This crate is the facade: it re-exports the engine ([`engine`]) and the kernels ([`kernels`]),
//! and carries the `recur` command line. No numeric code lives here.

#![forbid(unsafe_code)]

pub use recur_engine as engine;
pub use recur_kernels as kernels;
