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

    /// Panel width (the kernel's NR).
    pub(crate) fn nr(&self) -> usize {
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

/// `C ← α·A·B + β·C` with B pre-packed, on the ISA `b` was packed for. If `β = 0`, C is not read.
///
/// # Panics
/// If `A` is not `m × b.k()` or `C` is not `m × b.n()`.
#[track_caller]
pub fn sgemm_packed_b(par: Par, alpha: f32, a: MatRef, b: &PackedB, beta: f32, c: MatMut) {
    check_gemm_shapes(&a, b.k(), b.n(), &c);
    let kernel = Kernel::for_isa(b.isa());
    debug_assert_eq!(kernel.nr, b.nr());
    driver::gemm(&kernel, par, alpha, a, BOperand::Packed(b), beta, c);
}
