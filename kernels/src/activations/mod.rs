//! Vectorised `exp`, `sigmoid` and `tanh` over f32, with a stated and tested error bound.
//!
//! # Contract
//!
//! For every f32 input `x` (finite, ±inf or NaN), each function returns an f32 close to the exact
//! value computed in f64 by [`reference`](mod@reference):
//!
//! | function | maths | stated bound | measured over all 2^32 inputs |
//! |---|---|---|---|
//! | [`exp`] | `e^x` | relative ≤ [`EXP_MAX_REL_ERROR`] = 1.0e-7 | relative 9.26e-8 (at x = 5.199) |
//! | [`sigmoid`] | `σ(x) = 1 / (1 + e^−x)` | absolute ≤ [`SIGMOID_MAX_ABS_ERROR`] = 1.0e-7, relative ≤ [`SIGMOID_MAX_REL_ERROR`] = 2.1e-7 | absolute 8.93e-8 (x = 7.859), relative 2.04e-7 (x = −5.289) |
//! | [`tanh`] | `tanh x` | absolute ≤ [`TANH_MAX_ABS_ERROR`] = 1.0e-7, relative ≤ [`TANH_MAX_REL_ERROR`] = 1.5e-7 | absolute 8.19e-8, relative 1.47e-7 (both at x = 0.6317) |
//!
//! That is, all three meet the target of 1e-6 absolute with a factor of 10 to spare, with relative
//! errors of at most 2.1e-7 (f32's own rounding alone is up to 6e-8). `exp`'s absolute error is its relative error times `e^x`
//! (≤ 9.3e-8 for x ≤ 0). The measured column comes from the `#[ignore]`d test
//! `activations::tests::exhaustive_all_f32` (every bit pattern, on the portable and AVX2 paths,
//! which give bit-identical results; see RESULTS.md); the always-run tests check the stated bounds
//! on a dense sweep and proptest inputs.
//!
//! The relative bounds hold wherever the exact result is a normal f32 (≥ 2^−126 in magnitude);
//! below that (exp and sigmoid deep in their lower tail), the absolute error is at most one
//! subnormal step plus the relative bound times the value. Special values:
//!
//! - NaN in → NaN out (any payload).
//! - `exp`: +inf → +inf, −inf → +0, overflow (x > ln(f32::MAX) ≈ 88.72) → +inf, underflow
//!   (x < ≈ −103.97) → +0, never NaN for a non-NaN input; subnormal results are produced.
//! - `sigmoid`: saturates to exactly 1.0 for large x and to 0 (through the subnormals) for very
//!   negative x; ±inf → 1 / 0.
//! - `tanh`: odd (`tanh(−x) = −tanh(x)` bit for bit, `tanh(−0) = −0`), saturates to exactly ±1.0,
//!   ±inf → ±1.
//!
//! # Methods
//!
//! **exp** is the classic range reduction of Cody & Waite (W. J. Cody, W. Waite, *Software Manual
//! for the Elementary Functions*, Prentice-Hall 1980, ch. 6), as in Cephes `expf` and oneDNN's
//! eltwise injector: `x = n·ln2 + r` with `n = round(x·log2 e)` and `|r| ≤ ln2/2`, where
//! `r = x − n·ln2_hi − n·ln2_lo` is evaluated with two FMAs (the first is exact: `n·ln2_hi` has
//! at most 32 significant bits and the difference is below 1/2). Then `e^r` is a degree-6
//! polynomial — Chebyshev interpolation of `e^r` on `[−0.348, 0.348]`, fitted in f64 for this crate
//! (approximation error 2.6e-9 relative, far below f32 rounding) — and the result is scaled by
//! `2^n` in two exact steps `2^n1 · 2^n2`, `n1 = clamp(n, −126, 127)`, so that results that
//! overflow become +inf and results in the subnormal range are rounded once, correctly.
//!
//! **sigmoid** uses `e = exp(−|x|) ∈ (0, 1]` and the reflection `σ(x) = 1/(1+e)` for `x ≥ 0`,
//! `σ(x) = e/(1+e)` for `x < 0` (oneDNN's logistic): `1 + e` never cancels, so the result keeps a
//! small *relative* error in the lower tail, where `0.5 + 0.5·tanh(x/2)` would lose it all.
//!
//! **tanh** for `|x| ≥ 0.625` is `1 − 2/(e^{2|x|} + 1)` with the sign restored: there
//! `tanh |x| ≥ 0.55`, so the subtraction loses at most one bit, and `e^{2|x|} = +inf` gives exactly
//! one. For `|x| < 0.625` that form would cancel, so it is the odd polynomial
//! `x + x³·P(x²)` with `P` of degree 4 — the split point and the form of Cephes `tanhf`
//! (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989), with coefficients
//! fitted here by Chebyshev interpolation of `(tanh √u / √u − 1)/u` on `u ∈ [0, 0.625²]`
//! (approximation error 1.7e-8 relative). We prefer this to Eigen's 13/6 rational form (≤ 7 ulp,
//! clamped at ±7.99) because it reuses `exp_v`, has a better bound (see the table), and needs no
//! clamp constant to reach exactly ±1; its cost is one `exp` plus one division per vector.
//!
//! # Layout of this module
//!
//! The vector bodies ([`exp_v`], [`sigmoid_v`], [`tanh_v`]) are `#[inline(always)]` functions
//! generic over [`Simd`], meant to be inlined into other kernels' `#[target_feature]` shims (the
//! fused RNN cells apply them to tiles still in registers). The slice APIs below instantiate them
//! per ISA and dispatch on [`Isa::active`] or an explicit [`Isa`].

