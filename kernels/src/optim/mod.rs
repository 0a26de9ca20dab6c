//! Element-wise optimiser updates (Adam, RMSprop), vectorised and bit-identical to their scalar
//! loops.
//!
//! The engine's optimisers (`recur_engine::optim`) resolve each step's scalars (bias
//! corrections, learning rate, weight decay) and hand every chunk of a parameter tensor to
//! [`adam_update`] or [`rmsprop_update`]. The arithmetic per element is exactly
//! [`adam_element`]'s or [`rmsprop_element`]'s: separate multiplies and adds (no FMA), in the same
//! order, and IEEE `sqrt` and division, which every ISA rounds correctly. So each lane computes the same bits as the scalar loop on every path, and the
//! engine's results do not depend on `RECUR_ISA` (the tests compare every path bit for bit).
//!
//! # Panics
//!
//! Buffers of different lengths are a bug in the caller and panic from a `#[cold]` shape check
//! before any unsafe code runs.

use crate::Isa;
use crate::simd::{Portable, Simd};

/// Weight decay as two per-step constants: `g ← g + l2·θ`, then `θ ← shrink·θ`. With no decay
/// (`l2 = 0`, `shrink = 1`) both are still applied, as the scalar loop does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decay {
    pub l2: f32,
    pub shrink: f32,
}

impl Decay {
    /// No decay: `l2 = 0`, `shrink = 1`.
    pub const NONE: Decay = Decay {
        l2: 0.0,
        shrink: 1.0,
    };

    /// Returns the gradient to use for the element `theta` and applies the shrink to it.
    #[inline(always)]
    pub fn apply(&self, theta: &mut f32, g: f32) -> f32 {
        let g = g + self.l2 * *theta;
        *theta *= self.shrink;
        g
    }
}

/// Whose Adam arithmetic to reproduce (where ε enters; see `recur_engine::optim::adam`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdamForm {
    /// `m ← β₁·m + (1−β₁)·g`, `v ← β₂·v + (1−β₂)·g·g`, `θ ← θ − step·m / (√v/c₂ + ε)`.
    PyTorch,
    /// `m ← m + (g − m)·(1−β₁)`, `v ← v + (g·g − v)·(1−β₂)`, `θ ← θ − m·step / (√v + ε)`.
    Keras,
}

/// Adam's scalars for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub form: AdamForm,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// PyTorch: `lr/(1 − β₁ᵗ)`; Keras: `lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`.
    pub step_size: f32,
    /// PyTorch: `c₂ = √(1 − β₂ᵗ)`; unused by Keras.
    pub correction2_sqrt: f32,
}

/// The buffers of one chunk of one parameter tensor, all of the same length.
#[derive(Debug)]
pub struct AdamBuffers<'a> {
    /// θ, updated in place.
    pub value: &'a mut [f32],
    pub grad: &'a [f32],
    /// m, updated in place.
    pub mean: &'a mut [f32],
    /// v, updated in place.
    pub mean_square: &'a mut [f32],
}

/// One element of Adam: the scalar definition every path reproduces bit for bit.
#[inline(always)]
pub fn adam_element<const KERAS: bool>(
    p: &AdamStep,
    decay: Decay,
    theta: &mut f32,
    g: f32,
    m: &mut f32,
    v: &mut f32,
) {
    let g = decay.apply(theta, g);
    if KERAS {
        *m += (g - *m) * (1.0 - p.beta1);
        *v += (g * g - *v) * (1.0 - p.beta2);
        *theta -= *m * p.step_size / (v.sqrt() + p.epsilon);
    } else {
        *m = p.beta1 * *m + (1.0 - p.beta1) * g;
        *v = p.beta2 * *v + (1.0 - p.beta2) * g * g;
        let denominator = v.sqrt() / p.correction2_sqrt + p.epsilon;
        *theta -= p.step_size * *m / denominator;
    }
}

/// The plain scalar loop over [`adam_element`] (what the tests compare every path against).
pub fn adam_update_reference(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    check_adam("adam_update_reference", &b);
    match p.form {
        AdamForm::PyTorch => scalar_loop::<false>(p, decay, b, 0),
        AdamForm::Keras => scalar_loop::<true>(p, decay, b, 0),
    }
}

