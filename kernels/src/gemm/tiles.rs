//! Tile-by-tile products with a caller's epilogue: the seam the fused RNN cells drive.
//!
//! A recurrent step computes `G = h_{t−1}·W_hhᵀ` (B × G·H) and then applies the cell's elementwise
//! update to it. Instead of writing `G` to memory and reading it back, [`packed_b_tiles`] computes
//! `A·B` (B pre-packed) one `rows × tile_cols` tile at a time, with the same micro-kernel and loops
//! as [`sgemm_packed_b`](super::sgemm_packed_b), and hands each finished tile — all of k summed,
//! still hot in L1/L2 — to the caller's epilogue. With B packed by [`PackedB::pack_column_order`]
//! so that one tile's columns are the same hidden units of every gate (gate-interleaved), the
//! epilogue has everything it needs to finish those units: add the hoisted input projection,
//! apply σ/tanh, update c and h.
//!
//! Tiles are fixed by the shape (never by the thread count) and each tile's k reduction runs on
//! one thread in one order, so tile values are bit-identical for every [`Par`], and equal to what
//! `sgemm_packed_b(par, 1.0, a, b, 0.0, c)` writes.

use std::cell::RefCell;

use super::driver::{SendPtr, run_chunks, with_scratch};
use super::kernel::{Kernel, MacroArgs};
use super::pack::AlignedBuf;
use super::{MatRef, PackedB};
use crate::Par;

/// One finished tile of the product `A·B`: rows `row0 .. row0+rows`, (packed-order) columns
/// `col0 .. col0+cols`, element `(i, j)` of the tile at `values[i·stride + j]`.
#[derive(Debug)]
#[allow(dead_code)] // fields read by the fused cells' epilogues
pub(crate) struct ProductTile<'t> {
    pub row0: usize,
    pub col0: usize,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
    pub values: &'t [f32],
}

impl ProductTile<'_> {
    /// Row `i` of the tile (`cols` values).
    #[allow(dead_code)] // used by the fused cells' epilogues
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.stride..i * self.stride + self.cols]
    }
}

thread_local! {
    /// This thread's A packed to full depth (shared read-only by the tile tasks).
    static A_FULL: RefCell<AlignedBuf> = RefCell::default();
    /// This thread's product tile.
    static TILE: RefCell<AlignedBuf> = RefCell::default();
}

