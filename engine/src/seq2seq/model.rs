//! [`Seq2Seq`]: the encoder, the bridge, the decoder and the output layer, with the
//! teacher-forced loss and its gradients.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy_with_isa};
use recur_kernels::{CellKind, Isa, Par};

use super::Seq2SeqError;
use super::decode::StepDecoder;
use crate::model::dense::{Dense, DenseGrads};
use crate::model::embedding::Embedding;
use crate::optim::{OptimError, Optimizer, Param};
use crate::rnn::{Mode, Rnn, RnnConfig, RnnGrads, RnnState, SeqBatch};

/// How the encoder's final state becomes the decoder's initial state (per layer; for an LSTM
/// both `h` and `c` are mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridge {
    /// `h_dec[l] = h_enc[l]`: a unidirectional encoder with `encoder_hidden = decoder_hidden`
    /// (Sutskever et al. 2014).
    Identity,
    /// `h_dec[l] = h_fwd[l] + h_bwd[l]` (and `c` likewise): a bidirectional encoder's two final
    /// states summed, `encoder_hidden = decoder_hidden`. With a unidirectional encoder it is the
    /// identity.
    Sum,
    /// Concatenate the directions and map them with a dense layer shared by all layers:
    /// `h_dec[l] = tanh(W_h·[h_fwd[l]; h_bwd[l]] + b_h)`, and for an LSTM
    /// `c_dec[l] = W_c·[c_fwd[l]; c_bwd[l]] + b_c` (linear: a cell state is unbounded). Works for
    /// any sizes (Bahdanau et al. 2015 initialise their decoder with a tanh layer over the
    /// backward state; this uses both).
    Dense,
}

impl Bridge {
    /// The name used in messages and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bridge::Identity => "identity",
            Bridge::Sum => "sum",
            Bridge::Dense => "dense",
        }
    }
}

/// The configuration of an encoder–decoder (see [`Seq2Seq`]).
///
/// Target ids are `0..target_vocab`; the model adds one id, `target_vocab`, which is the
/// end-of-sequence class of the output layer and the start token fed to the decoder's first
/// step (one id serves both: EOS is never an input and the start token is never predicted).
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2SeqConfig {
    /// The cell of both the encoder and the decoder (their states must have the same kind).
    pub cell: CellKind,
    /// Source ids are `0..source_vocab`.
    pub source_vocab: usize,
    /// Target ids are `0..target_vocab` (EOS = `target_vocab` is added).
    pub target_vocab: usize,
    /// E: width of the source and the target embeddings.
    pub embed_dim: usize,
    /// H_enc.
    pub encoder_hidden: usize,
    /// H_dec.
    pub decoder_hidden: usize,
    /// L: layers of the encoder and of the decoder.
    pub num_layers: usize,
    /// A bidirectional encoder (the decoder is always unidirectional).
    pub bidirectional: bool,
    /// Encoder state → decoder state.
    pub bridge: Bridge,
    /// How the layers may use threads.
    pub par: Par,
    /// SIMD path of the kernels.
    pub isa: Isa,
}

impl Seq2SeqConfig {
    /// A one-layer unidirectional model with `hidden` units on both sides, embeddings of 32,
    /// the identity bridge.
    pub fn new(cell: CellKind, source_vocab: usize, target_vocab: usize, hidden: usize) -> Self {
        Seq2SeqConfig {
            cell,
            source_vocab,
            target_vocab,
            embed_dim: 32,
            encoder_hidden: hidden,
            decoder_hidden: hidden,
            num_layers: 1,
            bidirectional: false,
            bridge: Bridge::Identity,
            par: Par::Rayon(0),
            isa: Isa::active(),
        }
    }

    /// Checks sizes, vocabularies and that the bridge fits the encoder and decoder.
    pub fn validate(&self) -> Result<(), Seq2SeqError> {
        if self.source_vocab == 0 {
            return Err(Seq2SeqError::EmptyVocabulary { which: "source" });
        }
        if self.target_vocab == 0 {
            return Err(Seq2SeqError::EmptyVocabulary { which: "target" });
        }
        for (what, size) in [
            ("embed_dim", self.embed_dim),
            ("encoder_hidden", self.encoder_hidden),
            ("decoder_hidden", self.decoder_hidden),
            ("num_layers", self.num_layers),
        ] {
            if size == 0 {
                return Err(Seq2SeqError::ZeroSize { what });
            }
        }
        let mismatch = Seq2SeqError::SizeMismatch {
            bridge: self.bridge.name(),
            encoder: self.encoder_hidden,
            decoder: self.decoder_hidden,
        };
        match self.bridge {
            Bridge::Identity if self.bidirectional => Err(Seq2SeqError::BridgeDirections),
            Bridge::Identity | Bridge::Sum if self.encoder_hidden != self.decoder_hidden => {
                Err(mismatch)
            }
            _ => Ok(()),
        }
    }

