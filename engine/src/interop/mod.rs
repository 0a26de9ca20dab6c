//! Interoperability: PyTorch `state_dict`s and Keras weights in and out of recur, in safetensors.
//!
//! recur's parameters already use PyTorch's names and layout (`weight_ih_l{k}[_reverse]` (G·H, I),
//! gate blocks LSTM `i,f,g,o`, GRU `r,z,n`; `nn.Linear` `weight` (out, in); `nn.Embedding`
//! `weight` (V, D)), so a PyTorch checkpoint maps onto recur tensor for tensor. This module does
//! the checking and the moving:
//!
//! - [`StateDict`] is a loaded safetensors file (memory-mapped, parsed and validated once by
//!   [`crate::checkpoint::load_safetensors_bytes`], each tensor converted to f32 once and then
//!   *moved* into the layer, never copied again). Its loaders ([`StateDict::load_rnn`],
//!   [`StateDict::load_linear`], [`StateDict::load_embedding`],
//!   [`StateDict::load_language_model`]) take the tensors under a module prefix
//!   (`encoder.lstm.`) and report **every** missing, unexpected or wrongly shaped tensor by name
//!   in one [`InteropError::Mismatch`]; dtype, NaN/Inf and file-format problems come from the
//!   checkpoint loader as [`crate::checkpoint::CheckpointError`]s naming the tensor.
//! - [`pytorch`] writes state_dicts back ([`pytorch::rnn_state_dict`], …) and describes what the
//!   PyTorch module was ([`pytorch::TorchRnnSpec`]: `bias=False`, `batch_first`).
//! - [`keras`] maps Keras 3 `SimpleRNN`/`LSTM`/`GRU`/`Embedding`/`Dense` weights (kernels
//!   `(I, G·H)`, GRU gates `z,r,h`, `reset_after=True` bias `(2, 3H)`) onto the same layers.
//!
//! The layout mapping is written out in `README.md` beside this file; the Python fixture
//! generators and their commands are in `scripts/interop/`.
//!
//! # Examples
//!
//! Build a model, save it as a PyTorch `state_dict`, load it back and run a batch:
//!
//! ```
//! use recur_engine::interop::{Bias, StateDict, pytorch::{TorchRnnSpec, rnn_state_dict}};
//! use recur_engine::checkpoint::save_safetensors;
//! use recur_engine::kernels::CellKind;
//! use recur_engine::rnn::{RnnConfig, SeqBatch};
//! use std::collections::BTreeMap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = RnnConfig::new(CellKind::Lstm, 3, 8).with_num_layers(2).with_bidirectional(true);
//! let lstm = config.init(7)?;
//! // PyTorch reads this file with `model.load_state_dict(safetensors.torch.load_file(path))`
//! // for a model whose `encoder.lstm` is `nn.LSTM(3, 8, num_layers=2, bidirectional=True)`.
//! let tensors = rnn_state_dict(&lstm, "encoder.lstm.", Bias::Present)?;
//! let dir = std::env::temp_dir().join(format!("recur-doc-interop-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("encoder.safetensors");
//! save_safetensors(&path, &tensors, &BTreeMap::new())?;
//!
//! let mut file = StateDict::open(&path)?;
//! let spec = TorchRnnSpec::infer(&file, "encoder.lstm.", CellKind::Lstm)?;
//! assert_eq!((spec.config.num_layers, spec.config.bidirectional), (2, true));
//! let loaded = file.load_rnn("encoder.lstm.", &spec)?;
//! file.finish()?; // nothing left over
//! assert_eq!(loaded.params(), lstm.params());
//!
//! let (steps, batch) = (4, 2);
//! let x = vec![0.25f32; steps * batch * 3]; // (T, B, I)
//! let out = loaded.infer(SeqBatch::new(&x, steps, batch).with_lengths(&[4, 3]), None)?;
//! assert_eq!(out.output.len(), steps * batch * 2 * 8); // (T, B, D·H)
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! A mismatch names every offending tensor:
//!
//! ```
//! use recur_engine::checkpoint::{Tensor, TensorStore};
//! use recur_engine::interop::{InteropError, Mismatch, StateDict, pytorch::TorchRnnSpec};
//! use recur_engine::kernels::CellKind;
//! use recur_engine::rnn::RnnConfig;
//!
//! let mut store = TensorStore::new();
//! store.insert("gru.weight_ih_l0".into(), Tensor::new(vec![12, 3], vec![0.0; 36]));
//! store.insert("gru.weight_hh_l0".into(), Tensor::new(vec![12, 5], vec![0.0; 60])); // H = 4 wanted
//! store.insert("gru.weight_ih_l1".into(), Tensor::new(vec![12, 4], vec![0.0; 48]));
//! let mut file = StateDict::from_store("in-memory", store);
//! let spec = TorchRnnSpec::new(RnnConfig::new(CellKind::Gru, 3, 4));
//! let Err(InteropError::Mismatch { mismatches, .. }) = file.load_rnn("gru.", &spec) else {
//!     panic!("expected a mismatch");
//! };
//! assert!(mismatches.contains(&Mismatch::Shape {
//!     name: "gru.weight_hh_l0".into(), expected: vec![12, 4], found: vec![12, 5] }));
//! assert!(mismatches.contains(&Mismatch::Missing { name: "gru.bias_ih_l0".into(), expected: vec![12] }));
//! assert!(mismatches.contains(&Mismatch::Unexpected { name: "gru.weight_ih_l1".into() }));
//! ```
//!
//! Streaming inference, one step at a time, from weights loaded out of a state_dict: the stream
//! packs the weights once and a step allocates nothing; it gives what a whole-sequence pass gives.
//!
//! ```
//! use recur_engine::interop::{Bias, StateDict, pytorch::{TorchRnnSpec, rnn_state_dict}};
//! use recur_engine::kernels::CellKind;
//! use recur_engine::rnn::{RnnConfig, SeqBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let trained = RnnConfig::new(CellKind::Gru, 2, 6).with_num_layers(2).init(3)?;
//! let mut file = StateDict::from_store("gru", rnn_state_dict(&trained, "rnn", Bias::Present)?);
//! let spec = TorchRnnSpec::infer(&file, "rnn", CellKind::Gru)?;
//! let gru = file.load_rnn("rnn", &spec)?;
//!
//! let xs = [[0.5f32, -1.0], [0.25, 0.0], [-0.75, 1.5]]; // three steps of (B = 1, I = 2)
//! let mut stream = gru.stream(1)?;
//! let mut last = Vec::new();
//! for x in &xs {
//!     last = stream.step(x)?.to_vec(); // h_t of the top layer, (1, H)
//! }
//! let whole = gru.infer(SeqBatch::new(xs.as_flattened(), 3, 1), None)?;
//! let top = &whole.state.h[6..12]; // layer 1's final h
//! for (a, b) in last.iter().zip(top) {
//!     assert!((a - b).abs() < 1e-5);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A training step: forward in training mode, the gradient of the loss with respect to the
//! output, backward (BPTT) into named gradients, and an optimiser step over the named
//! parameters. After it, the loss is lower.
//!
//! ```
//! use recur_engine::kernels::CellKind;
//! use recur_engine::optim::{Optimizer, OptimizerConfig, Param};
//! use recur_engine::rnn::{Mode, RnnConfig, SeqBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (steps, batch, input, hidden) = (4, 2, 3, 5);
//! let mut lstm = RnnConfig::new(CellKind::Lstm, input, hidden).init(9)?;
//! let x: Vec<f32> = (0..steps * batch * input).map(|k| (k as f32 * 0.37).sin()).collect();
//! let target = vec![0.5f32; steps * batch * hidden]; // (T, B, H)
//! // L = ½ Σ (y − target)²
//! let loss = |y: &[f32]| y.iter().zip(&target).map(|(y, t)| 0.5 * (y - t).powi(2)).sum::<f32>();
//!
//! let (out, cache) = lstm.forward(SeqBatch::new(&x, steps, batch), None, Mode::Training { dropout_seed: 0 })?;
//! let before = loss(&out.output);
//! let d_output: Vec<f32> = out.output.iter().zip(&target).map(|(y, t)| y - t).collect();
//! let mut grads = lstm.zero_grads();
//! lstm.backward(cache, &d_output, None, &mut grads)?;
//!
//! let mut optimizer = Optimizer::new(OptimizerConfig::pytorch_adam().with_learning_rate(0.01))?;
//! let names: Vec<String> = lstm.params().named("").into_iter().map(|(name, _)| name).collect();
//! let mut slots: Vec<(&mut [f32], &[f32])> = Vec::new();
//! for (p, g) in lstm.params_mut().directions.iter_mut().zip(&grads.directions) {
//!     slots.push((&mut p.weight_ih, &g.weight_ih));
//!     slots.push((&mut p.weight_hh, &g.weight_hh));
//!     slots.push((&mut p.bias_ih, &g.bias_ih));
//!     slots.push((&mut p.bias_hh, &g.bias_hh));
//! }
//! let mut params: Vec<Param<'_>> = names
//!     .iter()
//!     .zip(slots)
//!     .map(|(name, (value, grad))| Param::new(name, value, grad))
//!     .collect();
//! optimizer.step(&mut params)?;
//!
//! let after = loss(&lstm.infer(SeqBatch::new(&x, steps, batch), None)?.output);
//! assert!(after < before, "{after} < {before}");
//! # Ok(())
//! # }
//! ```
//!
//! For a whole language model, [`crate::model::lm::LanguageModel::train_step`] does the forward,
//! softmax cross-entropy and backward of a minibatch, and [`crate::train::Trainer`] the loop;
//! [`StateDict::load_language_model`] loads one from a PyTorch module with submodules
//! `embedding`, `rnn`, `decoder` (see `examples/pytorch_lstm_generate.rs`).

