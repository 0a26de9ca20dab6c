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
/// `momentum` only with momentum; both empty otherwise).
pub(crate) fn rmsprop_update(p: RmsProp, decay: Decay, s: Slices<'_>) {
    match p.convention {
        Convention::PyTorch => rmsprop_loops::<false>(p, decay, s),
        Convention::Keras => rmsprop_loops::<true>(p, decay, s),
    }
}

/// The step before momentum: PyTorch `g/(√v' + ε)` (the rate is applied later), Keras
/// `lr·g/√(v' + ε)`.
#[inline(always)]
fn scaled<const KERAS: bool>(p: &RmsProp, g: f32, v_centered: f32) -> f32 {
    if KERAS {
        p.lr * g / (v_centered + p.epsilon).sqrt()
    } else {
        g / (v_centered.sqrt() + p.epsilon)
    }
}

/// `θ ← θ − lr·x` (PyTorch) or `θ ← θ − x` (Keras, whose `x` already carries the rate).
#[inline(always)]
fn descend<const KERAS: bool>(p: &RmsProp, theta: &mut f32, x: f32) {
    if KERAS {
        *theta -= x;
    } else {
        *theta -= p.lr * x;
    }
}

/// One simple loop per variant, each branch-free inside so that it vectorises.
fn rmsprop_loops<const KERAS: bool>(p: RmsProp, decay: Decay, s: Slices<'_>) {
    let (rho, mu) = (p.rho, p.momentum);
    let main = s.value.iter_mut().zip(s.grad).zip(s.mean_square.iter_mut());
    match (p.centered, mu > 0.0) {
        (false, false) => {
            for ((theta, &g), v) in main {
                let g = decay.apply(theta, g);
                *v = rho * *v + (1.0 - rho) * g * g;
                descend::<KERAS>(&p, theta, scaled::<KERAS>(&p, g, *v));
            }
        }
        (true, false) => {
            for (((theta, &g), v), mean) in main.zip(s.mean.iter_mut()) {
                let g = decay.apply(theta, g);
                *v = rho * *v + (1.0 - rho) * g * g;
                *mean = rho * *mean + (1.0 - rho) * g;
                let x = scaled::<KERAS>(&p, g, *v - *mean * *mean);
                descend::<KERAS>(&p, theta, x);
            }
        }
        (false, true) => {
            for (((theta, &g), v), b) in main.zip(s.momentum.iter_mut()) {
                let g = decay.apply(theta, g);
                *v = rho * *v + (1.0 - rho) * g * g;
                *b = mu * *b + scaled::<KERAS>(&p, g, *v);
                descend::<KERAS>(&p, theta, *b);
            }
        }
        (true, true) => {
            let extra = s.mean.iter_mut().zip(s.momentum.iter_mut());
            for (((theta, &g), v), (mean, b)) in main.zip(extra) {
                let g = decay.apply(theta, g);
                *v = rho * *v + (1.0 - rho) * g * g;
                *mean = rho * *mean + (1.0 - rho) * g;
                *b = mu * *b + scaled::<KERAS>(&p, g, *v - *mean * *mean);
                descend::<KERAS>(&p, theta, *b);
            }
        }
    }
}
