//! Conv1D over time, PyTorch `nn.Conv1d` semantics and weight layout, on time-major batches.
//!
//! Input and output are time-major, `(T, B, C)` — the layout of [`crate::rnn`] — so a CRNN runs
//! `Conv1d → relu → MaxPool1d → Rnn` without transposes. (PyTorch's `Conv1d` takes `(B, C, T)`:
//! permute axes `(2, 0, 1)` to get this layout.) The arithmetic is im2col + three GEMMs in
//! [`recur_kernels::conv`]; this layer validates shapes into [`ConvError`]s, owns the parameters
//! and keeps what backward needs.
//!
//! ```
//! use recur_engine::model::conv::{Conv1dConfig, Conv1dGrads};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let conv = Conv1dConfig::new(40, 64, 5).with_padding(2).init(&mut rng).unwrap();
//! let (steps, batch) = (100, 8);
//! let x = vec![0.1f32; steps * batch * 40]; // (T, B, C_in)
//! let (y, cache) = conv.forward(&x, steps, batch).unwrap();
//! assert_eq!(y.len(), 100 * batch * 64); // (T_out, B, C_out), T_out = T with padding 2
//! let mut grads = Conv1dGrads::zeros(&conv);
//! let d_x = conv.backward(cache, &vec![1.0; y.len()], &mut grads).unwrap();
//! assert_eq!(d_x.len(), x.len());
//! ```

use rand::Rng;
use recur_kernels::conv::{self, Conv1dShape};
use recur_kernels::{Isa, Par};

use super::init::uniform;

/// A shape or configuration error of a convolution or pooling layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvError {
    /// A size that must be at least 1 is 0.
    #[error("{what} must be at least 1, found 0")]
    Zero {
        /// `in_channels`, `out_channels`, `kernel_width`, `stride`, `dilation`, `steps`, `batch`.
        what: &'static str,
    },
    /// The kernel spans more steps than the padded input has.
    #[error(
        "the kernel spans {span} steps (dilation {dilation} × (width {kernel_width} − 1) + 1) but \
         the padded input has only {padded} (T = {steps} plus padding {padding} at each end); \
         expected a span ≤ T + 2·padding"
    )]
    KernelTooWide {
        span: usize,
        dilation: usize,
        kernel_width: usize,
        padded: usize,
        steps: usize,
        padding: usize,
    },
    /// A pooling window longer than the input.
    #[error("the pooling window has {window} steps but the input only {steps}; expected ≤ {steps}")]
    WindowTooWide { window: usize, steps: usize },
    /// A buffer whose length does not match the layer and the batch.
    #[error("{what}: expected {expected} floats {shape}, found {found}")]
    Shape {
        what: &'static str,
        shape: String,
        expected: usize,
        found: usize,
    },
}

