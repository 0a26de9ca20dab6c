//! Keras 3 weights → recur layers: `SimpleRNN`, `LSTM`, `GRU`, `Embedding`, `Dense`.
//!
//! Keras keeps no `state_dict`; `scripts/interop/keras_fixtures.py` exports each layer's weights
//! to safetensors as `{layer.name}.{variable}` (`lstm.kernel`, `lstm.recurrent_kernel`,
//! `lstm.bias`, `embedding.embeddings`, `dense.kernel`, `dense.bias`). The layouts
//! (keras `src/layers/rnn/{simple_rnn,lstm,gru}.py`):
//!
//! | Keras | shape | recur / PyTorch |
//! |---|---|---|
//! | `kernel` | (I, G·H) | `weight_ih = kernelᵀ` (G·H, I) |
//! | `recurrent_kernel` | (H, G·H) | `weight_hh = recurrent_kernelᵀ` (G·H, H) |
//! | `bias` (SimpleRNN, LSTM) | (G·H) | `bias_ih`; `bias_hh = 0` |
//! | `bias` (GRU, `reset_after=True`) | (2, 3H) | row 0 → `bias_ih`, row 1 → `bias_hh` |
//! | `bias` (GRU, `reset_after=False`) | (3H) | `bias_ih`; `bias_hh = 0` |
//! | `Dense.kernel` | (I, O) | `weight = kernelᵀ` (O, I) |
//! | `Embedding.embeddings` | (V, D) | `weight` (V, D) |
//!
//! Gate blocks: Keras' LSTM is `i, f, c, o` — PyTorch's `i, f, g, o`, no permutation. Keras' GRU
//! is `z, r, h`; PyTorch's is `r, z, n`, so the first two blocks swap. With `reset_after=True`
//! (the Keras 3 default) Keras computes `h̃ = tanh(x·W_h + b_in + r ⊙ (h·U_h + b_hn))` — the
//! linear-before-reset GRU of PyTorch and cuDNN, recur's [`CellKind::Gru`]. With
//! `reset_after=False` it computes `tanh(x·W_h + b_h + (r ⊙ h)·U_h)`, a different cell:
//! recur's [`CellKind::GruResetBefore`], which such a layer loads into.
//!
//! Only the default activations map (`tanh` and `sigmoid` for LSTM/GRU; `tanh` or `relu` for
//! SimpleRNN, given by the cell): Keras stores activations in the model config, not the weights,
//! so the caller states them in [`KerasRnnSpec`]. Stacked layers are separate Keras layers, each
//! with its own prefix; a `Bidirectional` wrapper's two layers are exported as
//! `{wrapper}.forward.*` and `{wrapper}.backward.*` (only `merge_mode="concat"` maps).

use recur_kernels::CellKind;

use super::state_dict::{ExpectedTensor, normalize_prefix};
use super::{Bias, InteropError, StateDict};
use crate::model::dense::Dense;
use crate::model::embedding::Embedding;
use crate::rnn::{Rnn, RnnConfig, RnnParams};

/// Where a Keras GRU applies its reset gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GruReset {
    /// `reset_after=True` (the default): after the recurrent matmul — recur's (and PyTorch's) GRU.
    #[default]
    After,
    /// `reset_after=False`: on `h` before the matmul — loads into a
    /// [`CellKind::GruResetBefore`] network.
    Before,
}

/// What the Keras recurrent layers were built as.
#[derive(Clone, Debug, PartialEq)]
pub struct KerasRnnSpec {
    /// Cell, input and hidden sizes, `num_layers` = the number of stacked Keras layers (their
    /// prefixes are given to [`load_rnn`]), `bidirectional` for `Bidirectional` wrappers. Its
    /// `par`/`isa` are the loaded network's.
    pub config: RnnConfig,
    /// `use_bias` (default true).
    pub bias: Bias,
    /// `reset_after` of a `CellKind::Gru` config: with [`GruReset::Before`] the layers load into
    /// a [`CellKind::GruResetBefore`] network (a config that already names that cell needs no
    /// flag). Ignored for the other cells.
    pub gru_reset: GruReset,
}