use crate::Isa;
use crate::simd::{Portable, Simd};

pub mod reference;

#[cfg(test)]
mod tests;

/// Bound on `|exp(x) − e^x| / e^x` over all f32 `x` whose exact `e^x` is a normal f32
/// (measured maximum over all 2^32 inputs: 9.26e-8).
pub const EXP_MAX_REL_ERROR: f64 = 1.0e-7;
/// Bound on `|sigmoid(x) − σ(x)|` over all finite f32 `x` (measured maximum: 8.93e-8).
pub const SIGMOID_MAX_ABS_ERROR: f64 = 1.0e-7;
/// Bound on `|sigmoid(x) − σ(x)| / σ(x)` over all f32 `x` whose exact `σ(x)` is a normal f32
/// (measured maximum: 2.04e-7).
pub const SIGMOID_MAX_REL_ERROR: f64 = 2.1e-7;
/// Bound on `|tanh(x) − tanh x|` over all finite f32 `x` (measured maximum: 8.19e-8).
pub const TANH_MAX_ABS_ERROR: f64 = 1.0e-7;
/// Bound on `|tanh(x) − tanh x| / |tanh x|` over all f32 `x` with a normal result (measured
/// maximum: 1.47e-7). Below that, `tanh x = x` to f32 precision and is returned exactly.
pub const TANH_MAX_REL_ERROR: f64 = 1.5e-7;

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// `log2(e)` rounded to f32.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `n·LN2_HI` is exact for |n| ≤ 2^8 and `LN2_HI + LN2_LO ≈ ln 2` to ~2^−48.
/// `LN2_HI` is `ln 2` rounded to f32 (24 significant bits); `LN2_LO = ln 2 − LN2_HI` rounded.
const LN2_HI: f32 = std::f32::consts::LN_2;
const LN2_LO: f32 = -1.904_654_2e-9;
/// Inputs are clamped to `[EXP_X_MIN, EXP_X_MAX]` before the reduction: `e^89` overflows f32 and
/// `e^−104 < 2^−150` rounds to zero, so the clamp changes no result, and it keeps `n` in
/// `[−150, 128]` where the two-step scaling is exact. NaN passes through the clamp.
const EXP_X_MAX: f32 = 89.0;
const EXP_X_MIN: f32 = -104.0;
/// `e^r ≈ Σ EXP_POLY[k]·r^k` on `|r| ≤ 0.348` (Chebyshev interpolation, degree 6, relative
/// error 2.6e-9 before f32 rounding of the coefficients and the evaluation).
const EXP_POLY: [f32; 7] = [
    1.0,
    1.0,
    0.5,
    0.166_664_12,
    0.041_666_347,
    0.008_375_368,
    0.001_394_141_1,
];

/// Below this `|x|`, tanh uses the odd polynomial; above, the exp form (Cephes `tanhf`'s split).
const TANH_POLY_LIMIT: f32 = 0.625;
/// `tanh x ≈ x + x³·Σ TANH_POLY[k]·x^{2k}` for `|x| < 0.625` (Chebyshev interpolation in x²,
/// relative error 1.7e-8).
const TANH_POLY: [f32; 5] = [
    -0.333_333_28,
    0.133_327_7,
    -0.053_850_908,
    0.020_997_18,
    -0.006_096_714,
];

// ---------------------------------------------------------------------------------------------
// Vector bodies (generic over the ISA)
// ---------------------------------------------------------------------------------------------

