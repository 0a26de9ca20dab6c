//! A character cloze task on a text corpus — "I am ___ hungry": predict a masked character from
//! the characters around it — and the recurrent readers that solve it, with and without the
//! future.
//!
//! A sample is a window of `2w + 1` characters of the (preprocessed) corpus whose middle one is
//! replaced by a mask token; the label is the hidden character. The text is the seed's character
//! preprocessing ([`CharTokenizerConfig::SEED`]: lines stripped and joined, lower-cased, ASCII),
//! split into a training part (the first `1 − f`) and a held-out part (the last `f`); windows
//! never straddle the split.
//!
//! Three readers, the same embedding, cell, sizes and output layer otherwise
//! ([`ClozeReader`]):
//!
//! - **left**: a unidirectional RNN reads the window left to right and predicts at the gap, from
//!   `h_w` — it has seen only the left context, like a language model would;
//! - **bidirectional**: forward and reverse RNNs; the prediction at the gap reads
//!   `[h_fwd_w; h_bwd_w]` — the left context through one, the right context through the other;
//! - **whole window**: a unidirectional RNN reads the entire window (left, mask, right) and
//!   predicts from its final state — it sees both sides too, but must carry the left side
//!   through the right one in a single state.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy_with_isa};
use recur_kernels::{CellKind, Isa, Par};

use crate::data::char_tokenizer::{CharTokenizerConfig, CharVocab};
use crate::data::tokenizer::VecSink;
use crate::data::{Corpus, DataError};
use crate::model::dense::{Dense, DenseGrads};
use crate::model::embedding::Embedding;
use crate::optim::{GradClip, OptimError, Optimizer, OptimizerConfig, Param};
use crate::rnn::{Mode, Rnn, RnnConfig, RnnError, RnnGrads, SeqBatch};

/// What can go wrong building the task or a reader.
#[derive(Debug, thiserror::Error)]
pub enum ClozeError {
    /// A corpus problem.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A split too short for a single window.
    #[error(
        "{part} part of the corpus has {found} characters, expected at least {expected} for one \
         window of 2·{context} + 1"
    )]
    TooShort {
        /// `"training"` or `"held-out"`.
        part: &'static str,
        /// Characters needed.
        expected: usize,
        /// Characters present.
        found: usize,
        /// w.
        context: usize,
    },
    /// A held-out fraction outside (0, 1).
    #[error("held-out fraction must be in (0, 1), found {found}")]
    Fraction {
        /// The fraction given.
        found: f64,
    },
    /// A zero size.
    #[error("{what} must be at least 1, found 0")]
    ZeroSize {
        /// Which size.
        what: &'static str,
    },
    /// A recurrent-layer error.
    #[error(transparent)]
    Rnn(#[from] RnnError),
    /// An optimiser error.
    #[error(transparent)]
    Optim(#[from] OptimError),
}

/// The tokenised corpus, split, with the window width.
#[derive(Debug, Clone)]
pub struct ClozeTask {
    vocab: CharVocab,
    /// Every character id of the preprocessed corpus.
    ids: Vec<u32>,
    /// `ids[..split]` trains, `ids[split..]` is held out.
    split: usize,
    /// w: characters on each side of the gap.
    context: usize,
}

/// A batch of windows, time-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ClozeBatch {
    /// (2w+1, B): the window with the mask id at position w.
    pub tokens: Vec<u32>,
    /// (B): the masked characters.
    pub labels: Vec<u32>,
}

impl ClozeTask {
    /// Tokenises `corpus` with the seed's character preprocessing and holds out the last
    /// `held_out` fraction; windows have `context` characters on each side of the gap.
    ///
    /// # Errors
    /// [`ClozeError`] for a bad fraction, `context = 0`, a corpus that cannot be tokenised, or a
    /// part shorter than one window.
    pub fn from_corpus(corpus: &Corpus, held_out: f64, context: usize) -> Result<Self, ClozeError> {
        if !(held_out > 0.0 && held_out < 1.0) {
            return Err(ClozeError::Fraction { found: held_out });
        }
        if context == 0 {
            return Err(ClozeError::ZeroSize { what: "context" });
        }
        let (vocab, _) = CharVocab::fit(corpus, CharTokenizerConfig::SEED)?;
        let mut sink = VecSink::default();
        vocab.encode_corpus(corpus, &mut sink)?;
        Self::from_ids(vocab, sink.ids, held_out, context)
    }

