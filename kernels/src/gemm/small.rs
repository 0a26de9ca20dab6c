//! Small-M products that pack nothing: the decoder's `y = x·Wᵀ` and `dx = dy·W`.
//!
//! With few rows of A (a batch of 32), the packed path reads and writes all of B once per call to
//! pack it, then reads it again — for the decoder's 8,639 × 150 weight that is most of the call's
//! memory traffic. Two paths read B in place instead:
//!
//! - **Swapped** (`B` k-contiguous, i.e. `B = Wᵀ` of a row-major W; m = 16 or 32): computes `Cᵀ = W·Aᵀ` with
//!   the broadcast × vector register tile: [`DIRECT_MR`] rows of W broadcast in place, `2·LANES`
//!   rows of A as vectors from a once-per-call copy of `Aᵀ` (`k × m`, zero-padded columns), and
//!   the tile written transposed into C. Work units: [`SWAP_UNIT_COLS`] columns of C. (A dot
//!   tile — W rows and A rows both as vectors along k, lanes summed at the end — was measured
//!   first: no faster than the packed path at k = 150, the lane sums and the k tail cost what
//!   packing saved.)
//! - **Direct** (`B` n-contiguous, row-major): the usual broadcast × vector register tile, A
//!   broadcast from its rows and B rows read in place. k is cut into at most [`DIRECT_CHUNKS`]
//!   fixed chunks (the work units), each writing its partial product to a scratch; the partials
//!   are then added in chunk order. The last `n mod NR` columns are computed as the window
//!   `[n − NR, n)` into a separate part of the scratch, so no B load leaves the matrix.
//!
//! Which path runs ([`plan`]) and every unit depend on the shapes and strides only, never on the
//! thread count, and each element of C is computed by one fixed sequence of operations, so results
//! are bit-identical for every [`Par`].

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::driver::{run_chunks, with_scratch};
use super::pack::AlignedBuf;
use super::{MatMut, MatRef};
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use crate::simd::{Portable, Simd};
use crate::{Isa, Par};

/// Largest m either path takes (measured: `rnnbench gemm`; see README.md).
pub(crate) const SMALL_M: usize = 64;
/// Columns of C (rows of W) per swapped work unit (a multiple of `DIRECT_MR`).
const SWAP_UNIT_COLS: usize = 96;
/// The swapped path takes m = NR and 2·NR only (16 and 32 on AVX2): its tile spans NR rows of A,
/// so other m waste lanes, and measured against the packed path (`rnnbench gemm --bt`, n = 8,639,
/// k = 150, on-CPU time) it won at m = 16 and 32 (0.86×, 0.89×), lost at m = 1 and 24 (1.25×,
/// 1.14×) and tied at 48 and 64.
const SWAP_MAX_M: usize = 32;
/// Largest k of the swapped path: the copied `Aᵀ` (`k·m` floats) stays in L1/L2.
const SWAP_MAX_K: usize = 1024;
/// Register tile of the direct path: `DIRECT_MR` rows × `2·LANES` columns.
const DIRECT_MR: usize = 6;
/// The short tile for the last rows (`m mod 6 ∈ 1..=4`).
const DIRECT_TAIL_MR: usize = 4;
/// Vectors per row of a direct tile.
const DIRECT_NV: usize = 2;
/// Widest direct tile of any ISA (`DIRECT_NV` AVX-512 vectors).
const MAX_NR: usize = DIRECT_NV * 16;
/// k per block inside a direct chunk: the B panel (`DIRECT_KC × NR` read in place, 16 KiB on
/// AVX2) stays in L1 while every row tile of A passes it.
const DIRECT_KC: usize = 256;
/// Least k per direct chunk, and at most this many chunks.
const DIRECT_CHUNK_DEPTH: usize = 1024;
const DIRECT_CHUNKS: usize = 8;
/// Largest n of the direct path (the partial products, `chunks·m·n` floats, stay in L2).
const DIRECT_MAX_N: usize = 512;

