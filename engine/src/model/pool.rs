//! Max pooling over time and ReLU, time-major `(T, B, C)`, for CRNNs (after a
//! [`Conv1d`](super::conv::Conv1d), before an [`Rnn`](crate::rnn::Rnn)).
//!
//! ```
//! use recur_engine::model::pool::{MaxPool1d, relu_backward, relu_forward};
//!
//! let (steps, batch, channels) = (4, 1, 2);
//! let mut x = vec![1.0, -5.0, 3.0, 2.0, -1.0, 7.0, 0.5, 0.0]; // (T, B, C)
//! relu_forward(&mut x); // → [1, 0, 3, 2, 0, 7, 0.5, 0]
//! let pool = MaxPool1d::new(2, 2).unwrap();
//! let (y, cache) = pool.forward(&x, steps, batch, channels).unwrap();
//! assert_eq!(y, vec![3.0, 2.0, 0.5, 7.0]); // (T_out = 2, B, C)
//! let mut d_x = pool.backward(&cache, &[1.0; 4]).unwrap(); // to each window's maximum
//! assert_eq!(d_x, vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
//! relu_backward(&x, &mut d_x).unwrap();
//! ```

use recur_kernels::conv::{self, MaxPool1dShape};

use super::conv::{ConvError, check_nonzero};

/// Max pooling over time with a window of `kernel_width` steps every `stride` steps, no padding
/// (PyTorch's `nn.MaxPool1d(kernel_size, stride)`), channels pooled independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool1d {
    pub kernel_width: usize,
    pub stride: usize,
}

/// What [`MaxPool1d::forward`] keeps for [`MaxPool1d::backward`].
#[derive(Clone, Debug)]
pub struct MaxPool1dCache {
    shape: MaxPool1dShape,
    /// (T_out, B, C): the input step of each window's maximum.
    pub argmax: Vec<u32>,
}

impl MaxPool1d {
    /// A window of `kernel_width` steps every `stride` steps.
    ///
    /// # Errors
    /// [`ConvError::Zero`] if either is 0.
    pub fn new(kernel_width: usize, stride: usize) -> Result<Self, ConvError> {
        check_nonzero(&[("kernel_width", kernel_width), ("stride", stride)])?;
        Ok(MaxPool1d {
            kernel_width,
            stride,
        })
    }

    fn shape(
        &self,
        steps: usize,
        batch: usize,
        channels: usize,
    ) -> Result<MaxPool1dShape, ConvError> {
        check_nonzero(&[
            ("kernel_width", self.kernel_width),
            ("stride", self.stride),
            ("steps", steps),
            ("batch", batch),
            ("channels", channels),
        ])?;
        if self.kernel_width > steps {
            return Err(ConvError::WindowTooWide {
                window: self.kernel_width,
                steps,
            });
        }
        if u32::try_from(steps).is_err() {
            return Err(ConvError::Shape {
                what: "max_pool1d input",
                shape: "with T < 2^32 steps".into(),
                expected: u32::MAX as usize,
                found: steps,
            });
        }
        Ok(MaxPool1dShape {
            steps,
            batch,
            channels,
            kernel_width: self.kernel_width,
            stride: self.stride,
        })
    }

    /// `T_out = ⌊(T − K)/S⌋ + 1`.
    ///
    /// # Errors
    /// As [`MaxPool1d::forward`].
    pub fn steps_out(&self, steps: usize) -> Result<usize, ConvError> {
        Ok(self.shape(steps, 1, 1)?.steps_out())
    }

    /// `y` (T_out, B, C) from `x` (T, B, C), and the argmax for backward.
    ///
    /// # Errors
    /// [`ConvError`] if a size is 0, the window is longer than `steps`, or `x` is not
    /// `steps·batch·channels` floats.
    pub fn forward(
        &self,
        x: &[f32],
        steps: usize,
        batch: usize,
        channels: usize,
    ) -> Result<(Vec<f32>, MaxPool1dCache), ConvError> {
        let shape = self.shape(steps, batch, channels)?;
        if x.len() != shape.input_len() {
            return Err(ConvError::Shape {
                what: "max_pool1d input",
                shape: format!("(T={steps}, B={batch}, C={channels})"),
                expected: shape.input_len(),
                found: x.len(),
            });
        }
        let mut y = vec![0.0; shape.output_len()];
        let mut argmax = vec![0; shape.output_len()];
        conv::max_pool1d_forward(&shape, x, &mut y, &mut argmax);
        Ok((y, MaxPool1dCache { shape, argmax }))
    }

    /// `∂L/∂x` (T, B, C) from `∂L/∂y` (T_out, B, C): each gradient goes to its window's maximum.
    ///
    /// # Errors
    /// [`ConvError::Shape`] if `d_y` is not (T_out, B, C).
    pub fn backward(&self, cache: &MaxPool1dCache, d_y: &[f32]) -> Result<Vec<f32>, ConvError> {
        let shape = &cache.shape;
        if d_y.len() != shape.output_len() {
            return Err(ConvError::Shape {
                what: "max_pool1d d_output",
                shape: format!(
                    "(T_out={}, B={}, C={})",
                    shape.steps_out(),
                    shape.batch,
                    shape.channels
                ),
                expected: shape.output_len(),
                found: d_y.len(),
            });
        }
        let mut d_x = vec![0.0; shape.input_len()];
        conv::max_pool1d_backward(shape, &cache.argmax, d_y, &mut d_x);
        Ok(d_x)
    }
}

/// ReLU in place, `x ← max(x, 0)` (NaN stays NaN).
pub fn relu_forward(x: &mut [f32]) {
    conv::relu_forward(x);
}

/// ReLU backward in place from the forward's output `y`: `d ← d·[y > 0]`.
///
/// # Errors
/// [`ConvError::Shape`] if `d` and `y` differ in length.
pub fn relu_backward(y: &[f32], d: &mut [f32]) -> Result<(), ConvError> {
    if y.len() != d.len() {
        return Err(ConvError::Shape {
            what: "relu d_output",
            shape: "like the forward's output".into(),
            expected: y.len(),
            found: d.len(),
        });
    }
    conv::relu_backward(y, d);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_gives_typed_errors() {
        assert_eq!(
            MaxPool1d::new(0, 1).unwrap_err(),
            ConvError::Zero {
                what: "kernel_width"
            }
        );
        assert_eq!(
            MaxPool1d::new(2, 0).unwrap_err(),
            ConvError::Zero { what: "stride" }
        );
        let pool = MaxPool1d::new(5, 2).unwrap();
        let err = pool.forward(&[0.0; 4], 4, 1, 1).unwrap_err();
        assert_eq!(
            err,
            ConvError::WindowTooWide {
                window: 5,
                steps: 4
            }
        );
        assert!(err.to_string().contains("expected ≤ 4"));
        let err = pool.forward(&[0.0; 9], 5, 1, 2).unwrap_err();
        assert!(matches!(
            err,
            ConvError::Shape {
                expected: 10,
                found: 9,
                ..
            }
        ));
        let (_, cache) = pool.forward(&[0.0; 10], 5, 1, 2).unwrap();
        assert!(pool.backward(&cache, &[0.0; 3]).is_err());
        assert!(relu_backward(&[0.0; 2], &mut [0.0; 3]).is_err());
    }
}
