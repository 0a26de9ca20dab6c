//! Fuzz target `checkpoint_round_trip`: see `recur_engine::fuzzing::fuzz_checkpoint_round_trip` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_engine::fuzzing::fuzz_checkpoint_round_trip(data));