/// Computes `A·B` for `A` (m × k) and pre-packed `B` (k × n), tile by tile, calling
/// `epilogue(tile)` once per tile. Tiles are up to `MC` rows (the kernel's IC block) by
/// `tile_cols` columns; `tile_cols` must be a multiple of `b`'s panel width
/// ([`PackedB::panel_width`]), and only the last column group may be narrower.
///
/// Epilogues of different tiles may run concurrently on different threads (`Par::Rayon`), in any
/// order; each tile is delivered exactly once.
///
/// # Panics
/// If `A` is not `m × b.k()`, or `tile_cols` is zero or not a multiple of the panel width.
#[track_caller]
#[allow(dead_code)] // the seam for the fused cells (kernels/src/cells); tested below
pub(crate) fn packed_b_tiles<E>(par: Par, a: MatRef, b: &PackedB, tile_cols: usize, epilogue: E)
where
    E: Fn(ProductTile<'_>) + Sync,
{
    let kernel = Kernel::for_isa(b.isa());
    let (m, k, n) = (a.rows(), a.cols(), b.n());
    let nr = kernel.nr;
    if a.cols() != b.k() || tile_cols == 0 || !tile_cols.is_multiple_of(nr) {
        tile_shape_mismatch((a.rows(), a.cols()), (b.k(), b.n()), tile_cols, nr);
    }
    if m == 0 || n == 0 {
        return;
    }
    let mr = kernel.mr;
    let row_blocks = m.div_ceil(kernel.mc);
    let col_groups = n.div_ceil(tile_cols);
    let tile_len = kernel.mc.min(m) * tile_cols;
    // Pack all of A to full depth once: panels of MR rows × k, so the KC slab at `pc` of a panel
    // starts at `panel + pc·MR` (see README.md).
    let a_panel_stride = mr * k;
    with_scratch(&A_FULL, m.next_multiple_of(mr) * k, |a_packed| {
        (kernel.pack_a)(a, a_packed);
        let a_packed = SendPtr(a_packed.as_mut_ptr());
        run_chunks(par, row_blocks * col_groups, |unit| {
            // Units are row-block-major so concurrent tasks share the rows of packed A.
            let (block, group) = (unit / col_groups, unit % col_groups);
            let (row0, col0) = (block * kernel.mc, group * tile_cols);
            let rows = kernel.mc.min(m - row0);
            let cols = tile_cols.min(n - col0);
            with_scratch(&TILE, tile_len, |tile| {
                if k == 0 {
                    tile[..rows * tile_cols].fill(0.0);
                }
                // LOOP 4 (PC): the whole k reduction of this tile, in order, on this thread.
                for pc in (0..k).step_by(kernel.kc) {
                    let kc = kernel.kc.min(k - pc);
                    let args = MacroArgs {
                        mc: rows,
                        nc: cols,
                        kc,
                        alpha: 1.0,
                        beta: if pc == 0 { 0.0 } else { 1.0 },
                        // SAFETY: row0 < m and pc < k: inside the packed A (panel row0/MR).
                        a: unsafe { a_packed.get().add((row0 / mr) * a_panel_stride + pc * mr) },
                        a_panel_stride,
                        b: b.data()[(col0 / nr) * b.panel_stride() + pc * nr..].as_ptr(),
                        b_panel_stride: b.panel_stride(),
                        c: tile.as_mut_ptr(),
                        rs_c: tile_cols,
                        cs_c: 1,
                    };
                    // SAFETY: A packed above for this kernel, B packed for it (same ISA); the
                    // tile scratch holds rows × tile_cols ≥ rows × cols floats, this task's own.
                    unsafe { kernel.run_macro(&args) };
                }
                epilogue(ProductTile {
                    row0,
                    col0,
                    rows,
                    cols,
                    stride: tile_cols,
                    values: &tile[..(rows - 1) * tile_cols + cols],
                });
            });
        });
    });
}

#[cold]
#[inline(never)]
#[track_caller]
fn tile_shape_mismatch(a: (usize, usize), b: (usize, usize), tile_cols: usize, nr: usize) -> ! {
    panic!(
        "tiled GEMM misuse: expected A (m×k) · packed B (k×n) and tile_cols a positive multiple \
         of the panel width {nr}; found A {}×{}, B {}×{}, tile_cols {tile_cols}",
        a.0, a.1, b.0, b.1
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;
    use crate::gemm::{MatMut, sgemm_packed_b};
    use std::sync::Mutex;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 997.0 - 0.5)
            .collect()
    }

    /// Tiles reassembled equal `sgemm_packed_b(α = 1, β = 0)` bit for bit, on every ISA and for
    /// Seq and two threads, and every tile is delivered once.
    #[test]
    fn tiles_reassemble_to_the_packed_product() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for isa in Isa::available() {
            let nr = Kernel::for_isa(isa).nr;
            for &(m, n, k) in &[
                (64, 200, 70),
                (1, 40, 5),
                (130, 3 * nr, 600),
                (7, 2 * nr, 0),
            ] {
                let a = values(m * k, 1);
                let b = values(k * n, 2);
                let a = MatRef::row_major(&a, m, k);
                let packed = PackedB::pack(isa, MatRef::row_major(&b, k, n));
                let mut expected = vec![f32::NAN; m * n];
                sgemm_packed_b(
                    Par::Seq,
                    1.0,
                    a,
                    &packed,
                    0.0,
                    MatMut::row_major(&mut expected, m, n),
                );
                for par in [Par::Seq, Par::Rayon(2)] {
                    let got = Mutex::new(vec![f32::NAN; m * n]);
                    let delivered = Mutex::new(0usize);
                    pool.install(|| {
                        packed_b_tiles(par, a, &packed, 2 * nr, |tile| {
                            let mut got = got.lock().unwrap();
                            for i in 0..tile.rows {
                                let row = (tile.row0 + i) * n + tile.col0;
                                got[row..row + tile.cols].copy_from_slice(tile.row(i));
                            }
                            *delivered.lock().unwrap() += tile.rows * tile.cols;
                        })
                    });
                    let got = got.into_inner().unwrap();
                    assert_eq!(delivered.into_inner().unwrap(), m * n, "{isa} {par:?}");
                    assert!(
                        got.iter()
                            .zip(&expected)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{isa} {par:?} {m}×{n}×{k}: tiles differ from sgemm_packed_b"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "tiled GEMM misuse")]
    fn tile_width_must_be_a_multiple_of_the_panel() {
        let b = vec![0.0; 4 * 40];
        let packed = PackedB::pack(Isa::Scalar, MatRef::row_major(&b, 4, 40));
        let a = vec![0.0; 8];
        packed_b_tiles(Par::Seq, MatRef::row_major(&a, 2, 4), &packed, 17, |_| {});
    }
}