    /// The task over already tokenised `ids` of `vocab`.
    ///
    /// # Errors
    /// As [`ClozeTask::from_corpus`].
    pub fn from_ids(
        vocab: CharVocab,
        ids: Vec<u32>,
        held_out: f64,
        context: usize,
    ) -> Result<Self, ClozeError> {
        if !(held_out > 0.0 && held_out < 1.0) {
            return Err(ClozeError::Fraction { found: held_out });
        }
        if context == 0 {
            return Err(ClozeError::ZeroSize { what: "context" });
        }
        let split = ((1.0 - held_out) * ids.len() as f64).round() as usize;
        let window = 2 * context + 1;
        for (part, found) in [("training", split), ("held-out", ids.len() - split)] {
            if found < window {
                return Err(ClozeError::TooShort {
                    part,
                    expected: window,
                    found,
                    context,
                });
            }
        }
        Ok(ClozeTask {
            vocab,
            ids,
            split,
            context,
        })
    }

    /// V: characters (the mask id is V).
    pub fn vocab_size(&self) -> usize {
        self.vocab.size()
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }

    /// The mask id.
    pub fn mask(&self) -> u32 {
        self.vocab.size() as u32
    }

    /// w.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Characters in the training and the held-out part.
    pub fn part_sizes(&self) -> (usize, usize) {
        (self.split, self.ids.len() - self.split)
    }

    /// Gap positions of the held-out part (every one with a full window inside it).
    pub fn held_out_gaps(&self) -> std::ops::Range<usize> {
        self.split + self.context..self.ids.len() - self.context
    }

    /// `batch` training windows with gaps drawn uniformly from the training part.
    pub fn train_batch(&self, batch: usize, rng: &mut impl Rng) -> ClozeBatch {
        let w = self.context;
        let gaps: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(w..self.split - w))
            .collect();
        self.batch_at(&gaps)
    }

    /// The windows around `gaps` (each must have `w` characters on both sides).
    pub fn batch_at(&self, gaps: &[usize]) -> ClozeBatch {
        let (w, b) = (self.context, gaps.len());
        let steps = 2 * w + 1;
        let mut tokens = vec![0u32; steps * b];
        for (col, &g) in gaps.iter().enumerate() {
            for t in 0..steps {
                tokens[t * b + col] = if t == w {
                    self.mask()
                } else {
                    self.ids[g - w + t]
                };
            }
        }
        ClozeBatch {
            tokens,
            labels: gaps.iter().map(|&g| self.ids[g]).collect(),
        }
    }

    /// The text of a window (`_` at the gap), for examples.
    pub fn render(&self, gap: usize) -> String {
        let w = self.context;
        let left = self.vocab.decode(&self.ids[gap - w..gap]);
        let right = self.vocab.decode(&self.ids[gap + 1..gap + 1 + w]);
        format!("{left}_{right}")
    }
}

/// Which way the reader sees the window (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClozeReader {
    /// Unidirectional, predicting at the gap: left context only.
    Left,
    /// Bidirectional, predicting at the gap from both directions.
    Bidirectional,
    /// Unidirectional over the whole window, predicting from the final state.
    WholeWindow,
}

impl ClozeReader {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ClozeReader::Left => "left",
            ClozeReader::Bidirectional => "bidirectional",
            ClozeReader::WholeWindow => "whole-window",
        }
    }
}

/// Sizes of a cloze model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClozeModelConfig {
    pub reader: ClozeReader,
    pub cell: CellKind,
    /// E
    pub embed_dim: usize,
    /// H (per direction)
    pub hidden: usize,
    pub par: Par,
    pub isa: Isa,
}