    /// D: encoder directions.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Output classes: the target tokens and EOS.
    pub fn classes(&self) -> usize {
        self.target_vocab + 1
    }

    /// The end-of-sequence id (also the decoder's start token).
    pub fn eos(&self) -> u32 {
        self.target_vocab as u32
    }

    fn encoder_config(&self) -> RnnConfig {
        RnnConfig::new(self.cell, self.embed_dim, self.encoder_hidden)
            .with_num_layers(self.num_layers)
            .with_bidirectional(self.bidirectional)
            .with_par(self.par)
            .with_isa(self.isa)
    }

    fn decoder_config(&self) -> RnnConfig {
        RnnConfig::new(self.cell, self.embed_dim, self.decoder_hidden)
            .with_num_layers(self.num_layers)
            .with_par(self.par)
            .with_isa(self.isa)
    }

    /// A model with PyTorch's default initialisation (embeddings N(0, 1), recurrent and dense
    /// layers U(±1/√fan)), every part drawn from `seed`.
    pub fn init(&self, seed: u64) -> Result<Seq2Seq, Seq2SeqError> {
        self.validate()?;
        let mut config = self.clone();
        config.isa = config.isa.clamp_to_host();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let source_embedding = Embedding::init(self.source_vocab, self.embed_dim, &mut rng);
        let target_embedding = Embedding::init(self.classes(), self.embed_dim, &mut rng);
        let encoder = config.encoder_config().init(rng.random())?;
        let decoder = config.decoder_config().init(rng.random())?;
        let bridge_width = self.directions() * self.encoder_hidden;
        let (bridge_h, bridge_c) = if self.bridge == Bridge::Dense {
            let h = Dense::init(bridge_width, self.decoder_hidden, &mut rng);
            let c = (self.cell == CellKind::Lstm)
                .then(|| Dense::init(bridge_width, self.decoder_hidden, &mut rng));
            (Some(h), c)
        } else {
            (None, None)
        };
        let output = Dense::init(self.decoder_hidden, self.classes(), &mut rng);
        Ok(Seq2Seq {
            config,
            source_embedding,
            encoder,
            bridge_h,
            bridge_c,
            target_embedding,
            decoder,
            output,
        })
    }
}

/// An encoder–decoder over token sequences (Sutskever et al. 2014; Cho et al. 2014):
///
/// ```text
/// source ids ─ Embedding(S, E) ─ encoder Rnn(E, H_enc; L layers, D directions) ─┐ final state
///                                                                              (L·D, B, H_enc)
///                                                                      Bridge ─┘
/// [start, y₁, …, y_m] ─ Embedding(V+1, E) ─ decoder Rnn(E, H_dec; L) from that state
///                     ─ Dense(H_dec, V+1) ─ softmax over [y₁, …, y_m, EOS]
/// ```
///
/// Training feeds the decoder the reference tokens (teacher forcing, [`Feeding::Teacher`]) or a
/// seeded mix of reference and own greedy predictions ([`Feeding::Mixed`], scheduled sampling
/// when the ratio is lowered over training). The loss is the mean cross-entropy over every
/// target token and each example's EOS. Its gradient flows from the output layer through the
/// decoder, through the decoder's initial state into the bridge, and from there into the
/// encoder's final state ([`Rnn::backward`]'s `d_final`) — one graph, trained end to end.
///
/// ```
/// use recur_engine::seq2seq::{Feeding, Seq2SeqConfig, Seq2SeqGrads};
/// use recur_engine::kernels::CellKind;
///
/// let model = Seq2SeqConfig::new(CellKind::Gru, 10, 10, 16).init(1).unwrap();
/// let sources = vec![vec![1, 2, 3], vec![4, 5]];
/// let targets = vec![vec![3, 2, 1], vec![5, 4]];
/// let mut grads = Seq2SeqGrads::zeros(&model);
/// let stats = model.loss(&sources, &targets, Feeding::Teacher, Some(&mut grads)).unwrap();
/// assert_eq!(stats.tokens, 7); // 5 target tokens + 2 EOS
/// assert!(grads.encoder.get("d_weight_hh_l0").unwrap().iter().any(|&g| g != 0.0));
/// let out = model.greedy(&sources, 8).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Seq2Seq {
    config: Seq2SeqConfig,
    /// (S, E)
    pub source_embedding: Embedding,
    /// Rnn(E, H_enc), L layers, D directions.
    pub encoder: Rnn,
    /// [`Bridge::Dense`] only: (H_dec, D·H_enc).
    pub bridge_h: Option<Dense>,
    /// [`Bridge::Dense`] with an LSTM only: (H_dec, D·H_enc).
    pub bridge_c: Option<Dense>,
    /// (V+1, E); row V is the start token.
    pub target_embedding: Embedding,
    /// Rnn(E, H_dec), L layers.
    pub decoder: Rnn,
    /// (V+1, H_dec); class V is EOS.
    pub output: Dense,
}