/// Which small-M path a product takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Swapped,
    Direct,
}

/// The path for `A (m × k) · B (k × n)` on `isa`, if any: a function of the shapes and strides.
pub(crate) fn plan(isa: Isa, a: &MatRef, b: &MatRef) -> Option<Plan> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let lanes = lanes(isa);
    if m == 0 || n == 0 || m > SMALL_M {
        return None;
    }
    let nr = DIRECT_NV * lanes;
    if b.row_stride() == 1
        && b.col_stride() != 1
        && m.is_multiple_of(nr)
        && m <= SWAP_MAX_M
        && k <= SWAP_MAX_K
    {
        return Some(Plan::Swapped);
    }
    if b.col_stride() == 1 && n >= DIRECT_NV * lanes && n <= DIRECT_MAX_N && k >= DIRECT_CHUNK_DEPTH
    {
        return Some(Plan::Direct);
    }
    None
}

fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => Portable::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Avx2::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Avx512::LANES,
        #[cfg(not(target_arch = "x86_64"))]
        _ => Portable::LANES,
    }
}

thread_local! {
    /// The copied `Aᵀ` of a swapped product, or the partial products of a direct one.
    static SMALL_SCRATCH: RefCell<AlignedBuf> = RefCell::default();
}

/// `C ← α·A·B + β·C` by `plan` on `isa` (available), over shape-checked views with `m, n, k > 0`
/// and `α ≠ 0`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    isa: Isa,
    plan: Plan,
    par: Par,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: MatMut,
) {
    let args = Args {
        alpha,
        a,
        b,
        beta,
        c,
    };
    // SAFETY: `isa` is available (caller); each instance requires exactly that.
    unsafe {
        match (isa, plan) {
            (Isa::Scalar, Plan::Swapped) => swapped_gemm::<Portable>(par, args),
            (Isa::Scalar, Plan::Direct) => direct_gemm::<Portable>(par, args),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, Plan::Swapped) => swapped_gemm::<Avx2>(par, args),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, Plan::Direct) => direct_gemm::<Avx2>(par, args),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, Plan::Swapped) => swapped_gemm::<Avx512>(par, args),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, Plan::Direct) => direct_gemm::<Avx512>(par, args),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable path exists off x86-64"),
        }
    }
}

struct Args<'a> {
    alpha: f32,
    a: MatRef<'a>,
    b: MatRef<'a>,
    beta: f32,
    c: MatMut<'a>,
}

/// `c ← α·s + β·c` (C not read when `β = 0`), rounding as the packed path's stores do.
///
/// # Safety
/// `c` is valid for reads and writes.
#[inline(always)]
unsafe fn store_scalar(c: *mut f32, alpha: f32, beta: f32, s: f32) {
    let ab = alpha * s;
    // SAFETY: forwarded.
    unsafe {
        *c = if beta == 0.0 {
            ab
        } else {
            beta.mul_add(*c, ab)
        }
    };
}

/// One swapped product, shared by its work units (each writes its own columns of C).
#[derive(Clone, Copy)]
struct SwapJob {
    m: usize,
    n: usize,
    k: usize,
    /// `Aᵀ` copied: k rows of `a_stride` floats (columns ≥ m zero).
    a: *const f32,
    a_stride: usize,
    /// B = Wᵀ: row j of W (column j of B) at `b + j·ldb`, k contiguous floats.
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    alpha: f32,
    beta: f32,
}

/// One direct product, shared by its chunks (each writes its own part of the scratch).
#[derive(Clone, Copy)]
struct DirectJob {
    m: usize,
    n: usize,
    k: usize,
    /// k per chunk (the last may be shorter).
    depth: usize,
    /// Columns covered by whole NR panels; a tail window, if any, follows in each part row.
    n_full: usize,
    /// Floats per part row.
    width: usize,
    a: *const f32,
    rs_a: usize,
    cs_a: usize,
    b: *const f32,
    rs_b: usize,
    parts: *mut f32,
}