/// [`adam_element`] over the elements `from..` of `b` (equal lengths checked by the caller).
#[inline(always)]
fn scalar_loop<const KERAS: bool>(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>, from: usize) {
    let moments = b.mean[from..].iter_mut().zip(&mut b.mean_square[from..]);
    let all = b.value[from..].iter_mut().zip(&b.grad[from..]).zip(moments);
    for ((theta, &g), (m, v)) in all {
        adam_element::<KERAS>(p, decay, theta, g, m, v);
    }
}

/// Adam over one chunk on the [`Isa::active`] path, bit-identical to
/// [`adam_update_reference`].
///
/// # Panics
/// If the four buffers' lengths differ.
pub fn adam_update(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    adam_update_with_isa(Isa::active(), p, decay, b)
}

/// As [`adam_update`], on the path `isa`.
///
/// # Panics
/// If the buffers' lengths differ, or if the CPU cannot run `isa`.
pub fn adam_update_with_isa(isa: Isa, p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    const WHAT: &str = "adam_update";
    check_isa(WHAT, isa);
    check_adam(WHAT, &b);
    let keras = p.form == AdamForm::Keras;
    // SAFETY: the lengths and the ISA were checked just above.
    unsafe {
        match (isa, keras) {
            (Isa::Scalar, false) => adam_body::<Portable, false>(p, decay, b),
            (Isa::Scalar, true) => adam_body::<Portable, true>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, false) => adam_avx2::<false>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, true) => adam_avx2::<true>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, false) => adam_avx512::<false>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, true) => adam_avx512::<true>(p, decay, b),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar path is available off x86-64"),
        }
    }
}

#[cold]
#[inline(never)]
fn shape_error(what: &str, message: String) -> ! {
    panic!("recur_kernels::optim::{what}: {message}")
}

fn check_isa(what: &str, isa: Isa) {
    if !isa.is_available() {
        shape_error(
            what,
            format!(
                "ISA path {isa} is not available on this CPU (detected: {})",
                Isa::detected()
            ),
        );
    }
}

fn check_adam(what: &str, b: &AdamBuffers<'_>) {
    let n = b.value.len();
    if b.grad.len() != n || b.mean.len() != n || b.mean_square.len() != n {
        shape_error(
            what,
            format!(
                "buffers must have equal lengths; found value {n}, grad {}, mean {}, \
                 mean_square {}",
                b.grad.len(),
                b.mean.len(),
                b.mean_square.len()
            ),
        );
    }
}

/// The vector body: whole registers, then [`scalar_loop`] over the last `n mod LANES` elements.
/// Per lane it runs [`adam_element`]'s operations in the same order.
///
/// # Safety
/// S's ISA is available; the four buffers have equal lengths.
#[inline(always)]
unsafe fn adam_body<S: Simd, const KERAS: bool>(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    let n = b.value.len();
    let whole = n - n % S::LANES;
    let theta_ptr = b.value.as_mut_ptr();
    let grad_ptr = b.grad.as_ptr();
    let m_ptr = b.mean.as_mut_ptr();
    let v_ptr = b.mean_square.as_mut_ptr();
    // SAFETY: every access is at `i..i + LANES` with `i + LANES ≤ whole ≤ n`, within all four
    // buffers (equal lengths: caller); ISA: caller.
    unsafe {
        let l2 = S::splat(decay.l2);
        let shrink = S::splat(decay.shrink);
        let beta1 = S::splat(p.beta1);
        let beta2 = S::splat(p.beta2);
        let one_minus_beta1 = S::splat(1.0 - p.beta1);
        let one_minus_beta2 = S::splat(1.0 - p.beta2);
        let epsilon = S::splat(p.epsilon);
        let step_size = S::splat(p.step_size);
        let correction2_sqrt = S::splat(p.correction2_sqrt);
        let mut i = 0;
        while i < whole {
            let theta = S::load(theta_ptr.add(i));
            let g = S::add(S::load(grad_ptr.add(i)), S::mul(l2, theta));
            let theta = S::mul(theta, shrink);
            let m = S::load(m_ptr.add(i));
            let v = S::load(v_ptr.add(i));
            let (m, v, update) = if KERAS {
                let m = S::add(m, S::mul(S::sub(g, m), one_minus_beta1));
                let v = S::add(v, S::mul(S::sub(S::mul(g, g), v), one_minus_beta2));
                let denominator = S::add(S::sqrt(v), epsilon);
                (m, v, S::div(S::mul(m, step_size), denominator))
            } else {
                let m = S::add(S::mul(beta1, m), S::mul(one_minus_beta1, g));
                let v = S::add(S::mul(beta2, v), S::mul(S::mul(one_minus_beta2, g), g));
                let denominator = S::add(S::div(S::sqrt(v), correction2_sqrt), epsilon);
                (m, v, S::div(S::mul(step_size, m), denominator))
            };
            S::store(m_ptr.add(i), m);
            S::store(v_ptr.add(i), v);
            S::store(theta_ptr.add(i), S::sub(theta, update));
            i += S::LANES;
        }
    }
    scalar_loop::<KERAS>(p, decay, b, whole);
}

