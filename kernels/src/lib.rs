//! recur-kernels: the numeric core of recur and the only crate of the workspace with `unsafe`.
//!
//! - [`isa`]: runtime instruction-set dispatch (`RECUR_ISA=scalar|avx2|avx512`).
//! - [`gemm`]: BLIS-style packed SGEMM with register micro-kernels per ISA and a pre-packed
//!   operand API for weights that are multiplied many times.
//! - [`activations`]: vectorised exp, sigmoid and tanh with a tested error bound.
//! - [`mmap`]: the safe read-only file map the engine uses for corpora and token caches.
//! - [`fuzzing`]: the fuzz targets' bodies (differential checks against the references).
//! - [`conv`]: 1-D convolution over time (im2col + SGEMM), ReLU and max pooling, for CRNNs.
//! - [`optim`]: the element-wise Adam and RMSprop updates, bit-identical to its scalar loop on every ISA.
//! - [`softmax`]: fused, numerically stable softmax + cross-entropy (loss and d(logits) in one pass).
//!
//! Every kernel has a plain reference implementation beside it (always compiled, public) that
//! the tests, benches and fuzz targets compare against.

pub mod activations;
pub mod cells;
pub mod conv;
pub mod fuzzing;
pub mod gemm;
pub mod isa;
pub mod mmap;
pub mod optim;
pub mod par;
pub mod simd;
pub mod softmax;

pub use cells::{CellKind, RnnActivation};
pub use isa::Isa;
pub use par::Par;
