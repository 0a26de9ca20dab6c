//! A recurrent language model: token ids → (one-hot | embedding) → stacked RNN → dense → softmax.
//!
//! Two shapes of task share it (see [`crate::data::dataset`] for the minibatch layout):
//! - **many-to-one** ([`Targets::LastStep`]): the seeds' tasks — a window of ids, one label, the
//!   loss on the last step's output only;
//! - **many-to-many** ([`Targets::EveryStep`]): char-rnn's truncated-BPTT streams — a label at
//!   every step, the recurrent state carried from one chunk to the next.
//!
//! Parameter names follow a PyTorch module with submodules `embedding` (`nn.Embedding`), `rnn`
//! (`nn.RNN`/`nn.LSTM`/`nn.GRU`) and `decoder` (`nn.Linear`), so a checkpoint loads into the
//! equivalent torch model with `load_state_dict`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::cells::PackFor;
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy};
use recur_kernels::{CellKind, Par};
use serde::{Deserialize, Serialize};

use super::dense::{Dense, DenseGrads, GradWrite};
use super::embedding::Embedding;
use super::init::{InitScheme, glorot_uniform, orthogonal, uniform};
use super::padding::PadChain;
use crate::data::dataset::{Minibatch, PADDING_ID, Targets};
use crate::rnn::{
    Mode, Outputs, Rnn, RnnConfig, RnnError, RnnForward, RnnGrads, RnnState, SeqBatch, TokenBatch,
};

/// The architecture of a [`LanguageModel`] (saved as `config.json` in checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// V: token ids are `0..vocab`.
    pub vocab: usize,
    /// `Some(D)`: an `Embedding(V, D)` feeds the RNN. `None`: one-hot input (I = V), computed as
    /// a row gather.
    pub embedding_dim: Option<usize>,
    /// `rnn_tanh`, `rnn_relu`, `lstm` or `gru`.
    pub cell: String,
    /// H.
    pub hidden: usize,
    pub num_layers: usize,
    /// Dropout between stacked layers (training only).
    pub dropout: f32,
    /// Dropout on the embedding's output, the first layer's input (training only; needs an
    /// embedding). With `output_dropout`, the non-recurrent connections of Zaremba et al. (2014)
    /// that `dropout` (between layers) does not reach in a one-layer model.
    #[serde(default)]
    pub embed_dropout: f32,
    /// Dropout on the last layer's output, the decoder's input (training only).
    #[serde(default)]
    pub output_dropout: f32,
    /// Whose default initialisation to use (the seeds are Keras programs).
    #[serde(default)]
    pub init: InitScheme,
}

impl LmConfig {
    /// The cell kind named by `cell`.
    pub fn cell_kind(&self) -> Result<CellKind, LmError> {
        use recur_kernels::RnnActivation::{Relu, Tanh};
        Ok(match self.cell.as_str() {
            "rnn" | "rnn_tanh" => CellKind::Rnn(Tanh),
            "rnn_relu" => CellKind::Rnn(Relu),
            "lstm" => CellKind::Lstm,
            "gru" => CellKind::Gru,
            "gru_reset_before" => CellKind::GruResetBefore,
            other => {
                return Err(LmError::UnknownCell(other.to_string()));
            }
        })
    }

    fn rnn_config(&self, par: Par) -> Result<RnnConfig, LmError> {
        let input = self.embedding_dim.unwrap_or(self.vocab);
        Ok(RnnConfig::new(self.cell_kind()?, input, self.hidden)
            .with_num_layers(self.num_layers)
            .with_dropout(self.dropout)
            .with_par(par))
    }
}

/// Why a model could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("unknown cell {0:?}: expected rnn_tanh, rnn_relu, lstm or gru")]
    UnknownCell(String),
    #[error("{what} dropout: expected a probability in [0, 1), found {found}")]
    Dropout { what: &'static str, found: f32 },
    #[error(
        "embedding dropout {0}: needs an embedding (embedding_dim), found one-hot input; \
         use a dropout of 0 or add an embedding"
    )]
    EmbedDropoutWithoutEmbedding(f32),
    #[error(transparent)]
    Rnn(#[from] RnnError),
}

/// The model. Fields are public so an optimiser and a checkpoint can reach every parameter.
#[derive(Clone, Debug)]
pub struct LanguageModel {
    pub config: LmConfig,
    pub embedding: Option<Embedding>,
    pub rnn: Rnn,
    /// `decoder`: (V, H) weight, (V) bias.
    pub decoder: Dense,
    /// Parallelism of the dense layer's GEMMs (the RNN carries its own).
    pub par: Par,
}