/// What the decoder reads at each step during training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Feeding {
    /// Always the reference token (teacher forcing).
    Teacher,
    /// The reference token with probability `teacher_ratio`, else the model's own greedy
    /// prediction at the previous step (Bengio et al. 2015, scheduled sampling, when the ratio
    /// decays over training). The coin flips come from a `ChaCha8Rng` seeded with `seed`.
    Mixed {
        /// Probability of feeding the reference token, in `[0, 1]`.
        teacher_ratio: f32,
        /// Seed of the coin flips.
        seed: u64,
    },
}

/// Gradients of every parameter of a [`Seq2Seq`], named after them.
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2SeqGrads {
    /// (S, E)
    pub d_source_embedding: Vec<f32>,
    pub encoder: RnnGrads,
    pub bridge_h: Option<DenseGrads>,
    pub bridge_c: Option<DenseGrads>,
    /// (V+1, E)
    pub d_target_embedding: Vec<f32>,
    pub decoder: RnnGrads,
    pub output: DenseGrads,
}

impl Seq2SeqGrads {
    /// Zero gradients shaped like `model`'s parameters.
    pub fn zeros(model: &Seq2Seq) -> Self {
        Seq2SeqGrads {
            d_source_embedding: vec![0.0; model.source_embedding.weight.len()],
            encoder: model.encoder.zero_grads(),
            bridge_h: model.bridge_h.as_ref().map(DenseGrads::zeros),
            bridge_c: model.bridge_c.as_ref().map(DenseGrads::zeros),
            d_target_embedding: vec![0.0; model.target_embedding.weight.len()],
            decoder: model.decoder.zero_grads(),
            output: DenseGrads::zeros(&model.output),
        }
    }

    /// Sets every gradient to 0 (backward accumulates).
    pub fn zero(&mut self) {
        self.d_source_embedding.fill(0.0);
        self.encoder.zero();
        self.bridge_h.iter_mut().for_each(DenseGrads::zero);
        self.bridge_c.iter_mut().for_each(DenseGrads::zero);
        self.d_target_embedding.fill(0.0);
        self.decoder.zero();
        self.output.zero();
    }

    /// Every gradient buffer, in [`Seq2Seq::named_params`] order (for clipping).
    pub fn buffers_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = vec![&mut self.d_source_embedding];
        push_rnn_mut(&mut out, &mut self.encoder);
        for dense in [&mut self.bridge_h, &mut self.bridge_c]
            .into_iter()
            .flatten()
        {
            out.push(&mut dense.d_weight);
            out.push(&mut dense.d_bias);
        }
        out.push(&mut self.d_target_embedding);
        push_rnn_mut(&mut out, &mut self.decoder);
        out.push(&mut self.output.d_weight);
        out.push(&mut self.output.d_bias);
        out
    }

    /// Every gradient buffer, in [`Seq2Seq::named_params`] order.
    pub fn buffers(&self) -> Vec<&[f32]> {
        let mut out: Vec<&[f32]> = vec![&self.d_source_embedding];
        push_rnn(&mut out, &self.encoder);
        for dense in [&self.bridge_h, &self.bridge_c].into_iter().flatten() {
            out.push(&dense.d_weight);
            out.push(&dense.d_bias);
        }
        out.push(&self.d_target_embedding);
        push_rnn(&mut out, &self.decoder);
        out.push(&self.output.d_weight);
        out.push(&self.output.d_bias);
        out
    }
}

fn push_rnn_mut<'a>(out: &mut Vec<&'a mut [f32]>, params: &'a mut RnnGrads) {
    for p in &mut params.directions {
        out.push(&mut p.weight_ih);
        out.push(&mut p.weight_hh);
        out.push(&mut p.bias_ih);
        out.push(&mut p.bias_hh);
    }
}

