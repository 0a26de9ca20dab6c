//! Packing: copying blocks of A and B into the panel order the micro-kernel reads sequentially
//! (see README.md in this folder for the layout drawn out). Partial panels are zero-padded, so the
//! micro-kernel always runs its full `MR × NR` tile and only the store is trimmed.

use super::MatRef;
use crate::simd::Portable;

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
/// (`dst[q·panel_stride + p·NR + j] = b[p, q·NR + j]`), columns past `n` zero. Portable code;
/// [`pack_b_x86`] is the same packing with vector transposes.
///
/// # Panics
/// If `dst` is too short for the last panel.
pub(crate) fn pack_b<const NR: usize>(b: MatRef, dst: &mut [f32], panel_stride: usize) {
    // SAFETY: `Portable` uses no CPU-specific instructions.
    unsafe { pack_b_body::<Portable, NR>(b, dst, panel_stride) }
}

/// [`pack_b`] with AVX 8×8 register transposes for column-major sources (a transposed view, such
/// as the decoder's `Wᵀ`); the portable code on a CPU without AVX2.
///
/// # Panics
/// If `dst` is too short for the last panel.
#[cfg(target_arch = "x86_64")]
pub(crate) fn pack_b_x86<const NR: usize>(b: MatRef, dst: &mut [f32], panel_stride: usize) {
    if crate::Isa::Avx2.is_available() {
        // SAFETY: the CPU runs AVX2 (checked just above).
        unsafe { pack_b_avx2::<NR>(b, dst, panel_stride) }
    } else {
        pack_b::<NR>(b, dst, panel_stride);
    }
}

/// # Safety
/// The CPU runs AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_b_avx2<const NR: usize>(b: MatRef, dst: &mut [f32], panel_stride: usize) {
    // SAFETY: forwarded (the CPU runs AVX2).
    unsafe { pack_b_body::<crate::simd::Avx2, NR>(b, dst, panel_stride) }
}

