//! A pre-packed B operand: pack a weight matrix once, multiply it many times.
//!
//! The recurrent weights of an RNN layer do not change during a pass, so they are packed once into
//! the micro-kernel's NR-wide panels and every time step's GEMM skips packing B altogether.

use super::driver::{self, BOperand};
use super::kernel::Kernel;
use super::pack::AlignedBuf;
use super::{MatMut, MatRef, check_gemm_shapes};
use crate::{Isa, Par};

/// B (`k × n`) packed once into the NR-wide column panels of one ISA's micro-kernel.
///
/// Layout: `ceil(n/NR)` panels, each the full depth `k`, panel `q` holding columns
/// `q·NR .. q·NR+NR` row by row (`data[q·k·NR + p·NR + j] = B[p, q·NR + j]`), the last panel padded
/// with zero columns. Any KC-deep slice of a panel is therefore contiguous, so the GEMM can block
/// k however it likes without repacking.
///
/// ```
/// use recur_kernels::gemm::{MatMut, MatRef, PackedB, sgemm_packed_b};
/// use recur_kernels::{Isa, Par};
///
/// let w = vec![1.0f32; 3 * 4]; // B is 3×4
/// let packed = PackedB::pack(Isa::active(), MatRef::row_major(&w, 3, 4));
/// let x = vec![2.0f32; 2 * 3]; // A is 2×3
/// let mut y = vec![f32::NAN; 2 * 4];
/// sgemm_packed_b(Par::Seq, 1.0, MatRef::row_major(&x, 2, 3), &packed, 0.0, MatMut::row_major(&mut y, 2, 4));
/// assert_eq!(y, vec![6.0; 8]);
/// ```
#[derive(Debug)]
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    nr: usize,
    data: AlignedBuf,
}

impl PackedB {
    /// Packs `b` (`k × n`, any strides) for `isa`'s micro-kernel.
    ///
    /// # Panics
    /// If this CPU cannot run `isa`.
    #[track_caller]
    pub fn pack(isa: Isa, b: MatRef) -> Self {
        let kernel = Kernel::for_isa(isa);
        let nr = kernel.nr;
        let (k, n) = (b.rows(), b.cols());
        let mut data = AlignedBuf::with_len(n.div_ceil(nr) * k * nr);
        (kernel.pack_b)(b, data.as_mut_slice(), k * nr);
        PackedB {
            isa,
            k,
            n,
            nr,
            data,
        }
    }

    /// Packs the columns of `b` in a chosen order: packed column `j` is column `order[j]` of `b`
    /// (so the packed matrix is `k × order.len()`). The fused cells use it to interleave gates:
    /// one tile of the packed B then holds the same hidden units of every gate. Panels whose
    /// source columns are consecutive are packed by the fast path; others are gathered.
    ///
    /// # Panics
    /// If this CPU cannot run `isa`, or an entry of `order` is not a column of `b`.
    #[track_caller]
    #[allow(dead_code)] // the seam for the fused cells (kernels/src/cells); tested here
    pub(crate) fn pack_column_order(isa: Isa, b: MatRef, order: &[usize]) -> Self {
        let kernel = Kernel::for_isa(isa);
        let nr = kernel.nr;
        let (k, n) = (b.rows(), order.len());
        if let Some(&bad) = order.iter().find(|&&j| j >= b.cols()) {
            column_out_of_range(bad, b.cols());
        }
        let panel_stride = k * nr;
        let mut data = AlignedBuf::with_len(n.div_ceil(nr) * panel_stride);
        let dst = data.as_mut_slice();
        for (q, sources) in order.chunks(nr).enumerate() {
            let panel = &mut dst[q * panel_stride..(q + 1) * panel_stride];
            let consecutive = sources.windows(2).all(|w| w[1] == w[0] + 1);
            if consecutive {
                (kernel.pack_b)(
                    b.submatrix(0, sources[0], k, sources.len()),
                    panel,
                    panel_stride,
                );
            } else {
                for (p, row) in panel.chunks_exact_mut(nr).enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = sources.get(j).map_or(0.0, |&src| b.get(p, src));
                    }
                }
            }
        }
        PackedB {
            isa,
            k,
            n,
            nr,
            data,
        }
    }

    /// Rows of B (the reduction depth).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The ISA whose micro-kernel the panels are laid out for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Panel width: the micro-kernel's NR (16 on AVX2, 32 on AVX-512). Tiles of
    /// `gemm::tiles::packed_b_tiles` (crate-internal) are multiples of it.
    pub fn panel_width(&self) -> usize {
        self.nr
    }

    /// Floats between the starts of consecutive panels (`k·NR`).
    pub(crate) fn panel_stride(&self) -> usize {
        self.k * self.nr
    }

    /// The panels (see the type's docs for the layout).
    pub(crate) fn data(&self) -> &[f32] {
        self.data.as_slice()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn column_out_of_range(column: usize, cols: usize) -> ! {
    panic!("column order names column {column}, but B has {cols} columns")
}

/// `C ← α·A·B + β·C` with B pre-packed, on the ISA `b` was packed for. If `β = 0`, C is not read.
///
/// # Panics
/// If `A` is not `m × b.k()` or `C` is not `m × b.n()`.
#[track_caller]
pub fn sgemm_packed_b(par: Par, alpha: f32, a: MatRef, b: &PackedB, beta: f32, c: MatMut) {
    check_gemm_shapes(&a, b.k(), b.n(), &c);
    let kernel = Kernel::for_isa(b.isa());
    debug_assert_eq!(kernel.nr, b.panel_width());
    driver::gemm(&kernel, par, alpha, a, BOperand::Packed(b), beta, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_order_packs_the_permuted_matrix() {
        let (k, n) = (5, 70);
        let b: Vec<f32> = (0..k * n).map(|x| x as f32).collect();
        let b = MatRef::row_major(&b, k, n);
        for isa in Isa::available() {
            // Gate-interleaving-like order (blocks of 16 from 4 "gates" of 16 columns), then a
            // scrambled tail that takes the gather path.
            let mut order: Vec<usize> = (0..4)
                .flat_map(|g| (0..16).map(move |j| g * 16 + j))
                .collect();
            order.extend([69, 3, 64, 65, 0]);
            let permuted: Vec<f32> = (0..k)
                .flat_map(|p| order.iter().map(move |&j| (p * n + j) as f32))
                .collect();
            let direct = PackedB::pack(isa, MatRef::row_major(&permuted, k, order.len()));
            let reordered = PackedB::pack_column_order(isa, b, &order);
            assert_eq!((reordered.k(), reordered.n()), (k, order.len()));
            assert_eq!(direct.data(), reordered.data(), "{isa}");
        }
    }

    #[test]
    #[should_panic(expected = "column order names column 9")]
    fn column_order_out_of_range_panics() {
        let b = [0.0f32; 6];
        PackedB::pack_column_order(Isa::Scalar, MatRef::row_major(&b, 2, 3), &[0, 9]);
    }
}
