//! The oracle: direct loops in f64, written from the definitions in the module docs, no im2col.
//! Slow and plain on purpose; the tests and benches compare the fast path against it.

use super::Conv1dShape;
use super::pool::MaxPool1dShape;

/// `y[t, b, o] = bias[o] + Σ_k Σ_c W[o, k, c]·x[t·S + k·D − P, b, c]`; `weight` tap-major
/// `(C_out, K, C_in)`. Returns `y` `(T_out, B, C_out)`.
pub fn conv1d_forward(
    shape: &Conv1dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f64> {
    let (t_out, b_n) = (shape.steps_out(), shape.batch);
    let (c_in, c_out, k_n) = (shape.in_channels, shape.out_channels, shape.kernel_width);
    let mut y = vec![0.0f64; t_out * b_n * c_out];
    for t in 0..t_out {
        for b in 0..b_n {
            for o in 0..c_out {
                let mut sum = bias.map_or(0.0, |bias| f64::from(bias[o]));
                for k in 0..k_n {
                    let s =
                        (t * shape.stride + k * shape.dilation) as isize - shape.padding as isize;
                    if s < 0 || s as usize >= shape.steps {
                        continue;
                    }
                    for c in 0..c_in {
                        sum += f64::from(weight[(o * k_n + k) * c_in + c])
                            * f64::from(x[(s as usize * b_n + b) * c_in + c]);
                    }
                }
                y[(t * b_n + b) * c_out + o] = sum;
            }
        }
    }
    y
}

/// The gradients of [`conv1d_forward`] for `∂L/∂y = d_y`: `(d_x, d_weight, d_bias)`, shaped as
/// `x`, the tap-major weight and the bias.
pub fn conv1d_backward(
    shape: &Conv1dShape,
    x: &[f32],
    weight: &[f32],
    d_y: &[f32],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (t_out, b_n) = (shape.steps_out(), shape.batch);
    let (c_in, c_out, k_n) = (shape.in_channels, shape.out_channels, shape.kernel_width);
    let mut d_x = vec![0.0f64; x.len()];
    let mut d_w = vec![0.0f64; weight.len()];
    let mut d_b = vec![0.0f64; c_out];
    for t in 0..t_out {
        for b in 0..b_n {
            for o in 0..c_out {
                let g = f64::from(d_y[(t * b_n + b) * c_out + o]);
                d_b[o] += g;
                for k in 0..k_n {
                    let s =
                        (t * shape.stride + k * shape.dilation) as isize - shape.padding as isize;
                    if s < 0 || s as usize >= shape.steps {
                        continue;
                    }
                    for c in 0..c_in {
                        let xi = (s as usize * b_n + b) * c_in + c;
                        let wi = (o * k_n + k) * c_in + c;
                        d_w[wi] += g * f64::from(x[xi]);
                        d_x[xi] += g * f64::from(weight[wi]);
                    }
                }
            }
        }
    }
    (d_x, d_w, d_b)
}

/// Max pooling by the definition: `(y, argmax)`, the first maximum on ties, NaN wins.
pub fn max_pool1d_forward(shape: &MaxPool1dShape, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let (t_out, row) = (shape.steps_out(), shape.batch * shape.channels);
    let mut y = Vec::with_capacity(t_out * row);
    let mut argmax = Vec::with_capacity(t_out * row);
    for t in 0..t_out {
        for e in 0..row {
            let mut best = (f32::NEG_INFINITY, u32::MAX);
            for j in 0..shape.kernel_width {
                let s = t * shape.stride + j;
                let v = x[s * row + e];
                let better = if best.1 == u32::MAX {
                    true
                } else if best.0.is_nan() {
                    false
                } else {
                    v.is_nan() || v > best.0
                };
                if better {
                    best = (v, s as u32);
                }
            }
            y.push(best.0);
            argmax.push(best.1);
        }
    }
    (y, argmax)
}

/// `d_x` of max pooling: each `d_y` goes to its window's (first) maximum.
pub fn max_pool1d_backward(shape: &MaxPool1dShape, x: &[f32], d_y: &[f32]) -> Vec<f64> {
    let (_, argmax) = max_pool1d_forward(shape, x);
    let row = shape.batch * shape.channels;
    let mut d_x = vec![0.0f64; x.len()];
    for (i, (&s, &g)) in argmax.iter().zip(d_y).enumerate() {
        d_x[s as usize * row + i % row] += f64::from(g);
    }
    d_x
}