pub mod keras;
pub mod pytorch;
mod state_dict;

pub use state_dict::StateDict;

use std::fmt;
use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::model::lm::LmError;
use crate::rnn::RnnError;

/// One way a file disagrees with the model it is loaded into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The model needs `name`; the file does not have it.
    Missing {
        /// The full tensor name (prefix included).
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },
    /// The file has `name` under the module's prefix; the model has no such parameter.
    Unexpected {
        /// The full tensor name.
        name: String,
    },
    /// The file's `name` has the wrong shape.
    Shape {
        /// The full tensor name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Missing { name, expected } => {
                write!(f, "missing tensor {name:?} (expected shape {expected:?})")
            }
            Mismatch::Unexpected { name } => write!(f, "unexpected tensor {name:?}"),
            Mismatch::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor {name:?} has shape {found:?}, expected {expected:?}"
            ),
        }
    }
}

/// Why weights could not be moved between recur and PyTorch/Keras. Every variant names the file
/// and the tensor(s) concerned.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The file itself is bad: not safetensors, truncated, overlapping offsets, duplicate names,
    /// an unsupported dtype, NaN/Inf values (see [`CheckpointError`]).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The tensors under a module's prefix do not match the model: every mismatch is listed.
    #[error("{path}: {module} does not match: {}", list(mismatches))]
    Mismatch {
        /// The file (or the label of an in-memory store).
        path: PathBuf,
        /// What was being loaded, e.g. `lstm "encoder.lstm."`.
        module: String,
        /// Every missing, unexpected or wrongly shaped tensor, in name order.
        mismatches: Vec<Mismatch>,
    },
    /// A layer recur cannot represent exactly (e.g. a PyTorch LSTM with `proj_size > 0`).
    #[error("{path}: {layer}: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The layer (its prefix) or tensor.
        layer: String,
        /// What is unsupported and why.
        reason: String,
    },
    /// Saving as `bias=False` a layer whose biases are not all zero would lose them.
    #[error(
        "{name}: cannot save as bias=False: the bias holds a non-zero value ({value} at index {index})"
    )]
    NonZeroBias {
        /// The bias parameter's name.
        name: String,
        /// Flat index of the first non-zero value.
        index: usize,
        /// That value.
        value: f32,
    },
    /// The configuration the weights were to be loaded into is itself invalid.
    #[error(transparent)]
    Rnn(#[from] RnnError),
    /// The sizes of a layer could not be read off the file.
    #[error("{path}: cannot infer the configuration of {module}: {reason}")]
    CannotInfer {
        /// The file.
        path: PathBuf,
        /// The module's prefix.
        module: String,
        /// What is missing or inconsistent.
        reason: String,
    },
    /// A metadata entry (or a JSON configuration) that is missing or malformed.
    #[error("{path}: metadata {key:?}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The entry.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} at position {position} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Its flat index in the input.
        position: usize,
        /// V.
        vocab: usize,
    },
    /// The language-model configuration is invalid.
    #[error(transparent)]
    Model(#[from] LmError),
}

