//! recur-engine: layers, models, training, data and checkpoints, in safe Rust over
//! [`recur_kernels`].

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod data;
pub mod diagnostics;
pub mod fuzzing;
pub mod heads;
pub mod interop;
pub mod model;
pub mod ngram;
pub mod optim;

pub use recur_kernels as kernels;

pub mod reference;
pub mod rnn;
pub mod seq2seq;
pub mod tasks;
pub mod train;
