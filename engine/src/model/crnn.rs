//! A convolutional recurrent classifier (CRNN): `Conv1d → ReLU → MaxPool1d → RNN → Dense →
//! softmax`, many-to-one, over time-major `(T, B, C)` batches.
//!
//! The convolution finds local time–frequency patterns, the pooling shortens the sequence the
//! recurrent layer must run over, and the recurrent layer's final hidden state (its last layer's)
//! summarises the clip; the dense head maps it to class logits. Training is softmax cross-entropy
//! (mean over the batch) with any [`Optimizer`].
//!
//! ```
//! use recur_engine::model::crnn::{Crnn, CrnnConfig};
//! use recur_engine::optim::{Optimizer, OptimizerConfig};
//!
//! let config = CrnnConfig { in_channels: 8, conv_channels: 6, hidden: 5, classes: 3, ..CrnnConfig::default() };
//! let mut model = Crnn::init(&config, 1).unwrap();
//! let mut grads = model.zero_grads();
//! let mut adam = Optimizer::new(OptimizerConfig::pytorch_adam()).unwrap();
//! let (steps, batch) = (12, 2);
//! let x = vec![0.3f32; steps * batch * 8]; // (T, B, C)
//! let loss = model.loss_and_grads(&x, steps, batch, &[0, 2], &mut grads).unwrap();
//! assert!((loss - 3f32.ln()).abs() < 0.5);
//! model.step(&grads, &mut adam).unwrap();
//! assert_eq!(model.logits(&x, steps, batch).unwrap().len(), batch * 3);
//! ```

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy};
use recur_kernels::{CellKind, Isa, Par};

use super::conv::{Conv1d, Conv1dConfig, Conv1dGrads, ConvError};
use super::dense::{Dense, DenseGrads};
use super::pool::{MaxPool1d, relu_backward, relu_forward};
use crate::optim::{OptimError, Optimizer, Param};
use crate::rnn::{Mode, Rnn, RnnConfig, RnnError, RnnGrads, RnnState, SeqBatch};

