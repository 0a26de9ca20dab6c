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

use recur_kernels::optim;

use super::{Convention, Decay, Slices};

/// Adam's per-step scalars.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub convention: Convention,
    /// PyTorch: `lr/(1 − β₁ᵗ)`; Keras: `α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`
    pub step_size: f32,
    /// PyTorch: `√(1 − β₂ᵗ)`; unused by Keras
    pub correction2_sqrt: f32,
}

impl Adam {
    /// Resolves the bias corrections of the 1-based step `t`, in f64 (PyTorch computes them as
    /// Python floats; Keras in f32, a rounding-level difference).
    pub fn at_step(
        beta1: f32,
        beta2: f32,
        epsilon: f32,
        convention: Convention,
        lr: f32,
        t: u64,
    ) -> Self {
        let power = i32::try_from(t).unwrap_or(i32::MAX);
        let correction1 = 1.0 - f64::from(beta1).powi(power);
        let correction2 = 1.0 - f64::from(beta2).powi(power);
        let step_size = match convention {
            Convention::PyTorch => f64::from(lr) / correction1,
            Convention::Keras => f64::from(lr) * correction2.sqrt() / correction1,
        };
        Adam {
            beta1,
            beta2,
            epsilon,
            convention,
            step_size: step_size as f32,
            correction2_sqrt: correction2.sqrt() as f32,
        }
    }
}

/// Adam over one chunk of one parameter tensor (`mean` = m, `mean_square` = v), in the
/// vectorised kernel [`recur_kernels::optim::adam_update`]: per element `g ← g + l2·θ`,
/// `θ ← shrink·θ`, then
/// - PyTorch: `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g·g`,
///   `θ ← θ − step_size·m / (√v/correction2_sqrt + ε)`;
/// - Keras: `m ← m + (g − m)·(1 − β₁)`, `v ← v + (g·g − v)·(1 − β₂)`,
///   `θ ← θ − m·step_size / (√v + ε)`,
///
/// in that operation order with separate multiplies and adds, so the bits are the plain scalar
/// loop's on every ISA path.
pub(crate) fn adam_update(p: Adam, decay: Decay, s: Slices<'_>) {
    let step = optim::AdamStep {
        form: match p.convention {
            Convention::PyTorch => optim::AdamForm::PyTorch,
            Convention::Keras => optim::AdamForm::Keras,
        },
        beta1: p.beta1,
        beta2: p.beta2,
        epsilon: p.epsilon,
        step_size: p.step_size,
        correction2_sqrt: p.correction2_sqrt,
    };
    let decay = optim::Decay {
        l2: decay.l2,
        shrink: decay.shrink,
    };
    let buffers = optim::AdamBuffers {
        value: s.value,
        grad: s.grad,
        mean: s.mean,
        mean_square: s.mean_square,
    };
    optim::adam_update(&step, decay, buffers);
}
