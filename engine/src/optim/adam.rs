//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015), and with
//! [`WeightDecay::Decoupled`](super::WeightDecay::Decoupled) AdamW (Loshchilov & Hutter,
//! "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2).
//!
//! Both libraries keep `m ← β₁·m + (1 − β₁)·g` and `v ← β₂·v + (1 − β₂)·g²` and correct the
//! bias with `t` = the 1-based step. They differ in where ε enters:
//!
//! - PyTorch (`torch.optim.Adam` docs, "Algorithm": Algorithm 1 of the paper): ε added after
//!   the bias correction, default 1e-8:
//!   `θ ← θ − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`.
//! - Keras 3 (`keras.optimizers.Adam.update_step`; its docstring: "epsilon hat in the Kingma
//!   and Ba paper (in the formula just before Section 2.1)"): ε̂ added before it, default 1e-7:
//!   `α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, `θ ← θ − α·m/(√v + ε̂)`.
//!
//! The Keras form equals the PyTorch one with `ε = ε̂/√(1 − β₂ᵗ)`: at `t = 1` with β₂ = 0.999
//! that is ≈ 31.6·ε̂, tending to ε̂ as `t` grows.

use super::{Convention, ParamState, WeightDecay, effective_gradient};

/// One Adam step over one parameter tensor; `t` is the 1-based step number.
pub(crate) fn adam_update(
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    convention: Convention,
    t: u64,
    lr: f32,
    decay: WeightDecay,
    value: &mut [f32],
    grad: &[f32],
    state: &mut ParamState,
) {
    let len = value.len();
    if state.mean.is_empty() {
        state.mean = vec![0.0; len];
        state.mean_square = vec![0.0; len];
    }
    // bias corrections in f64 (PyTorch computes them as Python floats; Keras in f32, a
    // rounding-level difference)
    let power = i32::try_from(t).unwrap_or(i32::MAX);
    let correction1 = 1.0 - f64::from(beta1).powi(power);
    let correction2 = 1.0 - f64::from(beta2).powi(power);
    match convention {
        Convention::PyTorch => {
            let step_size = (f64::from(lr) / correction1) as f32;
            let correction2_sqrt = correction2.sqrt() as f32;
            for i in 0..len {
                let theta = &mut value[i];
                let g = effective_gradient(decay, lr, theta, grad[i]);
                let (m, v) = (&mut state.mean[i], &mut state.mean_square[i]);
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                let denominator = v.sqrt() / correction2_sqrt + epsilon;
                *theta -= step_size * *m / denominator;
            }
        }
        Convention::Keras => {
            let alpha = (f64::from(lr) * correction2.sqrt() / correction1) as f32;
            for i in 0..len {
                let theta = &mut value[i];
                let g = effective_gradient(decay, lr, theta, grad[i]);
                let (m, v) = (&mut state.mean[i], &mut state.mean_square[i]);
                *m += (g - *m) * (1.0 - beta1);
                *v += (g * g - *v) * (1.0 - beta2);
                *theta -= *m * alpha / (v.sqrt() + epsilon);
            }
        }
    }
}
