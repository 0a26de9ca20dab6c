//! The scalar type of the reference: `f32` or `f64`.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real number the reference computes in: implemented for `f32` and `f64`.
///
/// The f64 instantiation is the accuracy oracle (finite-difference gradient checks); the f32 one
/// is compared against it to bound what single precision alone costs.
pub trait Real:
    Copy
    + Debug
    + Default
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
{
    const ZERO: Self;
    const ONE: Self;

    /// The nearest value of this type (rounds for `f32`).
    fn from_f64(value: f64) -> Self;
    /// Exact widening (for `f32`) or identity.
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// The larger of the two (IEEE `maxNum`: a NaN operand loses).
    fn max(self, other: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;

            #[inline]
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
        }
    };
}

impl_real!(f32);
impl_real!(f64);

/// The logistic function `σ(x) = 1 / (1 + e^{−x})`.
///
/// For very negative `x`, `e^{−x}` overflows to `+∞` and the result is the correct limit 0.
#[inline]
pub fn sigmoid<T: Real>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

/// `len` values drawn uniformly from `[−bound, bound]` (in f64, then rounded to `T`) by a
/// `ChaCha8Rng` seeded with `seed`: deterministic test data, equal across precisions up to
/// rounding.
pub fn seeded_uniform<T: Real>(len: usize, bound: f64, seed: u64) -> Vec<T> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| T::from_f64(rng.random_range(-bound..=bound)))
        .collect()
}

/// Converts a slice element-wise between the two precisions.
pub fn cast_slice<T: Real, U: Real>(values: &[T]) -> Vec<U> {
    values.iter().map(|v| U::from_f64(v.to_f64())).collect()
}
