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

/// Packs the `m × k` block `a` into `ceil(m/mr)` row panels: panel `r` holds rows `r·mr ..`, stored
/// column by column (`dst[r·mr·k + p·mr + i] = a[r·mr + i, p]`), rows past `m` zero.
pub(crate) fn pack_a(a: MatRef, mr: usize, dst: &mut [f32]) {
    let (m, k) = (a.rows(), a.cols());
    let panels = m.div_ceil(mr);
    let dst = &mut dst[..panels * mr * k];
    for (r, panel) in dst.chunks_exact_mut(mr * k).enumerate() {
        let row0 = r * mr;
        let rows = mr.min(m - row0);
        if a.row_stride() == 1 && rows == mr {
            // Column-major source (e.g. a transposed operand): each panel column is contiguous.
            for (p, dst_col) in panel.chunks_exact_mut(mr).enumerate() {
                let col = a.contiguous_col(p).expect("row stride is 1");
                dst_col.copy_from_slice(&col[row0..row0 + mr]);
            }
            continue;
        }
        for i in 0..mr {
            if i >= rows {
                for p in 0..k {
                    panel[p * mr + i] = 0.0;
                }
            } else if let Some(row) = a.contiguous_row(row0 + i) {
                for (p, &x) in row.iter().enumerate() {
                    panel[p * mr + i] = x;
                }
            } else {
                for p in 0..k {
                    panel[p * mr + i] = a.get(row0 + i, p);
                }
            }
        }
    }
}

/// Packs the `k × n` block `b` into `ceil(n/nr)` column panels, panel `q` starting at
/// `q·panel_stride` (`panel_stride ≥ k·nr`) and stored row by row
/// (`dst[q·panel_stride + p·nr + j] = b[p, q·nr + j]`), columns past `n` zero.
pub(crate) fn pack_b(b: MatRef, nr: usize, dst: &mut [f32], panel_stride: usize) {
    let (k, n) = (b.rows(), b.cols());
    debug_assert!(panel_stride >= k * nr);
    for q in 0..n.div_ceil(nr) {
        let col0 = q * nr;
        let cols = nr.min(n - col0);
        let panel = &mut dst[q * panel_stride..q * panel_stride + k * nr];
        for (p, dst_row) in panel.chunks_exact_mut(nr).enumerate() {
            if let Some(row) = b.contiguous_row(p) {
                dst_row[..cols].copy_from_slice(&row[col0..col0 + cols]);
            } else {
                for j in 0..cols {
                    dst_row[j] = b.get(p, col0 + j);
                }
            }
            dst_row[cols..].fill(0.0);
        }
    }
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
        pack_a(a, 2, &mut dst);
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
        pack_a(MatRef::row_major(&data_t, 3, 5).t(), 2, &mut dst_t);
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
        pack_b(b, 4, &mut dst, 10);
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
        pack_b(MatRef::row_major(&data_t, 5, 2).t(), 4, &mut dst_t, 10);
        assert_eq!(dst_t, expected);
    }
}