pub(crate) fn check_nonzero(pairs: &[(&'static str, usize)]) -> Result<(), ConvError> {
    match pairs.iter().find(|(_, v)| *v == 0) {
        Some(&(what, _)) => Err(ConvError::Zero { what }),
        None => Ok(()),
    }
}

/// The hyper-parameters of a [`Conv1d`] (PyTorch's `nn.Conv1d` arguments; `padding` is zeros at
/// both ends, `bias` is always on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// `C_in`.
    pub in_channels: usize,
    /// `C_out`.
    pub out_channels: usize,
    /// `K`, taps.
    pub kernel_width: usize,
    /// Default 1.
    pub stride: usize,
    /// Zero steps added at each end of the time axis. Default 0.
    pub padding: usize,
    /// Steps between taps. Default 1.
    pub dilation: usize,
    /// The kernels' ISA path. Default [`Isa::active`].
    pub isa: Isa,
    /// Threads of the GEMMs and the row copies. Default [`Par::Seq`].
    pub par: Par,
}

impl Conv1dConfig {
    /// `C_in → C_out` channels with `K` taps, stride 1, no padding, no dilation.
    pub fn new(in_channels: usize, out_channels: usize, kernel_width: usize) -> Self {
        Conv1dConfig {
            in_channels,
            out_channels,
            kernel_width,
            stride: 1,
            padding: 0,
            dilation: 1,
            isa: Isa::active(),
            par: Par::Seq,
        }
    }

    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    pub fn with_dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }

    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    pub fn with_par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    /// Checks that channels, kernel width, stride and dilation are ≥ 1.
    pub fn validate(&self) -> Result<(), ConvError> {
        check_nonzero(&[
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel_width", self.kernel_width),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ])
    }

    /// A layer initialised as PyTorch's `nn.Conv1d`: weight and bias U(±1/√(C_in·K))
    /// (`kaiming_uniform_(a=√5)` and the bias rule of `_ConvNd.reset_parameters`).
    pub fn init<R: Rng + ?Sized>(self, rng: &mut R) -> Result<Conv1d, ConvError> {
        self.validate()?;
        let fan_in = self.in_channels * self.kernel_width;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let weight = uniform(rng, self.out_channels * fan_in, bound);
        let bias = uniform(rng, self.out_channels, bound);
        Ok(Conv1d {
            config: self,
            weight,
            bias,
        })
    }

    /// The kernel geometry for a `(steps, batch)` input, or why it is unusable.
    pub fn shape(&self, steps: usize, batch: usize) -> Result<Conv1dShape, ConvError> {
        self.validate()?;
        check_nonzero(&[("steps", steps), ("batch", batch)])?;
        let shape = Conv1dShape {
            steps,
            batch,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_width: self.kernel_width,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        };
        if shape.span() > shape.padded_steps() {
            return Err(ConvError::KernelTooWide {
                span: shape.span(),
                dilation: self.dilation,
                kernel_width: self.kernel_width,
                padded: shape.padded_steps(),
                steps,
                padding: self.padding,
            });
        }
        Ok(shape)
    }

    /// `T_out` for `steps` input steps.
    pub fn steps_out(&self, steps: usize) -> Result<usize, ConvError> {
        Ok(self.shape(steps, 1)?.steps_out())
    }
}

/// A 1-D convolution layer: `weight` (C_out, C_in, K) and `bias` (C_out), PyTorch's names and
/// layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1d {
    pub config: Conv1dConfig,
    /// (C_out, C_in, K)
    pub weight: Vec<f32>,
    /// (C_out)
    pub bias: Vec<f32>,
}

/// Gradients of a [`Conv1d`], named after its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1dGrads {
    /// (C_out, C_in, K)
    pub d_weight: Vec<f32>,
    /// (C_out)
    pub d_bias: Vec<f32>,
}

impl Conv1dGrads {
    pub fn zeros(layer: &Conv1d) -> Self {
        Conv1dGrads {
            d_weight: vec![0.0; layer.weight.len()],
            d_bias: vec![0.0; layer.bias.len()],
        }
    }

    /// Sets every gradient to 0 (backward accumulates).
    pub fn zero(&mut self) {
        self.d_weight.fill(0.0);
        self.d_bias.fill(0.0);
    }
}

/// What [`Conv1d::forward`] keeps for [`Conv1d::backward`].
#[derive(Debug)]
pub struct Conv1dCache {
    shape: Conv1dShape,
    /// (T, B, C_in): the input (backward packs its im2col panels from it).
    x: Vec<f32>,
    /// (C_out, K, C_in): the weight, tap-major, as the forward pass used it.
    taps: Vec<f32>,
}

impl Conv1dCache {
    /// The geometry of the pass.
    pub fn shape(&self) -> &Conv1dShape {
        &self.shape
    }
}

impl Conv1d {
    /// `y` (T_out, B, C_out) from `x` (T, B, C_in), and the cache for backward.
    ///
    /// # Errors
    /// [`ConvError`] if `x` is not `steps·batch·C_in` floats, `steps` or `batch` is 0, or the
    /// kernel is wider than the padded input.
    pub fn forward(
        &self,
        x: &[f32],
        steps: usize,
        batch: usize,
    ) -> Result<(Vec<f32>, Conv1dCache), ConvError> {
        let shape = self.config.shape(steps, batch)?;
        self.check_params()?;
        if x.len() != shape.input_len() {
            return Err(ConvError::Shape {
                what: "conv1d input",
                shape: format!("(T={steps}, B={batch}, C_in={})", shape.in_channels),
                expected: shape.input_len(),
                found: x.len(),
            });
        }
        let mut taps = vec![0.0; self.weight.len()];
        conv::taps_from_pytorch(
            &self.weight,
            shape.out_channels,
            shape.in_channels,
            shape.kernel_width,
            &mut taps,
        );
        let mut y = vec![0.0; shape.output_len()];
        let cfg = &self.config;
        conv::conv1d_forward(
            cfg.isa.clamp_to_host(),
            cfg.par,
            &shape,
            x,
            &taps,
            Some(&self.bias),
            &mut y,
        );
        let x = x.to_vec();
        Ok((y, Conv1dCache { shape, x, taps }))
    }

