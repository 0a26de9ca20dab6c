//! 1-D convolution over time (im2col + the packed SGEMM), ReLU and max pooling, for CRNNs.
//!
//! # Layout
//!
//! Every tensor is **time-major**, `(T, B, C)` — the layout of [`crate::cells`] and the engine's
//! recurrent layers — so a convolution's output feeds an RNN without a transpose. A batch-major
//! `(B, T, C)` tensor is converted with one transpose of the first two axes.
//!
//! # Contract
//!
//! With kernel width `K`, stride `S`, zero padding `P` on both ends and dilation `D`,
//! `T_out = ⌊(T_in + 2P − D·(K−1) − 1) / S⌋ + 1`, and for `t < T_out`, batch row `b`, output
//! channel `o`:
//!
//! ```text
//! y[t, b, o] = bias[o] + Σ_{k<K} Σ_{c<C_in} W[o, k, c] · x[t·S + k·D − P, b, c]   (x = 0 outside 0..T_in)
//! ```
//!
//! This is PyTorch's `nn.Conv1d` (a cross-correlation) with the weight's last two axes swapped:
//! recur's kernels take `W` **tap-major**, `(C_out, K, C_in)`, while PyTorch stores
//! `(C_out, C_in, K)`; [`taps_from_pytorch`] / [`add_pytorch_from_taps`] convert.
//!
//! # How
//!
//! [`im2col`] would copy, for every output row `(t, b)`, the `K` input rows it reads — each a
//! contiguous run of `C_in` floats in the time-major layout — side by side into one row of
//! `cols (T_out·B, K·C_in)`. With `cols⁺ = [cols | 1]` (a column of ones for the bias):
//!
//! ```text
//! forward    y        = cols⁺ · [Wᵀ; bias]          one GEMM  (T_out·B × K·C_in+1) · (K·C_in+1 × C_out)
//! backward   dW | db += dyᵀ · cols⁺                 one GEMM  (C_out × T_out·B) · (T_out·B × K·C_in+1)
//!            d_cols   = dy · W                      one GEMM  (T_out·B × C_out) · (C_out × K·C_in)
//!            dx       = col2im(d_cols)              gather-add of the K taps that read each input row
//! ```
//!
//! All arithmetic is in the three GEMMs (the packed SGEMM's micro-kernel, every ISA path). The
//! im2col matrix is never written out: `pass.rs` packs its pieces straight from `x` into the
//! micro-kernel's panels, and `d_cols` exists one L2-sized block at a time, scattered into `dx`
//! while hot. [`im2col`] and [`col2im`] remain as the plain definitions. Why im2col rather than a
//! direct kernel or `K` shifted GEMMs is measured in `README.md` beside this file.
//!
//! # Determinism and threads
//!
//! With [`Par::Rayon`], the forward splits output rows into tasks of fixed size; d_weight's
//! reduction over rows is cut into chunks whose count depends on the shape only, summed in chunk
//! order; d_input splits input steps into ranges (each recomputing the few output steps it shares
//! with a neighbour) and adds each input row's taps in increasing `k`, like [`col2im`]. Results
//! are bit-identical for every `Par`.
//!
//! # Panics
//!
//! Shape misuse is a bug in the caller (the engine's `Conv1d` layer validates user input into typed
//! errors first): every function checks its slice lengths and geometry against the
//! [`Conv1dShape`] and panics from a `#[cold]` function before touching data.

mod pass;
pub mod pool;
pub mod reference;

#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::{Isa, Par};

pub use pool::{MaxPool1dShape, max_pool1d_backward, max_pool1d_forward};

/// Output rows per task of the row-moving passes (im2col, col2im, bias) under [`Par::Rayon`].
/// Fixed, never derived from the thread count.
const ROWS_PER_TASK: usize = 256;

/// The geometry of one 1-D convolution over a time-major batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv1dShape {
    /// `T_in`, input time steps.
    pub steps: usize,
    /// `B`, sequences in the batch.
    pub batch: usize,
    /// `C_in`.
    pub in_channels: usize,
    /// `C_out`.
    pub out_channels: usize,
    /// `K`, taps of the kernel.
    pub kernel_width: usize,
    /// `S`, time steps between consecutive outputs.
    pub stride: usize,
    /// `P`, zero steps added at both ends of the time axis.
    pub padding: usize,
    /// `D`, time steps between consecutive taps (1 = dense kernel).
    pub dilation: usize,
}

impl Conv1dShape {
    /// Time steps the kernel spans: `D·(K−1) + 1`.
    pub fn span(&self) -> usize {
        self.dilation * (self.kernel_width - 1) + 1
    }

