//! RMSprop (Hinton, Coursera "Neural Networks for Machine Learning", lecture 6e), optionally
//! centred (Graves, "Generating Sequences With Recurrent Neural Networks", 2013, eq. 38–45)
//! and with momentum.
//!
//! Both libraries keep `v ← ρ·v + (1 − ρ)·g²` (PyTorch calls ρ `alpha`), and when centred
//! `ḡ ← ρ·ḡ + (1 − ρ)·g` with `v' = v − ḡ²` (else `v' = v`). They differ in where ε goes:
//!
//! - PyTorch (`torch.optim.RMSprop` docs, "Algorithm"; its docstring: "takes the square root
//!   of the gradient average before adding epsilon (note that TensorFlow interchanges these two
//!   operations)"): ε **outside** the root, default 1e-8:
//!   `b ← μ·b + g/(√v' + ε)`, `θ ← θ − lr·b` (without momentum `θ ← θ − lr·g/(√v' + ε)`).
//! - Keras 3 (`keras.optimizers.RMSprop.update_step`: `denominator = velocity + epsilon`,
//!   `increment = lr·g / sqrt(denominator)`) and TensorFlow's `ApplyRMSProp`: ε **inside** the
//!   root, default 1e-7: `Δ = lr·g/√(v' + ε)`, `m ← μ·m + Δ`, `θ ← θ − m` (without momentum
//!   `θ ← θ − Δ`).
//!
//! So Keras's ε = 1e-7 is not a smaller version of PyTorch's: at the first step with a gradient
//! of size |g|, Keras divides by `√(0.1·g² + 1e-7)`, which floors the denominator at ≈ 3.2e-4,
//! while PyTorch's floor is 1e-8.

use super::{Convention, ParamState, WeightDecay, effective_gradient};

/// One RMSprop step over one parameter tensor.
pub(crate) fn rmsprop_update(
    rho: f32,
    epsilon: f32,
    momentum: f32,
    centered: bool,
    convention: Convention,
    lr: f32,
    decay: WeightDecay,
    value: &mut [f32],
    grad: &[f32],
    state: &mut ParamState,
) {
    let len = value.len();
    if state.mean_square.is_empty() {
        state.mean_square = vec![0.0; len];
    }
    if centered && state.mean.is_empty() {
        state.mean = vec![0.0; len];
    }
    if momentum > 0.0 && state.momentum.is_empty() {
        state.momentum = vec![0.0; len];
    }
    for i in 0..len {
        let theta = &mut value[i];
        let g = effective_gradient(decay, lr, theta, grad[i]);
        let v = &mut state.mean_square[i];
        *v = rho * *v + (1.0 - rho) * g * g;
        let mut v_centered = *v;
        if centered {
            let mean = &mut state.mean[i];
            *mean = rho * *mean + (1.0 - rho) * g;
            v_centered -= *mean * *mean;
        }
        match convention {
            Convention::PyTorch => {
                let scaled = g / (v_centered.sqrt() + epsilon);
                if momentum > 0.0 {
                    let buffer = &mut state.momentum[i];
                    *buffer = momentum * *buffer + scaled;
                    *theta -= lr * *buffer;
                } else {
                    *theta -= lr * scaled;
                }
            }
            Convention::Keras => {
                let increment = lr * g / (v_centered + epsilon).sqrt();
                if momentum > 0.0 {
                    let velocity = &mut state.momentum[i];
                    *velocity = momentum * *velocity + increment;
                    *theta -= *velocity;
                } else {
                    *theta -= increment;
                }
            }
        }
    }
}
