//! The sequence-level matrix products of the recurrent layers, as one call shape.
//!
//! STAND-IN until `recur_kernels::gemm::sgemm` lands: plain loops with the same contract.

use recur_kernels::Par;

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
/// reads `C`.
pub(crate) fn gemm(
    par: Par,
    alpha: f32,
    a: View<'_>,
    b: View<'_>,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let _ = par;
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let mut row = vec![0.0f32; n];
    for i in 0..m {
        row.iter_mut().for_each(|v| *v = 0.0);
        for p in 0..k {
            let aip = a.data[i * a.rs + p * a.cs];
            for (j, v) in row.iter_mut().enumerate() {
                *v += aip * b.data[p * b.rs + j * b.cs];
            }
        }
        let out = &mut c[i * ldc..i * ldc + n];
        for (o, v) in out.iter_mut().zip(&row) {
            *o = if beta == 0.0 {
                alpha * v
            } else {
                alpha * v + beta * *o
            };
        }
    }
}