/// # Safety
/// The CPU has AVX2 and FMA; buffers as [`adam_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn adam_avx2<const KERAS: bool>(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { adam_body::<crate::simd::Avx2, KERAS>(p, decay, b) }
}

/// # Safety
/// The CPU has AVX-512F/BW/VL; buffers as [`adam_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn adam_avx512<const KERAS: bool>(p: &AdamStep, decay: Decay, b: AdamBuffers<'_>) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { adam_body::<crate::simd::Avx512, KERAS>(p, decay, b) }
}

// ---------------------------------------------------------------------------------------------
// RMSprop
// ---------------------------------------------------------------------------------------------

/// RMSprop's scalars for one step (see `recur_engine::optim::rmsprop` for the two conventions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropStep {
    /// Keras: ε inside the root and the rate applied before momentum; PyTorch: ε outside the
    /// root and the rate applied to the momentum buffer.
    pub keras: bool,
    pub rho: f32,
    pub epsilon: f32,
    /// Momentum factor μ; 0 for none (then the momentum buffer is not touched).
    pub momentum: f32,
    /// Centred (keeps the running mean ḡ of g and uses `v − ḡ²`).
    pub centered: bool,
    pub lr: f32,
}

/// The buffers of one chunk of one parameter tensor. `mean` is used only when centred and
/// `momentum` only with momentum (μ > 0); each used buffer has the length of `value`.
#[derive(Debug)]
pub struct RmsPropBuffers<'a> {
    /// θ, updated in place.
    pub value: &'a mut [f32],
    pub grad: &'a [f32],
    /// v, updated in place.
    pub mean_square: &'a mut [f32],
    /// ḡ, updated in place when centred.
    pub mean: &'a mut [f32],
    /// The momentum buffer b, updated in place with momentum.
    pub momentum: &'a mut [f32],
}

/// One element of RMSprop: the scalar definition every path reproduces bit for bit.
/// `mean`/`b` are only touched when `CENTERED`/`MOMENTUM`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn rmsprop_element<const KERAS: bool, const CENTERED: bool, const MOMENTUM: bool>(
    p: &RmsPropStep,
    decay: Decay,
    theta: &mut f32,
    g: f32,
    v: &mut f32,
    mean: &mut f32,
    b: &mut f32,
) {
    let g = decay.apply(theta, g);
    *v = p.rho * *v + (1.0 - p.rho) * g * g;
    let v_centered = if CENTERED {
        *mean = p.rho * *mean + (1.0 - p.rho) * g;
        *v - *mean * *mean
    } else {
        *v
    };
    let mut x = if KERAS {
        p.lr * g / (v_centered + p.epsilon).sqrt()
    } else {
        g / (v_centered.sqrt() + p.epsilon)
    };
    if MOMENTUM {
        *b = p.momentum * *b + x;
        x = *b;
    }
    if KERAS {
        *theta -= x;
    } else {
        *theta -= p.lr * x;
    }
}

