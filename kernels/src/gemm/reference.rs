//! The oracle: a plain triple loop, always compiled, deliberately slow and obvious.

use super::{MatMut, MatRef, check_gemm_shapes};

/// `C ← α·A·B + β·C` by the textbook triple loop, with the BLAS conventions: if `α = 0` or
/// `k = 0`, `A·B` is not computed and `C ← β·C`; if `β = 0`, `C` is not read (it may hold NaN).
///
/// # Panics
/// If `A` is not `m × k`, `B` not `k × n` and `C` not `m × n` for some `m`, `n`, `k`.
#[track_caller]
pub fn sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, mut c: MatMut) {
    check_gemm_shapes(&a, b.rows(), b.cols(), &c);
    let skip_product = alpha == 0.0 || a.cols() == 0;
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            if skip_product {
                let value = if beta == 0.0 { 0.0 } else { beta * c.get(i, j) };
                c.set(i, j, value);
                continue;
            }
            let mut ab = 0.0f32;
            for p in 0..a.cols() {
                ab += a.get(i, p) * b.get(p, j);
            }
            let value = if beta == 0.0 {
                alpha * ab
            } else {
                alpha * ab + beta * c.get(i, j)
            };
            c.set(i, j, value);
        }
    }
}
