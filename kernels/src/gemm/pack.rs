//! Packing: copying blocks of A and B into the panel order the micro-kernel reads sequentially
//! (see README.md in this folder for the layout drawn out). Partial panels are zero-padded, so the
//! micro-kernel always runs its full `MR × NR` tile and only the store is trimmed.

use super::MatRef;

/// A 64-byte-aligned, growable f32 buffer (packed panels start on cache lines).
#[derive(Default, Debug)]
pub(crate) struct AlignedBuf {
    lines: Vec<CacheLine>,
}

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

impl AlignedBuf {
    /// A buffer of at least `len` floats (contents unspecified: packing overwrites them).
    pub fn with_len(len: usize) -> Self {
        let mut buf = AlignedBuf::default();
        buf.ensure_len(len);
        buf
    }

    /// Grows the buffer to at least `len` floats.
    pub fn ensure_len(&mut self, len: usize) {
        let lines = len.div_ceil(16);
        if self.lines.len() < lines {
            self.lines.resize(lines, CacheLine([0.0; 16]));
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `CacheLine` is `repr(C)` around `[f32; 16]` with no padding (64 bytes), so the
        // vector is `16·len` initialised, contiguous floats.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.lines.len() * 16) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe {
            std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.lines.len() * 16)
        }
    }
}

/// Packs the `m × k` block `a` into `ceil(m/MR)` row panels: panel `r` holds rows `r·MR ..`, stored
/// column by column (`dst[r·MR·k + p·MR + i] = a[r·MR + i, p]`), rows past `m` zero.
///
/// # Panics
/// If `dst` holds fewer than `ceil(m/MR)·MR·k` floats.
pub(crate) fn pack_a<const MR: usize>(a: MatRef, dst: &mut [f32]) {
    let (m, k) = (a.rows(), a.cols());
    let (rs, cs) = (a.row_stride(), a.col_stride());
    if k == 0 {
        return;
    }
    let dst = &mut dst[..m.div_ceil(MR) * MR * k];
    for (r, panel) in dst.chunks_exact_mut(MR * k).enumerate() {
        let row0 = r * MR;
        let rows = MR.min(m - row0);
        let panel: &mut [[f32; MR]] = as_rows_mut(panel);
        if rows < MR {
            panel.iter_mut().for_each(|column| *column = [0.0; MR]);
        }
        // SAFETY: every read is of an element (row0 + i, p) with i < rows ≤ m − row0 and p < k,
        // which `MatRef::new` checked to lie inside the view's slice.
        unsafe {
            let base = a.as_ptr().add(row0 * rs);
            if rows == MR && rs == 1 {
                // Column-major source (a transposed operand): each panel column is contiguous.
                for (p, column) in panel.iter_mut().enumerate() {
                    *column = base.add(p * cs).cast::<[f32; MR]>().read_unaligned();
                }
            } else if rows == MR {
                for (p, column) in panel.iter_mut().enumerate() {
                    let src = base.add(p * cs);
                    *column = std::array::from_fn(|i| *src.add(i * rs));
                }
            } else {
                for (p, column) in panel.iter_mut().enumerate() {
                    let src = base.add(p * cs);
                    for (i, x) in column.iter_mut().enumerate().take(rows) {
                        *x = *src.add(i * rs);
                    }
                }
            }
        }
    }
}

/// Packs the `k × n` block `b` into `ceil(n/NR)` column panels, panel `q` starting at
/// `q·panel_stride` (`panel_stride ≥ k·NR`) and stored row by row
/// (`dst[q·panel_stride + p·NR + j] = b[p, q·NR + j]`), columns past `n` zero.
///
/// # Panics
/// If `dst` is too short for the last panel.
pub(crate) fn pack_b<const NR: usize>(b: MatRef, dst: &mut [f32], panel_stride: usize) {
    let (k, n) = (b.rows(), b.cols());
    let (rs, cs) = (b.row_stride(), b.col_stride());
    assert!(panel_stride >= k * NR);
    for q in 0..n.div_ceil(NR) {
        let col0 = q * NR;
        let cols = NR.min(n - col0);
        let panel: &mut [[f32; NR]] =
            as_rows_mut(&mut dst[q * panel_stride..q * panel_stride + k * NR]);
        // SAFETY: every read is of an element (p, col0 + j) with p < k and j < cols ≤ n − col0,
        // which `MatRef::new` checked to lie inside the view's slice.
        unsafe {
            let base = b.as_ptr().add(col0 * cs);
            if cols == NR && cs == 1 {
                for (p, row) in panel.iter_mut().enumerate() {
                    *row = base.add(p * rs).cast::<[f32; NR]>().read_unaligned();
                }
            } else {
                for (p, row) in panel.iter_mut().enumerate() {
                    let src = base.add(p * rs);
                    *row = std::array::from_fn(|j| if j < cols { *src.add(j * cs) } else { 0.0 });
                }
            }
        }
    }
}

/// Views a slice whose length is a multiple of `N` as rows of `N` floats.
fn as_rows_mut<const N: usize>(slice: &mut [f32]) -> &mut [[f32; N]] {
    let (rows, rest) = slice.as_chunks_mut::<N>();
    debug_assert!(rest.is_empty());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_a_layout() {
        // a is 5×3, a[i,p] = 10·i + p; mr = 2 → 3 panels, the last padded with a zero row.
        let data: Vec<f32> = (0..5)
            .flat_map(|i| (0..3).map(move |p| (10 * i + p) as f32))
            .collect();
        let a = MatRef::row_major(&data, 5, 3);
        let mut dst = vec![f32::NAN; 18];
        pack_a::<2>(a, &mut dst);
        #[rustfmt::skip]
        let expected = [
            0., 10., 1., 11., 2., 12.,
            20., 30., 21., 31., 22., 32.,
            40., 0., 41., 0., 42., 0.,
        ];
        assert_eq!(dst, expected);
        // The same block read through a transposed (column-major) view packs identically.
        let data_t: Vec<f32> = (0..3)
            .flat_map(|p| (0..5).map(move |i| (10 * i + p) as f32))
            .collect();
        let mut dst_t = vec![f32::NAN; 18];
        pack_a::<2>(MatRef::row_major(&data_t, 3, 5).t(), &mut dst_t);
        assert_eq!(dst_t, expected);
    }

    #[test]
    fn pack_b_layout() {
        // b is 2×5, b[p,j] = 10·p + j; nr = 4 → 2 panels of 2×4, stride 10 (gaps untouched).
        let data: Vec<f32> = (0..2)
            .flat_map(|p| (0..5).map(move |j| (10 * p + j) as f32))
            .collect();
        let b = MatRef::row_major(&data, 2, 5);
        let mut dst = vec![-1.0; 20];
        pack_b::<4>(b, &mut dst, 10);
        #[rustfmt::skip]
        let expected = [
            0., 1., 2., 3., 10., 11., 12., 13., -1., -1.,
            4., 0., 0., 0., 14., 0., 0., 0., -1., -1.,
        ];
        assert_eq!(dst, expected);
        let mut dst_t = vec![-1.0; 20];
        let data_t: Vec<f32> = (0..5)
            .flat_map(|j| (0..2).map(move |p| (10 * p + j) as f32))
            .collect();
        pack_b::<4>(MatRef::row_major(&data_t, 5, 2).t(), &mut dst_t, 10);
        assert_eq!(dst_t, expected);
    }
}