fn push_rnn<'a>(out: &mut Vec<&'a [f32]>, params: &'a RnnGrads) {
    for p in &params.directions {
        out.push(&p.weight_ih);
        out.push(&p.weight_hh);
        out.push(&p.bias_ih);
        out.push(&p.bias_hh);
    }
}

/// Loss and token accuracy of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossStats {
    /// Σ cross-entropy (nats) over the predicted tokens (target tokens and EOS).
    pub loss_sum: f64,
    /// Tokens predicted: Σ (target length + 1).
    pub tokens: usize,
    /// Of those, how many the argmax got right.
    pub correct: usize,
}

impl LossStats {
    /// Mean cross-entropy per token.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.tokens.max(1) as f64
    }

    /// Fraction of tokens whose argmax is the target.
    pub fn token_accuracy(&self) -> f64 {
        self.correct as f64 / self.tokens.max(1) as f64
    }

    /// Adds another batch's counts.
    pub fn add(&mut self, other: &LossStats) {
        self.loss_sum += other.loss_sum;
        self.tokens += other.tokens;
        self.correct += other.correct;
    }
}

/// A ragged batch laid out time-major with per-row lengths.
struct TimeMajor {
    /// (T, B); positions past a row's length hold `pad`.
    tokens: Vec<u32>,
    steps: usize,
    batch: usize,
    /// (B)
    lengths: Vec<usize>,
}

impl TimeMajor {
    fn valid(&self, t: usize, b: usize) -> bool {
        t < self.lengths[b]
    }
}

/// What the bridge's forward keeps for backward.
struct BridgeCache {
    /// [`Bridge::Dense`]: the concatenated encoder `h` (L·B, D·H_enc) and the decoder's `h` after
    /// tanh (L·B, H_dec); the concatenated `c` (LSTM).
    h_in: Vec<f32>,
    h_out: Vec<f32>,
    c_in: Vec<f32>,
}

impl Seq2Seq {
    /// The configuration.
    pub fn config(&self) -> &Seq2SeqConfig {
        &self.config
    }

    /// Checks a batch of sources and (optionally) targets against the vocabularies.
    fn check_batch<S: AsRef<[u32]>, T: AsRef<[u32]>>(
        &self,
        sources: &[S],
        targets: Option<&[T]>,
    ) -> Result<(), Seq2SeqError> {
        let n_targets = targets.map_or(sources.len(), <[T]>::len);
        if sources.is_empty() || n_targets != sources.len() {
            return Err(Seq2SeqError::BatchSize {
                sources: sources.len(),
                targets: n_targets,
            });
        }
        for (index, s) in sources.iter().enumerate() {
            let s = s.as_ref();
            if s.is_empty() {
                return Err(Seq2SeqError::EmptySource { index });
            }
            check_tokens(s, self.config.source_vocab, "source", index)?;
        }
        for (index, t) in targets.into_iter().flatten().enumerate() {
            check_tokens(t.as_ref(), self.config.target_vocab, "target", index)?;
        }
        Ok(())
    }

    /// Runs the encoder over `sources` and the bridge; returns the decoder's initial state
    /// (L, B, H_dec) and, in training, what backward needs.
    fn encode<S: AsRef<[u32]>>(
        &self,
        sources: &[S],
        mode: Mode,
    ) -> Result<
        (
            RnnState,
            TimeMajor,
            Option<crate::rnn::RnnCache>,
            BridgeCache,
        ),
        Seq2SeqError,
    > {
        let src = time_major(sources, 0);
        let e = self.config.embed_dim;
        let mut x = vec![0.0f32; src.tokens.len() * e]; // (Ts, B, E)
        self.source_embedding.forward(&src.tokens, &mut x);
        let batch = SeqBatch::new(&x, src.steps, src.batch).with_lengths(&src.lengths);
        let (out, cache) = match mode {
            Mode::Inference => (self.encoder.infer(batch, None)?, None),
            Mode::Training { .. } => {
                let (out, cache) = self.encoder.forward(batch, None, mode)?;
                (out, Some(cache))
            }
        };
        let (state, bridge) = self.bridge_forward(&out.state, src.batch);
        Ok((state, src, cache, bridge))
    }