/// `e^x` per lane. See the module docs for the method and the error bound.
///
/// # Safety
/// Only call on a CPU that has `S`'s ISA (inside a `#[target_feature]` function that enables it,
/// or after checking [`Isa::is_available`]).
#[inline(always)]
pub unsafe fn exp_v<S: Simd>(x: S::V) -> S::V {
    // SAFETY: the caller guarantees S's ISA; every operation is register-only.
    unsafe {
        // `max`/`min` return their second operand when either is NaN, so NaN survives the clamp.
        let x = S::min(S::splat(EXP_X_MAX), S::max(S::splat(EXP_X_MIN), x));
        // x = n·ln2 + r, |r| ≤ ln2/2 (+ the rounding of x·log2e, under 1e-5).
        let n = S::round(S::mul(x, S::splat(LOG2_E)));
        let r = S::fma(n, S::splat(-LN2_HI), x);
        let r = S::fma(n, S::splat(-LN2_LO), r);
        let mut p = S::splat(EXP_POLY[6]);
        for &c in EXP_POLY[..6].iter().rev() {
            p = S::fma(p, r, S::splat(c));
        }
        // e^x = p·2^n1·2^n2: the first product is exact (a normal float), the second rounds once,
        // to +inf on overflow and to the correct subnormal on underflow.
        let n1 = S::min(S::splat(127.0), S::max(S::splat(-126.0), n));
        let n2 = S::sub(n, n1);
        S::mul(S::mul(p, S::pow2i(n1)), S::pow2i(n2))
    }
}

/// `σ(x) = 1 / (1 + e^−x)` per lane. See the module docs for the method and the error bound.
///
/// # Safety
/// Only call on a CPU that has `S`'s ISA (inside a `#[target_feature]` function that enables it,
/// or after checking [`Isa::is_available`]).
#[inline(always)]
pub unsafe fn sigmoid_v<S: Simd>(x: S::V) -> S::V {
    // SAFETY: the caller guarantees S's ISA; every operation is register-only.
    unsafe {
        let one = S::splat(1.0);
        // e = e^−|x| ∈ [0, 1]; 1 + e ∈ [1, 2] never cancels.
        let e = exp_v::<S>(S::sub(S::zero(), S::abs(x)));
        let upper = S::div(one, S::add(one, e)); // σ(|x|)
        let lower = S::mul(e, upper); // σ(−|x|) = e/(1+e), accurate relative to itself
        // NaN compares false and takes `upper`, which is NaN.
        S::select(S::lt(x, S::zero()), lower, upper)
    }
}

/// `tanh x` per lane. See the module docs for the method and the error bound.
///
/// # Safety
/// Only call on a CPU that has `S`'s ISA (inside a `#[target_feature]` function that enables it,
/// or after checking [`Isa::is_available`]).
#[inline(always)]
pub unsafe fn tanh_v<S: Simd>(x: S::V) -> S::V {
    // SAFETY: the caller guarantees S's ISA; every operation is register-only.
    unsafe {
        let one = S::splat(1.0);
        let a = S::abs(x);
        // |x| ≥ 0.625: 1 − 2/(e^{2|x|} + 1); e^{2|x|} = +inf gives exactly 1.
        let e = exp_v::<S>(S::add(a, a));
        let large = S::sub(one, S::div(S::splat(2.0), S::add(e, one)));
        // |x| < 0.625: |x| + |x|³·P(x²).
        let a2 = S::mul(a, a);
        let mut p = S::splat(TANH_POLY[4]);
        for &c in TANH_POLY[..4].iter().rev() {
            p = S::fma(p, a2, S::splat(c));
        }
        let small = S::fma(S::mul(a, a2), p, a);
        // NaN compares false and takes `large`, which is NaN.
        let magnitude = S::select(S::lt(a, S::splat(TANH_POLY_LIMIT)), small, large);
        S::copysign(magnitude, x)
    }
}

// ---------------------------------------------------------------------------------------------
// Slice kernels: one generic loop, one `#[target_feature]` shim per ISA
// ---------------------------------------------------------------------------------------------

/// A lane-wise function with a vector body, so one slice loop serves all three.
trait VectorFn {
    /// # Safety
    /// As [`exp_v`].
    unsafe fn apply<S: Simd>(x: S::V) -> S::V;
}

struct ExpFn;
struct SigmoidFn;
struct TanhFn;

