//! The tests that run the built `recur` binary, in one test binary (one link instead of eight;
//! CI time). Each module is one area; `common` holds what they share.

mod common;

mod bad_input;
mod determinism;
mod faults;
mod forecast;
mod mid_epoch_resume;
mod ngram_diagnose;
mod seq2seq;
mod train;