// SAFETY: the jobs are read-only descriptions of disjoint work; the pointers they carry are used
// by each unit for its own part of the output only (see `swapped_unit`, `direct_chunk`), and the
// borrowed operands outlive the `run_chunks` scope that shares them.
unsafe impl Sync for SwapJob {}
// SAFETY: as above.
unsafe impl Sync for DirectJob {}

/// The ISA's `#[target_feature]` entry points for the work units (a closure does not inherit its enclosing function's target features, so every
/// unit enters the ISA through one of these).
trait SmallKernel: Simd {
    /// # Safety
    /// As [`swapped_unit`].
    unsafe fn swapped_unit(job: &SwapJob, unit: usize);
    /// # Safety
    /// As [`direct_chunk`].
    unsafe fn direct_chunk(job: &DirectJob, chunk: usize);
    /// `sum[i] += part[i]`, LANES at a time.
    ///
    /// # Safety
    /// Equal lengths, a multiple of LANES; the CPU runs `Self`.
    unsafe fn add_into(sum: &mut [f32], part: &[f32]);
}

/// Implements [`SmallKernel`] for one ISA: each entry point enables the ISA's features and runs
/// the generic body, inlined for them.
macro_rules! small_kernel {
    ($simd:ty $(, $features:literal)?) => {
        impl SmallKernel for $simd {
            $(#[target_feature(enable = $features)])?
            unsafe fn swapped_unit(job: &SwapJob, unit: usize) {
                // SAFETY: forwarded; the ISA's features are enabled here.
                unsafe { swapped_unit::<$simd>(job, unit) }
            }
            $(#[target_feature(enable = $features)])?
            unsafe fn direct_chunk(job: &DirectJob, chunk: usize) {
                // SAFETY: forwarded; the ISA's features are enabled here.
                unsafe { direct_chunk::<$simd>(job, chunk) }
            }
            $(#[target_feature(enable = $features)])?
            unsafe fn add_into(sum: &mut [f32], part: &[f32]) {
                // SAFETY: forwarded; the ISA's features are enabled here.
                unsafe { add_into::<$simd>(sum, part) }
            }
        }
    };
}

small_kernel!(Portable);
#[cfg(target_arch = "x86_64")]
small_kernel!(Avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
small_kernel!(Avx512, "avx512f,avx512bw,avx512vl,avx2,fma");

/// # Safety
/// As [`SmallKernel::add_into`].
#[inline(always)]
unsafe fn add_into<S: Simd>(sum: &mut [f32], part: &[f32]) {
    debug_assert!(sum.len() == part.len() && sum.len().is_multiple_of(S::LANES));
    // SAFETY: both slices hold `sum.len()` floats, a multiple of LANES; the CPU runs `S`.
    unsafe {
        for v in (0..sum.len()).step_by(S::LANES) {
            let s = S::add(S::load(sum.as_ptr().add(v)), S::load(part.as_ptr().add(v)));
            S::store(sum.as_mut_ptr().add(v), s);
        }
    }
}

/// The swapped path (module docs).
///
/// # Safety
/// The CPU runs `S`; the views are shape-checked, `m ≤ SMALL_M`, B k-contiguous.
unsafe fn swapped_gemm<S: SmallKernel>(par: Par, args: Args) {
    let Args {
        alpha,
        a,
        b,
        beta,
        mut c,
    } = args;
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    debug_assert!(b.row_stride() == 1);
    let a_stride = m.next_multiple_of(DIRECT_NV * S::LANES);
    with_scratch(&SMALL_SCRATCH, k * a_stride, |scratch| {
        for (p, row) in scratch.chunks_exact_mut(a_stride).take(k).enumerate() {
            for (i, x) in row[..m].iter_mut().enumerate() {
                *x = a.get(i, p);
            }
            row[m..].fill(0.0);
        }
        let job = SwapJob {
            m,
            n,
            k,
            a: scratch.as_ptr(),
            a_stride,
            b: b.as_ptr(),
            ldb: b.col_stride(),
            c: c.as_mut_ptr(),
            rs_c: c.row_stride(),
            cs_c: c.col_stride(),
            alpha,
            beta,
        };
        // SAFETY: the CPU runs `S` (caller); units cover disjoint columns of C.
        run_chunks(par, n.div_ceil(SWAP_UNIT_COLS), |unit| unsafe {
            S::swapped_unit(&job, unit)
        });
    });
}

/// Columns `unit·SWAP_UNIT_COLS ..` of a swapped product.
///
/// # Safety
/// `job` describes live operands as [`swapped_gemm`] builds them; no other thread writes these
/// columns of C; the CPU runs `S`.
#[inline(always)]
unsafe fn swapped_unit<S: SmallKernel>(job: &SwapJob, unit: usize) {
    let SwapJob {
        m,
        n,
        k,
        a,
        a_stride,
        b,
        ldb,
        c,
        rs_c,
        cs_c,
        alpha,
        beta,
    } = *job;
    let nr = DIRECT_NV * S::LANES;
    let j0 = unit * SWAP_UNIT_COLS;
    let j1 = n.min(j0 + SWAP_UNIT_COLS);
    debug_assert!(nr <= MAX_NR);
    // SAFETY: W rows j < n hold k floats at stride `ldb`; the copy holds k rows of `a_stride`
    // floats; this unit writes only C's columns j0..j1 (caller).
    unsafe {
        let alpha_v = S::splat(alpha);
        for j in (j0..j1).step_by(DIRECT_MR) {
            let w: [*const f32; DIRECT_MR] =
                std::array::from_fn(|r| b.add((j + r).min(n - 1) * ldb));
            let cols = DIRECT_MR.min(j1 - j);
            for i0 in (0..m).step_by(nr) {
                let acc = direct_tile::<S, DIRECT_MR>(k, w, 1, a.add(i0), a_stride);
                // acc[r] holds C[i0.., j + r]: scale by α in registers, then write it down the
                // columns (the roundings of `store_scalar`).
                let mut tile = MaybeUninit::<[[f32; MAX_NR]; DIRECT_MR]>::uninit();
                let tile_ptr = tile.as_mut_ptr().cast::<f32>();
                for (r, row) in acc.iter().enumerate() {
                    for (v, &x) in row.iter().enumerate() {
                        let ab = S::mul(alpha_v, x);
                        S::store(tile_ptr.add(r * MAX_NR + v * S::LANES), ab);
                    }
                }
                let rows = nr.min(m - i0);
                let out = c.add(i0 * rs_c + j * cs_c);
                if beta == 0.0 {
                    for i in 0..rows {
                        for r in 0..cols {
                            *out.add(i * rs_c + r * cs_c) = *tile_ptr.add(r * MAX_NR + i);
                        }
                    }
                } else {
                    for i in 0..rows {
                        for r in 0..cols {
                            let p = out.add(i * rs_c + r * cs_c);
                            *p = beta.mul_add(*p, *tile_ptr.add(r * MAX_NR + i));
                        }
                    }
                }
            }
        }
    }
}

/// The direct path (module docs).
///
/// # Safety
/// The CPU runs `S`; the views are shape-checked, `m ≤ SMALL_M`, `2·LANES ≤ n ≤ DIRECT_MAX_N`,
/// B n-contiguous.
unsafe fn direct_gemm<S: SmallKernel>(par: Par, args: Args) {
    let Args {
        alpha,
        a,
        b,
        beta,
        mut c,
    } = args;
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let nr = DIRECT_NV * S::LANES;
    debug_assert!(n >= nr && b.col_stride() == 1);
    let chunks = (k / DIRECT_CHUNK_DEPTH).clamp(1, DIRECT_CHUNKS);
    let n_full = n - n % nr;
    // A part row: the whole panels' columns, then the window [n − NR, n) if n has a tail.
    let width = n_full + if n_full < n { nr } else { 0 };
    let part_len = m * width;
    with_scratch(&SMALL_SCRATCH, chunks * part_len, |scratch| {
        let job = DirectJob {
            m,
            n,
            k,
            depth: k.div_ceil(chunks),
            n_full,
            width,
            a: a.as_ptr(),
            rs_a: a.row_stride(),
            cs_a: a.col_stride(),
            b: b.as_ptr(),
            rs_b: b.row_stride(),
            parts: scratch.as_mut_ptr(),
        };
        // SAFETY: the CPU runs `S` (caller); chunks write disjoint parts of the scratch.
        run_chunks(par, chunks, |chunk| unsafe { S::direct_chunk(&job, chunk) });
        // Sum the parts in chunk order into part 0, then C ← α·sum + β·C.
        let (sum, rest) = scratch[..chunks * part_len].split_at_mut(part_len);
        for part in rest.chunks_exact(part_len) {
            // SAFETY: equal lengths, multiples of LANES (`width` is a multiple of NR); the CPU
            // runs `S` (caller).
            unsafe { S::add_into(sum, part) };
        }
        let (rs_c, cs_c) = (c.row_stride(), c.col_stride());
        let c_ptr = c.as_mut_ptr();
        for i in 0..m {
            for j in 0..n {
                let col = if j < n_full { j } else { j - (n - nr) + n_full };
                // SAFETY: (i, j) is inside C.
                unsafe {
                    store_scalar(
                        c_ptr.add(i * rs_c + j * cs_c),
                        alpha,
                        beta,
                        sum[i * width + col],
                    )
                };
            }
        }
    });
}

/// Chunk `chunk` of a direct product: `A[:, p0..p1]·B[p0..p1, :]` into its part of the scratch.
///
/// # Safety
/// `job` describes live operands and a scratch of `chunks·m·width` floats as [`direct_gemm`]
/// builds them; no other thread writes this chunk's part; the CPU runs `S`.
#[inline(always)]
unsafe fn direct_chunk<S: SmallKernel>(job: &DirectJob, chunk: usize) {
    let DirectJob {
        m,
        n,
        k,
        depth,
        n_full,
        width,
        a,
        rs_a,
        cs_a,
        b,
        rs_b,
        parts,
    } = *job;
    let nr = DIRECT_NV * S::LANES;
    let p0 = chunk * depth;
    let p1 = k.min(p0 + depth);
    // SAFETY: reads are of A rows < m and columns p0..p1 < k, B rows p0..p1 and columns
    // col0..col0 + NR ≤ n; writes are to this chunk's part of the scratch only (caller).
    unsafe {
        let part = parts.add(chunk * m * width);
        for kb in (p0..p1).step_by(DIRECT_KC) {
            let kb_len = DIRECT_KC.min(p1 - kb);
            let accumulate = kb > p0;
            for col in (0..width).step_by(nr) {
                let col0 = if col < n_full { col } else { n - nr };
                let bp = b.add(kb * rs_b + col0);
                let mut i = 0;
                while i < m {
                    let left = m - i;
                    // m = 6q + 2 runs its last 8 rows as two 4-row tiles (no wasted rows).
                    let rows = if left <= DIRECT_TAIL_MR || left == 2 * DIRECT_TAIL_MR {
                        DIRECT_TAIL_MR
                    } else {
                        DIRECT_MR
                    };
                    let a_at = |r: usize| a.add((i + r).min(m - 1) * rs_a + kb * cs_a);
                    let out = part.add(i * width + col);
                    let valid = rows.min(left);
                    if rows == DIRECT_MR {
                        let acc = direct_tile::<S, DIRECT_MR>(
                            kb_len,
                            std::array::from_fn(a_at),
                            cs_a,
                            bp,
                            rs_b,
                        );
                        store_rows::<S, DIRECT_MR>(&acc, out, width, valid, accumulate);
                    } else {
                        let acc = direct_tile::<S, DIRECT_TAIL_MR>(
                            kb_len,
                            std::array::from_fn(a_at),
                            cs_a,
                            bp,
                            rs_b,
                        );
                        store_rows::<S, DIRECT_TAIL_MR>(&acc, out, width, valid, accumulate);
                    }
                    i += rows;
                }
            }
        }
    }
}

/// `MR × (DIRECT_NV·LANES)` of `Σ_p A[i, p]·B[p, j]` over `depth` steps, A broadcast from `a[i]`
/// (step `cs_a`), B rows read at `b` (step `rs_b`).
///
/// # Safety
/// The extents are readable; the CPU runs `S`.
#[inline(always)]
unsafe fn direct_tile<S: Simd, const MR: usize>(
    depth: usize,
    a: [*const f32; MR],
    cs_a: usize,
    b: *const f32,
    rs_b: usize,
) -> [[S::V; DIRECT_NV]; MR] {
    // SAFETY: forwarded.
    unsafe {
        let mut acc = [[S::zero(); DIRECT_NV]; MR];
        let mut b = b;
        let mut pa = 0;
        for _ in 0..depth {
            let b_row: [S::V; DIRECT_NV] = std::array::from_fn(|v| S::load(b.add(v * S::LANES)));
            for i in 0..MR {
                let a_i = S::splat(*a[i].add(pa));
                for v in 0..DIRECT_NV {
                    acc[i][v] = S::fma(a_i, b_row[v], acc[i][v]);
                }
            }
            pa += cs_a;
            b = b.add(rs_b);
        }
        acc
    }
}

/// Stores (or, if `accumulate`, adds) the first `valid` rows of a direct tile to `out` (row
/// stride `width`).
///
/// # Safety
/// `out` has `valid` writable rows of `DIRECT_NV·LANES` floats; the CPU runs `S`.
#[inline(always)]
unsafe fn store_rows<S: Simd, const MR: usize>(
    acc: &[[S::V; DIRECT_NV]; MR],
    out: *mut f32,
    width: usize,
    valid: usize,
    accumulate: bool,
) {
    for (i, row) in acc.iter().enumerate().take(valid) {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: forwarded.
            unsafe {
                let p = out.add(i * width + v * S::LANES);
                S::store(p, if accumulate { S::add(S::load(p), x) } else { x });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder's two products take the two paths; other shapes keep the packed GEMM.
    #[test]
    fn plans_follow_shapes_and_strides() {
        let w = vec![0.0f32; 8639 * 150];
        let x = vec![0.0f32; 64 * 8639];
        let isa = Isa::Scalar;
        let w_t = MatRef::row_major(&w, 8639, 150).t();
        let w_rm = MatRef::row_major(&w, 8639, 150);
        let x32 = MatRef::row_major(&x, 32, 150);
        let dy = MatRef::row_major(&x, 32, 8639);
        assert_eq!(plan(isa, &x32, &w_t), Some(Plan::Swapped));
        assert_eq!(plan(isa, &dy, &w_rm), Some(Plan::Direct));
        // Too many rows, a row-major B too shallow for chunks, a k-contiguous B too deep.
        assert_eq!(plan(isa, &MatRef::row_major(&x, 65, 150), &w_t), None);
        assert_eq!(plan(isa, &MatRef::row_major(&x, 24, 150), &w_t), None);
        assert_eq!(plan(isa, &MatRef::row_major(&x, 1, 150), &w_t), None);
        assert_eq!(
            plan(isa, &MatRef::row_major(&x, 1, 8639), &w_rm),
            Some(Plan::Direct)
        );
        assert_eq!(plan(isa, &x32, &MatRef::row_major(&w, 150, 150)), None);
        let deep_t = MatRef::row_major(&w, 100, 2000).t();
        assert_eq!(plan(isa, &MatRef::row_major(&x, 32, 2000), &deep_t), None);
    }
}