impl KerasRnnSpec {
    /// `use_bias=True`, `reset_after=True`.
    pub fn new(config: RnnConfig) -> Self {
        KerasRnnSpec {
            config,
            bias: Bias::Present,
            gru_reset: GruReset::After,
        }
    }

    /// Sets [`KerasRnnSpec::bias`].
    pub fn with_bias(mut self, bias: Bias) -> Self {
        self.bias = bias;
        self
    }

    /// Sets [`KerasRnnSpec::gru_reset`].
    pub fn with_gru_reset(mut self, gru_reset: GruReset) -> Self {
        self.gru_reset = gru_reset;
        self
    }
}

/// Keras' GRU block `b` (`z, r, h`) holds PyTorch's block `KERAS_TO_TORCH[b]` (`r, z, n`).
const GRU_KERAS_TO_TORCH: [usize; 3] = [1, 0, 2];

/// Loads stacked Keras recurrent layers, `layers[k]` being the prefix of layer `k`
/// (e.g. `["lstm", "lstm_1"]`), into one [`Rnn`].
///
/// With `spec.config.bidirectional`, each `layers[k]` is a `Bidirectional` wrapper (default
/// `merge_mode="concat"`, which is PyTorch's `[forward, reverse]` order) whose two layers are
/// exported as `{layer}.forward.*` and `{layer}.backward.*`.
///
/// A GRU with `spec.gru_reset == GruReset::Before` (Keras `reset_after=False`), or a config
/// naming [`CellKind::GruResetBefore`], expects a `(3H)` bias and gives a network of that cell.
///
/// # Errors
/// [`InteropError::CannotInfer`] if `layers.len()` is not `config.num_layers`;
/// [`InteropError::Mismatch`] listing every missing, wrongly shaped or unexpected tensor.
pub fn load_rnn(
    file: &mut StateDict,
    layers: &[&str],
    spec: &KerasRnnSpec,
) -> Result<Rnn, InteropError> {
    let mut config = spec.config.clone();
    config.validate()?;
    if config.cell == CellKind::Gru && spec.gru_reset == GruReset::Before {
        config.cell = CellKind::GruResetBefore;
    }
    let config = &config;
    if layers.len() != config.num_layers {
        return Err(InteropError::CannotInfer {
            path: file.path().to_path_buf(),
            module: format!("{layers:?}"),
            reason: format!(
                "{} layer prefix(es) given, expected num_layers = {}",
                layers.len(),
                config.num_layers
            ),
        });
    }
    let (g, h, d) = (config.cell.gates(), config.hidden_size, config.directions());
    let gru = config.cell.is_gru();
    // Keras' reset_after=True GRU has two bias rows (input, recurrent); every other layer one.
    let two_biases = config.cell == CellKind::Gru;
    // One unit per (layer, direction): its index in `RnnParams::directions`, its prefix, I_k.
    let mut units: Vec<(usize, String, usize)> = Vec::with_capacity(layers.len() * d);
    for (k, layer) in layers.iter().enumerate() {
        let base = normalize_prefix(layer);
        let input = if k == 0 { config.input_size } else { d * h };
        if d == 1 {
            units.push((k, base, input));
        } else {
            units.push((2 * k, format!("{base}forward."), input));
            units.push((2 * k + 1, format!("{base}backward."), input));
        }
    }
    let expected: Vec<Vec<ExpectedTensor>> = units
        .iter()
        .map(|(_, prefix, input)| {
            let mut names = vec![
                (format!("{prefix}kernel"), vec![*input, g * h]),
                (format!("{prefix}recurrent_kernel"), vec![h, g * h]),
            ];
            if spec.bias == Bias::Present {
                let shape = if two_biases {
                    vec![2, g * h]
                } else {
                    vec![g * h]
                };
                names.push((format!("{prefix}bias"), shape));
            }
            names
        })
        .collect();
    // Check every unit before taking any, so a failure leaves the file as it was. A
    // Bidirectional layer has no tensors of its own beside its two directions.
    let mut checks: Vec<(String, &[ExpectedTensor])> = units
        .iter()
        .zip(&expected)
        .map(|((_, prefix, _), names)| (prefix.clone(), &names[..]))
        .collect();
    if d == 2 {
        checks.extend(layers.iter().map(|l| (normalize_prefix(l), &[][..])));
    }
    let mut all_mismatches = Vec::new();
    for (prefix, names) in &checks {
        if let Err(InteropError::Mismatch { mismatches, .. }) = file.check_module(prefix, names) {
            all_mismatches.extend(mismatches);
        }
    }
    if !all_mismatches.is_empty() {
        return Err(InteropError::Mismatch {
            path: file.path().to_path_buf(),
            module: format!("keras {} layers {layers:?}", config.cell.name()),
            mismatches: all_mismatches,
        });
    }
    let mut params = RnnParams::zeros(config);
    for ((index, prefix, input), names) in units.iter().zip(&expected) {
        let mut values = file.take_module("keras layer", prefix, names)?.into_iter();
        let kernel = values.next().expect("kernel");
        let recurrent = values.next().expect("recurrent_kernel");
        let p = &mut params.directions[*index];
        p.weight_ih = transpose_gates(&kernel, *input, g, h, gru);
        p.weight_hh = transpose_gates(&recurrent, h, g, h, gru);
        if let Some(bias) = values.next() {
            if two_biases {
                p.bias_ih = permute_gru_blocks(&bias[..g * h], h);
                p.bias_hh = permute_gru_blocks(&bias[g * h..], h);
            } else if gru {
                p.bias_ih = permute_gru_blocks(&bias, h);
            } else {
                p.bias_ih = bias;
            }
        }
    }
    Ok(Rnn::from_params(config.clone(), params))
}

