//! PyTorch `state_dict`s ↔ recur layers: `nn.RNN` (tanh/relu), `nn.LSTM`, `nn.GRU`,
//! `nn.Linear`, `nn.Embedding`, and recur's [`LanguageModel`] (`embedding.*`, `rnn.*`,
//! `decoder.*`).
//!
//! The names and shapes are PyTorch's (`torch/nn/modules/rnn.py`, "Variables" in the
//! `torch.nn.LSTM` docs): for layer `k` and direction suffix `""` or `"_reverse"`,
//! `weight_ih_l{k}{sfx}` (G·H, I_k), `weight_hh_l{k}{sfx}` (G·H, H), `bias_ih_l{k}{sfx}` (G·H),
//! `bias_hh_l{k}{sfx}` (G·H), with `I_0 = input_size`, `I_k = D·H` above, gate blocks LSTM
//! `i,f,g,o`, GRU `r,z,n` — recur's own layout, so loading moves buffers and permutes nothing.
//!
//! What recur does not have is refused by name: an LSTM with `proj_size > 0` (its `weight_hr_l*`
//! tensors are reported as unexpected), any parameter the configuration does not expect.

use recur_kernels::{CellKind, Isa, Par};

use super::state_dict::normalize_prefix;
use super::{Bias, InteropError, SeqLayout, StateDict};
use crate::checkpoint::{Tensor, TensorStore};
use crate::model::dense::Dense;
use crate::model::embedding::Embedding;
use crate::model::lm::{LanguageModel, LmConfig};
use crate::rnn::{Rnn, RnnConfig, RnnError, RnnParams};

/// What a PyTorch `nn.RNN`/`nn.LSTM`/`nn.GRU` module was built as: recur's [`RnnConfig`] (cell,
/// `input_size`, `hidden_size`, `num_layers`, `bidirectional`; plus recur's own `par`/`isa`) and
/// the two constructor arguments that change the state_dict or the data layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchRnnSpec {
    /// The network; its `dropout` is a training setting and not in the state_dict.
    pub config: RnnConfig,
    /// `bias=True` (default) or `bias=False` (no bias tensors; loaded as zeros).
    pub bias: Bias,
    /// `batch_first`: not in the state_dict either. recur's layers take (T, B, I); convert a
    /// batch-first input with [`super::batch_first_to_time_major`].
    pub layout: SeqLayout,
}

impl TorchRnnSpec {
    /// `bias=True`, `batch_first=False` (PyTorch's defaults).
    pub fn new(config: RnnConfig) -> Self {
        TorchRnnSpec {
            config,
            bias: Bias::Present,
            layout: SeqLayout::TimeMajor,
        }
    }

    /// Sets [`TorchRnnSpec::bias`].
    pub fn with_bias(mut self, bias: Bias) -> Self {
        self.bias = bias;
        self
    }