    /// `T_in + 2P`.
    pub fn padded_steps(&self) -> usize {
        self.steps + 2 * self.padding
    }

    /// Whether the geometry is usable: every size ≥ 1 (stride, dilation, kernel width, channels,
    /// steps, batch) and the kernel no wider than the padded input.
    pub fn is_valid(&self) -> bool {
        let sizes = [
            self.steps,
            self.batch,
            self.in_channels,
            self.out_channels,
            self.kernel_width,
            self.stride,
            self.dilation,
        ];
        sizes.iter().all(|&s| s > 0) && self.span() <= self.padded_steps()
    }

    /// `T_out = ⌊(T_in + 2P − span) / S⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Conv1dShape::is_valid).
    pub fn steps_out(&self) -> usize {
        check_shape(self);
        (self.padded_steps() - self.span()) / self.stride + 1
    }

    /// `K·C_in`: the width of one im2col row (the GEMM depth of the forward pass).
    pub fn col_width(&self) -> usize {
        self.kernel_width * self.in_channels
    }

    /// Floats of `x`: `T_in·B·C_in`.
    pub fn input_len(&self) -> usize {
        self.steps * self.batch * self.in_channels
    }

    /// Floats of `y`: `T_out·B·C_out`.
    pub fn output_len(&self) -> usize {
        self.steps_out() * self.batch * self.out_channels
    }

    /// Floats of the im2col matrix: `T_out·B·K·C_in`.
    pub fn cols_len(&self) -> usize {
        self.steps_out() * self.batch * self.col_width()
    }

    /// Floats of the tap-major weight: `C_out·K·C_in`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.col_width()
    }

    /// Multiply-adds ×2 of the forward pass: `2·T_out·B·C_out·K·C_in`. Backward (d_weight and
    /// d_input) is twice that.
    pub fn forward_flops(&self) -> f64 {
        2.0 * (self.steps_out() * self.batch) as f64
            * self.out_channels as f64
            * self.col_width() as f64
    }

    /// The input step read by tap `k` of output step `t`, or `None` in the padding.
    fn input_step(&self, t: usize, k: usize) -> Option<usize> {
        (t * self.stride + k * self.dilation)
            .checked_sub(self.padding)
            .filter(|&s| s < self.steps)
    }
}

// ---------------------------------------------------------------------------------------------
// Shape checks
// ---------------------------------------------------------------------------------------------

#[cold]
#[inline(never)]
#[track_caller]
fn shape_error(what: &str, message: String) -> ! {
    panic!("{what}: {message}")
}

#[track_caller]
fn check_shape(shape: &Conv1dShape) {
    if !shape.is_valid() {
        shape_error(
            "conv1d",
            format!(
                "expected every size ≥ 1 and a kernel span D·(K−1)+1 no wider than T_in + 2P, \
                 found {shape:?}"
            ),
        );
    }
}

#[track_caller]
fn check_len(what: &str, expected: usize, found: usize, layout: &str) {
    if expected != found {
        shape_error(
            what,
            format!("expected {expected} floats {layout}, found {found}"),
        );
    }
}

#[track_caller]
fn check_isa(isa: Isa) {
    if !isa.is_available() {
        shape_error(
            "conv1d",
            format!(
                "ISA path {isa} is not available on this CPU (detected: {})",
                Isa::detected()
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Row movers
// ---------------------------------------------------------------------------------------------

/// Runs `f(first_row, chunk)` over `data` cut into chunks of `ROWS_PER_TASK` rows of `width`
/// floats, in parallel under [`Par::Rayon`]. Each chunk is written by exactly one call.
fn for_row_chunks(
    par: Par,
    data: &mut [f32],
    width: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if width == 0 {
        return;
    }
    let chunk = ROWS_PER_TASK * width;
    match par {
        Par::Rayon(n) if n != 1 && data.len() > chunk => data
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, rows)| f(i * ROWS_PER_TASK, rows)),
        _ => data
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, rows)| f(i * ROWS_PER_TASK, rows)),
    }
}