    /// Encoder final state (L·D, B, H_enc) → decoder initial state (L, B, H_dec).
    fn bridge_forward(&self, enc: &RnnState, batch: usize) -> (RnnState, BridgeCache) {
        let cfg = &self.config;
        let (l, d, he, hd) = (
            cfg.num_layers,
            cfg.directions(),
            cfg.encoder_hidden,
            cfg.decoder_hidden,
        );
        let mut cache = BridgeCache {
            h_in: Vec::new(),
            h_out: Vec::new(),
            c_in: Vec::new(),
        };
        let state = match cfg.bridge {
            Bridge::Identity => enc.clone(),
            Bridge::Sum => RnnState {
                h: sum_directions(&enc.h, l, d, batch, he),
                c: enc.c.as_ref().map(|c| sum_directions(c, l, d, batch, he)),
            },
            Bridge::Dense => {
                let dense_h = self.bridge_h.as_ref().expect("dense bridge has bridge_h");
                cache.h_in = concat_directions(&enc.h, l, d, batch, he);
                let mut h = vec![0.0f32; l * batch * hd]; // (L·B, H_dec) = (L, B, H_dec)
                dense_h.forward(cfg.par, &cache.h_in, l * batch, &mut h);
                h.iter_mut().for_each(|v| *v = v.tanh());
                cache.h_out = h.clone();
                let c = enc.c.as_ref().map(|c| {
                    let dense_c = self
                        .bridge_c
                        .as_ref()
                        .expect("LSTM dense bridge has bridge_c");
                    cache.c_in = concat_directions(c, l, d, batch, he);
                    let mut out = vec![0.0f32; l * batch * hd];
                    dense_c.forward(cfg.par, &cache.c_in, l * batch, &mut out);
                    out
                });
                RnnState { h, c }
            }
        };
        (state, cache)
    }

    /// Backward of [`Seq2Seq::bridge_forward`]: `d_dec` (L, B, H_dec) → `d_enc` (L·D, B, H_enc),
    /// accumulating the dense bridge's gradients.
    fn bridge_backward(
        &self,
        cache: &BridgeCache,
        d_dec: &RnnState,
        batch: usize,
        grads: &mut Seq2SeqGrads,
    ) -> RnnState {
        let cfg = &self.config;
        let (l, d, he) = (cfg.num_layers, cfg.directions(), cfg.encoder_hidden);
        match cfg.bridge {
            Bridge::Identity => d_dec.clone(),
            Bridge::Sum => RnnState {
                h: broadcast_directions(&d_dec.h, l, d, batch, he),
                c: d_dec
                    .c
                    .as_ref()
                    .map(|c| broadcast_directions(c, l, d, batch, he)),
            },
            Bridge::Dense => {
                let rows = l * batch;
                let dense_h = self.bridge_h.as_ref().expect("dense bridge has bridge_h");
                // tanh' = 1 − tanh²
                let dy: Vec<f32> = d_dec
                    .h
                    .iter()
                    .zip(&cache.h_out)
                    .map(|(&g, &y)| g * (1.0 - y * y))
                    .collect();
                let mut dx = vec![0.0f32; rows * d * he];
                let g = grads.bridge_h.as_mut().expect("grads match the model");
                dense_h.backward(cfg.par, &cache.h_in, &dy, rows, g, Some(&mut dx));
                let h = split_directions(&dx, l, d, batch, he);
                let c = d_dec.c.as_ref().map(|dc| {
                    let dense_c = self
                        .bridge_c
                        .as_ref()
                        .expect("LSTM dense bridge has bridge_c");
                    let mut dx = vec![0.0f32; rows * d * he];
                    let g = grads.bridge_c.as_mut().expect("grads match the model");
                    dense_c.backward(cfg.par, &cache.c_in, dc, rows, g, Some(&mut dx));
                    split_directions(&dx, l, d, batch, he)
                });
                RnnState { h, c }
            }
        }
    }

    /// The decoder's input tokens (T_dec, B) for `targets` under `feeding`: the start token,
    /// then per step the reference token or (with [`Feeding::Mixed`]) the model's own greedy
    /// prediction of the previous step.
    fn decoder_inputs<T: AsRef<[u32]>>(
        &self,
        targets: &[T],
        init: &RnnState,
        feeding: Feeding,
    ) -> Result<TimeMajor, Seq2SeqError> {
        let eos = self.config.eos();
        let batch = targets.len();
        let lengths: Vec<usize> = targets.iter().map(|t| t.as_ref().len() + 1).collect();
        let steps = lengths.iter().copied().max().expect("batch ≥ 1");
        let mut tokens = vec![eos; steps * batch];
        for (b, t) in targets.iter().enumerate() {
            for (k, &id) in t.as_ref().iter().enumerate() {
                tokens[(k + 1) * batch + b] = id;
            }
        }
        if let Feeding::Mixed {
            teacher_ratio,
            seed,
        } = feeding
        {
            if !(0.0..=1.0).contains(&teacher_ratio) {
                return Err(Seq2SeqError::TeacherForcing {
                    found: teacher_ratio,
                });
            }
            if teacher_ratio < 1.0 {
                // Step through the decoder with the current weights, choosing each next input as
                // we go; the training forward then reruns these exact inputs with a cache.
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut session = self.session(init.clone(), batch)?;
                let mut log_probs = vec![0.0f32; batch * self.config.classes()];
                for t in 0..steps - 1 {
                    let current = tokens[t * batch..(t + 1) * batch].to_vec();
                    session.step_log_probs(&current, &mut log_probs)?;
                    for b in 0..batch {
                        if t + 1 < lengths[b] && rng.random::<f32>() >= teacher_ratio {
                            let row =
                                &log_probs[b * self.config.classes()..][..self.config.classes()];
                            tokens[(t + 1) * batch + b] = argmax(row);
                        }
                    }
                }
            }
        }
        Ok(TimeMajor {
            tokens,
            steps,
            batch,
            lengths,
        })
    }

