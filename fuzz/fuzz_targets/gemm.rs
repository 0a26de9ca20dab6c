//! Fuzz target `gemm`: see `recur_kernels::fuzzing::fuzz_gemm` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| recur_kernels::fuzzing::fuzz_gemm(data));