    /// Sets [`TorchRnnSpec::layout`].
    pub fn with_layout(mut self, layout: SeqLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Reads the sizes of the `cell` module at `prefix` off the file's tensors: `input_size` and
    /// `hidden_size` from `weight_ih_l0`/`weight_hh_l0`, `num_layers` from the `weight_ih_l{k}`
    /// present, `bidirectional` from `weight_ih_l0_reverse`, `bias` from `bias_ih_l0`. (For
    /// `nn.RNN`, whether it is tanh or relu is not in the file: `cell` says.)
    ///
    /// Everything is checked again, tensor by tensor, by [`StateDict::load_rnn`].
    ///
    /// # Errors
    /// [`InteropError::CannotInfer`] if `weight_ih_l0`/`weight_hh_l0` are missing or not 2-D, or
    /// `weight_hh_l0` is not (G·H, H) for the cell's G; [`InteropError::Unsupported`] for an LSTM
    /// with projections (`weight_hr_l0`).
    pub fn infer(file: &StateDict, prefix: &str, cell: CellKind) -> Result<Self, InteropError> {
        let prefix = normalize_prefix(prefix);
        let cannot = |reason: String| InteropError::CannotInfer {
            path: file.path().to_path_buf(),
            module: format!("{prefix:?}"),
            reason,
        };
        let matrix = |name: &str| -> Result<[usize; 2], InteropError> {
            let full = format!("{prefix}{name}");
            let tensor = file
                .get(&full)
                .ok_or_else(|| cannot(format!("no tensor {full:?}")))?;
            match tensor.shape[..] {
                [rows, cols] => Ok([rows, cols]),
                _ => Err(cannot(format!(
                    "{full:?} has shape {:?}, expected a matrix",
                    tensor.shape
                ))),
            }
        };
        if file.get(&format!("{prefix}weight_hr_l0")).is_some() {
            return Err(InteropError::Unsupported {
                path: file.path().to_path_buf(),
                layer: format!("{prefix}weight_hr_l0"),
                reason: "LSTM projections (proj_size > 0) are not supported".into(),
            });
        }
        let [gh, hidden] = matrix("weight_hh_l0")?;
        let gates = cell.gates();
        if gh != gates * hidden {
            return Err(cannot(format!(
                "{prefix}weight_hh_l0 has shape [{gh}, {hidden}], expected [{}, {hidden}] for a {} \
                 ({gates} gate block(s) of H = {hidden})",
                gates * hidden,
                cell.name()
            )));
        }
        let [_, input] = matrix("weight_ih_l0")?;
        let has = |name: String| file.get(&format!("{prefix}{name}")).is_some();
        let num_layers = (0..).take_while(|k| has(format!("weight_ih_l{k}"))).count();
        let bidirectional = has("weight_ih_l0_reverse".into());
        let bias = if has("bias_ih_l0".into()) || has("bias_hh_l0".into()) {
            Bias::Present
        } else {
            Bias::Absent
        };
        let config = RnnConfig::new(cell, input, hidden)
            .with_num_layers(num_layers)
            .with_bidirectional(bidirectional);
        Ok(TorchRnnSpec::new(config).with_bias(bias))
    }

    /// The state_dict entries the module has, `(full name, shape)`, in PyTorch's order.
    pub fn expected_tensors(&self, prefix: &str) -> Vec<(String, Vec<usize>)> {
        let prefix = normalize_prefix(prefix);
        rnn_shapes(&self.config)
            .into_iter()
            .filter(|(name, _)| self.bias == Bias::Present || !name.starts_with("bias"))
            .map(|(name, shape)| (format!("{prefix}{name}"), shape))
            .collect()
    }
}

/// `(name, shape)` of every parameter of `config`, in [`RnnParams::named`] order.
fn rnn_shapes(config: &RnnConfig) -> Vec<(String, Vec<usize>)> {
    let (g, h, d) = (config.cell.gates(), config.hidden_size, config.directions());
    let mut out = Vec::with_capacity(4 * config.num_layers * d);
    for layer in 0..config.num_layers {
        let input = if layer == 0 { config.input_size } else { d * h };
        for direction in 0..d {
            let sfx = if direction == 0 {
                format!("_l{layer}")
            } else {
                format!("_l{layer}_reverse")
            };
            out.push((format!("weight_ih{sfx}"), vec![g * h, input]));
            out.push((format!("weight_hh{sfx}"), vec![g * h, h]));
            out.push((format!("bias_ih{sfx}"), vec![g * h]));
            out.push((format!("bias_hh{sfx}"), vec![g * h]));
        }
    }
    out
}

impl StateDict {
    /// Takes the `nn.RNN`/`nn.LSTM`/`nn.GRU` parameters at `prefix` (e.g. `"encoder.lstm."`;
    /// `""` for a bare module's state_dict) into an [`Rnn`] built as `spec.config` says
    /// (its `par` and `isa` included). `bias=False` modules get zero biases.
    ///
    /// # Errors
    /// [`InteropError::Mismatch`] listing every missing, wrongly shaped, or unexpected tensor
    /// under `prefix` (nothing is taken then); [`InteropError::Rnn`] for an invalid config.
    pub fn load_rnn(&mut self, prefix: &str, spec: &TorchRnnSpec) -> Result<Rnn, InteropError> {
        spec.config.validate()?;
        let prefix = normalize_prefix(prefix);
        let expected = spec.expected_tensors(&prefix);
        let mut values = self
            .take_module(spec.config.cell.name(), &prefix, &expected)?
            .into_iter();
        let mut params = RnnParams::zeros(&spec.config);
        for p in &mut params.directions {
            p.weight_ih = values.next().expect("one per expected tensor");
            p.weight_hh = values.next().expect("one per expected tensor");
            if spec.bias == Bias::Present {
                p.bias_ih = values.next().expect("one per expected tensor");
                p.bias_hh = values.next().expect("one per expected tensor");
            }
        }
        Ok(Rnn::from_params(spec.config.clone(), params))
    }