/// The body of [`pack_b`], written once; `T` supplies the 8×8 transpose.
///
/// # Safety
/// The CPU runs `T`'s instructions.
#[inline(always)]
unsafe fn pack_b_body<T: Transpose8, const NR: usize>(
    b: MatRef,
    dst: &mut [f32],
    panel_stride: usize,
) {
    let (k, n) = (b.rows(), b.cols());
    let (rs, cs) = (b.row_stride(), b.col_stride());
    assert!(panel_stride >= k * NR);
    // Rows of a column-major source handled by 8×8 transposes; the rest one by one.
    let k8 = if NR.is_multiple_of(8) { k - k % 8 } else { 0 };
    for q in 0..n.div_ceil(NR) {
        let col0 = q * NR;
        let cols = NR.min(n - col0);
        let panel: &mut [[f32; NR]] =
            as_rows_mut(&mut dst[q * panel_stride..q * panel_stride + k * NR]);
        // SAFETY: every read is of an element (p, col0 + j) with p < k and j < cols ≤ n − col0,
        // which `MatRef::new` checked to lie inside the view's slice; every write is inside
        // `panel` (k rows of NR); the caller guarantees the CPU runs `T`.
        unsafe {
            let base = b.as_ptr().add(col0 * cs);
            if cols == NR && cs == 1 {
                for (p, row) in panel.iter_mut().enumerate() {
                    *row = base.add(p * rs).cast::<[f32; NR]>().read_unaligned();
                }
            } else if cols == NR && rs == 1 && k8 > 0 {
                // Column-major source: 8 columns × 8 rows at a time, each column a contiguous
                // run, transposed into 8 panel rows.
                let out = panel.as_mut_ptr().cast::<f32>();
                for p0 in (0..k8).step_by(8) {
                    for j0 in (0..NR).step_by(8) {
                        T::transpose8(base.add(j0 * cs + p0), cs, out.add(p0 * NR + j0), NR);
                    }
                }
                for (p, row) in panel.iter_mut().enumerate().skip(k8) {
                    *row = std::array::from_fn(|j| *base.add(p + j * cs));
                }
            } else if cs == 1 {
                // A partial panel of a row-major source: copy what there is, zero the rest.
                for (p, row) in panel.iter_mut().enumerate() {
                    let src = std::slice::from_raw_parts(base.add(p * rs), cols);
                    row[..cols].copy_from_slice(src);
                    row[cols..].fill(0.0);
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

/// An 8×8 transposing copy, the one ISA-specific step of [`pack_b_body`].
trait Transpose8 {
    /// `dst[i·dst_stride + j] = src[j·src_stride + i]` for `i, j < 8`.
    ///
    /// # Safety
    /// Rows `j < 8` of 8 floats at `src + j·src_stride` are readable, rows `i < 8` of 8 floats at
    /// `dst + i·dst_stride` writable (not overlapping the source), and the CPU runs the
    /// implementor's instructions.
    unsafe fn transpose8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize);
}

impl Transpose8 for Portable {
    #[inline(always)]
    unsafe fn transpose8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        for j in 0..8 {
            for i in 0..8 {
                // SAFETY: both offsets are inside the blocks the caller vouches for.
                unsafe { *dst.add(i * dst_stride + j) = *src.add(j * src_stride + i) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Transpose8 for crate::simd::Avx2 {
    #[inline(always)]
    unsafe fn transpose8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX2 and the 8 readable source and 8 writable
        // destination rows of 8 floats.
        unsafe {
            let row = |j: usize| src.add(j * src_stride);
            let (a, b) = (_mm256_loadu_ps(row(0)), _mm256_loadu_ps(row(1)));
            let (c, d) = (_mm256_loadu_ps(row(2)), _mm256_loadu_ps(row(3)));
            let (e, f) = (_mm256_loadu_ps(row(4)), _mm256_loadu_ps(row(5)));
            let (g, h) = (_mm256_loadu_ps(row(6)), _mm256_loadu_ps(row(7)));
            // Pairs: ab_lo = (a0 b0 a1 b1 | a4 b4 a5 b5), ab_hi = (a2 b2 a3 b3 | a6 b6 a7 b7), …
            let (ab_lo, ab_hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
            let (cd_lo, cd_hi) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
            let (ef_lo, ef_hi) = (_mm256_unpacklo_ps(e, f), _mm256_unpackhi_ps(e, f));
            let (gh_lo, gh_hi) = (_mm256_unpacklo_ps(g, h), _mm256_unpackhi_ps(g, h));
            // Quads: abcd[i] = (ai bi ci di | ai+4 bi+4 ci+4 di+4) for i < 4; efgh likewise.
            let abcd = [
                _mm256_shuffle_ps::<0x44>(ab_lo, cd_lo),
                _mm256_shuffle_ps::<0xee>(ab_lo, cd_lo),
                _mm256_shuffle_ps::<0x44>(ab_hi, cd_hi),
                _mm256_shuffle_ps::<0xee>(ab_hi, cd_hi),
            ];
            let efgh = [
                _mm256_shuffle_ps::<0x44>(ef_lo, gh_lo),
                _mm256_shuffle_ps::<0xee>(ef_lo, gh_lo),
                _mm256_shuffle_ps::<0x44>(ef_hi, gh_hi),
                _mm256_shuffle_ps::<0xee>(ef_hi, gh_hi),
            ];
            // Output row i < 4: the low halves of abcd[i] and efgh[i]; row i + 4: the high ones.
            for i in 0..4 {
                let low = _mm256_permute2f128_ps::<0x20>(abcd[i], efgh[i]);
                let high = _mm256_permute2f128_ps::<0x31>(abcd[i], efgh[i]);
                _mm256_storeu_ps(dst.add(i * dst_stride), low);
                _mm256_storeu_ps(dst.add((i + 4) * dst_stride), high);
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

    /// `pack_b`'s layout, written out from the definition, for any view.
    fn pack_b_reference(b: MatRef, nr: usize, panel_stride: usize, fill: f32) -> Vec<f32> {
        let (k, n) = (b.rows(), b.cols());
        let mut dst = vec![fill; n.div_ceil(nr) * panel_stride];
        for q in 0..n.div_ceil(nr) {
            for p in 0..k {
                for j in 0..nr {
                    let col = q * nr + j;
                    dst[q * panel_stride + p * nr + j] = if col < n { b.get(p, col) } else { 0.0 };
                }
            }
        }
        dst
    }

    /// Every branch of `pack_b` (row-major full and partial panels, the column-major 8×8
    /// transposes with their row tail, general strides) on the portable and x86 packers, for
    /// both panel widths, against the layout's definition.
    #[test]
    fn pack_b_every_source_layout_matches_the_definition() {
        type Packer = fn(MatRef, &mut [f32], usize);
        let mut packers: Vec<(&str, usize, Packer)> = vec![
            ("portable 16", 16, pack_b::<16>),
            ("portable 32", 32, pack_b::<32>),
        ];
        #[cfg(target_arch = "x86_64")]
        if crate::Isa::Avx2.is_available() {
            packers.push(("x86 16", 16, pack_b_x86::<16>));
            packers.push(("x86 32", 32, pack_b_x86::<32>));
        } else {
            println!("skipping the x86 packers: this CPU has no AVX2");
        }
        for k in [1, 7, 8, 9, 16, 23, 150] {
            for n in [1, 15, 16, 17, 40, 70] {
                // Row-major, column-major (tight and with a padded leading dimension), and a
                // general-stride view.
                let layouts = [(n, 1), (1, k), (1, k + 3), (2, 2 * k + 1)];
                for (rs, cs) in layouts {
                    let len = (k - 1) * rs + (n - 1) * cs + 1;
                    let data: Vec<f32> = (0..len).map(|x| x as f32 * 0.5 - 7.0).collect();
                    let b = MatRef::new(&data, k, n, rs, cs);
                    for &(name, nr, pack) in &packers {
                        let panel_stride = k * nr + 5;
                        let mut dst = vec![-1.0; n.div_ceil(nr) * panel_stride];
                        pack(b, &mut dst, panel_stride);
                        let expected = pack_b_reference(b, nr, panel_stride, -1.0);
                        assert_eq!(dst, expected, "{name}: k {k}, n {n}, strides ({rs}, {cs})");
                    }
                }
            }
        }
    }
}
