//! Gradient clipping, applied to the gradients before the optimiser step.
//!
//! | here | PyTorch | Keras 3 |
//! |---|---|---|
//! | [`GradClip::Value`] | `clip_grad_value_(clip_value)` | `clipvalue` |
//! | [`GradClip::Norm`] (each tensor on its own) | — | `clipnorm` |
//! | [`GradClip::GlobalNorm`] | `clip_grad_norm_(max_norm)` | `global_clipnorm` |
//!
//! Global-norm clipping scales every gradient by `max_norm / ‖g‖` when `‖g‖ > max_norm`, where
//! `‖g‖` is the 2-norm of all gradients concatenated (`tf.clip_by_global_norm`, which Keras
//! uses). PyTorch's `clip_grad_norm_` scales by `max_norm / (‖g‖ + 1e-6)` instead — a relative
//! difference of 1e-6/‖g‖, far below f32 noise for any norm worth clipping. char-rnn's
//! `grad_clip` is [`GradClip::Value`] (`grad_params:clamp(-grad_clip, grad_clip)`).
//!
//! Norms are accumulated in f64, tensor by tensor in the order given, element by element: the
//! same gradients give the same bits on every run and thread count.

use serde::{Deserialize, Serialize};

use super::OptimError;

/// Which clipping to apply to the gradients of one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
pub enum GradClip {
    /// Leave the gradients alone.
    #[default]
    None,
    /// Clamp every element into `[−limit, limit]`.
    Value(f32),
    /// Scale each tensor separately so that its own 2-norm is at most `limit`.
    Norm(f32),
    /// Scale all tensors together so that their joint 2-norm is at most `limit`.
    GlobalNorm(f32),
}

impl GradClip {
    /// Clips `grads` in place and returns the global 2-norm of the gradients *before* clipping
    /// (useful for logging, and non-finite exactly when some gradient is NaN or infinite).
    pub fn apply(&self, grads: &mut [&mut [f32]]) -> f64 {
        let norm = global_norm(grads.iter().map(|g| &**g));
        match *self {
            GradClip::None => {}
            GradClip::Value(limit) => clip_by_value(grads, limit),
            GradClip::Norm(limit) => {
                for grad in grads.iter_mut() {
                    let own = global_norm([&**grad]);
                    scale_to_norm(grad, own, limit);
                }
            }
            GradClip::GlobalNorm(limit) => {
                for grad in grads.iter_mut() {
                    scale_to_norm(grad, norm, limit);
                }
            }
        }
        norm
    }

    /// Checks that the limit is finite and > 0.
    pub fn validate(&self) -> Result<(), OptimError> {
        match *self {
            GradClip::None => Ok(()),
            GradClip::Value(limit) | GradClip::Norm(limit) | GradClip::GlobalNorm(limit) => {
                if limit.is_finite() && limit > 0.0 {
                    Ok(())
                } else {
                    Err(OptimError::InvalidClip { found: limit })
                }
            }
        }
    }
}

/// `sqrt(Σ g²)` over all tensors, accumulated in f64 in order.
pub fn global_norm<'a>(grads: impl IntoIterator<Item = &'a [f32]>) -> f64 {
    let mut sum_of_squares = 0.0f64;
    for grad in grads {
        for &g in grad {
            sum_of_squares += f64::from(g) * f64::from(g);
        }
    }
    sum_of_squares.sqrt()
}

/// Clamps every element into `[−limit, limit]` (NaN stays NaN).
pub fn clip_by_value(grads: &mut [&mut [f32]], limit: f32) {
    for grad in grads.iter_mut() {
        for g in grad.iter_mut() {
            *g = g.clamp(-limit, limit);
        }
    }
}

/// Scales every gradient by `max_norm / ‖g‖` if `‖g‖ > max_norm`; returns `‖g‖` before.
pub fn clip_by_global_norm(grads: &mut [&mut [f32]], max_norm: f32) -> f64 {
    GradClip::GlobalNorm(max_norm).apply(grads)
}

/// Scales `grad` by `limit / norm` when `norm > limit`.
fn scale_to_norm(grad: &mut [f32], norm: f64, limit: f32) {
    if norm > f64::from(limit) {
        let scale = (f64::from(limit) / norm) as f32;
        for g in grad.iter_mut() {
            *g *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_norm_of_three_four_is_five_and_clips_to_unit_norm() {
        let (mut a, mut b) = (vec![3.0f32], vec![0.0f32, 4.0]);
        let norm = clip_by_global_norm(&mut [&mut a, &mut b], 1.0);
        assert_eq!(norm, 5.0);
        assert_eq!((a[0], b[1]), (0.6, 0.8));
        assert_eq!(b[0], 0.0);
    }

    #[test]
    fn global_norm_below_the_limit_leaves_gradients_unchanged() {
        let (mut a, mut b) = (vec![3.0f32], vec![-4.0f32]);
        let norm = GradClip::GlobalNorm(5.0).apply(&mut [&mut a, &mut b]);
        assert_eq!(norm, 5.0);
        assert_eq!((a[0], b[0]), (3.0, -4.0));
    }

    #[test]
    fn per_tensor_norm_clips_each_tensor_on_its_own() {
        // ‖a‖ = 5 > 1 is scaled to (0.6, 0.8); ‖b‖ = 0.5 ≤ 1 stays
        let (mut a, mut b) = (vec![3.0f32, 4.0], vec![0.5f32]);
        let norm = GradClip::Norm(1.0).apply(&mut [&mut a, &mut b]);
        assert_eq!(norm, 25.25f64.sqrt());
        assert_eq!(a, [0.6, 0.8]);
        assert_eq!(b, [0.5]);
    }

    #[test]
    fn value_clipping_clamps_each_element() {
        let mut a = vec![-7.0f32, -0.5, 0.0, 2.0, 9.0];
        GradClip::Value(5.0).apply(&mut [&mut a]);
        assert_eq!(a, [-5.0, -0.5, 0.0, 2.0, 5.0]);
    }

    #[test]
    fn a_nan_gradient_shows_in_the_returned_norm() {
        let mut a = vec![1.0f32, f32::NAN];
        assert!(GradClip::None.apply(&mut [&mut a]).is_nan());
    }

    #[test]
    fn limits_must_be_positive_and_finite() {
        assert_eq!(
            GradClip::Value(0.0).validate(),
            Err(OptimError::InvalidClip { found: 0.0 })
        );
        assert!(GradClip::GlobalNorm(f32::NAN).validate().is_err());
        assert_eq!(GradClip::Norm(1.0).validate(), Ok(()));
    }
}
