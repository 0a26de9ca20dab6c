//! Fuzz target `cells`: see `recur_engine::fuzzing::fuzz_cells` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_engine::fuzzing::fuzz_cells(data));