/// im2col: `cols[(t·B + b), k·C_in + c] = x[t·S + k·D − P, b, c]` (0 in the padding).
///
/// `x` is `(T_in, B, C_in)`, `cols` is `(T_out·B, K·C_in)` and is overwritten.
///
/// # Panics
/// If the shape is invalid or a length disagrees with it.
#[track_caller]
pub fn im2col(par: Par, shape: &Conv1dShape, x: &[f32], cols: &mut [f32]) {
    check_shape(shape);
    check_len("im2col x", shape.input_len(), x.len(), "(T_in, B, C_in)");
    check_len(
        "im2col cols",
        shape.cols_len(),
        cols.len(),
        "(T_out·B, K·C_in)",
    );
    let (b_n, c_in, width) = (shape.batch, shape.in_channels, shape.col_width());
    for_row_chunks(par, cols, width, |row0, rows| {
        for (r, row) in rows.chunks_exact_mut(width).enumerate() {
            let (t, b) = ((row0 + r) / b_n, (row0 + r) % b_n);
            for (k, tap) in row.chunks_exact_mut(c_in).enumerate() {
                match shape.input_step(t, k) {
                    Some(s) => {
                        let src = (s * b_n + b) * c_in;
                        tap.copy_from_slice(&x[src..src + c_in]);
                    }
                    None => tap.fill(0.0),
                }
            }
        }
    });
}

