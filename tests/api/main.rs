//! Library-level tests through the `recur` facade (data, reference gradients, fused recurrent
//! layers), in one test binary (one link instead of four; CI time). `tests/data_heap.rs` stays
//! apart: it installs a counting global allocator.

mod data_seed_corpora;
mod data_tokenizers;
mod gradcheck;
mod layers_rnn;
