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

use super::{Convention, Decay, Slices};

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

/// SGD over one chunk of one parameter tensor. `first_step`: the momentum buffer (all zeros)
/// has never been written — PyTorch then sets `b = g` instead of damping.
pub(crate) fn sgd_update(
    momentum: SgdMomentum,
    convention: Convention,
    lr: f32,
    decay: Decay,
    first_step: bool,
    s: Slices<'_>,
) {
    let (mu, dampening, nesterov) = match momentum {
        SgdMomentum::None => {
            for (theta, &g) in s.value.iter_mut().zip(s.grad) {
                let g = decay.apply(theta, g);
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
    let buffers = s.value.iter_mut().zip(s.grad).zip(s.momentum.iter_mut());
    match convention {
        Convention::PyTorch => {
            // b ← keep·b + take·g: (0, 1) on the first step gives b = g
            let (keep, take) = if first_step {
                (0.0, 1.0)
            } else {
                (mu, 1.0 - dampening)
            };
            for ((theta, &g), b) in buffers {
                let g = decay.apply(theta, g);
                *b = keep * *b + take * g;
                let step = if nesterov { g + mu * *b } else { *b };
                *theta -= lr * step;
            }
        }
        Convention::Keras => {
            for ((theta, &g), v) in buffers {
                let g = decay.apply(theta, g);
                *v = mu * *v - lr * g;
                *theta += if nesterov { mu * *v - lr * g } else { *v };
            }
        }
    }
}