/// Gradients of a [`LanguageModel`], shaped like its parameters.
#[derive(Clone, Debug)]
pub struct LmGrads {
    /// (V, D)
    pub d_embedding: Option<Vec<f32>>,
    pub rnn: RnnGrads,
    pub decoder: DenseGrads,
    /// Ids whose `d_embedding` rows [`LanguageModel::train_step`] wrote since the last
    /// [`LmGrads::zero`] (with repeats); every other row is still zero.
    embedding_rows: Vec<u32>,
    /// D (0 without an embedding).
    embedding_dim: usize,
    /// `decoder` holds stale values that the next [`LanguageModel::train_step`] overwrites
    /// rather than accumulates into (see [`LmGrads::reset_written`]).
    decoder_stale: bool,
    /// `decoder.d_weight` holds exactly the last `train_step`'s `dyᵀ·x` (it overwrote it), so
    /// [`LanguageModel::decoder_weight_grad_finite`] may bound it from that step's operands.
    decoder_overwritten: bool,
}

impl LmGrads {
    /// Sets every gradient to zero.
    pub fn zero(&mut self) {
        if let Some(d) = &mut self.d_embedding {
            d.fill(0.0);
        }
        self.embedding_rows.clear();
        self.rnn.zero();
        self.decoder.zero();
        self.decoder_stale = false;
        self.decoder_overwritten = false;
    }

    /// Sets every gradient to zero after [`LanguageModel::train_step`] calls, clearing only the
    /// embedding rows those calls wrote (a batch touches a few hundred of the word model's 8,639
    /// rows). Correct as long as nothing but `train_step` wrote into `d_embedding` since the last
    /// [`LmGrads::zero`]; otherwise use that.
    pub fn zero_written(&mut self) {
        self.zero_written_except_decoder();
        self.decoder.zero();
        self.decoder_stale = false;
        self.decoder_overwritten = false;
    }

    /// [`LmGrads::zero_written`] for a caller that reads the gradients only after the next
    /// [`LanguageModel::train_step`] (the trainer): the decoder's gradient is not cleared but
    /// marked stale, and that step overwrites it instead of accumulating into it. The gradients
    /// after the step are those `zero_written` would give, without a zeroing pass over the
    /// decoder's V·H floats; before the step, `decoder` still holds the previous values.
    pub fn reset_written(&mut self) {
        self.zero_written_except_decoder();
        self.decoder_stale = true;
    }

    fn zero_written_except_decoder(&mut self) {
        match &mut self.d_embedding {
            Some(d) if !d.is_empty() => {
                let dim = self.embedding_dim;
                for &id in &self.embedding_rows {
                    let at = id as usize * dim;
                    d[at..at + dim].fill(0.0);
                }
            }
            _ => {}
        }
        self.embedding_rows.clear();
        self.rnn.zero();
    }

    /// How the next decoder backward writes its gradient (and marks it written).
    fn take_decoder_write(&mut self) -> GradWrite {
        self.decoder_overwritten = std::mem::take(&mut self.decoder_stale);
        if self.decoder_overwritten {
            GradWrite::Overwrite
        } else {
            GradWrite::Accumulate
        }
    }

    /// Whether every gradient is finite, reading only the embedding rows
    /// [`LanguageModel::train_step`] wrote (the others are zero; see [`LmGrads::zero_written`]).
    pub fn written_all_finite(&self) -> bool {
        self.written_all_finite_par(Par::Seq)
    }

    /// [`LmGrads::written_all_finite`], scanning the decoder's weight gradient (the largest
    /// one, V·H floats) in chunks on the rayon pool under [`Par::Rayon`]. Same answer for any
    /// `par`.
    pub fn written_all_finite_par(&self, par: Par) -> bool {
        self.written_finite_par(par, true)
    }

    /// [`LmGrads::written_all_finite_par`], leaving out the decoder's weight gradient unless
    /// `decoder_weight` (for a caller that knows it is finite: see
    /// [`LanguageModel::decoder_weight_grad_finite`]).
    pub fn written_finite_par(&self, par: Par, decoder_weight: bool) -> bool {
        let embedding = match &self.d_embedding {
            Some(d) => self.embedding_rows.iter().all(|&id| {
                let at = id as usize * self.embedding_dim;
                all_finite(&d[at..at + self.embedding_dim])
            }),
            None => true,
        };
        let decoder_weight = match par {
            _ if !decoder_weight => true,
            Par::Seq => all_finite(&self.decoder.d_weight),
            Par::Rayon(_) => {
                use rayon::prelude::*;
                self.decoder.d_weight.par_chunks(64 * 1024).all(all_finite)
            }
        };
        embedding
            && self.rnn.named("").iter().all(|(_, g)| all_finite(g))
            && decoder_weight
            && all_finite(&self.decoder.d_bias)
    }
}

/// ChaCha stream of the embedding-dropout mask: the RNN's between-layer masks use stream 0 of
/// the same seed, so the three kinds of mask are independent.
const EMBED_STREAM: u64 = 1;
/// ChaCha stream of the output-dropout mask.
const OUTPUT_STREAM: u64 = 2;

