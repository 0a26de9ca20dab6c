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

use recur_kernels::optim;

use super::{Convention, Decay, Slices};

/// RMSprop hyper-parameters resolved for one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RmsProp {
    pub rho: f32,
    pub epsilon: f32,
    /// 0 for none
    pub momentum: f32,
    pub centered: bool,
    pub convention: Convention,
    pub lr: f32,
}

/// RMSprop over one chunk of one parameter tensor (`mean` is used only when centred,
/// `momentum` only with momentum; both empty otherwise), in the vectorised kernel
/// [`recur_kernels::optim::rmsprop_update`]: per element `g ← g + l2·θ`, `θ ← shrink·θ`,
/// `v ← ρ·v + (1 − ρ)·g·g`, when centred `ḡ ← ρ·ḡ + (1 − ρ)·g` and `v' = v − ḡ·ḡ` (else
/// `v' = v`), then
/// - PyTorch: `x = g/(√v' + ε)`, with momentum `b ← μ·b + x`, `x = b`; `θ ← θ − lr·x`;
/// - Keras: `x = lr·g/√(v' + ε)`, with momentum `b ← μ·b + x`, `x = b`; `θ ← θ − x`,
///
/// in that operation order with separate multiplies and adds, so the bits are the plain scalar
/// loop's on every ISA path.
pub(crate) fn rmsprop_update(p: RmsProp, decay: Decay, s: Slices<'_>) {
    let step = optim::RmsPropStep {
        keras: p.convention == Convention::Keras,
        rho: p.rho,
        epsilon: p.epsilon,
        momentum: p.momentum,
        centered: p.centered,
        lr: p.lr,
    };
    let decay = optim::Decay {
        l2: decay.l2,
        shrink: decay.shrink,
    };
    let buffers = optim::RmsPropBuffers {
        value: s.value,
        grad: s.grad,
        mean_square: s.mean_square,
        mean: s.mean,
        momentum: s.momentum,
    };
    optim::rmsprop_update(&step, decay, buffers);
}