    /// Takes an `nn.Linear(input, output, bias)` at `prefix` (`weight` (out, in), `bias` (out)).
    ///
    /// # Errors
    /// [`InteropError::Mismatch`] as for [`StateDict::load_rnn`].
    pub fn load_linear(
        &mut self,
        prefix: &str,
        input: usize,
        output: usize,
        bias: Bias,
    ) -> Result<Dense, InteropError> {
        let prefix = normalize_prefix(prefix);
        let mut expected = vec![(format!("{prefix}weight"), vec![output, input])];
        if bias == Bias::Present {
            expected.push((format!("{prefix}bias"), vec![output]));
        }
        let mut values = self.take_module("linear", &prefix, &expected)?.into_iter();
        let weight = values.next().expect("weight");
        let bias = values.next().unwrap_or_else(|| vec![0.0; output]);
        Ok(Dense {
            input,
            output,
            weight,
            bias,
        })
    }

    /// Takes an `nn.Embedding(vocab, dim)` at `prefix` (`weight` (V, D)).
    ///
    /// # Errors
    /// [`InteropError::Mismatch`] as for [`StateDict::load_rnn`].
    pub fn load_embedding(
        &mut self,
        prefix: &str,
        vocab: usize,
        dim: usize,
    ) -> Result<Embedding, InteropError> {
        let prefix = normalize_prefix(prefix);
        let expected = [(format!("{prefix}weight"), vec![vocab, dim])];
        let weight = self
            .take_module("embedding", &prefix, &expected)?
            .pop()
            .expect("weight");
        Ok(Embedding { vocab, dim, weight })
    }

    /// Takes a whole [`LanguageModel`] — `embedding.weight` (if `config.embedding_dim`), `rnn.*`,
    /// `decoder.weight`, `decoder.bias` — and checks that nothing else is left in the file (a
    /// PyTorch model with these three submodules saves exactly this; see
    /// `scripts/interop/roundtrip_lm.py`).
    ///
    /// # Errors
    /// [`InteropError::Model`] for an invalid config; [`InteropError::Mismatch`] listing every
    /// missing, wrongly shaped or left-over tensor.
    pub fn load_language_model(
        mut self,
        config: &LmConfig,
        par: Par,
        isa: Isa,
    ) -> Result<LanguageModel, InteropError> {
        let input = config.embedding_dim.unwrap_or(config.vocab);
        let rnn_config = RnnConfig::new(config.cell_kind()?, input, config.hidden)
            .with_num_layers(config.num_layers)
            .with_dropout(config.dropout)
            .with_par(par)
            .with_isa(isa);
        rnn_config.validate()?;
        let embedding = match config.embedding_dim {
            Some(dim) => Some(self.load_embedding("embedding.", config.vocab, dim)?),
            None => None,
        };
        let rnn = self.load_rnn("rnn.", &TorchRnnSpec::new(rnn_config))?;
        let decoder = self.load_linear("decoder.", config.hidden, config.vocab, Bias::Present)?;
        self.finish()?;
        Ok(LanguageModel {
            config: config.clone(),
            embedding,
            rnn,
            decoder,
            par,
        })
    }
}

/// The state_dict of `rnn` under `prefix`, as `safetensors.torch.load_file` gives it back.
///
/// # Errors
/// [`InteropError::NonZeroBias`] when `bias` is [`Bias::Absent`] and a bias is not all zero.
pub fn rnn_state_dict(rnn: &Rnn, prefix: &str, bias: Bias) -> Result<TensorStore, InteropError> {
    let prefix = normalize_prefix(prefix);
    let mut out = TensorStore::new();
    for ((name, values), (_, shape)) in rnn
        .params()
        .named("")
        .into_iter()
        .zip(rnn_shapes(rnn.config()))
    {
        if name.starts_with("bias") && bias == Bias::Absent {
            check_zero(&format!("{prefix}{name}"), values)?;
            continue;
        }
        out.insert(
            format!("{prefix}{name}"),
            Tensor::new(shape, values.to_vec()),
        );
    }
    Ok(out)
}

/// The state_dict of an `nn.Linear` at `prefix`.
///
/// # Errors
/// [`InteropError::NonZeroBias`] when `bias` is [`Bias::Absent`] and the bias is not all zero.
pub fn linear_state_dict(
    dense: &Dense,
    prefix: &str,
    bias: Bias,
) -> Result<TensorStore, InteropError> {
    let prefix = normalize_prefix(prefix);
    let mut out = TensorStore::new();
    out.insert(
        format!("{prefix}weight"),
        Tensor::new(vec![dense.output, dense.input], dense.weight.clone()),
    );
    match bias {
        Bias::Present => {
            out.insert(
                format!("{prefix}bias"),
                Tensor::new(vec![dense.output], dense.bias.clone()),
            );
        }
        Bias::Absent => check_zero(&format!("{prefix}bias"), &dense.bias)?,
    }
    Ok(out)
}

/// The state_dict of an `nn.Embedding` at `prefix`.
pub fn embedding_state_dict(embedding: &Embedding, prefix: &str) -> TensorStore {
    let prefix = normalize_prefix(prefix);
    let mut out = TensorStore::new();
    out.insert(
        format!("{prefix}weight"),
        Tensor::new(
            vec![embedding.vocab, embedding.dim],
            embedding.weight.clone(),
        ),
    );
    out
}

/// The state_dict of a [`LanguageModel`] (what `recur train` writes as `model.safetensors`).
pub fn language_model_state_dict(model: &LanguageModel) -> TensorStore {
    let mut out = TensorStore::new();
    if let Some(e) = &model.embedding {
        out.extend(embedding_state_dict(e, "embedding."));
    }
    out.extend(rnn_state_dict(&model.rnn, "rnn.", Bias::Present).expect("biases are kept"));
    out.extend(linear_state_dict(&model.decoder, "decoder.", Bias::Present).expect("kept"));
    out
}

/// Reads a [`LmConfig`] from the JSON file at `path` (the `"model"` object of a recur
/// `state.json`, or the `lm_config.json` beside a PyTorch export).
///
/// # Errors
/// [`InteropError::Checkpoint`] if the file cannot be read; [`InteropError::Metadata`] (key
/// `"lm_config"`) if it is not an `LmConfig`.
pub fn read_lm_config(path: &std::path::Path) -> Result<LmConfig, InteropError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::checkpoint::CheckpointError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| InteropError::Metadata {
        path: path.to_path_buf(),
        key: "lm_config".into(),
        reason: e.to_string(),
    })
}

