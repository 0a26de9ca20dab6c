//! Fuzz target `checkpoint_json`: see `recur_engine::fuzzing::fuzz_checkpoint_json` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_engine::fuzzing::fuzz_checkpoint_json(data));