    /// The mean cross-entropy of `targets` given `sources` (plus EOS after each target), and,
    /// with `grads`, its gradient accumulated (`+=`) into them.
    ///
    /// # Errors
    /// [`Seq2SeqError`] on an empty batch, unequal numbers of sources and targets, an empty
    /// source, an id outside its vocabulary, or a teacher ratio outside `[0, 1]`.
    pub fn loss<S: AsRef<[u32]>, T: AsRef<[u32]>>(
        &self,
        sources: &[S],
        targets: &[T],
        feeding: Feeding,
        grads: Option<&mut Seq2SeqGrads>,
    ) -> Result<LossStats, Seq2SeqError> {
        self.check_batch(sources, Some(targets))?;
        let cfg = &self.config;
        let training = grads.is_some();
        let mode = if training {
            Mode::Training { dropout_seed: 0 }
        } else {
            Mode::Inference
        };
        let (init, src, enc_cache, bridge_cache) = self.encode(sources, mode)?;
        let dec_in = self.decoder_inputs(targets, &init, feeding)?;
        let (e, hd, classes) = (cfg.embed_dim, cfg.decoder_hidden, cfg.classes());
        let (steps, batch) = (dec_in.steps, dec_in.batch);
        let mut x = vec![0.0f32; steps * batch * e]; // (T_dec, B, E)
        self.target_embedding.forward(&dec_in.tokens, &mut x);
        let seq = SeqBatch::new(&x, steps, batch).with_lengths(&dec_in.lengths);
        let (out, dec_cache) = self.decoder.forward(seq, Some(&init), mode)?;
        // Gather the valid rows (t, b), t ≤ len_b, and their targets.
        let mut rows = Vec::new(); // (N): index t·B + b
        let mut labels = Vec::new(); // (N)
        for t in 0..steps {
            for b in 0..batch {
                if dec_in.valid(t, b) {
                    rows.push(t * batch + b);
                    let target = targets[b].as_ref();
                    labels.push(target.get(t).copied().unwrap_or(cfg.eos()));
                }
            }
        }
        let n = rows.len();
        let mut hidden = vec![0.0f32; n * hd]; // (N, H_dec)
        for (k, &r) in rows.iter().enumerate() {
            hidden[k * hd..(k + 1) * hd].copy_from_slice(&out.output[r * hd..(r + 1) * hd]);
        }
        let mut logits = vec![0.0f32; n * classes]; // (N, V+1)
        self.output.forward(cfg.par, &hidden, n, &mut logits);
        let mut losses = vec![0.0f32; n];
        let mut d_logits = if training {
            vec![0.0f32; n * classes]
        } else {
            Vec::new()
        };
        let grad = training.then(|| LogitsGrad {
            d_logits: &mut d_logits,
            scale: 1.0 / n as f32,
        });
        softmax_cross_entropy_with_isa(cfg.isa, &logits, classes, &labels, &mut losses, grad);
        let stats = LossStats {
            loss_sum: losses.iter().map(|&l| f64::from(l)).sum(),
            tokens: n,
            correct: logits
                .chunks_exact(classes)
                .zip(&labels)
                .filter(|(row, label)| argmax(row) == **label)
                .count(),
        };
        let Some(grads) = grads else {
            return Ok(stats);
        };
        // Backward: output layer → decoder → bridge → encoder.
        let mut d_hidden = vec![0.0f32; n * hd];
        self.output.backward(
            cfg.par,
            &hidden,
            &d_logits,
            n,
            &mut grads.output,
            Some(&mut d_hidden),
        );
        let mut d_out = vec![0.0f32; steps * batch * hd]; // (T_dec, B, H_dec)
        for (k, &r) in rows.iter().enumerate() {
            d_out[r * hd..(r + 1) * hd].copy_from_slice(&d_hidden[k * hd..(k + 1) * hd]);
        }
        let dec_back = self
            .decoder
            .backward(dec_cache, &d_out, None, &mut grads.decoder)?;
        embedding_backward_valid(
            &self.target_embedding,
            &dec_in,
            &dec_back.d_input,
            &mut grads.d_target_embedding,
        );
        let d_enc_final = self.bridge_backward(&bridge_cache, &dec_back.d_state, batch, grads);
        let enc_cache = enc_cache.expect("training mode keeps the encoder cache");
        let d_enc_out = vec![0.0f32; src.steps * batch * cfg.directions() * cfg.encoder_hidden];
        let enc_back = self.encoder.backward(
            enc_cache,
            &d_enc_out,
            Some(&d_enc_final),
            &mut grads.encoder,
        )?;
        embedding_backward_valid(
            &self.source_embedding,
            &src,
            &enc_back.d_input,
            &mut grads.d_source_embedding,
        );
        Ok(stats)
    }

