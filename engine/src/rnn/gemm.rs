//! The sequence-level matrix products of the recurrent layers, as one call shape.
//!
//! A thin adapter over [`recur_kernels::gemm::sgemm_with_isa`] with slice-and-stride views.

use recur_kernels::gemm::{MatMut, MatRef, sgemm_with_isa};
use recur_kernels::{Isa, Par};

/// A strided read-only matrix: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `(rows, cols)` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// Row-major with an explicit row stride (a column block of a wider matrix).
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// `C ← α·A·B + β·C` for row-major `C` `(A.rows, B.cols)` with row stride `ldc`; `β = 0` never
/// reads `C`. The k reduction is never split across threads (bit-identical for every `par`).
pub(crate) fn gemm(
    isa: Isa,
    par: Par,
    alpha: f32,
    a: View<'_>,
    b: View<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let (m, n) = (a.rows, b.cols);
    sgemm_with_isa(
        isa.clamp_to_host(),
        par,
        alpha,
        MatRef::new(a.data, a.rows, a.cols, a.rs, a.cs),
        MatRef::new(b.data, b.rows, b.cols, b.rs, b.cs),
        beta,
        MatMut::new(
            &mut c[..if m == 0 { 0 } else { (m - 1) * ldc + n }],
            m,
            n,
            ldc,
            1,
        ),
    );
}
