//! Interop with Keras and PyTorch files (golden fixtures in `tests/fixtures/`), in one test
//! binary (one link instead of four; CI time). `common` holds what the modules share.

mod common;

mod bad_input;
mod keras;
mod lm;
mod pytorch;