    /// The decoder's initial state (L, B, H_dec) for `sources` (inference).
    ///
    /// # Errors
    /// As [`Seq2Seq::loss`] for the sources.
    pub fn encode_state<S: AsRef<[u32]>>(&self, sources: &[S]) -> Result<RnnState, Seq2SeqError> {
        self.check_batch::<S, S>(sources, None)?;
        Ok(self.encode(sources, Mode::Inference)?.0)
    }

    /// `(name, values)` of every parameter, in a fixed order: `source_embedding.weight`,
    /// `encoder.*` (PyTorch names), `bridge_h.*`, `bridge_c.*`, `target_embedding.weight`,
    /// `decoder.*`, `output.weight`, `output.bias`.
    pub fn named_params(&self) -> Vec<(String, &[f32])> {
        let mut out: Vec<(String, &[f32])> = vec![(
            "source_embedding.weight".into(),
            &self.source_embedding.weight,
        )];
        for (name, v) in self.encoder.params().named("") {
            out.push((format!("encoder.{name}"), v));
        }
        for (prefix, dense) in [("bridge_h", &self.bridge_h), ("bridge_c", &self.bridge_c)] {
            if let Some(dense) = dense {
                out.push((format!("{prefix}.weight"), &dense.weight));
                out.push((format!("{prefix}.bias"), &dense.bias));
            }
        }
        out.push((
            "target_embedding.weight".into(),
            &self.target_embedding.weight,
        ));
        for (name, v) in self.decoder.params().named("") {
            out.push((format!("decoder.{name}"), v));
        }
        out.push(("output.weight".into(), &self.output.weight));
        out.push(("output.bias".into(), &self.output.bias));
        out
    }

    /// Every parameter buffer, mutable, in [`Seq2Seq::named_params`] order.
    pub fn params_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = vec![&mut self.source_embedding.weight];
        push_rnn_mut(&mut out, self.encoder.params_mut());
        for dense in [&mut self.bridge_h, &mut self.bridge_c]
            .into_iter()
            .flatten()
        {
            out.push(&mut dense.weight);
            out.push(&mut dense.bias);
        }
        out.push(&mut self.target_embedding.weight);
        push_rnn_mut(&mut out, self.decoder.params_mut());
        out.push(&mut self.output.weight);
        out.push(&mut self.output.bias);
        out
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.named_params().iter().map(|(_, v)| v.len()).sum()
    }

    /// One optimiser step over every parameter with `grads`.
    ///
    /// # Errors
    /// [`OptimError`] if the optimiser's state does not fit the parameters.
    pub fn apply(
        &mut self,
        optimizer: &mut Optimizer,
        grads: &Seq2SeqGrads,
    ) -> Result<(), OptimError> {
        let names: Vec<String> = self.named_params().into_iter().map(|(n, _)| n).collect();
        let grad_buffers = grads.buffers();
        let values = self.params_mut();
        let mut params: Vec<Param<'_>> = names
            .iter()
            .zip(values)
            .zip(grad_buffers)
            .map(|((name, value), grad)| Param::new(name, value, grad))
            .collect();
        optimizer.step(&mut params)
    }

    /// Replaces every parameter with the values in `named` (as [`Seq2Seq::named_params`] names
    /// them), e.g. from a checkpoint.
    ///
    /// # Errors
    /// [`Seq2SeqError::MissingParameter`] / [`Seq2SeqError::ParameterShape`].
    pub fn load_params<'a>(
        &mut self,
        named: impl Fn(&str) -> Option<&'a [f32]>,
        available: usize,
    ) -> Result<(), Seq2SeqError> {
        let names: Vec<String> = self.named_params().into_iter().map(|(n, _)| n).collect();
        let mut sources = Vec::with_capacity(names.len());
        for name in &names {
            let values = named(name).ok_or_else(|| Seq2SeqError::MissingParameter {
                name: name.clone(),
                found: available,
            })?;
            sources.push(values);
        }
        for ((name, dst), src) in names.iter().zip(self.params_mut()).zip(sources) {
            if dst.len() != src.len() {
                return Err(Seq2SeqError::ParameterShape {
                    name: name.clone(),
                    expected: dst.len(),
                    found: src.len(),
                });
            }
            dst.copy_from_slice(src);
        }
        Ok(())
    }
}