impl VectorFn for ExpFn {
    #[inline(always)]
    unsafe fn apply<S: Simd>(x: S::V) -> S::V {
        // SAFETY: forwarded contract.
        unsafe { exp_v::<S>(x) }
    }
}
impl VectorFn for SigmoidFn {
    #[inline(always)]
    unsafe fn apply<S: Simd>(x: S::V) -> S::V {
        // SAFETY: forwarded contract.
        unsafe { sigmoid_v::<S>(x) }
    }
}
impl VectorFn for TanhFn {
    #[inline(always)]
    unsafe fn apply<S: Simd>(x: S::V) -> S::V {
        // SAFETY: forwarded contract.
        unsafe { tanh_v::<S>(x) }
    }
}

/// `dst[i] = F(src[i])` for `i < n`, two registers per iteration, the tail masked.
///
/// # Safety
/// S's ISA is available; `src` is readable and `dst` writable for `n` floats; they are either the
/// same pointer (in place) or do not overlap.
#[inline(always)]
unsafe fn map_body<S: Simd, F: VectorFn>(src: *const f32, dst: *mut f32, n: usize) {
    let lanes = S::LANES;
    let mut i = 0;
    // SAFETY: every access below stays within `[0, n)` (loop bounds), per the caller's contract.
    unsafe {
        while i + 2 * lanes <= n {
            let a = F::apply::<S>(S::load(src.add(i)));
            let b = F::apply::<S>(S::load(src.add(i + lanes)));
            S::store(dst.add(i), a);
            S::store(dst.add(i + lanes), b);
            i += 2 * lanes;
        }
        while i + lanes <= n {
            S::store(dst.add(i), F::apply::<S>(S::load(src.add(i))));
            i += lanes;
        }
        if i < n && n >= lanes {
            // The tail as the full window ending at `n`: its first lanes were done above. Keeping
            // `dst`'s values there is right both in place (where `src` already holds results) and
            // not; unmasked loads and stores avoid `vmaskmovps`, slow on Zen 3.
            let start = n - lanes;
            let fresh = last_lanes::<S>(n - i);
            let v = F::apply::<S>(S::load(src.add(start)));
            S::store(dst.add(start), S::select(fresh, v, S::load(dst.add(start))));
        } else if i < n {
            let rest = n - i;
            let v = F::apply::<S>(S::load_partial(src.add(i), rest));
            S::store_partial(dst.add(i), v, rest);
        }
    }
}

/// The mask of the last `rest` lanes (`1 ≤ rest < LANES`) of a register: the lanes of a window
/// ending at a row's end that a full-register loop has not covered yet.
///
/// # Safety
/// S's ISA is available.
#[inline(always)]
pub(crate) unsafe fn last_lanes<S: Simd>(rest: usize) -> S::Mask {
    const LANE_INDEX: [f32; 16] = [
        0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
    ];
    debug_assert!(rest < S::LANES && S::LANES <= 16);
    let first_fresh = (S::LANES - rest) as f32;
    // SAFETY: `LANE_INDEX` holds 16 ≥ LANES floats; the ISA is the caller's.
    unsafe { S::lt(S::splat(first_fresh - 0.5), S::load(LANE_INDEX.as_ptr())) }
}

/// # Safety
/// As [`map_body`] (the portable path runs on any CPU).
unsafe fn map_portable<F: VectorFn>(src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY: forwarded contract; Portable needs no CPU feature.
    unsafe { map_body::<Portable, F>(src, dst, n) }
}

/// # Safety
/// As [`map_body`], and the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_avx2<F: VectorFn>(src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { map_body::<crate::simd::Avx2, F>(src, dst, n) }
}

/// # Safety
/// As [`map_body`], and the CPU has AVX-512F/BW/VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn map_avx512<F: VectorFn>(src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { map_body::<crate::simd::Avx512, F>(src, dst, n) }
}

#[cold]
#[inline(never)]
fn length_mismatch(what: &str, src: usize, dst: usize) -> ! {
    panic!("{what}: src has {src} elements but dst has {dst}; they must be equal")
}

#[cold]
#[inline(never)]
fn isa_unavailable(what: &str, isa: Isa) -> ! {
    panic!(
        "{what}: ISA path {isa} is not available on this CPU (detected: {})",
        Isa::detected()
    )
}

/// Runs `F` over `n` floats on `isa`'s path, after checking that the CPU runs it.
///
/// # Safety
/// `src` readable and `dst` writable for `n` floats, equal or non-overlapping.
unsafe fn map_with_isa<F: VectorFn>(
    what: &str,
    isa: Isa,
    src: *const f32,
    dst: *mut f32,
    n: usize,
) {
    if !isa.is_available() {
        isa_unavailable(what, isa);
    }
    // SAFETY: the pointer contract is the caller's; the ISA was checked just above.
    unsafe {
        match isa {
            Isa::Scalar => map_portable::<F>(src, dst, n),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => map_avx2::<F>(src, dst, n),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => map_avx512::<F>(src, dst, n),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar path is available off x86-64"),
        }
    }
}

