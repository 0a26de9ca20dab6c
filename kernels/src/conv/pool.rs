//! Max pooling over time, time-major `(T, B, C)`, with the argmax kept for backward.
//!
//! With window `K` and stride `S` (no padding): `T_out = ⌊(T_in − K) / S⌋ + 1` and
//!
//! ```text
//! y[t, b, c]      = max_{j<K} x[t·S + j, b, c]
//! argmax[t, b, c] = the input step t·S + j of that maximum (the first one on ties; a NaN wins and
//!                   propagates, like PyTorch's max_pool1d)
//! d_x[s, b, c]    = Σ_{t: argmax[t, b, c] = s} d_y[t, b, c]
//! ```
//!
//! A window reads `K` whole input rows of `B·C` contiguous floats, so the inner loops run over
//! contiguous memory and vectorise.

use super::{check_len, shape_error};

/// The geometry of one max pooling over a time-major batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool1dShape {
    /// `T_in`.
    pub steps: usize,
    /// `B`.
    pub batch: usize,
    /// `C`.
    pub channels: usize,
    /// `K`, steps per window.
    pub kernel_width: usize,
    /// `S`, steps between windows.
    pub stride: usize,
}

impl MaxPool1dShape {
    /// Whether every size is ≥ 1 and the window fits in the input (`K ≤ T_in`).
    pub fn is_valid(&self) -> bool {
        [
            self.steps,
            self.batch,
            self.channels,
            self.kernel_width,
            self.stride,
        ]
        .iter()
        .all(|&s| s > 0)
            && self.kernel_width <= self.steps
    }

    /// `T_out = ⌊(T_in − K) / S⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](MaxPool1dShape::is_valid).
    pub fn steps_out(&self) -> usize {
        check_pool_shape(self);
        (self.steps - self.kernel_width) / self.stride + 1
    }

    /// Floats of `x`: `T_in·B·C`.
    pub fn input_len(&self) -> usize {
        self.steps * self.batch * self.channels
    }

    /// Elements of `y` and `argmax`: `T_out·B·C`.
    pub fn output_len(&self) -> usize {
        self.steps_out() * self.batch * self.channels
    }
}

#[track_caller]
fn check_pool_shape(shape: &MaxPool1dShape) {
    if !shape.is_valid() {
        shape_error(
            "max_pool1d",
            format!("expected every size ≥ 1 and a window K ≤ T_in, found {shape:?}"),
        );
    }
}

/// Forward: writes `y` `(T_out, B, C)` and `argmax` `(T_out, B, C)` (input steps) from `x`
/// `(T_in, B, C)`.
///
/// # Panics
/// If the shape is invalid or a length disagrees with it.
#[track_caller]
pub fn max_pool1d_forward(shape: &MaxPool1dShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    check_pool_shape(shape);
    check_len("max_pool1d x", shape.input_len(), x.len(), "(T_in, B, C)");
    check_len("max_pool1d y", shape.output_len(), y.len(), "(T_out, B, C)");
    check_len(
        "max_pool1d argmax",
        shape.output_len(),
        argmax.len(),
        "(T_out, B, C)",
    );
    if u32::try_from(shape.steps).is_err() {
        shape_error(
            "max_pool1d",
            format!("T_in = {} does not fit the u32 argmax", shape.steps),
        );
    }
    let row = shape.batch * shape.channels;
    for (t, (y_row, arg_row)) in y
        .chunks_exact_mut(row)
        .zip(argmax.chunks_exact_mut(row))
        .enumerate()
    {
        let first = t * shape.stride;
        y_row.copy_from_slice(&x[first * row..(first + 1) * row]);
        arg_row.fill(first as u32);
        for s in first + 1..first + shape.kernel_width {
            let x_row = &x[s * row..(s + 1) * row];
            for ((best, arg), &v) in y_row.iter_mut().zip(arg_row.iter_mut()).zip(x_row) {
                // Strictly greater keeps the first maximum; a NaN takes over a number and stays.
                if v > *best || (v.is_nan() && !best.is_nan()) {
                    *best = v;
                    *arg = s as u32;
                }
            }
        }
    }
}

/// Backward: `d_x` `(T_in, B, C)` is overwritten with the scatter of `d_y` `(T_out, B, C)` to the
/// `argmax` steps of the forward pass (overlapping windows add).
///
/// # Panics
/// If the shape is invalid, a length disagrees with it, or an argmax is not a step of its window.
#[track_caller]
pub fn max_pool1d_backward(shape: &MaxPool1dShape, argmax: &[u32], d_y: &[f32], d_x: &mut [f32]) {
    check_pool_shape(shape);
    check_len(
        "max_pool1d argmax",
        shape.output_len(),
        argmax.len(),
        "(T_out, B, C)",
    );
    check_len(
        "max_pool1d d_y",
        shape.output_len(),
        d_y.len(),
        "(T_out, B, C)",
    );
    check_len(
        "max_pool1d d_x",
        shape.input_len(),
        d_x.len(),
        "(T_in, B, C)",
    );
    d_x.fill(0.0);
    let row = shape.batch * shape.channels;
    for (t, (g_row, arg_row)) in d_y
        .chunks_exact(row)
        .zip(argmax.chunks_exact(row))
        .enumerate()
    {
        let window = t * shape.stride..t * shape.stride + shape.kernel_width;
        for (e, (&g, &s)) in g_row.iter().zip(arg_row).enumerate() {
            let s = s as usize;
            if !window.contains(&s) {
                shape_error(
                    "max_pool1d_backward",
                    format!("argmax {s} at output step {t} is outside its window {window:?}"),
                );
            }
            d_x[s * row + e] += g;
        }
    }
}
