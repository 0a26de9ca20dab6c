//! SGEMM: `C ← α·A·B + β·C` over strided views, BLIS style.
//!
//! - [`sgemm`] / [`sgemm_with_isa`]: general GEMM; `op(A)`, `op(B)` are just views ([`MatRef::t`]).
//! - [`PackedB`] + [`sgemm_packed_b`]: B packed once into the micro-kernel's panels, multiplied
//!   many times (the recurrent weights of every time step).
//! - [`reference::sgemm`]: the plain triple loop every fast path is tested against.
//!
//! Conventions (BLAS): if `β = 0`, C is never read (it may hold NaN); if `α = 0` or `k = 0`, `A·B`
//! is not computed and `C ← β·C`. Results are bit-identical for every [`Par`] (the k reduction is
//! never split across threads). The design — five loops, packing layout, block sizes, and how the
//! fused RNN cells reuse the micro-kernel — is in `README.md` beside this file.
//!
//! ```
//! use recur_kernels::gemm::{MatMut, MatRef, sgemm};
//! use recur_kernels::Par;
//!
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
//! let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2
//! let mut c = [f32::NAN; 4];
//! sgemm(Par::Seq, 1.0, MatRef::row_major(&a, 2, 3), MatRef::row_major(&b, 3, 2), 0.0,
//!       MatMut::row_major(&mut c, 2, 2));
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! ```

mod driver;
pub(crate) mod kernel;
mod pack;
mod packed;
pub mod peak;
pub mod reference;
mod small;
pub(crate) mod tiles;
mod view;

pub use packed::{PackedB, sgemm_packed_b};
pub use view::{MatMut, MatRef};

use crate::{Isa, Par};
use kernel::Kernel;

/// `C ← α·A·B + β·C` on the active ISA path ([`Isa::active`]).
///
/// `A` is `m × k`, `B` is `k × n`, `C` is `m × n`; any strides (transpose with [`MatRef::t`]).
/// If `β = 0`, C is not read.
///
/// # Panics
/// If the shapes do not agree.
#[track_caller]
pub fn sgemm(par: Par, alpha: f32, a: MatRef, b: MatRef, beta: f32, c: MatMut) {
    sgemm_with_isa(Isa::active(), par, alpha, a, b, beta, c);
}

/// [`sgemm`] on an explicit ISA path (tests and benches use it to run every path the host has).
///
/// # Panics
/// If the shapes do not agree, or this CPU cannot run `isa`.
#[track_caller]
pub fn sgemm_with_isa(isa: Isa, par: Par, alpha: f32, a: MatRef, b: MatRef, beta: f32, c: MatMut) {
    sgemm_route(isa, Route::Auto, par, alpha, a, b, beta, c);
}

/// Which algorithm [`sgemm_route`] runs: benchmarks and tests time and check each one on the
/// same shape.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// What [`sgemm`] runs: a small-M path that packs nothing where one applies (`small.rs`),
    /// the packed five-loop GEMM otherwise. The choice depends on the shapes and strides only.
    Auto,
    /// Always the packed five-loop GEMM.
    Packed,
}

/// [`sgemm_with_isa`] by a chosen [`Route`].
///
/// # Panics
/// If the shapes do not agree, or this CPU cannot run `isa`.
#[doc(hidden)]
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn sgemm_route(
    isa: Isa,
    route: Route,
    par: Par,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: MatMut,
) {
    check_gemm_shapes(&a, b.rows(), b.cols(), &c);
    let kernel = Kernel::for_isa(isa);
    if route == Route::Auto
        && alpha != 0.0
        && a.cols() > 0
        && let Some(plan) = small::plan(isa, &a, &b)
    {
        small::gemm(isa, plan, par, alpha, a, b, beta, c);
        return;
    }
    driver::gemm(&kernel, par, alpha, a, driver::BOperand::View(b), beta, c);
}

/// Checks that `A` (m × k), `B` (`b_rows × b_cols`) and `C` agree.
#[track_caller]
pub(crate) fn check_gemm_shapes(a: &MatRef, b_rows: usize, b_cols: usize, c: &MatMut) {
    if a.cols() != b_rows || a.rows() != c.rows() || b_cols != c.cols() {
        gemm_shape_mismatch((a.rows(), a.cols()), (b_rows, b_cols), (c.rows(), c.cols()));
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn gemm_shape_mismatch(a: (usize, usize), b: (usize, usize), c: (usize, usize)) -> ! {
    panic!(
        "GEMM shape mismatch: expected A (m×k) · B (k×n) → C (m×n), found A {}×{}, B {}×{}, C {}×{}",
        a.0, a.1, b.0, b.1, c.0, c.1
    )
}

/// matrixmultiply's SGEMM behind the same views, for benchmarks that compare against it (feature
/// `matrixmultiply-baseline`; its API is `unsafe`, and only this crate may use `unsafe`).
#[cfg(feature = "matrixmultiply-baseline")]
pub mod baseline {
    use super::{MatMut, MatRef, check_gemm_shapes};

    /// `C ← α·A·B + β·C` by `matrixmultiply::sgemm` (threads: its `MATMUL_NUM_THREADS`).
    ///
    /// # Panics
    /// If the shapes do not agree.
    #[track_caller]
    pub fn matrixmultiply_sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, mut c: MatMut) {
        check_gemm_shapes(&a, b.rows(), b.cols(), &c);
        let (m, k, n) = (a.rows(), a.cols(), b.cols());
        let stride = |s: usize| isize::try_from(s).expect("stride fits in isize");
        // SAFETY: the views were bounds-checked at construction, so every (i, j) inside their
        // shapes is in their slices; shapes agree (checked above); C's view has distinct offsets
        // and is borrowed mutably, so it aliases neither A nor B.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.as_ptr(),
                stride(a.row_stride()),
                stride(a.col_stride()),
                b.as_ptr(),
                stride(b.row_stride()),
                stride(b.col_stride()),
                beta,
                c.as_mut_ptr(),
                stride(c.row_stride()),
                stride(c.col_stride()),
            )
        }
    }
}