/// `kernel` (rows, G·H), Keras gate order → (G·H, rows), PyTorch gate order.
fn transpose_gates(kernel: &[f32], rows: usize, g: usize, h: usize, gru: bool) -> Vec<f32> {
    let mut out = vec![0.0f32; kernel.len()];
    for block in 0..g {
        let torch_block = if gru {
            GRU_KERAS_TO_TORCH[block]
        } else {
            block
        };
        for j in 0..h {
            let column = block * h + j;
            let out_row = torch_block * h + j;
            for r in 0..rows {
                out[out_row * rows + r] = kernel[r * g * h + column];
            }
        }
    }
    out
}

/// A (3H) GRU bias in Keras' `z, r, h` order → PyTorch's `r, z, n`.
fn permute_gru_blocks(bias: &[f32], h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; bias.len()];
    for (block, &torch_block) in GRU_KERAS_TO_TORCH.iter().enumerate() {
        out[torch_block * h..(torch_block + 1) * h].copy_from_slice(&bias[block * h..][..h]);
    }
    out
}

/// Loads a Keras `Dense(output)` on `input` features: `kernel` (I, O) → `weight` (O, I).
///
/// # Errors
/// [`InteropError::Mismatch`] listing every missing, wrongly shaped or unexpected tensor.
pub fn load_dense(
    file: &mut StateDict,
    prefix: &str,
    input: usize,
    output: usize,
    bias: Bias,
) -> Result<Dense, InteropError> {
    let prefix = normalize_prefix(prefix);
    let mut expected = vec![(format!("{prefix}kernel"), vec![input, output])];
    if bias == Bias::Present {
        expected.push((format!("{prefix}bias"), vec![output]));
    }
    let mut values = file
        .take_module("keras dense", &prefix, &expected)?
        .into_iter();
    let kernel = values.next().expect("kernel");
    let mut weight = vec![0.0f32; kernel.len()];
    for i in 0..input {
        for o in 0..output {
            weight[o * input + i] = kernel[i * output + o];
        }
    }
    Ok(Dense {
        input,
        output,
        weight,
        bias: values.next().unwrap_or_else(|| vec![0.0; output]),
    })
}