/// The plain scalar loop over [`rmsprop_element`] (what the tests compare every path against).
pub fn rmsprop_update_reference(p: &RmsPropStep, decay: Decay, b: RmsPropBuffers<'_>) {
    check_rmsprop("rmsprop_update_reference", p, &b);
    rmsprop_dispatch(None, p, decay, b);
}

/// RMSprop over one chunk on the [`Isa::active`] path, bit-identical to
/// [`rmsprop_update_reference`].
///
/// # Panics
/// If a used buffer's length differs from `value`'s.
pub fn rmsprop_update(p: &RmsPropStep, decay: Decay, b: RmsPropBuffers<'_>) {
    rmsprop_update_with_isa(Isa::active(), p, decay, b)
}

/// As [`rmsprop_update`], on the path `isa`.
///
/// # Panics
/// If a used buffer's length differs from `value`'s, or if the CPU cannot run `isa`.
pub fn rmsprop_update_with_isa(isa: Isa, p: &RmsPropStep, decay: Decay, b: RmsPropBuffers<'_>) {
    const WHAT: &str = "rmsprop_update";
    check_isa(WHAT, isa);
    check_rmsprop(WHAT, p, &b);
    rmsprop_dispatch(Some(isa), p, decay, b);
}

/// Picks the monomorphised loop for the step's variant; `None` runs the scalar reference loop.
/// The caller has checked the buffers (and the ISA).
fn rmsprop_dispatch(isa: Option<Isa>, p: &RmsPropStep, decay: Decay, b: RmsPropBuffers<'_>) {
    let momentum = p.momentum > 0.0;
    match (p.keras, p.centered, momentum) {
        (false, false, false) => rmsprop_on::<false, false, false>(isa, p, decay, b),
        (false, false, true) => rmsprop_on::<false, false, true>(isa, p, decay, b),
        (false, true, false) => rmsprop_on::<false, true, false>(isa, p, decay, b),
        (false, true, true) => rmsprop_on::<false, true, true>(isa, p, decay, b),
        (true, false, false) => rmsprop_on::<true, false, false>(isa, p, decay, b),
        (true, false, true) => rmsprop_on::<true, false, true>(isa, p, decay, b),
        (true, true, false) => rmsprop_on::<true, true, false>(isa, p, decay, b),
        (true, true, true) => rmsprop_on::<true, true, true>(isa, p, decay, b),
    }
}

fn rmsprop_on<const K: bool, const C: bool, const M: bool>(
    isa: Option<Isa>,
    p: &RmsPropStep,
    decay: Decay,
    b: RmsPropBuffers<'_>,
) {
    // SAFETY: the buffers and the ISA were checked by the caller (`rmsprop_dispatch`'s contract).
    unsafe {
        match isa {
            None => rmsprop_scalar::<K, C, M>(p, decay, b, 0),
            Some(Isa::Scalar) => rmsprop_body::<Portable, K, C, M>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx2) => rmsprop_avx2::<K, C, M>(p, decay, b),
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx512) => rmsprop_avx512::<K, C, M>(p, decay, b),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar path is available off x86-64"),
        }
    }
}

fn check_rmsprop(what: &str, p: &RmsPropStep, b: &RmsPropBuffers<'_>) {
    let n = b.value.len();
    let mean_ok = !p.centered || b.mean.len() == n;
    let momentum_ok = p.momentum <= 0.0 || b.momentum.len() == n;
    if b.grad.len() != n || b.mean_square.len() != n || !mean_ok || !momentum_ok {
        shape_error(
            what,
            format!(
                "buffers must have equal lengths (mean when centred, momentum with μ > 0); found \
                 value {n}, grad {}, mean_square {}, mean {} (centred: {}), momentum {} (μ = {})",
                b.grad.len(),
                b.mean_square.len(),
                b.mean.len(),
                p.centered,
                b.momentum.len(),
                p.momentum
            ),
        );
    }
}

