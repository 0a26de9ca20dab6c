//! Fuzz target `softmax`: see `recur_kernels::fuzzing::fuzz_softmax` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_kernels::fuzzing::fuzz_softmax(data));