/// Inverted dropout of `values` in training (`seed` is `Some`) with probability `p > 0`: draws
/// `mask` (0 or `1/(1−p)`, one draw per value in order) from stream `stream` of a `ChaCha8Rng`
/// seeded with `seed`, and multiplies. Otherwise leaves `values` alone and `mask` empty.
fn apply_dropout(seed: Option<u64>, stream: u64, p: f32, values: &mut [f32], mask: &mut Vec<f32>) {
    mask.clear();
    let Some(seed) = seed.filter(|_| p > 0.0) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let keep = 1.0 / (1.0 - p);
    mask.extend((0..values.len()).map(|_| if rng.random::<f32>() < p { 0.0 } else { keep }));
    multiply(values, mask);
}

/// `values *= mask` element-wise; nothing when `mask` is empty (no dropout was applied).
fn multiply(values: &mut [f32], mask: &[f32]) {
    if !mask.is_empty() {
        debug_assert_eq!(values.len(), mask.len(), "dropout mask of another shape");
        values.iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
    }
}

/// Whether every value is finite; branch-free over the slice so it vectorises.
pub(crate) fn all_finite(values: &[f32]) -> bool {
    // A float is non-finite exactly when its exponent bits are all ones.
    let exponent = 0x7f80_0000u32;
    values.chunks(1024).all(|chunk| {
        chunk.iter().fold(0u32, |acc, v| {
            acc | u32::from(v.to_bits() & exponent == exponent)
        }) == 0
    })
}

/// The largest `|v|` of `values` if every value is finite (`None` otherwise): branch-free
/// chunks of 64 Ki values, on the rayon pool under [`Par::Rayon`] (the same answer for any `par`).
fn max_abs_finite(values: &[f32], par: Par) -> Option<f32> {
    // For non-negative floats the order of the bit patterns is the order of the values, and
    // ±inf and NaN lie above every finite one.
    let chunk_max = |chunk: &[f32]| {
        chunk
            .iter()
            .fold(0u32, |acc, v| acc.max(v.to_bits() & 0x7fff_ffff))
    };
    const CHUNK: usize = 64 * 1024;
    let largest = match par {
        Par::Seq => values.chunks(CHUNK).map(chunk_max).max(),
        Par::Rayon(_) => {
            use rayon::prelude::*;
            values.par_chunks(CHUNK).map(chunk_max).max()
        }
    }
    .unwrap_or(0);
    (largest < 0x7f80_0000).then(|| f32::from_bits(largest))
}

/// Whether `argmax(row) == target` ([`super::sampling::argmax`]: the first largest, NaN skipped),
/// by one branch-free (vectorisable) comparison pass: no value before `target` is ≥ it and none
/// after it is larger.
fn is_argmax(row: &[f32], target: usize) -> bool {
    let Some(&t) = row.get(target) else {
        return false;
    };
    if t.is_nan() {
        return super::sampling::argmax(row) == target;
    }
    let any = |values: &[f32], beats: fn(f32, f32) -> bool| {
        values
            .iter()
            .fold(false, |found, &value| found | beats(value, t))
    };
    !any(&row[..target], |value, t| value >= t) && !any(&row[target + 1..], |value, t| value > t)
}

/// What one minibatch gave: summed loss over its targets and how many were right (argmax).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Σ cross-entropy (nats) over the targets.
    pub loss_sum: f64,
    /// Targets whose argmax prediction was correct.
    pub correct: usize,
    /// Number of targets.
    pub count: usize,
}

impl BatchStats {
    pub fn add(&mut self, other: &BatchStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.count += other.count;
    }

    /// Mean loss per target (nats).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }
}

/// How many-to-one batches with front padding run through the recurrent layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PaddingMode {
    /// Compute the state trajectory through the padding once per batch (all rows share it:
    /// same zero start, same padding input) and run each row's real tokens from the state at
    /// its offset, as a ragged batch (see `model/padding.rs`). Used when it is exact — a
    /// unidirectional network of PyTorch cells (not the reset-before GRU), zero initial state,
    /// last-step targets, no dropout between layers in training — and the batch is at least a
    /// quarter padding; otherwise as `Padded`.
    #[default]
    Shared,
    /// Run every row over all `T` steps, padding included (what Keras does; the reference).
    Padded,
}

/// Buffers reused from one minibatch to the next, and how to treat padding.
#[derive(Debug, Default)]
pub struct LmWorkspace {
    /// See [`PaddingMode`].
    pub padding: PaddingMode,
    /// Batches run with a shared padding prefix so far.
    shared_batches: u64,
    /// (B) leading padding steps of each row (shared-padding path).
    pads: Vec<usize>,
    /// (B) real steps of each row (shared-padding path).
    lengths: Vec<usize>,
    /// (T', B) each row's real ids, left-aligned (shared-padding path).
    ids: Vec<u32>,
    /// (T, B, I) the RNN's input.
    x: Vec<f32>,
    /// (rows, H) the decoder's input.
    head_in: Vec<f32>,
    /// (rows, V)
    logits: Vec<f32>,
    /// (rows, V)
    d_logits: Vec<f32>,
    /// (rows)
    losses: Vec<f32>,
    /// (rows, H)
    d_head_in: Vec<f32>,
    /// (T, B, H)
    d_output: Vec<f32>,
    /// (T, B, D) the embedding-dropout mask of the last training batch (0 or 1/(1−p)); empty
    /// when none was applied.
    embed_mask: Vec<f32>,
    /// (rows, H) the output-dropout mask of the last training batch; empty when none.
    output_mask: Vec<f32>,
    /// Many-to-one: `∂L/∂(final state)`, zero except the last layer's rows. (L, B, H)
    d_final: Option<RnnState>,
}