/// col2im (the adjoint of [`im2col`]): `d_x[s, b, c] = Σ_{(t, k): t·S + k·D − P = s} d_cols[(t·B
/// + b), k·C_in + c]`, summed over `k` in increasing order.
///
/// `d_cols` is `(T_out·B, K·C_in)`, `d_x` is `(T_in, B, C_in)` and is overwritten.
///
/// # Panics
/// If the shape is invalid or a length disagrees with it.
#[track_caller]
pub fn col2im(par: Par, shape: &Conv1dShape, d_cols: &[f32], d_x: &mut [f32]) {
    check_shape(shape);
    check_len(
        "col2im d_cols",
        shape.cols_len(),
        d_cols.len(),
        "(T_out·B, K·C_in)",
    );
    check_len(
        "col2im d_x",
        shape.input_len(),
        d_x.len(),
        "(T_in, B, C_in)",
    );
    let (b_n, c_in, width) = (shape.batch, shape.in_channels, shape.col_width());
    let steps_out = shape.steps_out();
    for_row_chunks(par, d_x, c_in, |row0, rows| {
        for (r, row) in rows.chunks_exact_mut(c_in).enumerate() {
            let (s, b) = ((row0 + r) / b_n, (row0 + r) % b_n);
            row.fill(0.0);
            for k in 0..shape.kernel_width {
                // t·S = s + P − k·D must be a non-negative multiple of S below T_out.
                let Some(ts) = (s + shape.padding).checked_sub(k * shape.dilation) else {
                    break;
                };
                if ts % shape.stride != 0 || ts / shape.stride >= steps_out {
                    continue;
                }
                let src = (ts / shape.stride * b_n + b) * width + k * c_in;
                for (d, &g) in row.iter_mut().zip(&d_cols[src..src + c_in]) {
                    *d += g;
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Forward and backward
// ---------------------------------------------------------------------------------------------

/// Forward: `y = im2col(x) · Wᵀ + bias` on the ISA path `isa`.
///
/// - `x` `(T_in, B, C_in)`; `weight` tap-major `(C_out, K, C_in)`; `bias` `(C_out)` or none;
/// - `y` `(T_out, B, C_out)`: written.
///
/// The im2col matrix is not materialised: its panels are packed straight from `x`, and the bias
/// rides in the GEMM as a column of ones (see `pass.rs`).
///
/// # Panics
/// If the shape is invalid, a length disagrees with it, or this CPU cannot run `isa`.
#[track_caller]
pub fn conv1d_forward(
    isa: Isa,
    par: Par,
    shape: &Conv1dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    check_isa(isa);
    check_shape(shape);
    check_len("conv1d x", shape.input_len(), x.len(), "(T_in, B, C_in)");
    check_len(
        "conv1d weight",
        shape.weight_len(),
        weight.len(),
        "(C_out, K, C_in)",
    );
    check_len("conv1d y", shape.output_len(), y.len(), "(T_out, B, C_out)");
    if let Some(bias) = bias {
        check_len("conv1d bias", shape.out_channels, bias.len(), "(C_out)");
    }
    pass::forward(isa, par, shape, x, weight, bias, y);
}

/// The gradient outputs of [`conv1d_backward`].
#[derive(Debug)]
pub struct Conv1dGrads<'a> {
    /// `∂L/∂W`, tap-major `(C_out, K, C_in)`: accumulated (`+=`).
    pub d_weight: &'a mut [f32],
    /// `∂L/∂bias`, `(C_out)`: accumulated (`+=`), if wanted.
    pub d_bias: Option<&'a mut [f32]>,
    /// `∂L/∂x`, `(T_in, B, C_in)`: written, if wanted.
    pub d_input: Option<&'a mut [f32]>,
}

/// Backward of [`conv1d_forward`] on the ISA path `isa`, given its input `x` and `∂L/∂y`:
/// `d_weight += dyᵀ·im2col(x)`, `d_bias += Σ_rows dy`, and with `d_input`,
/// `d_x = col2im(dy·W)`.
///
/// # Panics
/// If the shape is invalid, a length disagrees with it, or this CPU cannot run `isa`.
#[track_caller]
pub fn conv1d_backward(
    isa: Isa,
    par: Par,
    shape: &Conv1dShape,
    x: &[f32],
    weight: &[f32],
    d_y: &[f32],
    grads: Conv1dGrads<'_>,
) {
    check_isa(isa);
    check_shape(shape);
    check_len("conv1d x", shape.input_len(), x.len(), "(T_in, B, C_in)");
    check_len(
        "conv1d weight",
        shape.weight_len(),
        weight.len(),
        "(C_out, K, C_in)",
    );
    check_len(
        "conv1d d_y",
        shape.output_len(),
        d_y.len(),
        "(T_out, B, C_out)",
    );
    check_len(
        "conv1d d_weight",
        shape.weight_len(),
        grads.d_weight.len(),
        "(C_out, K, C_in)",
    );
    if let Some(d_bias) = &grads.d_bias {
        check_len("conv1d d_bias", shape.out_channels, d_bias.len(), "(C_out)");
    }
    if let Some(d_x) = &grads.d_input {
        check_len(
            "conv1d d_x",
            shape.input_len(),
            d_x.len(),
            "(T_in, B, C_in)",
        );
    }
    pass::d_weight(isa, par, shape, x, d_y, grads.d_weight, grads.d_bias);
    if let Some(d_x) = grads.d_input {
        pass::d_input(isa, par, shape, weight, d_y, d_x);
    }
}

// ---------------------------------------------------------------------------------------------
// Weight layout
// ---------------------------------------------------------------------------------------------

/// PyTorch's `(C_out, C_in, K)` weight → recur's tap-major `(C_out, K, C_in)`.
///
/// # Panics
/// If `weight.len() != out_channels·in_channels·kernel_width` or `taps` differs in length.
#[track_caller]
pub fn taps_from_pytorch(
    weight: &[f32],
    out_channels: usize,
    in_channels: usize,
    kernel_width: usize,
    taps: &mut [f32],
) {
    let n = out_channels * in_channels * kernel_width;
    check_len(
        "taps_from_pytorch weight",
        n,
        weight.len(),
        "(C_out, C_in, K)",
    );
    check_len("taps_from_pytorch taps", n, taps.len(), "(C_out, K, C_in)");
    let per_out = in_channels * kernel_width;
    for (src, dst) in weight
        .chunks_exact(per_out)
        .zip(taps.chunks_exact_mut(per_out))
    {
        for c in 0..in_channels {
            for k in 0..kernel_width {
                dst[k * in_channels + c] = src[c * kernel_width + k];
            }
        }
    }
}

/// Adds a tap-major `(C_out, K, C_in)` gradient into PyTorch's `(C_out, C_in, K)` layout:
/// `weight[o, c, k] += taps[o, k, c]`.
///
/// # Panics
/// If the lengths are not both `out_channels·in_channels·kernel_width`.
#[track_caller]
pub fn add_pytorch_from_taps(
    taps: &[f32],
    out_channels: usize,
    in_channels: usize,
    kernel_width: usize,
    weight: &mut [f32],
) {
    let n = out_channels * in_channels * kernel_width;
    check_len(
        "add_pytorch_from_taps taps",
        n,
        taps.len(),
        "(C_out, K, C_in)",
    );
    check_len(
        "add_pytorch_from_taps weight",
        n,
        weight.len(),
        "(C_out, C_in, K)",
    );
    let per_out = in_channels * kernel_width;
    for (src, dst) in taps
        .chunks_exact(per_out)
        .zip(weight.chunks_exact_mut(per_out))
    {
        for c in 0..in_channels {
            for k in 0..kernel_width {
                dst[c * kernel_width + k] += src[k * in_channels + c];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ReLU
// ---------------------------------------------------------------------------------------------

/// ReLU in place: `x ← max(x, 0)`; NaN stays NaN (PyTorch's `relu`).
pub fn relu_forward(x: &mut [f32]) {
    for v in x {
        // `v < 0` is false for NaN, so NaN passes through.
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

/// ReLU backward in place, given the forward's output `y`: `d ← d·[y > 0]` (the subgradient at 0
/// is 0, as PyTorch's).
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn relu_backward(y: &[f32], d: &mut [f32]) {
    check_len("relu_backward d", y.len(), d.len(), "like y");
    for (g, &v) in d.iter_mut().zip(y) {
        if v <= 0.0 {
            *g = 0.0;
        }
    }
}