    /// Backward of [`Conv1d::forward`]: accumulates `d_weight` and `d_bias` into `grads` and
    /// returns `∂L/∂x` (T, B, C_in).
    ///
    /// # Errors
    /// [`ConvError::Shape`] if `d_y` is not (T_out, B, C_out) or `grads` does not match the layer.
    pub fn backward(
        &self,
        cache: Conv1dCache,
        d_y: &[f32],
        grads: &mut Conv1dGrads,
    ) -> Result<Vec<f32>, ConvError> {
        let mut d_x = vec![0.0; cache.shape.input_len()];
        self.backward_impl(cache, d_y, grads, Some(&mut d_x))?;
        Ok(d_x)
    }

    /// [`Conv1d::backward`] without `∂L/∂x` (a first layer: saves one GEMM and the col2im).
    ///
    /// # Errors
    /// As [`Conv1d::backward`].
    pub fn backward_params(
        &self,
        cache: Conv1dCache,
        d_y: &[f32],
        grads: &mut Conv1dGrads,
    ) -> Result<(), ConvError> {
        self.backward_impl(cache, d_y, grads, None)
    }

    fn backward_impl(
        &self,
        cache: Conv1dCache,
        d_y: &[f32],
        grads: &mut Conv1dGrads,
        d_x: Option<&mut [f32]>,
    ) -> Result<(), ConvError> {
        let shape = cache.shape;
        if d_y.len() != shape.output_len() {
            return Err(ConvError::Shape {
                what: "conv1d d_output",
                shape: format!(
                    "(T_out={}, B={}, C_out={})",
                    shape.steps_out(),
                    shape.batch,
                    shape.out_channels
                ),
                expected: shape.output_len(),
                found: d_y.len(),
            });
        }
        for (what, expected, found) in [
            ("conv1d d_weight", self.weight.len(), grads.d_weight.len()),
            ("conv1d d_bias", self.bias.len(), grads.d_bias.len()),
        ] {
            if expected != found {
                return Err(ConvError::Shape {
                    what,
                    shape: "like the parameter".into(),
                    expected,
                    found,
                });
            }
        }
        let mut d_taps = vec![0.0; shape.weight_len()];
        let cfg = &self.config;
        conv::conv1d_backward(
            cfg.isa.clamp_to_host(),
            cfg.par,
            &shape,
            &cache.x,
            &cache.taps,
            d_y,
            conv::Conv1dGrads {
                d_weight: &mut d_taps,
                d_bias: Some(&mut grads.d_bias),
                d_input: d_x,
            },
        );
        conv::add_pytorch_from_taps(
            &d_taps,
            shape.out_channels,
            shape.in_channels,
            shape.kernel_width,
            &mut grads.d_weight,
        );
        Ok(())
    }

