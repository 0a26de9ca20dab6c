//! Fuzz target `tokenizers`: see `recur_engine::fuzzing::fuzz_tokenizers` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_engine::fuzzing::fuzz_tokenizers(data));
