//! Stochastic gradient descent, optionally with (Nesterov) momentum.
//!
//! PyTorch (`torch.optim.SGD` docs, "Algorithm"), with `b` the momentum buffer:
//! ```text
//! b ← g                       on the first step
//! b ← μ·b + (1 − τ)·g         afterwards (τ = dampening)
//! θ ← θ − lr·b                classical
//! θ ← θ − lr·(g + μ·b)        Nesterov
//! ```
//! Keras 3 (`keras.optimizers.SGD.update_step`), with `v` a velocity that carries the rate:
//! ```text
//! v ← μ·v − lr·g              (v starts at 0)
//! θ ← θ + v                   classical
//! θ ← θ + μ·v − lr·g          Nesterov
//! ```
//! With a constant learning rate and no dampening the two are the same method (`v = −lr·b`);
//! they differ when the rate changes, since Keras's velocity remembers old rates.
//! Nesterov momentum follows Sutskever et al., "On the importance of initialization and
//! momentum in deep learning" (ICML 2013), eq. (3)–(4), in the reformulation both libraries use.

use serde::{Deserialize, Serialize};

use super::{Convention, ParamState, WeightDecay, effective_gradient};

/// The momentum variant of SGD.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SgdMomentum {
    /// Plain SGD: `θ ← θ − lr·g`.
    #[default]
    None,
    /// Heavy-ball momentum `μ`, with PyTorch's `dampening` `τ` (must be 0 under the Keras
    /// convention, which has none).
    Classical { momentum: f32, dampening: f32 },
    /// Nesterov momentum `μ` (no dampening, as both libraries require).
    Nesterov { momentum: f32 },
}

/// One SGD step over one parameter tensor: `value` and `grad` have equal length; `state.momentum`
/// is empty before the first step.
pub(crate) fn sgd_update(
    momentum: SgdMomentum,
    convention: Convention,
    lr: f32,
    decay: WeightDecay,
    value: &mut [f32],
    grad: &[f32],
    state: &mut ParamState,
) {
    let (mu, dampening, nesterov) = match momentum {
        SgdMomentum::None => {
            for (theta, &g) in value.iter_mut().zip(grad) {
                let g = effective_gradient(decay, lr, theta, g);
                *theta -= lr * g;
            }
            return;
        }
        SgdMomentum::Classical {
            momentum,
            dampening,
        } => (momentum, dampening, false),
        SgdMomentum::Nesterov { momentum } => (momentum, 0.0, true),
    };
    let first_step = state.momentum.is_empty();
    if first_step {
        state.momentum = vec![0.0; value.len()];
    }
    for ((theta, &g), buffer) in value.iter_mut().zip(grad).zip(&mut state.momentum) {
        let g = effective_gradient(decay, lr, theta, g);
        match convention {
            Convention::PyTorch => {
                *buffer = if first_step {
                    g
                } else {
                    mu * *buffer + (1.0 - dampening) * g
                };
                let step = if nesterov { g + mu * *buffer } else { *buffer };
                *theta -= lr * step;
            }
            Convention::Keras => {
                *buffer = mu * *buffer - lr * g;
                if nesterov {
                    *theta += mu * *buffer - lr * g;
                } else {
                    *theta += *buffer;
                }
            }
        }
    }
}