/// Loads a Keras `Embedding(vocab, dim)`: `embeddings` (V, D), recur's layout.
///
/// # Errors
/// [`InteropError::Mismatch`] as for [`load_dense`].
pub fn load_embedding(
    file: &mut StateDict,
    prefix: &str,
    vocab: usize,
    dim: usize,
) -> Result<Embedding, InteropError> {
    let prefix = normalize_prefix(prefix);
    let expected = [(format!("{prefix}embeddings"), vec![vocab, dim])];
    let weight = file
        .take_module("keras embedding", &prefix, &expected)?
        .pop()
        .expect("embeddings");
    Ok(Embedding { vocab, dim, weight })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Tensor, TensorStore};

    #[test]
    fn gru_gates_and_biases_are_reordered() {
        // I = 1, H = 1: kernel columns are the Keras blocks z, r, h = 1, 2, 3.
        let mut store = TensorStore::new();
        store.insert(
            "gru.kernel".into(),
            Tensor::new(vec![1, 3], vec![1.0, 2.0, 3.0]),
        );
        store.insert(
            "gru.recurrent_kernel".into(),
            Tensor::new(vec![1, 3], vec![4.0, 5.0, 6.0]),
        );
        store.insert(
            "gru.bias".into(),
            Tensor::new(vec![2, 3], vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0]),
        );
        let mut file = StateDict::from_store("mem", store);
        let spec = KerasRnnSpec::new(RnnConfig::new(CellKind::Gru, 1, 1));
        let rnn = load_rnn(&mut file, &["gru"], &spec).unwrap();
        let p = &rnn.params().directions[0];
        assert_eq!(p.weight_ih, vec![2.0, 1.0, 3.0]); // r, z, n
        assert_eq!(p.weight_hh, vec![5.0, 4.0, 6.0]);
        assert_eq!(p.bias_ih, vec![8.0, 7.0, 9.0]);
        assert_eq!(p.bias_hh, vec![11.0, 10.0, 12.0]);
        file.finish().unwrap();
    }

    #[test]
    fn kernels_are_transposed() {
        // LSTM I = 2, H = 1: kernel (2, 4) row-major; weight_ih (4, 2) is its transpose.
        let mut store = TensorStore::new();
        let kernel: Vec<f32> = (0..8).map(|v| v as f32).collect();
        store.insert("l.kernel".into(), Tensor::new(vec![2, 4], kernel));
        store.insert(
            "l.recurrent_kernel".into(),
            Tensor::new(vec![1, 4], vec![0.0; 4]),
        );
        let mut file = StateDict::from_store("mem", store);
        let spec = KerasRnnSpec::new(RnnConfig::new(CellKind::Lstm, 2, 1)).with_bias(Bias::Absent);
        let rnn = load_rnn(&mut file, &["l"], &spec).unwrap();
        let p = &rnn.params().directions[0];
        assert_eq!(p.weight_ih, vec![0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]);
        assert_eq!(p.bias_ih, vec![0.0; 4]);
    }

    #[test]
    fn reset_before_loads_its_single_bias_and_bad_biases_are_named() {
        // I = 1, H = 1: kernel columns are the Keras blocks z, r, h = 1, 2, 3; one (3H) bias.
        let mut store = TensorStore::new();
        store.insert(
            "gru.kernel".into(),
            Tensor::new(vec![1, 3], vec![1.0, 2.0, 3.0]),
        );
        store.insert(
            "gru.recurrent_kernel".into(),
            Tensor::new(vec![1, 3], vec![4.0, 5.0, 6.0]),
        );
        store.insert("gru.bias".into(), Tensor::new(vec![3], vec![7.0, 8.0, 9.0]));
        let config = RnnConfig::new(CellKind::Gru, 1, 1);
        // A (3H) bias is what reset_after=False saves: a shape mismatch for reset_after=True.
        let mut file = StateDict::from_store("mem", store);
        let err = load_rnn(&mut file, &["gru"], &KerasRnnSpec::new(config.clone())).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"gru.bias\" has shape [3], expected [2, 3]"),
            "{err}"
        );
        let before = KerasRnnSpec::new(config).with_gru_reset(GruReset::Before);
        let rnn = load_rnn(&mut file, &["gru"], &before).unwrap();
        file.finish().unwrap();
        assert_eq!(rnn.config().cell, CellKind::GruResetBefore);
        let p = &rnn.params().directions[0];
        assert_eq!(p.weight_ih, vec![2.0, 1.0, 3.0]); // r, z, n
        assert_eq!(p.weight_hh, vec![5.0, 4.0, 6.0]);
        assert_eq!(p.bias_ih, vec![8.0, 7.0, 9.0]);
        assert_eq!(p.bias_hh, vec![0.0; 3]);
    }
}
