//! Fuzz target `activations`: see `recur_kernels::fuzzing::fuzz_activations` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_kernels::fuzzing::fuzz_activations(data));
