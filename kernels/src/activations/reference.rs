//! Scalar f64 references for the activations: plain, slow and as exact as f64 `libm` makes them
//! (for every f32 input the f64 result is within a few f64 ulps of the true value, i.e. ~1e-16
//! relative, far below the f32 errors being measured against it).

/// `e^x`.
pub fn exp(x: f64) -> f64 {
    x.exp()
}

/// `σ(x) = 1 / (1 + e^−x)`, written with the reflection `σ(x) = e^x / (1 + e^x)` for `x < 0` so
/// that the lower tail keeps its relative accuracy (and `e^−x` never overflows). NaN → NaN.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `tanh x`.
pub fn tanh(x: f64) -> f64 {
    x.tanh()
}