/// The logits (T, B, V) of `model` over the time-major ids (T, B), every row `steps` long, from
/// the zero state — what the equivalent PyTorch module's `decoder(rnn(embedding(ids))[0])` gives.
///
/// # Errors
/// [`InteropError::TokenOutOfRange`] for an id ≥ V; [`InteropError::Rnn`] if
/// `ids.len() != steps · batch` or either is 0.
pub fn language_model_logits(
    model: &LanguageModel,
    ids: &[u32],
    steps: usize,
    batch: usize,
) -> Result<Vec<f32>, InteropError> {
    let vocab = model.config.vocab;
    if ids.len() != steps * batch {
        return Err(RnnError::Shape {
            what: "ids",
            shape: format!("(T={steps}, B={batch})"),
            expected: steps * batch,
            found: ids.len(),
        }
        .into());
    }
    if let Some((position, &id)) = ids
        .iter()
        .enumerate()
        .find(|(_, id)| **id as usize >= vocab)
    {
        return Err(InteropError::TokenOutOfRange {
            id,
            position,
            vocab,
        });
    }
    let mut x = Vec::new();
    model.embed(ids, &mut x);
    let forward = model
        .rnn
        .infer(crate::rnn::SeqBatch::new(&x, steps, batch), None)?;
    let mut logits = vec![0.0f32; steps * batch * vocab];
    model
        .decoder
        .forward(model.par, &forward.output, steps * batch, &mut logits);
    Ok(logits)
}