/// Why a CRNN could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum CrnnError {
    #[error(transparent)]
    Conv(#[from] ConvError),
    #[error(transparent)]
    Rnn(#[from] RnnError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// A label outside `0..classes`, or a label count that is not the batch size.
    #[error("labels: {0}")]
    Labels(String),
    /// `classes` is 0.
    #[error("classes must be at least 1, found 0")]
    NoClasses,
}

/// The architecture of a [`Crnn`].
#[derive(Clone, Debug, PartialEq)]
pub struct CrnnConfig {
    /// Features per input frame (e.g. mel bands).
    pub in_channels: usize,
    /// Output channels of the convolution (= the recurrent layer's input size).
    pub conv_channels: usize,
    /// Taps of the convolution; padding `K/2` keeps `T` for odd `K`.
    pub kernel_width: usize,
    /// Max-pooling window and stride over time.
    pub pool: usize,
    /// The recurrent cell.
    pub cell: CellKind,
    /// Hidden size of the recurrent layer.
    pub hidden: usize,
    /// Classes of the head.
    pub classes: usize,
    pub isa: Isa,
    pub par: Par,
}

impl Default for CrnnConfig {
    /// 40 → Conv1d(64, K = 5) → ReLU → MaxPool(4) → GRU(64) → Dense(8).
    fn default() -> Self {
        CrnnConfig {
            in_channels: 40,
            conv_channels: 64,
            kernel_width: 5,
            pool: 4,
            cell: CellKind::Gru,
            hidden: 64,
            classes: 8,
            isa: Isa::active(),
            par: Par::Rayon(0),
        }
    }
}

/// The layers of a CRNN.
#[derive(Clone, Debug)]
pub struct Crnn {
    pub conv: Conv1d,
    pub pool: MaxPool1d,
    pub rnn: Rnn,
    pub head: Dense,
}

/// Gradients of every layer of a [`Crnn`] (accumulated by [`Crnn::loss_and_grads`]).
#[derive(Clone, Debug)]
pub struct CrnnGrads {
    pub conv: Conv1dGrads,
    pub rnn: RnnGrads,
    pub head: DenseGrads,
}

impl CrnnGrads {
    /// Sets every gradient to 0.
    pub fn zero(&mut self) {
        self.conv.zero();
        self.rnn.zero();
        self.head.zero();
    }
}

/// The intermediate results of one forward pass, kept for backward.
struct Forward {
    conv_cache: super::conv::Conv1dCache,
    /// (T₁, B, C_conv): the convolution's output after ReLU.
    relu_out: Vec<f32>,
    pool_cache: super::pool::MaxPool1dCache,
    rnn_cache: crate::rnn::RnnCache,
    /// T₂: the steps the recurrent layer ran over (after pooling).
    rnn_steps: usize,
    /// (B, H): the last layer's final hidden state.
    features: Vec<f32>,
    /// (B, classes)
    logits: Vec<f32>,
}

impl Crnn {
    /// A model with PyTorch's default initialisation of every layer, drawn from `seed`.
    ///
    /// # Errors
    /// [`CrnnError`] if a size is 0.
    pub fn init(config: &CrnnConfig, seed: u64) -> Result<Crnn, CrnnError> {
        if config.classes == 0 {
            return Err(CrnnError::NoClasses);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let conv = Conv1dConfig::new(
            config.in_channels,
            config.conv_channels,
            config.kernel_width,
        )
        .with_padding(config.kernel_width / 2)
        .with_isa(config.isa)
        .with_par(config.par)
        .init(&mut rng)?;
        let pool = MaxPool1d::new(config.pool, config.pool)?;
        let rnn = RnnConfig::new(config.cell, config.conv_channels, config.hidden)
            .with_isa(config.isa)
            .with_par(config.par)
            .init(seed.wrapping_add(1))?;
        let head = Dense::init(config.hidden, config.classes, &mut rng);
        Ok(Crnn {
            conv,
            pool,
            rnn,
            head,
        })
    }

    /// Zero gradients shaped like the parameters.
    pub fn zero_grads(&self) -> CrnnGrads {
        CrnnGrads {
            conv: Conv1dGrads::zeros(&self.conv),
            rnn: self.rnn.zero_grads(),
            head: DenseGrads::zeros(&self.head),
        }
    }

    /// The class count.
    pub fn classes(&self) -> usize {
        self.head.output
    }

    fn forward(&self, x: &[f32], steps: usize, batch: usize) -> Result<Forward, CrnnError> {
        let channels = self.conv.config.out_channels;
        let (mut relu_out, conv_cache) = self.conv.forward(x, steps, batch)?;
        relu_forward(&mut relu_out);
        let conv_steps = conv_cache.shape().steps_out();
        let (pooled, pool_cache) = self.pool.forward(&relu_out, conv_steps, batch, channels)?;
        let rnn_steps = self.pool.steps_out(conv_steps)?;
        let (out, rnn_cache) = self.rnn.forward(
            SeqBatch::new(&pooled, rnn_steps, batch),
            None,
            Mode::Training { dropout_seed: 0 },
        )?;
        let hidden = self.rnn.config().hidden_size;
        let last = out.state.h.len() - batch * hidden;
        let features = out.state.h[last..].to_vec();
        let mut logits = vec![0.0; batch * self.classes()];
        self.head
            .forward(self.conv.config.par, &features, batch, &mut logits);
        Ok(Forward {
            conv_cache,
            relu_out,
            pool_cache,
            rnn_cache,
            rnn_steps,
            features,
            logits,
        })
    }

    /// Class logits (B, classes) of `x` (T, B, C_in).
    ///
    /// # Errors
    /// [`CrnnError`] if `x` is not (T, B, C_in) or `T` is too short for the kernel and the pool.
    pub fn logits(&self, x: &[f32], steps: usize, batch: usize) -> Result<Vec<f32>, CrnnError> {
        Ok(self.forward(x, steps, batch)?.logits)
    }

    /// The mean softmax cross-entropy of the batch against `labels` (B), and its gradient
    /// accumulated (`+=`) into `grads`.
    ///
    /// # Errors
    /// [`CrnnError`] on a shape error or a label outside `0..classes`.
    pub fn loss_and_grads(
        &self,
        x: &[f32],
        steps: usize,
        batch: usize,
        labels: &[u32],
        grads: &mut CrnnGrads,
    ) -> Result<f32, CrnnError> {
        let classes = self.classes();
        if labels.len() != batch {
            return Err(CrnnError::Labels(format!(
                "expected one label per batch row ({batch}), found {}",
                labels.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return Err(CrnnError::Labels(format!(
                "expected labels in 0..{classes}, found {bad}"
            )));
        }
        let fwd = self.forward(x, steps, batch)?;
        let par = self.conv.config.par;
        let mut losses = vec![0.0; batch];
        let mut d_logits = vec![0.0; fwd.logits.len()];
        softmax_cross_entropy(
            &fwd.logits,
            classes,
            labels,
            &mut losses,
            Some(LogitsGrad {
                d_logits: &mut d_logits,
                scale: 1.0 / batch as f32,
            }),
        );
        let hidden = self.rnn.config().hidden_size;
        let mut d_features = vec![0.0; batch * hidden];
        self.head.backward(
            par,
            &fwd.features,
            &d_logits,
            batch,
            &mut grads.head,
            Some(&mut d_features),
        );
        let mut d_final = RnnState::zeros(self.rnn.config(), batch);
        let last = d_final.h.len() - batch * hidden;
        d_final.h[last..].copy_from_slice(&d_features);
        let d_steps = vec![0.0; fwd.rnn_steps * batch * hidden];
        let back = self
            .rnn
            .backward(fwd.rnn_cache, &d_steps, Some(&d_final), &mut grads.rnn)?;
        let mut d_relu = self.pool.backward(&fwd.pool_cache, &back.d_input)?;
        relu_backward(&fwd.relu_out, &mut d_relu)?;
        self.conv
            .backward_params(fwd.conv_cache, &d_relu, &mut grads.conv)?;
        Ok((losses.iter().map(|&l| f64::from(l)).sum::<f64>() / batch as f64) as f32)
    }

    /// One optimiser step over every parameter (names `conv.weight`, `rnn.weight_ih_l0`, …,
    /// `head.bias`).
    ///
    /// # Errors
    /// [`CrnnError::Optim`] if the optimiser refuses the step (e.g. mismatched state).
    pub fn step(&mut self, grads: &CrnnGrads, optimizer: &mut Optimizer) -> Result<(), CrnnError> {
        let rnn_names: Vec<String> = self
            .rnn
            .params()
            .named("rnn.")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut params = vec![
            Param::new("conv.weight", &mut self.conv.weight, &grads.conv.d_weight),
            Param::new("conv.bias", &mut self.conv.bias, &grads.conv.d_bias),
            Param::new("head.weight", &mut self.head.weight, &grads.head.d_weight),
            Param::new("head.bias", &mut self.head.bias, &grads.head.d_bias),
        ];
        let mut names = rnn_names.iter();
        for (p, g) in self
            .rnn
            .params_mut()
            .directions
            .iter_mut()
            .zip(&grads.rnn.directions)
        {
            for (value, grad) in [
                (&mut p.weight_ih, &g.weight_ih),
                (&mut p.weight_hh, &g.weight_hh),
                (&mut p.bias_ih, &g.bias_ih),
                (&mut p.bias_hh, &g.bias_hh),
            ] {
                let name = names.next().expect("four names per direction");
                params.push(Param::new(name, value, grad));
            }
        }
        optimizer.step(&mut params)?;
        Ok(())
    }
}

/// The index of the largest logit of each row (B, classes) → (B).
pub fn predictions(logits: &[f32], classes: usize) -> Vec<u32> {
    logits
        .chunks_exact(classes.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0 as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;

    #[test]
    fn learns_a_tiny_separable_task() {
        // Class 1 clips have a bump in band 2 somewhere in time; class 0 clips do not.
        let config = CrnnConfig {
            in_channels: 4,
            conv_channels: 8,
            kernel_width: 3,
            pool: 2,
            cell: CellKind::Gru,
            hidden: 8,
            classes: 2,
            isa: Isa::active(),
            par: Par::Seq,
        };
        let mut model = Crnn::init(&config, 3).unwrap();
        let (steps, batch) = (10, 8);
        let mut x = vec![0.0f32; steps * batch * 4];
        let labels: Vec<u32> = (0..batch as u32).map(|b| b % 2).collect();
        for b in 0..batch {
            if labels[b] == 1 {
                let t = 2 + b % 5;
                x[(t * batch + b) * 4 + 2] = 1.0;
            }
        }
        let mut adam =
            Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(0.02)).unwrap();
        let mut grads = model.zero_grads();
        let first = model
            .loss_and_grads(&x, steps, batch, &labels, &mut grads)
            .unwrap();
        let mut last = first;
        for _ in 0..60 {
            grads.zero();
            last = model
                .loss_and_grads(&x, steps, batch, &labels, &mut grads)
                .unwrap();
            model.step(&grads, &mut adam).unwrap();
        }
        assert!(last < 0.1 * first, "loss {first} → {last}");
        let predicted = predictions(&model.logits(&x, steps, batch).unwrap(), 2);
        assert_eq!(predicted, labels);
    }

    #[test]
    fn bad_labels_and_shapes_are_typed_errors() {
        let config = CrnnConfig {
            in_channels: 4,
            conv_channels: 3,
            hidden: 3,
            classes: 2,
            ..CrnnConfig::default()
        };
        let model = Crnn::init(&config, 0).unwrap();
        let mut grads = model.zero_grads();
        let x = vec![0.0; 10 * 2 * 4];
        let err = model
            .loss_and_grads(&x, 10, 2, &[0, 2], &mut grads)
            .unwrap_err();
        assert!(err.to_string().contains("expected labels in 0..2, found 2"));
        let err = model
            .loss_and_grads(&x, 10, 2, &[0], &mut grads)
            .unwrap_err();
        assert!(matches!(err, CrnnError::Labels(_)));
        let err = model.logits(&x[1..], 10, 2).unwrap_err();
        assert!(matches!(err, CrnnError::Conv(ConvError::Shape { .. })));
        // T = 1 after the convolution is shorter than the pooling window of 2.
        let err = model.logits(&x[..4], 1, 1).unwrap_err();
        assert!(matches!(
            err,
            CrnnError::Conv(ConvError::WindowTooWide { .. })
        ));
    }
}
