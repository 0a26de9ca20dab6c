//! Column sums of a block of rows for the weight gradients that are sums of `δ` rows: a bias
//! gradient (`Σ_r δ[r]`) and, for a one-hot input, the used rows of the input-weight gradient
//! table (`table[ids[r]] += δ[r]`). One pass over the rows does both, in row order, so every
//! element is summed in the order a plain loop would use (the same bits on every ISA).

use super::step::{check_len, load_n, store_n};
use crate::Isa;
use crate::simd::{Portable, Simd};

/// `sum += Σ_r src[r]` and, with `table = Some((table, table_stride, ids))`,
/// `table[ids[r]·table_stride ..][..width] += src[r]` for every row `r < rows`, where row `r` of
/// `src` is `src[r·src_stride ..][..width]`. Rows are added in order, each element with one
/// rounding per row: bit-identical to the scalar loop on every ISA.
///
/// # Panics
/// If a buffer is shorter than its shape, `ids` has fewer than `rows` ids, or an id's table row
/// lies past the table (kernel API misuse).
pub fn accumulate_rows(
    isa: Isa,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    width: usize,
    sum: &mut [f32],
    table: Option<(&mut [f32], usize, &[u32])>,
) {
    if rows == 0 || width == 0 {
        return;
    }
    check_len(
        "src (rows, width)",
        (rows - 1) * src_stride + width,
        src.len(),
    );
    check_len("sum (width)", width, sum.len());
    let (table_ptr, table_stride, ids) = match table {
        Some((table, stride, ids)) => {
            check_len("ids (rows)", rows, ids.len());
            let ids = &ids[..rows];
            let top = ids.iter().copied().max().map_or(0, |id| id as usize);
            check_len("table (max id + 1 rows)", top * stride + width, table.len());
            (table.as_mut_ptr(), stride, ids.as_ptr())
        }
        None => (std::ptr::null_mut(), 0, std::ptr::null()),
    };
    let args = SumArgs {
        src: src.as_ptr(),
        src_stride,
        rows,
        width,
        sum: sum.as_mut_ptr(),
        table: table_ptr,
        table_stride,
        ids,
    };
    // SAFETY: every pointer covers its shape (checked above; a table covers every id's row), and
    // the ISA was clamped to what the host runs.
    unsafe {
        match isa.clamp_to_host() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::sums_avx2(&args),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::sums_avx512(&args),
            _ => sums_portable(&args),
        }
    }
}

struct SumArgs {
    src: *const f32,
    src_stride: usize,
    rows: usize,
    width: usize,
    sum: *mut f32,
    /// Null: no table.
    table: *mut f32,
    table_stride: usize,
    ids: *const u32,
}

/// Column groups of this many vectors keep their running sums in registers across the rows.
const GROUP: usize = 4;

/// # Safety
/// `a` satisfies the shapes checked by [`accumulate_rows`]; the CPU runs `S`.
#[inline(always)]
unsafe fn sums_body<S: Simd>(a: &SumArgs) {
    let l = S::LANES;
    let mut j0 = 0;
    while j0 < a.width {
        let cols = (a.width - j0).min(GROUP * l);
        let lanes = |v: usize| cols.saturating_sub(v * l).min(l);
        // SAFETY: `j0 + cols ≤ width` and `r < rows`: inside every checked buffer; a vector
        // with `lanes(v) = 0` is never touched.
        unsafe {
            let mut acc = [S::zero(); GROUP];
            for (v, acc) in acc.iter_mut().enumerate() {
                if lanes(v) > 0 {
                    *acc = load_n::<S>(a.sum.add(j0 + v * l), lanes(v));
                }
            }
            for r in 0..a.rows {
                let src = a.src.add(r * a.src_stride + j0);
                let table = if a.table.is_null() {
                    a.table
                } else {
                    a.table.add(*a.ids.add(r) as usize * a.table_stride + j0)
                };
                for (v, acc) in acc.iter_mut().enumerate() {
                    let n = lanes(v);
                    if n == 0 {
                        break;
                    }
                    let x = load_n::<S>(src.add(v * l), n);
                    *acc = S::add(*acc, x);
                    if !table.is_null() {
                        let t = table.add(v * l);
                        store_n::<S>(t, S::add(load_n::<S>(t, n), x), n);
                    }
                }
            }
            for (v, acc) in acc.iter().enumerate() {
                if lanes(v) > 0 {
                    store_n::<S>(a.sum.add(j0 + v * l), *acc, lanes(v));
                }
            }
        }
        j0 += cols;
    }
}

/// # Safety
/// As [`sums_body`] with `S = Portable`.
unsafe fn sums_portable(a: &SumArgs) {
    // SAFETY: forwarded contract.
    unsafe { sums_body::<Portable>(a) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::simd::{Avx2, Avx512};

    /// # Safety
    /// As [`sums_body`]; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sums_avx2(a: &SumArgs) {
        // SAFETY: forwarded contract.
        unsafe { sums_body::<Avx2>(a) }
    }

    /// # Safety
    /// As [`sums_body`]; the CPU has AVX-512F/BW/VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn sums_avx512(a: &SumArgs) {
        // SAFETY: forwarded contract.
        unsafe { sums_body::<Avx512>(a) }
    }
}