/// [`rmsprop_element`] over the elements `from..` (buffers checked by the caller).
#[inline(always)]
fn rmsprop_scalar<const K: bool, const C: bool, const M: bool>(
    p: &RmsPropStep,
    decay: Decay,
    b: RmsPropBuffers<'_>,
    from: usize,
) {
    let n = b.value.len();
    let (mut spare_mean, mut spare_b) = (0.0f32, 0.0f32);
    for i in from..n {
        let mean = if C { &mut b.mean[i] } else { &mut spare_mean };
        let mom = if M { &mut b.momentum[i] } else { &mut spare_b };
        rmsprop_element::<K, C, M>(
            p,
            decay,
            &mut b.value[i],
            b.grad[i],
            &mut b.mean_square[i],
            mean,
            mom,
        );
    }
}

/// The vector body: whole registers, then [`rmsprop_scalar`] over the last `n mod LANES`
/// elements. Per lane it runs [`rmsprop_element`]'s operations in the same order.
///
/// # Safety
/// S's ISA is available; the buffers are as [`check_rmsprop`] requires for `p`.
#[inline(always)]
unsafe fn rmsprop_body<S: Simd, const K: bool, const C: bool, const M: bool>(
    p: &RmsPropStep,
    decay: Decay,
    b: RmsPropBuffers<'_>,
) {
    let n = b.value.len();
    let whole = n - n % S::LANES;
    let theta_ptr = b.value.as_mut_ptr();
    let grad_ptr = b.grad.as_ptr();
    let v_ptr = b.mean_square.as_mut_ptr();
    let mean_ptr = b.mean.as_mut_ptr();
    let b_ptr = b.momentum.as_mut_ptr();
    // SAFETY: every access is at `i..i + LANES` with `i + LANES ≤ whole ≤ n`; `mean` is read only
    // when centred and `momentum` only with momentum, where they hold `n` floats (caller); ISA:
    // caller.
    unsafe {
        let l2 = S::splat(decay.l2);
        let shrink = S::splat(decay.shrink);
        let rho = S::splat(p.rho);
        let one_minus_rho = S::splat(1.0 - p.rho);
        let epsilon = S::splat(p.epsilon);
        let mu = S::splat(p.momentum);
        let lr = S::splat(p.lr);
        let mut i = 0;
        while i < whole {
            let theta = S::load(theta_ptr.add(i));
            let g = S::add(S::load(grad_ptr.add(i)), S::mul(l2, theta));
            let theta = S::mul(theta, shrink);
            let v = S::load(v_ptr.add(i));
            let v = S::add(S::mul(rho, v), S::mul(S::mul(one_minus_rho, g), g));
            S::store(v_ptr.add(i), v);
            let v_centered = if C {
                let mean = S::load(mean_ptr.add(i));
                let mean = S::add(S::mul(rho, mean), S::mul(one_minus_rho, g));
                S::store(mean_ptr.add(i), mean);
                S::sub(v, S::mul(mean, mean))
            } else {
                v
            };
            let mut x = if K {
                S::div(S::mul(lr, g), S::sqrt(S::add(v_centered, epsilon)))
            } else {
                S::div(g, S::add(S::sqrt(v_centered), epsilon))
            };
            if M {
                x = S::add(S::mul(mu, S::load(b_ptr.add(i))), x);
                S::store(b_ptr.add(i), x);
            }
            let theta = if K {
                S::sub(theta, x)
            } else {
                S::sub(theta, S::mul(lr, x))
            };
            S::store(theta_ptr.add(i), theta);
            i += S::LANES;
        }
    }
    rmsprop_scalar::<K, C, M>(p, decay, b, whole);
}

/// # Safety
/// The CPU has AVX2 and FMA; buffers as [`rmsprop_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rmsprop_avx2<const K: bool, const C: bool, const M: bool>(
    p: &RmsPropStep,
    decay: Decay,
    b: RmsPropBuffers<'_>,
) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { rmsprop_body::<crate::simd::Avx2, K, C, M>(p, decay, b) }
}

/// # Safety
/// The CPU has AVX-512F/BW/VL; buffers as [`rmsprop_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn rmsprop_avx512<const K: bool, const C: bool, const M: bool>(
    p: &RmsPropStep,
    decay: Decay,
    b: RmsPropBuffers<'_>,
) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { rmsprop_body::<crate::simd::Avx512, K, C, M>(p, decay, b) }
}

#[cfg(test)]
mod tests;