fn check_tokens(
    seq: &[u32],
    vocab: usize,
    which: &'static str,
    index: usize,
) -> Result<(), Seq2SeqError> {
    match seq.iter().position(|&id| id as usize >= vocab) {
        Some(position) => Err(Seq2SeqError::Token {
            which,
            index,
            position,
            vocab,
            found: seq[position],
        }),
        None => Ok(()),
    }
}

/// The index of the largest value (the first on ties). Rows are never empty.
pub(crate) fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best as u32
}

fn time_major<S: AsRef<[u32]>>(seqs: &[S], pad: u32) -> TimeMajor {
    let batch = seqs.len();
    let lengths: Vec<usize> = seqs.iter().map(|s| s.as_ref().len()).collect();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let mut tokens = vec![pad; steps * batch];
    for (b, s) in seqs.iter().enumerate() {
        for (t, &id) in s.as_ref().iter().enumerate() {
            tokens[t * batch + b] = id;
        }
    }
    TimeMajor {
        tokens,
        steps,
        batch,
        lengths,
    }
}

/// Embedding backward over the valid positions of a ragged batch only. `d_x` (T, B, E).
fn embedding_backward_valid(
    embedding: &Embedding,
    seqs: &TimeMajor,
    d_x: &[f32],
    d_weight: &mut [f32],
) {
    let e = embedding.dim;
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for t in 0..seqs.steps {
        for b in 0..seqs.batch {
            if seqs.valid(t, b) {
                let r = t * seqs.batch + b;
                ids.push(seqs.tokens[r]);
                rows.extend_from_slice(&d_x[r * e..(r + 1) * e]);
            }
        }
    }
    embedding.backward(&ids, &rows, d_weight);
}

/// (L·D, B, H) → (L, B, H): `out[l] = Σ_d state[l·D + d]`.
fn sum_directions(state: &[f32], l: usize, d: usize, batch: usize, h: usize) -> Vec<f32> {
    let block = batch * h;
    let mut out = vec![0.0f32; l * block];
    for layer in 0..l {
        for dir in 0..d {
            let src = &state[(layer * d + dir) * block..][..block];
            for (o, &v) in out[layer * block..][..block].iter_mut().zip(src) {
                *o += v;
            }
        }
    }
    out
}

/// Backward of [`sum_directions`]: (L, B, H) → (L·D, B, H), each direction gets the gradient.
fn broadcast_directions(grad: &[f32], l: usize, d: usize, batch: usize, h: usize) -> Vec<f32> {
    let block = batch * h;
    let mut out = vec![0.0f32; l * d * block];
    for layer in 0..l {
        for dir in 0..d {
            out[(layer * d + dir) * block..][..block]
                .copy_from_slice(&grad[layer * block..][..block]);
        }
    }
    out
}

/// (L·D, B, H) → (L·B, D·H): row `l·B + b` is `[state[l·D + 0, b]; …; state[l·D + D−1, b]]`.
fn concat_directions(state: &[f32], l: usize, d: usize, batch: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; l * batch * d * h];
    for layer in 0..l {
        for b in 0..batch {
            for dir in 0..d {
                let src = &state[((layer * d + dir) * batch + b) * h..][..h];
                out[((layer * batch + b) * d + dir) * h..][..h].copy_from_slice(src);
            }
        }
    }
    out
}

/// Inverse of [`concat_directions`]: (L·B, D·H) → (L·D, B, H).
fn split_directions(concat: &[f32], l: usize, d: usize, batch: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; l * d * batch * h];
    for layer in 0..l {
        for b in 0..batch {
            for dir in 0..d {
                let src = &concat[((layer * batch + b) * d + dir) * h..][..h];
                out[((layer * d + dir) * batch + b) * h..][..h].copy_from_slice(src);
            }
        }
    }
    out
}