/// Embedding(V+1, E) → RNN(E, H), one or two directions → Dense(D·H, V) at the read-out step.
#[derive(Clone, Debug)]
pub struct ClozeModel {
    config: ClozeModelConfig,
    /// V
    vocab: usize,
    /// (V+1, E); row V is the mask.
    pub embedding: Embedding,
    pub rnn: Rnn,
    /// (V, D·H)
    pub output: Dense,
}

/// Gradients of a [`ClozeModel`].
#[derive(Clone, Debug)]
pub struct ClozeGrads {
    /// (V+1, E)
    pub d_embedding: Vec<f32>,
    pub rnn: RnnGrads,
    pub output: DenseGrads,
}

/// Loss and accuracy counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClozeStats {
    /// Σ cross-entropy (nats).
    pub loss_sum: f64,
    /// Correct argmax predictions.
    pub correct: usize,
    /// Windows scored.
    pub total: usize,
}

impl ClozeStats {
    /// Mean cross-entropy.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.total.max(1) as f64
    }

    /// Fraction predicted right.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }

    fn add(&mut self, other: &ClozeStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.total += other.total;
    }
}

impl ClozeModel {
    /// A model for a vocabulary of `vocab` characters, PyTorch initialisation from `seed`.
    ///
    /// # Errors
    /// [`ClozeError::ZeroSize`] for a zero size or an empty vocabulary.
    pub fn init(config: ClozeModelConfig, vocab: usize, seed: u64) -> Result<Self, ClozeError> {
        for (what, size) in [
            ("vocabulary", vocab),
            ("embed_dim", config.embed_dim),
            ("hidden", config.hidden),
        ] {
            if size == 0 {
                return Err(ClozeError::ZeroSize { what });
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let embedding = Embedding::init(vocab + 1, config.embed_dim, &mut rng);
        let bidirectional = config.reader == ClozeReader::Bidirectional;
        let rnn = RnnConfig::new(config.cell, config.embed_dim, config.hidden)
            .with_bidirectional(bidirectional)
            .with_par(config.par)
            .with_isa(config.isa)
            .init(rng.random())?;
        let width = rnn.config().directions() * config.hidden;
        let output = Dense::init(width, vocab, &mut rng);
        let mut config = config;
        config.isa = config.isa.clamp_to_host();
        Ok(ClozeModel {
            config,
            vocab,
            embedding,
            rnn,
            output,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClozeModelConfig {
        &self.config
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.embedding.weight.len()
            + self
                .rnn
                .params()
                .named("")
                .iter()
                .map(|(_, v)| v.len())
                .sum::<usize>()
            + self.output.weight.len()
            + self.output.bias.len()
    }

    /// Zero gradients.
    pub fn zero_grads(&self) -> ClozeGrads {
        ClozeGrads {
            d_embedding: vec![0.0; self.embedding.weight.len()],
            rnn: self.rnn.zero_grads(),
            output: DenseGrads::zeros(&self.output),
        }
    }

    /// The steps the reader runs and the one it reads out: the left reader stops at the gap
    /// (later steps cannot change `h_w` of a forward RNN), the others read the whole window.
    fn steps_and_readout(&self, window: usize) -> (usize, usize) {
        let w = window / 2;
        match self.config.reader {
            ClozeReader::Left => (w + 1, w),
            ClozeReader::Bidirectional => (window, w),
            ClozeReader::WholeWindow => (window, window - 1),
        }
    }

    /// Cross-entropy and accuracy on `batch` (windows of `2w + 1`), and with `grads` the mean
    /// loss's gradient accumulated into them.
    ///
    /// # Errors
    /// [`ClozeError::Rnn`] on a malformed batch.
    pub fn loss(
        &self,
        batch: &ClozeBatch,
        grads: Option<&mut ClozeGrads>,
    ) -> Result<ClozeStats, ClozeError> {
        let b = batch.labels.len();
        let window = batch.tokens.len() / b.max(1);
        let (steps, readout) = self.steps_and_readout(window);
        let (e, v) = (self.config.embed_dim, self.vocab);
        let width = self.rnn.config().directions() * self.config.hidden;
        let tokens = &batch.tokens[..steps * b];
        let mut x = vec![0.0f32; steps * b * e]; // (T, B, E)
        self.embedding.forward(tokens, &mut x);
        let training = grads.is_some();
        let mode = if training {
            Mode::Training { dropout_seed: 0 }
        } else {
            Mode::Inference
        };
        let (out, cache) = self.rnn.forward(SeqBatch::new(&x, steps, b), None, mode)?;
        let hidden = &out.output[readout * b * width..(readout + 1) * b * width]; // (B, D·H)
        let mut logits = vec![0.0f32; b * v];
        self.output.forward(self.config.par, hidden, b, &mut logits);
        let mut losses = vec![0.0f32; b];
        let mut d_logits = if training {
            vec![0.0f32; b * v]
        } else {
            Vec::new()
        };
        let grad = training.then(|| LogitsGrad {
            d_logits: &mut d_logits,
            scale: 1.0 / b as f32,
        });
        softmax_cross_entropy_with_isa(
            self.config.isa,
            &logits,
            v,
            &batch.labels,
            &mut losses,
            grad,
        );
        let stats = ClozeStats {
            loss_sum: losses.iter().map(|&l| f64::from(l)).sum(),
            correct: logits
                .chunks_exact(v)
                .zip(&batch.labels)
                .filter(|(row, label)| crate::seq2seq::model::argmax(row) == **label)
                .count(),
            total: b,
        };
        if let Some(grads) = grads {
            let mut d_hidden = vec![0.0f32; b * width];
            self.output.backward(
                self.config.par,
                hidden,
                &d_logits,
                b,
                &mut grads.output,
                Some(&mut d_hidden),
            );
            let mut d_out = vec![0.0f32; steps * b * width];
            d_out[readout * b * width..(readout + 1) * b * width].copy_from_slice(&d_hidden);
            let back = self.rnn.backward(cache, &d_out, None, &mut grads.rnn)?;
            self.embedding
                .backward(tokens, &back.d_input, &mut grads.d_embedding);
        }
        Ok(stats)
    }

    /// One optimiser step with `grads` (clipped first).
    ///
    /// # Errors
    /// [`ClozeError::Optim`].
    pub fn apply(
        &mut self,
        optimizer: &mut Optimizer,
        grads: &mut ClozeGrads,
        clip: GradClip,
    ) -> Result<(), ClozeError> {
        let mut names = vec!["embedding.weight".to_string()];
        names.extend(self.rnn.params().named("").into_iter().map(|(n, _)| n));
        names.push("output.weight".into());
        names.push("output.bias".into());
        let mut grad_buffers: Vec<&mut [f32]> = vec![&mut grads.d_embedding];
        for p in &mut grads.rnn.directions {
            grad_buffers.extend([
                &mut p.weight_ih[..],
                &mut p.weight_hh[..],
                &mut p.bias_ih[..],
                &mut p.bias_hh[..],
            ]);
        }
        grad_buffers.push(&mut grads.output.d_weight);
        grad_buffers.push(&mut grads.output.d_bias);
        clip.apply(&mut grad_buffers);
        let mut values: Vec<&mut [f32]> = vec![&mut self.embedding.weight];
        for p in &mut self.rnn.params_mut().directions {
            values.extend([
                &mut p.weight_ih[..],
                &mut p.weight_hh[..],
                &mut p.bias_ih[..],
                &mut p.bias_hh[..],
            ]);
        }
        values.push(&mut self.output.weight);
        values.push(&mut self.output.bias);
        let mut params: Vec<Param<'_>> = names
            .iter()
            .zip(values)
            .zip(grad_buffers)
            .map(|((name, value), grad)| Param::new(name, value, grad))
            .collect();
        optimizer.step(&mut params)?;
        Ok(())
    }

    /// Loss and accuracy over every held-out gap of `task`, `batch` windows at a time.
    ///
    /// # Errors
    /// As [`ClozeModel::loss`].
    pub fn evaluate(&self, task: &ClozeTask, batch: usize) -> Result<ClozeStats, ClozeError> {
        let gaps: Vec<usize> = task.held_out_gaps().collect();
        let mut total = ClozeStats::default();
        for chunk in gaps.chunks(batch.max(1)) {
            total.add(&self.loss(&task.batch_at(chunk), None)?);
        }
        Ok(total)
    }
}

/// How to train a cloze reader.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClozeTrainConfig {
    pub batch: usize,
    pub steps: usize,
    pub optimizer: OptimizerConfig,
    pub clip: GradClip,
    /// Seed of the training windows.
    pub seed: u64,
}

/// Trains `model` on `task`, calling `on_step(step, &stats)` after each step.
///
/// # Errors
/// [`ClozeError`] from the optimiser or the layers.
pub fn train_cloze(
    model: &mut ClozeModel,
    task: &ClozeTask,
    config: &ClozeTrainConfig,
    mut on_step: impl FnMut(usize, &ClozeStats),
) -> Result<(), ClozeError> {
    let mut optimizer = Optimizer::new(config.optimizer)?;
    config.clip.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut grads = model.zero_grads();
    for step in 0..config.steps {
        let batch = task.train_batch(config.batch, &mut rng);
        grads.d_embedding.fill(0.0);
        grads.rnn.zero();
        grads.output.zero();
        let stats = model.loss(&batch, Some(&mut grads))?;
        model.apply(&mut optimizer, &mut grads, config.clip)?;
        on_step(step, &stats);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_task(context: usize) -> ClozeTask {
        let config = CharTokenizerConfig::SEED;
        let vocab = CharVocab::from_symbols(config, vec![' ', 'a', 'b', 'c']).unwrap();
        // "abc abc abc …": the gap is predictable from either side.
        let ids: Vec<u32> = (0..400).map(|k| [1, 2, 3, 0][k % 4]).collect();
        ClozeTask::from_ids(vocab, ids, 0.25, context).unwrap()
    }

    #[test]
    fn windows_mask_the_gap_and_stay_in_their_part() {
        let task = toy_task(2);
        let batch = task.batch_at(&[5, 6]);
        // ids[3..8] = [0, 1, 2, 3, 0]; gap 5 holds 2 → window [0, 1, M, 3, 0].
        let m = task.mask();
        assert_eq!(batch.labels, vec![2, 3]);
        let col0: Vec<u32> = (0..5).map(|t| batch.tokens[t * 2]).collect();
        assert_eq!(col0, vec![0, 1, m, 3, 0]);
        assert_eq!(task.render(5), " a_c ");
        let (train, held) = task.part_sizes();
        assert_eq!((train, held), (300, 100));
        assert_eq!(task.held_out_gaps(), 302..398);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let b = task.train_batch(8, &mut rng);
            assert_eq!(b.tokens.len(), 5 * 8);
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let vocab = CharVocab::from_symbols(CharTokenizerConfig::SEED, vec!['a']).unwrap();
        assert!(matches!(
            ClozeTask::from_ids(vocab.clone(), vec![0; 10], 0.5, 3),
            Err(ClozeError::TooShort {
                part: "training",
                ..
            })
        ));
        assert!(matches!(
            ClozeTask::from_ids(vocab.clone(), vec![0; 100], 1.0, 3),
            Err(ClozeError::Fraction { .. })
        ));
        assert!(matches!(
            ClozeTask::from_ids(vocab, vec![0; 100], 0.5, 0),
            Err(ClozeError::ZeroSize { what: "context" })
        ));
        let config = ClozeModelConfig {
            reader: ClozeReader::Left,
            cell: CellKind::Gru,
            embed_dim: 4,
            hidden: 4,
            par: Par::Seq,
            isa: Isa::active(),
        };
        assert!(matches!(
            ClozeModel::init(config, 0, 1),
            Err(ClozeError::ZeroSize { what: "vocabulary" })
        ));
    }

    /// The left reader at the gap equals the whole-sequence forward output at step w (it only
    /// runs w + 1 steps), and gradients flow only into the rows it read.
    #[test]
    fn readers_read_out_where_documented() {
        let task = toy_task(3);
        for reader in [
            ClozeReader::Left,
            ClozeReader::Bidirectional,
            ClozeReader::WholeWindow,
        ] {
            let config = ClozeModelConfig {
                reader,
                cell: CellKind::Lstm,
                embed_dim: 4,
                hidden: 6,
                par: Par::Seq,
                isa: Isa::active(),
            };
            let model = ClozeModel::init(config, task.vocab_size(), 3).unwrap();
            let batch = task.batch_at(&[10, 11, 12]);
            let stats = model.loss(&batch, None).unwrap();
            assert_eq!(stats.total, 3);
            assert!(stats.mean_loss().is_finite());
            let mut grads = model.zero_grads();
            model.loss(&batch, Some(&mut grads)).unwrap();
            let mask_row = task.mask() as usize;
            let touched = |id: usize| {
                grads.d_embedding[id * 4..(id + 1) * 4]
                    .iter()
                    .any(|&g| g != 0.0)
            };
            assert!(touched(mask_row), "{reader:?}: the mask is read");
            // The right context does not reach the left reader's loss, and does reach the others'.
            if reader == ClozeReader::Left {
                let mut altered = batch.clone();
                for t in 4..7 {
                    for b in 0..3 {
                        altered.tokens[t * 3 + b] = 0;
                    }
                }
                assert_eq!(model.loss(&altered, None).unwrap(), stats);
            } else {
                let mut altered = batch.clone();
                for b in 0..3 {
                    altered.tokens[6 * 3 + b] = (batch.tokens[6 * 3 + b] + 1) % 4;
                }
                assert_ne!(model.loss(&altered, None).unwrap(), stats);
            }
        }
    }

    /// In a text where the gap is determined by the right context only, the bidirectional
    /// reader learns it and the left reader cannot.
    #[test]
    fn bidirectional_beats_left_when_only_the_right_side_tells() {
        let config = CharTokenizerConfig::SEED;
        let vocab = CharVocab::from_symbols(config, vec!['a', 'b', 'x', 'y']).unwrap();
        // Random letters a/b, each followed by its "echo" x/y one step later: the character
        // before an x is always a, before a y always b. With the gap on an a/b, the left side
        // says nothing (a/b are random) and the right side says everything.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut ids = Vec::new();
        for _ in 0..2000 {
            let c = rng.random_range(0..2u32);
            ids.push(c);
            ids.push(c + 2);
        }
        let task = ClozeTask::from_ids(vocab, ids, 0.2, 2).unwrap();
        let mut accuracies = Vec::new();
        for reader in [ClozeReader::Left, ClozeReader::Bidirectional] {
            let config = ClozeModelConfig {
                reader,
                cell: CellKind::Gru,
                embed_dim: 4,
                hidden: 8,
                par: Par::Seq,
                isa: Isa::active(),
            };
            let mut model = ClozeModel::init(config, task.vocab_size(), 1).unwrap();
            let train = ClozeTrainConfig {
                batch: 32,
                steps: 150,
                optimizer: OptimizerConfig::pytorch_adam().with_learning_rate(0.02),
                clip: GradClip::GlobalNorm(5.0),
                seed: 2,
            };
            train_cloze(&mut model, &task, &train, |_, _| {}).unwrap();
            accuracies.push(model.evaluate(&task, 256).unwrap().accuracy());
        }
        // Half the gaps are a/b: the left reader gets those right half the time (≤ 0.75 + noise
        // overall); the bidirectional reader gets all of them.
        assert!(accuracies[0] < 0.82, "left {}", accuracies[0]);
        assert!(accuracies[1] > 0.97, "bidirectional {}", accuracies[1]);
    }
}