impl LmWorkspace {
    /// An empty workspace that treats padding as `padding` says.
    pub fn new(padding: PaddingMode) -> Self {
        LmWorkspace {
            padding,
            ..LmWorkspace::default()
        }
    }

    /// How many batches this workspace has run with a shared padding prefix.
    pub fn shared_padding_batches(&self) -> u64 {
        self.shared_batches
    }
}

impl LanguageModel {
    /// A freshly initialised model: PyTorch's default initialisations, seeded.
    pub fn new(config: LmConfig, par: Par, seed: u64) -> Result<Self, LmError> {
        for (what, p) in [
            ("embedding", config.embed_dropout),
            ("output", config.output_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(LmError::Dropout { what, found: p });
            }
        }
        if config.embed_dropout > 0.0 && config.embedding_dim.is_none() {
            return Err(LmError::EmbedDropoutWithoutEmbedding(config.embed_dropout));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let embedding = config
            .embedding_dim
            .map(|d| Embedding::init(config.vocab, d, &mut rng));
        let rnn = config.rnn_config(par)?.init(seed ^ 0x005e_ed0f_u64)?;
        let decoder = Dense::init(config.hidden, config.vocab, &mut rng);
        let mut model = LanguageModel {
            config,
            embedding,
            rnn,
            decoder,
            par,
        };
        if model.config.init == InitScheme::Keras {
            model.keras_init(&mut rng);
        }
        Ok(model)
    }

    /// Re-initialises every parameter as Keras 3 does by default (see [`super::init`]).
    fn keras_init<R: rand::Rng + ?Sized>(&mut self, rng: &mut R) {
        let cell = self.rnn.config().cell;
        let (g, h) = (cell.gates(), self.config.hidden);
        if let Some(e) = &mut self.embedding {
            e.weight = uniform(rng, e.weight.len(), 0.05);
        }
        for p in &mut self.rnn.params_mut().directions {
            let input = p.weight_ih.len() / (g * h);
            p.weight_ih = glorot_uniform(rng, input, g * h);
            p.weight_hh = orthogonal(rng, g * h, h);
            p.bias_ih.fill(0.0);
            p.bias_hh.fill(0.0);
            if cell == CellKind::Lstm {
                // unit_forget_bias: the f block (i, f, g, o) starts at 1.
                p.bias_ih[h..2 * h].fill(1.0);
            }
        }
        self.decoder.weight = glorot_uniform(rng, self.config.hidden, self.config.vocab);
        self.decoder.bias.fill(0.0);
    }

    /// Zero gradients shaped like the parameters.
    pub fn zero_grads(&self) -> LmGrads {
        LmGrads {
            d_embedding: self.embedding.as_ref().map(|e| vec![0.0; e.weight.len()]),
            embedding_rows: Vec::new(),
            embedding_dim: self.embedding.as_ref().map_or(0, |e| e.dim),
            rnn: self.rnn.zero_grads(),
            decoder: DenseGrads::zeros(&self.decoder),
            decoder_stale: false,
            decoder_overwritten: false,
        }
    }

    /// The zero recurrent state for `batch` sequences.
    pub fn zero_state(&self, batch: usize) -> RnnState {
        RnnState::zeros(self.rnn.config(), batch)
    }

    /// Writes the RNN input (T, B, I) for time-major ids (T, B).
    pub(crate) fn embed(&self, ids: &[u32], x: &mut Vec<f32>) {
        match &self.embedding {
            Some(e) => {
                x.resize(ids.len() * e.dim, 0.0);
                e.forward(ids, x);
            }
            None => {
                let v = self.config.vocab;
                x.clear();
                x.resize(ids.len() * v, 0.0);
                for (row, &id) in x.chunks_exact_mut(v).zip(ids) {
                    row[id as usize] = 1.0;
                }
            }
        }
    }

    /// Forward and backward over one minibatch: accumulates gradients of the mean loss into
    /// `grads` and returns the batch's statistics and the final recurrent state (the next chunk's
    /// initial state for streams). `initial` is the state to start from (zeros if `None`).
    pub fn train_step(
        &self,
        batch: &Minibatch,
        initial: Option<&RnnState>,
        dropout_seed: u64,
        grads: &mut LmGrads,
        ws: &mut LmWorkspace,
    ) -> Result<(BatchStats, RnnState), RnnError> {
        self.run(batch, initial, Some((dropout_seed, grads)), ws)
    }

    /// Forward only (no dropout): the batch's statistics and final state.
    pub fn evaluate(
        &self,
        batch: &Minibatch,
        initial: Option<&RnnState>,
        ws: &mut LmWorkspace,
    ) -> Result<(BatchStats, RnnState), RnnError> {
        self.run(batch, initial, None, ws)
    }

    fn run(
        &self,
        batch: &Minibatch,
        initial: Option<&RnnState>,
        train: Option<(u64, &mut LmGrads)>,
        ws: &mut LmWorkspace,
    ) -> Result<(BatchStats, RnnState), RnnError> {
        if let Some(chain_steps) = self.shared_padding(batch, initial, train.is_some(), ws) {
            ws.shared_batches += 1;
            return self.run_shared_padding(batch, chain_steps, train, ws);
        }
        let (steps, b, h) = (batch.steps, batch.batch, self.config.hidden);
        let mode = match &train {
            Some((seed, _)) => Mode::Training {
                dropout_seed: *seed,
            },
            None => Mode::Inference,
        };
        let drop_seed = train.as_ref().map(|(seed, _)| *seed);
        // Many-to-one: every row runs all T steps (unidirectional), so the last step's output is
        // the last layer's final state — the RNN writes no (T, B, H) output and backward takes
        // the head's gradient as the final state's, with no (T, B, H) output gradient.
        let outputs = match batch.targets_kind {
            Targets::LastStep => Outputs::FinalState,
            Targets::EveryStep => Outputs::EveryStep,
        };
        let (forward, cache) = if self.embedding.is_some() {
            self.embed(&batch.inputs, &mut ws.x);
            let p = self.config.embed_dropout;
            apply_dropout(drop_seed, EMBED_STREAM, p, &mut ws.x, &mut ws.embed_mask);
            self.rnn
                .forward_with(SeqBatch::new(&ws.x, steps, b), initial, mode, outputs)?
        } else {
            // One-hot input: the RNN gathers columns of W_ih, no (T, B, V) tensor of zeros.
            let ids = TokenBatch::new(&batch.inputs, steps, b);
            self.rnn.forward_one_hot_with(ids, initial, mode, outputs)?
        };
        let RnnForward { output, state } = forward;
        // The decoder sees the last step (many-to-one) or every step (many-to-many).
        let last_layer = (self.config.num_layers - 1) * b * h;
        let (rows, head_source) = match batch.targets_kind {
            Targets::LastStep => (b, &state.h[last_layer..last_layer + b * h]),
            Targets::EveryStep => (steps * b, &output[..]),
        };
        ws.head_in.clear();
        ws.head_in.extend_from_slice(head_source);
        self.rnn.recycle(output);
        let p = self.config.output_dropout;
        apply_dropout(
            drop_seed,
            OUTPUT_STREAM,
            p,
            &mut ws.head_in,
            &mut ws.output_mask,
        );
        let stats = self.head(&batch.targets, rows, train.is_some(), ws);

        if let Some((_, grads)) = train {
            let write = grads.take_decoder_write();
            self.head_backward(rows, &mut grads.decoder, write, ws);
            multiply(&mut ws.d_head_in, &ws.output_mask);
            // The initial state is not trained and no gradient flows back past this batch, so
            // its gradient (`back.d_state`) is never read here: skip computing it.
            let cache = cache.without_initial_state_grad();
            let mut back = match batch.targets_kind {
                Targets::LastStep => {
                    let d_final = ws.d_final.get_or_insert_with(|| self.zero_state(b));
                    if d_final.h.len() != state.h.len() {
                        *d_final = self.zero_state(b);
                    }
                    d_final.h[last_layer..].copy_from_slice(&ws.d_head_in);
                    self.rnn
                        .backward_from_state(cache, d_final, &mut grads.rnn)?
                }
                Targets::EveryStep => {
                    self.rnn
                        .backward(cache, &ws.d_head_in, None, &mut grads.rnn)?
                }
            };
            multiply(&mut back.d_input, &ws.embed_mask);
            if let (Some(e), Some(d)) = (&self.embedding, &mut grads.d_embedding) {
                e.backward(&batch.inputs, &back.d_input, d);
                grads.embedding_rows.extend_from_slice(&batch.inputs);
            }
            self.rnn.recycle(back.d_input);
        } else {
            self.rnn.recycle_cache(cache);
        }
        Ok((stats, state))
    }

    /// The decoder and the loss over `ws.head_in` (rows, H): fills `ws.logits` (and
    /// `ws.d_logits` of the mean loss when training) and returns the statistics.
    fn head(&self, targets: &[u32], rows: usize, train: bool, ws: &mut LmWorkspace) -> BatchStats {
        let v = self.config.vocab;
        ws.logits.resize(rows * v, 0.0);
        self.decoder
            .forward(self.par, &ws.head_in, rows, &mut ws.logits);
        ws.losses.resize(rows, 0.0);
        let grad = if train {
            ws.d_logits.resize(rows * v, 0.0);
            Some(LogitsGrad {
                d_logits: &mut ws.d_logits,
                scale: 1.0 / rows as f32,
            })
        } else {
            None
        };
        softmax_cross_entropy(&ws.logits, v, targets, &mut ws.losses, grad);
        BatchStats {
            loss_sum: ws.losses.iter().map(|&l| l as f64).sum(),
            correct: ws
                .logits
                .chunks_exact(v)
                .zip(targets)
                .filter(|(row, t)| is_argmax(row, **t as usize))
                .count(),
            count: rows,
        }
    }

    /// Backward of [`LanguageModel::head`]: decoder gradients, and `ws.d_head_in` (rows, H).
    fn head_backward(
        &self,
        rows: usize,
        grads: &mut DenseGrads,
        write: GradWrite,
        ws: &mut LmWorkspace,
    ) {
        ws.d_head_in.resize(rows * self.config.hidden, 0.0);
        self.decoder.backward_with(
            self.par,
            &ws.head_in,
            &ws.d_logits,
            rows,
            grads,
            Some(&mut ws.d_head_in),
            write,
        );
    }

    /// Whether the decoder's weight gradient in `grads` is provably finite without reading it:
    /// the last training step run with `ws` overwrote it with `dyᵀ·x` (x = the decoder's input,
    /// dy = the gradient of its output, both still in `ws`), every operand is finite, and
    /// `rows·max|dy|·max|x|`, widened by the rounding of the GEMM's FMAs and adds (at most
    /// `2·rows + 1` per element), is below `f32::MAX`. Every partial sum is then bounded by it
    /// too, so no element can overflow or become NaN. A `false` proves nothing (scan it).
    pub fn decoder_weight_grad_finite(&self, grads: &LmGrads, ws: &LmWorkspace) -> bool {
        let (v, h) = (self.config.vocab, self.config.hidden);
        let rows = ws.head_in.len() / h.max(1);
        if !grads.decoder_overwritten || ws.d_logits.len() != rows * v {
            return false;
        }
        let operands = (
            max_abs_finite(&ws.head_in, self.par),
            max_abs_finite(&ws.d_logits, self.par),
        );
        let (Some(max_x), Some(max_dy)) = operands else {
            return false;
        };
        let roundings = i32::try_from(2 * rows + 1).unwrap_or(i32::MAX);
        let widening = (1.0 + f64::from(f32::EPSILON)).powi(roundings);
        let bound = rows as f64 * f64::from(max_dy) * f64::from(max_x) * widening;
        bound < f64::from(f32::MAX)
    }

    /// Whether to run `batch` with a shared padding prefix (see [`PaddingMode::Shared`]); if so,
    /// fills `ws.pads` and returns the longest padding run.
    fn shared_padding(
        &self,
        batch: &Minibatch,
        initial: Option<&RnnState>,
        training: bool,
        ws: &mut LmWorkspace,
    ) -> Option<usize> {
        let cfg = self.rnn.config();
        let dropout_between_layers = training && cfg.dropout > 0.0 && cfg.num_layers > 1;
        // The padding chain has no masks: it would run the padding steps undropped.
        let dropout_outside =
            training && (self.config.embed_dropout > 0.0 || self.config.output_dropout > 0.0);
        if ws.padding != PaddingMode::Shared
            || batch.targets_kind != Targets::LastStep
            || initial.is_some()
            || cfg.bidirectional
            || dropout_between_layers
            || dropout_outside
            // The padding chain implements the three PyTorch cells' weight gradients only.
            || cfg.cell == CellKind::GruResetBefore
        {
            return None;
        }
        let (steps, b) = (batch.steps, batch.batch);
        ws.pads.clear();
        // Each row keeps at least its last step (a row of only padding runs one real step).
        ws.pads.extend((0..b).map(|r| {
            (0..steps - 1)
                .take_while(|&t| batch.inputs[t * b + r] == PADDING_ID)
                .count()
        }));
        let padding: usize = ws.pads.iter().sum();
        let longest = ws.pads.iter().copied().max().unwrap_or(0);
        (longest > 0 && 4 * padding >= b * steps).then_some(longest)
    }

    /// [`LanguageModel::run`] with the padding trajectory computed once (`ws.pads` filled by
    /// [`LanguageModel::shared_padding`], `chain_steps` its maximum).
    fn run_shared_padding(
        &self,
        batch: &Minibatch,
        chain_steps: usize,
        train: Option<(u64, &mut LmGrads)>,
        ws: &mut LmWorkspace,
    ) -> Result<(BatchStats, RnnState), RnnError> {
        let (steps, b, h) = (batch.steps, batch.batch, self.config.hidden);
        let layers = self.config.num_layers;
        // Each row's real ids, left-aligned; steps past a row's length are ignored by the RNN.
        let shortest_pad = ws.pads.iter().copied().min().unwrap_or(0);
        let main_steps = steps - shortest_pad;
        ws.lengths.clear();
        ws.lengths.extend(ws.pads.iter().map(|&p| steps - p));
        ws.ids.clear();
        ws.ids.resize(main_steps * b, PADDING_ID);
        for (r, &p) in ws.pads.iter().enumerate() {
            for t in 0..steps - p {
                ws.ids[t * b + r] = batch.inputs[(p + t) * b + r];
            }
        }
        let pad_input = match &self.embedding {
            Some(e) => e.row(PADDING_ID).to_vec(),
            None => {
                let mut one_hot = vec![0.0f32; self.config.vocab];
                one_hot[PADDING_ID as usize] = 1.0;
                one_hot
            }
        };
        let (mode, purpose) = match &train {
            Some((seed, _)) => (
                Mode::Training {
                    dropout_seed: *seed,
                },
                PackFor::Training,
            ),
            None => (Mode::Inference, PackFor::Inference),
        };
        let chain = PadChain::forward(&self.rnn, &pad_input, chain_steps, purpose);
        let initial = chain.states(&ws.pads);
        self.embed(&ws.ids, &mut ws.x);
        let (forward, cache) = self.rnn.forward(
            SeqBatch::new(&ws.x, main_steps, b).with_lengths(&ws.lengths),
            Some(&initial),
            mode,
        )?;
        // The last layer's final state is each row's output at its last real step.
        let top = (layers - 1) * b * h;
        ws.head_in.clear();
        ws.head_in
            .extend_from_slice(&forward.state.h[top..top + b * h]);
        let stats = self.head(&batch.targets, b, train.is_some(), ws);

        if let Some((_, grads)) = train {
            let write = grads.take_decoder_write();
            self.head_backward(b, &mut grads.decoder, write, ws);
            ws.d_output.clear();
            ws.d_output.resize(main_steps * b * h, 0.0);
            for (r, &len) in ws.lengths.iter().enumerate() {
                let at = ((len - 1) * b + r) * h;
                ws.d_output[at..at + h].copy_from_slice(&ws.d_head_in[r * h..(r + 1) * h]);
            }
            let back = self
                .rnn
                .backward(cache, &ws.d_output, None, &mut grads.rnn)?;
            let d_pad = chain.backward(&self.rnn, &ws.pads, &back.d_state, &mut grads.rnn);
            if let (Some(e), Some(d)) = (&self.embedding, &mut grads.d_embedding) {
                e.backward(&ws.ids, &back.d_input, d);
                e.backward(&[PADDING_ID], &d_pad, d);
                grads.embedding_rows.extend_from_slice(&ws.ids);
                grads.embedding_rows.push(PADDING_ID);
            }
        }
        Ok((stats, forward.state))
    }

    /// Every parameter with its PyTorch `state_dict` name, in a fixed order.
    pub fn named_params(&self) -> Vec<(String, &[f32])> {
        let mut out: Vec<(String, &[f32])> = Vec::new();
        if let Some(e) = &self.embedding {
            out.push(("embedding.weight".into(), &e.weight));
        }
        out.extend(self.rnn.params().named("rnn."));
        out.push(("decoder.weight".into(), &self.decoder.weight));
        out.push(("decoder.bias".into(), &self.decoder.bias));
        out
    }

    /// The shape of each named parameter (PyTorch's).
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.config;
        let g = self.rnn.config().cell.gates();
        let mut out = Vec::new();
        if let Some(d) = c.embedding_dim {
            out.push(("embedding.weight".to_string(), vec![c.vocab, d]));
        }
        for k in 0..c.num_layers {
            let input = if k == 0 {
                c.embedding_dim.unwrap_or(c.vocab)
            } else {
                c.hidden
            };
            out.push((format!("rnn.weight_ih_l{k}"), vec![g * c.hidden, input]));
            out.push((format!("rnn.weight_hh_l{k}"), vec![g * c.hidden, c.hidden]));
            out.push((format!("rnn.bias_ih_l{k}"), vec![g * c.hidden]));
            out.push((format!("rnn.bias_hh_l{k}"), vec![g * c.hidden]));
        }
        out.push(("decoder.weight".to_string(), vec![c.vocab, c.hidden]));
        out.push(("decoder.bias".to_string(), vec![c.vocab]));
        out
    }

