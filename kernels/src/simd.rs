//! One vector vocabulary for every ISA, so each SIMD kernel body is written once.
//!
//! A kernel body is an `#[inline(always)]` function generic over [`Simd`]; each ISA instantiates it
//! in a one-line `#[target_feature]` shim (matrixmultiply's pattern). Inlining the body into the
//! shim lets the intrinsics compile for that ISA. The AVX-512 instantiation therefore runs exactly
//! the same logic as the AVX2 one that the tests exercise on hosts without AVX-512; only the small
//! `impl Simd` blocks below differ.
//!
//! Every method is `unsafe`: it may only run on a CPU with the implementor's features (the
//! dispatcher guarantees this), and the pointer methods read/write `LANES` (or `n`) floats.

#![allow(clippy::missing_safety_doc)]

/// A SIMD register of f32 lanes and the operations the kernels need.
///
/// # Safety
/// Implementors' methods may only be called on a CPU that has the ISA the implementor names.
pub unsafe trait Simd: Copy + 'static {
    /// f32 lanes per register.
    const LANES: usize;
    /// The register type.
    type V: Copy;
    /// A lane mask, produced by comparisons ([`Simd::lt`]) and consumed by [`Simd::select`].
    type Mask: Copy;

    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn zero() -> Self::V;
    /// Loads `LANES` floats from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self::V;
    /// Stores `LANES` floats to `p` (unaligned).
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Loads the first `n < LANES` floats from `p`; the other lanes are zero. Reads only `n` floats.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n < LANES` lanes of `v` to `p`. Writes only `n` floats.
    unsafe fn store_partial(p: *mut f32, v: Self::V, n: usize);
    /// `a * b + c`, rounded once.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise `√a`, correctly rounded (IEEE), so every ISA gives the bits of `f32::sqrt`.
    unsafe fn sqrt(a: Self::V) -> Self::V;
    /// Lane-wise maximum; if either lane is NaN the result lane is `b`'s (x86 `max` semantics).
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise minimum; if either lane is NaN the result lane is `b`'s (x86 `min` semantics).
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Sum of all lanes.
    unsafe fn reduce_add(v: Self::V) -> f32;
    /// Maximum of all lanes.
    unsafe fn reduce_max(v: Self::V) -> f32;
    /// `|a|` (clears the sign bit; NaN stays NaN).
    unsafe fn abs(a: Self::V) -> Self::V;
    /// The magnitude of `mag` with the sign bit of `sign` (IEEE `copySign`).
    unsafe fn copysign(mag: Self::V, sign: Self::V) -> Self::V;
    /// Rounds to the nearest integer, ties to even (IEEE `roundTiesToEven`); NaN and ±inf stay.
    unsafe fn round(a: Self::V) -> Self::V;
    /// `2^n`, exactly, for lanes holding an integer `n` in `[-126, 127]` (built from the exponent
    /// bits). Other lanes get an unspecified value (never UB): callers clamp `n` first.
    unsafe fn pow2i(n: Self::V) -> Self::V;
    /// Lane-wise `a < b`; false where either lane is NaN (ordered comparison).
    unsafe fn lt(a: Self::V, b: Self::V) -> Self::Mask;
    /// Lane-wise `if mask { if_true } else { if_false }`.
    unsafe fn select(mask: Self::Mask, if_true: Self::V, if_false: Self::V) -> Self::V;
}

/// Portable lanes: plain arrays of 8 floats, which LLVM vectorises at the compile-time baseline.
#[derive(Clone, Copy, Debug)]
pub struct Portable;

// SAFETY: the portable implementation uses no CPU-specific instructions.
unsafe impl Simd for Portable {
    const LANES: usize = 8;
    type V = [f32; 8];
    type Mask = [bool; 8];

    #[inline(always)]
    unsafe fn splat(x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn zero() -> [f32; 8] {
        [0.0; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> [f32; 8] {
        // SAFETY: the caller guarantees 8 readable floats at `p`.
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: [f32; 8]) {
        // SAFETY: the caller guarantees 8 writable floats at `p`.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> [f32; 8] {
        let mut v = [0.0; 8];
        for (i, lane) in v.iter_mut().enumerate().take(n) {
            // SAFETY: the caller guarantees `n` readable floats at `p`, and `i < n`.
            *lane = unsafe { *p.add(i) };
        }
        v
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, v: [f32; 8], n: usize) {
        for (i, lane) in v.iter().enumerate().take(n) {
            // SAFETY: the caller guarantees `n` writable floats at `p`, and `i < n`.
            unsafe { *p.add(i) = *lane };
        }
    }
    #[inline(always)]
    unsafe fn fma(a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    #[inline(always)]
    unsafe fn add(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn sub(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] - b[i])
    }
    #[inline(always)]
    unsafe fn mul(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    unsafe fn div(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] / b[i])
    }
    #[inline(always)]
    unsafe fn sqrt(a: [f32; 8]) -> [f32; 8] {
        a.map(f32::sqrt)
    }
    #[inline(always)]
    unsafe fn max(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| if a[i] > b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    unsafe fn min(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| if a[i] < b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    unsafe fn reduce_add(v: [f32; 8]) -> f32 {
        // Pairwise, in the same tree order as the x86 reductions below.
        let s4: [f32; 4] = std::array::from_fn(|i| v[i] + v[i + 4]);
        let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
        s2[0] + s2[1]
    }
    #[inline(always)]
    unsafe fn reduce_max(v: [f32; 8]) -> f32 {
        v.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
    #[inline(always)]
    unsafe fn abs(a: [f32; 8]) -> [f32; 8] {
        a.map(f32::abs)
    }
    #[inline(always)]
    unsafe fn copysign(mag: [f32; 8], sign: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| mag[i].copysign(sign[i]))
    }
    #[inline(always)]
    unsafe fn round(a: [f32; 8]) -> [f32; 8] {
        a.map(f32::round_ties_even)
    }
    #[inline(always)]
    unsafe fn pow2i(n: [f32; 8]) -> [f32; 8] {
        // `as i32` saturates (NaN -> 0), and the wrapping ops keep out-of-range lanes defined.
        n.map(|n| f32::from_bits((n as i32).wrapping_add(127).wrapping_shl(23) as u32))
    }
    #[inline(always)]
    unsafe fn lt(a: [f32; 8], b: [f32; 8]) -> [bool; 8] {
        std::array::from_fn(|i| a[i] < b[i])
    }
    #[inline(always)]
    unsafe fn select(mask: [bool; 8], if_true: [f32; 8], if_false: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| if mask[i] { if_true[i] } else { if_false[i] })
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use core::arch::x86_64::*;

    /// AVX2 + FMA: 8 lanes in a `__m256`.
    #[derive(Clone, Copy, Debug)]
    pub struct Avx2;

    /// AVX-512F: 16 lanes in a `__m512`.
    #[derive(Clone, Copy, Debug)]
    pub struct Avx512;

    /// Mask of the first `n` of 8 lanes for `vmaskmovps` (lane i active when its sign bit is set).
    #[inline(always)]
    unsafe fn avx2_mask(n: usize) -> __m256i {
        debug_assert!(n <= 8);
        // SAFETY: AVX2 is available (caller); `_mm256_set_epi32`/compares are register-only.
        unsafe {
            let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes)
        }
    }

    // SAFETY: every method only runs where the dispatcher has checked AVX2 and FMA.
    unsafe impl Simd for Avx2 {
        const LANES: usize = 8;
        type V = __m256;
        /// All-ones / all-zeros lanes, as `vcmpps` produces and `vblendvps` reads.
        type Mask = __m256;

        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            // SAFETY: AVX available and 8 readable floats at `p` (caller).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            // SAFETY: AVX available and 8 writable floats at `p` (caller).
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> __m256 {
            // SAFETY: masked lanes are not accessed, so only `n` floats are read (caller).
            unsafe { _mm256_maskload_ps(p, avx2_mask(n)) }
        }
        #[inline(always)]
        unsafe fn store_partial(p: *mut f32, v: __m256, n: usize) {
            // SAFETY: masked lanes are not accessed, so only `n` floats are written (caller).
            unsafe { _mm256_maskstore_ps(p, avx2_mask(n), v) }
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            // SAFETY: FMA is available (caller).
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn div(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_div_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sqrt(a: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_sqrt_ps(a) }
        }
        #[inline(always)]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_max_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn min(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_min_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn reduce_add(v: __m256) -> f32 {
            // SAFETY: AVX is available (caller). Same tree as `Portable::reduce_add`.
            unsafe {
                let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
                _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)))
            }
        }
        #[inline(always)]
        unsafe fn reduce_max(v: __m256) -> f32 {
            // SAFETY: AVX is available (caller).
            unsafe {
                let m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1)))
            }
        }
        #[inline(always)]
        unsafe fn abs(a: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
        }
        #[inline(always)]
        unsafe fn copysign(mag: __m256, sign: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe {
                let sign_bit = _mm256_set1_ps(-0.0);
                _mm256_or_ps(
                    _mm256_andnot_ps(sign_bit, mag),
                    _mm256_and_ps(sign_bit, sign),
                )
            }
        }
        #[inline(always)]
        unsafe fn round(a: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
        }
        #[inline(always)]
        unsafe fn pow2i(n: __m256) -> __m256 {
            // SAFETY: AVX2 is available (caller). `n` is integer-valued, so the conversion is exact.
            unsafe {
                let biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
            }
        }
        #[inline(always)]
        unsafe fn lt(a: __m256, b: __m256) -> __m256 {
            // SAFETY: AVX is available (caller).
            unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
        }
        #[inline(always)]
        unsafe fn select(mask: __m256, if_true: __m256, if_false: __m256) -> __m256 {
            // SAFETY: AVX is available (caller). `blendv` takes the second operand where the mask
            // lane's sign bit is set.
            unsafe { _mm256_blendv_ps(if_false, if_true, mask) }
        }
    }

    // SAFETY: every method only runs where the dispatcher has checked AVX-512F/BW/VL.
    unsafe impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        /// One bit per lane in a `k` register.
        type Mask = __mmask16;

        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            // SAFETY: AVX-512F available and 16 readable floats at `p` (caller).
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            // SAFETY: AVX-512F available and 16 writable floats at `p` (caller).
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> __m512 {
            debug_assert!(n <= 16);
            // SAFETY: masked-off lanes are neither read nor fault, so only `n` floats are read.
            unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p) }
        }
        #[inline(always)]
        unsafe fn store_partial(p: *mut f32, v: __m512, n: usize) {
            debug_assert!(n <= 16);
            // SAFETY: masked-off lanes are neither written nor fault, so only `n` floats are written.
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, v) }
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn div(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sqrt(a: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_sqrt_ps(a) }
        }
        #[inline(always)]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_max_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn min(a: __m512, b: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_min_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn reduce_add(v: __m512) -> f32 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_reduce_add_ps(v) }
        }
        #[inline(always)]
        unsafe fn reduce_max(v: __m512) -> f32 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_reduce_max_ps(v) }
        }
        #[inline(always)]
        unsafe fn abs(a: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_abs_ps(a) }
        }
        #[inline(always)]
        unsafe fn copysign(mag: __m512, sign: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller). Float and/or need AVX-512DQ, so this works on
            // the integer view of the lanes.
            unsafe {
                let sign_bit = _mm512_set1_epi32(i32::MIN);
                let magnitude = _mm512_andnot_si512(sign_bit, _mm512_castps_si512(mag));
                let sign = _mm512_and_si512(sign_bit, _mm512_castps_si512(sign));
                _mm512_castsi512_ps(_mm512_or_si512(magnitude, sign))
            }
        }
        #[inline(always)]
        unsafe fn round(a: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller). Scale 0 (bits 7:4), no precision exception.
            unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
        }
        #[inline(always)]
        unsafe fn pow2i(n: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller). `n` is integer-valued, so the conversion is
            // exact.
            unsafe {
                let biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
                _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased))
            }
        }
        #[inline(always)]
        unsafe fn lt(a: __m512, b: __m512) -> __mmask16 {
            // SAFETY: AVX-512F is available (caller).
            unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
        }
        #[inline(always)]
        unsafe fn select(mask: __mmask16, if_true: __m512, if_false: __m512) -> __m512 {
            // SAFETY: AVX-512F is available (caller). `mask_blend` takes the second operand where
            // the mask bit is set.
            unsafe { _mm512_mask_blend_ps(mask, if_false, if_true) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(always)]
    fn lanes_roundtrip<S: Simd>() {
        let src: Vec<f32> = (0..S::LANES).map(|i| i as f32 + 0.5).collect();
        let mut dst = vec![-1.0f32; S::LANES + 1];
        for n in 0..S::LANES {
            // SAFETY: the caller checked the ISA; `src`/`dst` hold at least `n` floats.
            unsafe {
                let v = S::load_partial(src.as_ptr(), n);
                S::store_partial(dst.as_mut_ptr(), v, n);
            }
            assert_eq!(&dst[..n], &src[..n]);
            assert_eq!(dst[n], -1.0, "store_partial wrote past n = {n}");
        }
        // SAFETY: as above, with LANES floats.
        let (sum, max) = unsafe {
            let v = S::load(src.as_ptr());
            (S::reduce_add(v), S::reduce_max(v))
        };
        assert_eq!(sum, src.iter().sum::<f32>());
        assert_eq!(max, (S::LANES - 1) as f32 + 0.5);
    }

    /// Applies `op` to `input` in `LANES`-wide chunks (the tail padded with zeros).
    #[inline(always)]
    fn map_lanes<S: Simd>(input: &[f32], op: impl Fn(S::V) -> S::V) -> Vec<f32> {
        let mut out = vec![0.0f32; input.len().div_ceil(S::LANES) * S::LANES];
        let mut padded = input.to_vec();
        padded.resize(out.len(), 0.0);
        for (src, dst) in padded
            .chunks_exact(S::LANES)
            .zip(out.chunks_exact_mut(S::LANES))
        {
            // SAFETY: the caller checked the ISA; each chunk holds LANES floats.
            unsafe { S::store(dst.as_mut_ptr(), op(S::load(src.as_ptr()))) };
        }
        out.truncate(input.len());
        out
    }

    /// Bitwise equality, so that NaN == NaN and -0.0 != 0.0.
    fn assert_bits_eq(got: &[f32], want: &[f32], what: &str) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{what}[{i}]: got {g:e} ({:#010x}), want {w:e} ({:#010x})",
                g.to_bits(),
                w.to_bits()
            );
        }
    }

    /// The elementwise helpers the activations use: abs, copysign, round, pow2i, lt, select.
    #[inline(always)]
    fn elementwise_ops<S: Simd>() {
        let specials = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            3.49,
            -7.51,
            1e-40,
            -1e-40,
            8388609.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let abs = map_lanes::<S>(&specials, |v| unsafe { S::abs(v) });
        let want: Vec<f32> = specials.iter().map(|x| x.abs()).collect();
        assert_bits_eq(&abs, &want, "abs");

        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let round = map_lanes::<S>(&specials, |v| unsafe { S::round(v) });
        let want: Vec<f32> = specials.iter().map(|x| x.round_ties_even()).collect();
        assert_bits_eq(&round, &want, "round");

        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let negative = map_lanes::<S>(&specials, |v| unsafe { S::copysign(v, S::splat(-1.0)) });
        let want: Vec<f32> = specials.iter().map(|x| x.copysign(-1.0)).collect();
        assert_bits_eq(&negative, &want, "copysign(x, -1)");
        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let signs = map_lanes::<S>(&specials, |v| unsafe { S::copysign(S::splat(2.0), v) });
        let want: Vec<f32> = specials.iter().map(|x| 2.0f32.copysign(*x)).collect();
        assert_bits_eq(&signs, &want, "copysign(2, x)");

        let exponents: Vec<f32> = (-126..=127).map(|n| n as f32).collect();
        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let pow2 = map_lanes::<S>(&exponents, |v| unsafe { S::pow2i(v) });
        let want: Vec<f32> = (-126..=127).map(|n| 2.0f32.powi(n)).collect();
        assert_bits_eq(&pow2, &want, "pow2i");

        // select(x < 0.5, x, -7): NaN lanes compare false.
        // SAFETY: the caller of `elementwise_ops` checked the ISA.
        let picked = map_lanes::<S>(&specials, |v| unsafe {
            S::select(S::lt(v, S::splat(0.5)), v, S::splat(-7.0))
        });
        let want: Vec<f32> = specials
            .iter()
            .map(|&x| if x < 0.5 { x } else { -7.0 })
            .collect();
        assert_bits_eq(&picked, &want, "select(lt)");
    }

    #[test]
    fn portable_lanes() {
        lanes_roundtrip::<Portable>();
        elementwise_ops::<Portable>();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_lanes() {
        if !crate::Isa::Avx2.is_available() {
            eprintln!("skipping avx2_lanes: this CPU has no AVX2+FMA");
            return;
        }
        #[target_feature(enable = "avx2,fma")]
        fn run() {
            lanes_roundtrip::<Avx2>();
            elementwise_ops::<Avx2>();
        }
        // SAFETY: AVX2 and FMA were checked above.
        unsafe { run() }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_lanes() {
        if !crate::Isa::Avx512.is_available() {
            eprintln!("skipping avx512_lanes: this CPU has no AVX-512F/BW/VL");
            return;
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
        fn run() {
            lanes_roundtrip::<Avx512>();
            elementwise_ops::<Avx512>();
        }
        // SAFETY: AVX-512F/BW/VL were checked above.
        unsafe { run() }
    }
}
