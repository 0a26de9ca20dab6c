//! Temporary stand-in for `crate::activations::{sigmoid_v, tanh_v}` until that module lands:
//! a clamped 13/6 rational approximation of tanh (the Eigen/TensorFlow form), sigmoid through
//! `σ(x) = ½ + ½·tanh(x/2)`. Uses only the `Simd` vocabulary.

use crate::simd::Simd;

#[inline(always)]
pub unsafe fn tanh_v<S: Simd>(x: S::V) -> S::V {
    // SAFETY: register-only arithmetic on the caller's ISA.
    unsafe {
        let clamp = S::splat(7.905_311);
        let x = S::max(S::splat(-7.905_311), S::min(x, clamp));
        let x2 = S::mul(x, x);
        let mut p = S::splat(-2.760_768_5e-16);
        for c in [
            2.000_187_9e-13,
            -8.604_671_5e-11,
            5.122_297e-8,
            1.485_722_4e-5,
            6.372_619_3e-4,
            4.893_524_6e-3,
        ] {
            p = S::fma(p, x2, S::splat(c));
        }
        p = S::mul(p, x);
        let mut q = S::splat(1.198_258_4e-6);
        for c in [1.185_347e-4, 2.268_434_6e-3, 4.893_525e-3] {
            q = S::fma(q, x2, S::splat(c));
        }
        S::div(p, q)
    }
}

#[inline(always)]
pub unsafe fn sigmoid_v<S: Simd>(x: S::V) -> S::V {
    // SAFETY: register-only arithmetic on the caller's ISA.
    unsafe {
        let half = S::splat(0.5);
        S::fma(half, tanh_v::<S>(S::mul(half, x)), half)
    }
}