    fn check_params(&self) -> Result<(), ConvError> {
        let c = &self.config;
        let expected = c.out_channels * c.in_channels * c.kernel_width;
        if self.weight.len() != expected {
            return Err(ConvError::Shape {
                what: "conv1d weight",
                shape: format!(
                    "(C_out={}, C_in={}, K={})",
                    c.out_channels, c.in_channels, c.kernel_width
                ),
                expected,
                found: self.weight.len(),
            });
        }
        if self.bias.len() != c.out_channels {
            return Err(ConvError::Shape {
                what: "conv1d bias",
                shape: format!("(C_out={})", c.out_channels),
                expected: c.out_channels,
                found: self.bias.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// PyTorch's definition, `(C_out, C_in, K)` weight, in f64.
    fn pytorch_conv(layer: &Conv1d, x: &[f32], steps: usize, batch: usize) -> Vec<f64> {
        let c = &layer.config;
        let t_out = c.steps_out(steps).unwrap();
        let mut y = vec![0.0; t_out * batch * c.out_channels];
        for t in 0..t_out {
            for b in 0..batch {
                for o in 0..c.out_channels {
                    let mut s = f64::from(layer.bias[o]);
                    for i in 0..c.in_channels {
                        for k in 0..c.kernel_width {
                            let at = (t * c.stride + k * c.dilation) as isize - c.padding as isize;
                            if (0..steps as isize).contains(&at) {
                                let xv = x[(at as usize * batch + b) * c.in_channels + i];
                                let w = layer.weight[(o * c.in_channels + i) * c.kernel_width + k];
                                s += f64::from(xv) * f64::from(w);
                            }
                        }
                    }
                    y[(t * batch + b) * c.out_channels + o] = s;
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_pytorch_semantics_and_backward_its_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cfg = Conv1dConfig::new(3, 5, 3)
            .with_stride(2)
            .with_padding(1)
            .with_dilation(2);
        let conv = cfg.init(&mut rng).unwrap();
        let (steps, batch) = (11, 2);
        let x: Vec<f32> = (0..steps * batch * 3)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let (y, cache) = conv.forward(&x, steps, batch).unwrap();
        let expected = pytorch_conv(&conv, &x, steps, batch);
        for (a, e) in y.iter().zip(&expected) {
            assert!((f64::from(*a) - e).abs() < 1e-5, "{a} vs {e}");
        }
        // L = Σ r·y: check d_weight against central differences of the f64 definition.
        let r: Vec<f32> = (0..y.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut grads = Conv1dGrads::zeros(&conv);
        let d_x = conv.backward(cache, &r, &mut grads).unwrap();
        let loss = |layer: &Conv1d, x: &[f32]| -> f64 {
            let y = pytorch_conv(layer, x, steps, batch);
            y.iter().zip(&r).map(|(y, &r)| y * f64::from(r)).sum()
        };
        let h = 1.0 / 64.0;
        for i in 0..conv.weight.len() {
            let (mut plus, mut minus) = (conv.clone(), conv.clone());
            plus.weight[i] += h;
            minus.weight[i] -= h;
            let numeric = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(grads.d_weight[i])).abs() < 1e-4,
                "d_weight[{i}]"
            );
        }
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (loss(&conv, &plus) - loss(&conv, &minus)) / (2.0 * f64::from(h));
            assert!((numeric - f64::from(d_x[i])).abs() < 1e-4, "d_x[{i}]");
        }
        let sum_r: f64 = (0..conv.bias.len())
            .map(|o| {
                r.iter()
                    .skip(o)
                    .step_by(5)
                    .map(|&v| f64::from(v))
                    .sum::<f64>()
            })
            .sum();
        let sum_db: f64 = grads.d_bias.iter().map(|&v| f64::from(v)).sum();
        assert!((sum_r - sum_db).abs() < 1e-4);
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let err = Conv1dConfig::new(0, 4, 3).init(&mut rng).unwrap_err();
        assert_eq!(
            err,
            ConvError::Zero {
                what: "in_channels"
            }
        );
        let err = Conv1dConfig::new(2, 4, 3)
            .with_stride(0)
            .init(&mut rng)
            .unwrap_err();
        assert_eq!(err, ConvError::Zero { what: "stride" });
        let conv = Conv1dConfig::new(2, 4, 5)
            .with_dilation(2)
            .init(&mut rng)
            .unwrap();
        // span 9 > 4 + 2·0
        let err = conv.forward(&[0.0; 8], 4, 1).unwrap_err();
        assert!(matches!(
            err,
            ConvError::KernelTooWide {
                span: 9,
                padded: 4,
                ..
            }
        ));
        assert!(
            err.to_string().contains("expected a span ≤ T + 2·padding"),
            "{err}"
        );
        let err = conv.forward(&[0.0; 7], 10, 1).unwrap_err();
        assert!(matches!(
            err,
            ConvError::Shape {
                expected: 20,
                found: 7,
                ..
            }
        ));
        let err = conv.forward(&[], 0, 1).unwrap_err();
        assert_eq!(err, ConvError::Zero { what: "steps" });
        let (y, cache) = conv.forward(&[0.0; 20], 10, 1).unwrap();
        let mut grads = Conv1dGrads::zeros(&conv);
        let err = conv.backward(cache, &y[1..], &mut grads).unwrap_err();
        assert!(matches!(
            err,
            ConvError::Shape {
                what: "conv1d d_output",
                ..
            }
        ));
    }
}