fn check_zero(name: &str, values: &[f32]) -> Result<(), InteropError> {
    match values.iter().position(|&v| v != 0.0) {
        None => Ok(()),
        Some(index) => Err(InteropError::NonZeroBias {
            name: name.to_string(),
            index,
            value: values[index],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::Mismatch;
    use recur_kernels::RnnActivation;

    fn store_of(rnn: &Rnn, prefix: &str, bias: Bias) -> StateDict {
        StateDict::from_store("mem", rnn_state_dict(rnn, prefix, bias).unwrap())
    }

    #[test]
    fn round_trip_through_a_state_dict_for_every_cell() {
        for cell in [
            CellKind::Rnn(RnnActivation::Tanh),
            CellKind::Rnn(RnnActivation::Relu),
            CellKind::Lstm,
            CellKind::Gru,
        ] {
            for (layers, bidirectional) in [(1, false), (2, true), (3, false)] {
                let config = RnnConfig::new(cell, 3, 5)
                    .with_num_layers(layers)
                    .with_bidirectional(bidirectional);
                let rnn = config.init(11).unwrap();
                let mut file = store_of(&rnn, "encoder.rnn", Bias::Present);
                let spec = TorchRnnSpec::infer(&file, "encoder.rnn.", cell).unwrap();
                assert_eq!(spec, TorchRnnSpec::new(config.clone()));
                let back = file.load_rnn("encoder.rnn", &spec).unwrap();
                file.finish().unwrap();
                assert_eq!(back.params(), rnn.params());
            }
        }
    }

    #[test]
    fn bias_false_loads_as_zero_and_refuses_to_drop_non_zero_biases() {
        let config = RnnConfig::new(CellKind::Gru, 2, 3).with_num_layers(2);
        let rnn = config.init(3).unwrap();
        match rnn_state_dict(&rnn, "", Bias::Absent) {
            Err(InteropError::NonZeroBias { name, index: 0, .. }) => {
                assert_eq!(name, "bias_ih_l0")
            }
            other => panic!("expected NonZeroBias, got {other:?}"),
        }
        let mut zeroed = rnn.clone();
        for p in &mut zeroed.params_mut().directions {
            p.bias_ih.fill(0.0);
            p.bias_hh.fill(0.0);
        }
        let mut file = store_of(&zeroed, "", Bias::Absent);
        assert_eq!(file.names().count(), 4, "weights only");
        let spec = TorchRnnSpec::infer(&file, "", CellKind::Gru).unwrap();
        assert_eq!(spec.bias, Bias::Absent);
        let back = file.load_rnn("", &spec).unwrap();
        assert_eq!(back.params(), zeroed.params());
    }

    #[test]
    fn every_mismatch_is_listed_and_nothing_is_taken() {
        let rnn = RnnConfig::new(CellKind::Lstm, 3, 4)
            .with_bidirectional(true)
            .init(1)
            .unwrap();
        let mut store = rnn_state_dict(&rnn, "m.lstm.", Bias::Present).unwrap();
        store.remove("m.lstm.bias_hh_l0_reverse");
        store.insert(
            "m.lstm.weight_hh_l0".into(),
            Tensor::new(vec![4, 16], vec![0.0; 64]),
        );
        store.insert(
            "m.lstm.weight_hr_l0".into(),
            Tensor::new(vec![1], vec![0.0]),
        );
        store.insert("m.other.weight".into(), Tensor::new(vec![1], vec![0.0]));
        let mut file = StateDict::from_store("mem", store);
        let spec = TorchRnnSpec::new(rnn.config().clone());
        let before: Vec<String> = file.names().map(String::from).collect();
        let Err(InteropError::Mismatch { mismatches, .. }) = file.load_rnn("m.lstm.", &spec) else {
            panic!("expected a mismatch");
        };
        assert_eq!(
            mismatches,
            vec![
                Mismatch::Missing {
                    name: "m.lstm.bias_hh_l0_reverse".into(),
                    expected: vec![16]
                },
                Mismatch::Shape {
                    name: "m.lstm.weight_hh_l0".into(),
                    expected: vec![16, 4],
                    found: vec![4, 16]
                },
                Mismatch::Unexpected {
                    name: "m.lstm.weight_hr_l0".into()
                },
            ]
        );
        let after: Vec<String> = file.names().map(String::from).collect();
        assert_eq!(before, after, "a failed load takes nothing");
        assert!(matches!(
            TorchRnnSpec::infer(&file, "m.lstm", CellKind::Lstm),
            Err(InteropError::Unsupported { .. })
        ));
        assert!(matches!(
            TorchRnnSpec::infer(&file, "m.lstm", CellKind::Gru),
            Err(InteropError::Unsupported { .. })
        ));
        assert!(matches!(
            TorchRnnSpec::infer(&file, "nothing.here", CellKind::Gru),
            Err(InteropError::CannotInfer { .. })
        ));
    }

    #[test]
    fn infer_checks_the_gate_count() {
        let rnn = RnnConfig::new(CellKind::Gru, 3, 4).init(1).unwrap();
        let file = store_of(&rnn, "g", Bias::Present);
        let err = TorchRnnSpec::infer(&file, "g", CellKind::Lstm).unwrap_err();
        assert!(matches!(err, InteropError::CannotInfer { .. }), "{err}");
        assert!(err.to_string().contains("g.weight_hh_l0"), "{err}");
    }

    #[test]
    fn linear_and_embedding_round_trip() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let dense = Dense::init(4, 6, &mut rng);
        let embedding = Embedding::init(9, 4, &mut rng);
        let mut store = linear_state_dict(&dense, "head", Bias::Present).unwrap();
        store.extend(embedding_state_dict(&embedding, "embed"));
        let mut file = StateDict::from_store("mem", store);
        assert_eq!(file.load_embedding("embed", 9, 4).unwrap(), embedding);
        assert!(matches!(
            file.load_linear("head", 6, 4, Bias::Present),
            Err(InteropError::Mismatch { .. })
        ));
        assert_eq!(
            file.load_linear("head", 4, 6, Bias::Present).unwrap(),
            dense
        );
        file.finish().unwrap();
    }
}