    /// Every parameter, mutable, with its name, in [`LanguageModel::named_params`] order.
    pub fn params_mut(&mut self) -> Vec<(String, &mut [f32])> {
        let names: Vec<String> = self.named_params().into_iter().map(|(n, _)| n).collect();
        let mut values: Vec<&mut [f32]> = Vec::new();
        if let Some(e) = &mut self.embedding {
            values.push(&mut e.weight);
        }
        for p in &mut self.rnn.params_mut().directions {
            values.push(&mut p.weight_ih);
            values.push(&mut p.weight_hh);
            values.push(&mut p.bias_ih);
            values.push(&mut p.bias_hh);
        }
        values.push(&mut self.decoder.weight);
        values.push(&mut self.decoder.bias);
        names.into_iter().zip(values).collect()
    }

    /// Parameters and their gradients, pairwise, in [`LanguageModel::named_params`] order.
    pub fn params_and_grads<'a>(
        &'a mut self,
        grads: &'a mut LmGrads,
    ) -> Vec<(&'a mut [f32], &'a mut [f32])> {
        let mut out: Vec<(&mut [f32], &mut [f32])> = Vec::new();
        if let (Some(e), Some(d)) = (&mut self.embedding, &mut grads.d_embedding) {
            out.push((&mut e.weight, d));
        }
        for (p, d) in self
            .rnn
            .params_mut()
            .directions
            .iter_mut()
            .zip(grads.rnn.directions.iter_mut())
        {
            out.push((&mut p.weight_ih, &mut d.weight_ih));
            out.push((&mut p.weight_hh, &mut d.weight_hh));
            out.push((&mut p.bias_ih, &mut d.bias_ih));
            out.push((&mut p.bias_hh, &mut d.bias_hh));
        }
        out.push((&mut self.decoder.weight, &mut grads.decoder.d_weight));
        out.push((&mut self.decoder.bias, &mut grads.decoder.d_bias));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sampling::argmax;

    #[test]
    fn max_abs_finite_is_the_largest_magnitude_of_finite_values() {
        for par in [Par::Seq, Par::Rayon(2)] {
            assert_eq!(max_abs_finite(&[], par), Some(0.0));
            assert_eq!(max_abs_finite(&[1.0, -3.5, 2.0, -0.0], par), Some(3.5));
            let extremes = [f32::MAX, -f32::MIN_POSITIVE];
            assert_eq!(max_abs_finite(&extremes, par), Some(f32::MAX));
            let mut long = vec![0.5f32; 200_000];
            long[150_000] = -7.0;
            assert_eq!(max_abs_finite(&long, par), Some(7.0));
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                long[130_001] = bad;
                assert_eq!(max_abs_finite(&long, par), None, "{bad}");
            }
        }
    }

    /// The decoder's weight gradient is vouched for only after a step that overwrote it, with
    /// operands that bound it; a scan that leaves it out misses a NaN planted in it, the full
    /// scan does not.
    #[test]
    fn the_decoder_weight_bound_needs_an_overwriting_step_and_bounded_operands() {
        let config = LmConfig {
            vocab: 23,
            embedding_dim: Some(4),
            cell: "gru".into(),
            hidden: 9,
            num_layers: 1,
            dropout: 0.0,
            embed_dropout: 0.0,
            output_dropout: 0.0,
            init: InitScheme::Keras,
        };
        let model = LanguageModel::new(config, Par::Seq, 3).unwrap();
        let mut batch = Minibatch::new();
        batch.steps = 5;
        batch.batch = 3;
        batch.targets_kind = Targets::LastStep;
        batch.inputs = (0..15).map(|i| (i * 7 % 23) as u32).collect();
        batch.targets = vec![4, 9, 22];
        let mut grads = model.zero_grads();
        let mut ws = LmWorkspace::default();
        // An accumulating step: the gradient may hold more than this step's product.
        model
            .train_step(&batch, None, 1, &mut grads, &mut ws)
            .unwrap();
        assert!(!model.decoder_weight_grad_finite(&grads, &ws));
        grads.reset_written();
        model
            .train_step(&batch, None, 1, &mut grads, &mut ws)
            .unwrap();
        assert!(model.decoder_weight_grad_finite(&grads, &ws));
        grads.decoder.d_weight[5] = f32::NAN;
        assert!(grads.written_finite_par(Par::Seq, false));
        assert!(!grads.written_finite_par(Par::Seq, true));
        assert!(!grads.written_all_finite_par(Par::Rayon(2)));
        // 3 rows · 1e3 · 1e36 > f32::MAX: not provably finite.
        ws.head_in[0] = 1e36;
        ws.d_logits[0] = 1e3;
        assert!(!model.decoder_weight_grad_finite(&grads, &ws));
        ws.head_in[0] = f32::NAN;
        assert!(!model.decoder_weight_grad_finite(&grads, &ws));
        grads.zero();
        assert!(!model.decoder_weight_grad_finite(&grads, &ws));
    }

    #[test]
    fn is_argmax_agrees_with_argmax() {
        let nan = f32::NAN;
        let rows: [&[f32]; 7] = [
            &[0.1, 3.0, 3.0, -1.0],
            &[3.0, 3.0],
            &[nan, 1.0, nan, 2.0],
            &[nan, nan],
            &[-0.0, 0.0],
            &[f32::NEG_INFINITY, f32::NEG_INFINITY, 1.0],
            &[5.0],
        ];
        for row in rows {
            for target in 0..row.len() {
                assert_eq!(
                    is_argmax(row, target),
                    argmax(row) == target,
                    "{row:?} {target}"
                );
            }
        }
    }
}