fn list(mismatches: &[Mismatch]) -> String {
    mismatches
        .iter()
        .map(Mismatch::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a layer was built with biases (PyTorch `bias=True`, Keras `use_bias=True`).
///
/// A layer without them loads as zero biases (which is what it computes); saving a recur layer
/// as [`Bias::Absent`] requires its biases to be zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bias {
    /// `bias=True`: the file holds the bias tensors.
    #[default]
    Present,
    /// `bias=False`: the file has no bias tensors; they are zero.
    Absent,
}

/// How a sequence batch is laid out in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeqLayout {
    /// (T, B, F): PyTorch's default (`batch_first=False`) and recur's.
    #[default]
    TimeMajor,
    /// (B, T, F): PyTorch's `batch_first=True`, Keras' layout.
    BatchFirst,
}

/// Reorders a (B, T, F) batch into the (T, B, F) layout recur's layers take.
///
/// # Panics
/// If `data.len() != batch · steps · features` (a caller's broken invariant).
pub fn batch_first_to_time_major(
    data: &[f32],
    batch: usize,
    steps: usize,
    features: usize,
) -> Vec<f32> {
    transpose_outer(data, batch, steps, features)
}

/// Reorders a (T, B, F) result (an RNN output) into (B, T, F).
///
/// # Panics
/// If `data.len() != steps · batch · features`.
pub fn time_major_to_batch_first(
    data: &[f32],
    steps: usize,
    batch: usize,
    features: usize,
) -> Vec<f32> {
    transpose_outer(data, steps, batch, features)
}

/// (A, B, F) → (B, A, F).
fn transpose_outer(data: &[f32], a: usize, b: usize, features: usize) -> Vec<f32> {
    assert_eq!(
        data.len(),
        a * b * features,
        "sequence batch of shape ({a}, {b}, {features}) needs {} values, got {}",
        a * b * features,
        data.len()
    );
    let mut out = vec![0.0f32; data.len()];
    for i in 0..a {
        for j in 0..b {
            let src = (i * b + j) * features;
            let dst = (j * a + i) * features;
            out[dst..dst + features].copy_from_slice(&data[src..src + features]);
        }
    }
    out
}