fn in_place_with_isa<F: VectorFn>(what: &str, isa: Isa, x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    // SAFETY: `p` is valid for reads and writes of `n` floats; in place is allowed.
    unsafe { map_with_isa::<F>(what, isa, p, p, n) }
}

fn to_with_isa<F: VectorFn>(what: &str, isa: Isa, src: &[f32], dst: &mut [f32]) {
    if src.len() != dst.len() {
        length_mismatch(what, src.len(), dst.len());
    }
    // SAFETY: both slices hold `src.len()` floats; `&`/`&mut` borrows cannot overlap.
    unsafe { map_with_isa::<F>(what, isa, src.as_ptr(), dst.as_mut_ptr(), src.len()) }
}

// ---------------------------------------------------------------------------------------------
// Public slice API and dispatch
// ---------------------------------------------------------------------------------------------

/// `x[i] ← e^{x[i]}` in place, on the [`Isa::active`] path.
pub fn exp(x: &mut [f32]) {
    exp_with_isa(Isa::active(), x)
}
/// `dst[i] ← e^{src[i]}`, on the [`Isa::active`] path.
///
/// # Panics
/// If `src.len() != dst.len()`.
pub fn exp_to(src: &[f32], dst: &mut [f32]) {
    exp_to_with_isa(Isa::active(), src, dst)
}
/// [`exp`] on an explicit ISA path.
///
/// # Panics
/// If the CPU cannot run `isa`.
pub fn exp_with_isa(isa: Isa, x: &mut [f32]) {
    in_place_with_isa::<ExpFn>("exp", isa, x)
}
/// [`exp_to`] on an explicit ISA path.
///
/// # Panics
/// If `src.len() != dst.len()` or the CPU cannot run `isa`.
pub fn exp_to_with_isa(isa: Isa, src: &[f32], dst: &mut [f32]) {
    to_with_isa::<ExpFn>("exp_to", isa, src, dst)
}

/// `x[i] ← σ(x[i]) = 1/(1 + e^{−x[i]})` in place, on the [`Isa::active`] path.
pub fn sigmoid(x: &mut [f32]) {
    sigmoid_with_isa(Isa::active(), x)
}
/// `dst[i] ← σ(src[i])`, on the [`Isa::active`] path.
///
/// # Panics
/// If `src.len() != dst.len()`.
pub fn sigmoid_to(src: &[f32], dst: &mut [f32]) {
    sigmoid_to_with_isa(Isa::active(), src, dst)
}
/// [`sigmoid`] on an explicit ISA path.
///
/// # Panics
/// If the CPU cannot run `isa`.
pub fn sigmoid_with_isa(isa: Isa, x: &mut [f32]) {
    in_place_with_isa::<SigmoidFn>("sigmoid", isa, x)
}
/// [`sigmoid_to`] on an explicit ISA path.
///
/// # Panics
/// If `src.len() != dst.len()` or the CPU cannot run `isa`.
pub fn sigmoid_to_with_isa(isa: Isa, src: &[f32], dst: &mut [f32]) {
    to_with_isa::<SigmoidFn>("sigmoid_to", isa, src, dst)
}

/// `x[i] ← tanh x[i]` in place, on the [`Isa::active`] path.
pub fn tanh(x: &mut [f32]) {
    tanh_with_isa(Isa::active(), x)
}
/// `dst[i] ← tanh src[i]`, on the [`Isa::active`] path.
///
/// # Panics
/// If `src.len() != dst.len()`.
pub fn tanh_to(src: &[f32], dst: &mut [f32]) {
    tanh_to_with_isa(Isa::active(), src, dst)
}
/// [`tanh`] on an explicit ISA path.
///
/// # Panics
/// If the CPU cannot run `isa`.
pub fn tanh_with_isa(isa: Isa, x: &mut [f32]) {
    in_place_with_isa::<TanhFn>("tanh", isa, x)
}
/// [`tanh_to`] on an explicit ISA path.
///
/// # Panics
/// If `src.len() != dst.len()` or the CPU cannot run `isa`.
pub fn tanh_to_with_isa(isa: Isa, src: &[f32], dst: &mut [f32]) {
    to_with_isa::<TanhFn>("tanh_to", isa, src, dst)
}
