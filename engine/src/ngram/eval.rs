//! Fitting on the training part of a prepared corpus and scoring exactly the targets the
//! recurrent models are validated on.
//!
//! The split is [`crate::data::dataset::plan_split`]'s — the one `recur train --val-frac`
//! uses: the last fraction of tokens (windows, streams) or of line-prefix samples. Training text:
//!
//! - windows and streams: the training tokens as one sequence;
//! - line prefixes: every line before the boundary as its own sequence (the recurrent model
//!   never looks across lines either), and the boundary line up to its last training label.
//!
//! Scoring walks the validation [`Dataset`] itself, so the n-gram predicts the same targets
//! from (a suffix of) the same inputs the recurrent model sees: a line prefix's words (the left
//! padding becomes `<s>`), a window's `T` ids, or a stream's ids since the start of that stream
//! of the validation span (each stream starts from `<s>`, as the recurrent state starts from
//! zeros).

use std::ops::Range;
use std::path::Path;

use super::error::NgramError;
use super::model::{NgramConfig, NgramCounter, NgramModel, Vocabulary};
use crate::data::dataset::{Dataset, DatasetConfig, ManyToOne, Minibatch, PADDING_ID, plan_split};
use crate::data::metrics::{bits_per_token, perplexity};
use crate::data::{DataError, PreparedData, TokenStore, Tokenizer};

/// Negative log-likelihood over a set of predicted targets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NgramScore {
    /// Σ −ln p(target | context), nats.
    pub loss_sum: f64,
    /// Targets scored.
    pub tokens: u64,
    /// Targets never seen in training (they get probability through smoothing alone).
    pub unseen_targets: u64,
}

impl NgramScore {
    /// Mean cross-entropy in nats per target (`NaN` when no target was scored).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.tokens as f64
    }

    /// `exp(mean loss)`.
    pub fn perplexity(&self) -> f64 {
        perplexity(self.mean_loss())
    }

    /// Bits per target (bits per character for a character model).
    pub fn bits_per_token(&self) -> f64 {
        bits_per_token(self.mean_loss())
    }

    fn add(&mut self, model: &NgramModel, context: &[u32], target: u32) -> Result<(), NgramError> {
        let p = model.probability(context, target)?;
        self.loss_sum -= p.ln();
        self.tokens += 1;
        if model.training_count(target) == 0 {
            self.unseen_targets += 1;
        }
        Ok(())
    }
}

/// The training sequences of `data` under the split of `config` and `val_frac` (see the module
/// docs), as token-position ranges of `data.store`.
///
/// # Errors
///
/// [`DataError`] if the split cannot be planned (as `recur train` would report it).
pub fn training_ranges(
    data: &PreparedData,
    config: &DatasetConfig,
    val_frac: f64,
) -> Result<Vec<Range<usize>>, DataError> {
    let plan = plan_split(
        Path::new("<corpus>"),
        data.tokenizer.config().unit(),
        &data.stats,
        config,
        val_frac,
    )?;
    let store: &TokenStore = &data.store;
    Ok(match config {
        DatasetConfig::Windows { .. } | DatasetConfig::Streams { .. } => {
            let whole = plan.train.start as usize..plan.train.end as usize;
            std::iter::once(whole).collect()
        }
        DatasetConfig::LinePrefixes { .. } => {
            let kept = plan.train.end;
            let token_ends = store.line_token_ends();
            let sample_ends = store.line_sample_ends();
            let mut ranges = Vec::new();
            let mut start = 0u64;
            let mut first_sample = 0u64;
            for (&end, &samples_end) in token_ends.iter().zip(sample_ends) {
                if samples_end <= kept {
                    ranges.push(start as usize..end as usize);
                } else {
                    // The boundary line: samples first_sample..kept are training labels, at
                    // offsets 1..=(kept − first_sample).
                    let labels = kept - first_sample;
                    if labels > 0 {
                        ranges.push(start as usize..(start + labels + 1) as usize);
                    }
                    break;
                }
                start = end;
                first_sample = samples_end;
            }
            ranges
        }
    })
}

/// The vocabulary an n-gram model over `tokenizer`'s ids predicts: every id, except the word
/// tokeniser's padding id 0 (which never occurs in text).
///
/// # Errors
///
/// [`NgramError::EmptyVocabulary`] if nothing is left to predict.
pub fn vocabulary_of(tokenizer: &Tokenizer) -> Result<Vocabulary, NgramError> {
    let reserved = match tokenizer {
        Tokenizer::Char(_) => None,
        Tokenizer::Word(_) => Some(PADDING_ID),
    };
    Vocabulary::new(tokenizer.vocab_size(), reserved)
}

/// Fits a model on the token ranges `ranges` of `data` (from [`training_ranges`]).
///
/// # Errors
///
/// As [`NgramCounter::new`], [`NgramCounter::add_sequence`] and [`NgramCounter::finish`].
pub fn fit_ranges(
    config: NgramConfig,
    data: &PreparedData,
    ranges: &[Range<usize>],
) -> Result<NgramModel, NgramError> {
    let mut counter = NgramCounter::new(config, vocabulary_of(&data.tokenizer)?)?;
    let ids = data.store.ids();
    for range in ranges {
        counter.add_sequence(range.clone().map(|i| ids.get(i)))?;
    }
    counter.finish()
}

/// Scores `model` on every target of the validation `dataset`, in order.
///
/// # Errors
///
/// [`NgramError::TokenOutOfVocabulary`] if the dataset holds an id the model cannot predict
/// (another vocabulary).
pub fn score_dataset(model: &NgramModel, dataset: &Dataset) -> Result<NgramScore, NgramError> {
    let mut score = NgramScore::default();
    let keep = model.order() - 1;
    match dataset {
        Dataset::Windows(d) => score_many_to_one(model, d, keep, false, &mut score)?,
        Dataset::LinePrefixes(d) => score_many_to_one(model, d, keep, true, &mut score)?,
        Dataset::Streams(d) => {
            let mut batch = Minibatch::new();
            let b = d.batch();
            // Per stream, the ids since the stream's start (the last `keep` of them).
            let mut histories: Vec<Vec<u32>> = vec![Vec::with_capacity(keep + 1); b];
            for chunk in 0..d.chunks() {
                d.fill(chunk, &mut batch);
                for t in 0..batch.steps {
                    for (s, history) in histories.iter_mut().enumerate() {
                        let input = batch.inputs[t * b + s];
                        history.push(input);
                        if history.len() > keep {
                            history.remove(0);
                        }
                        score.add(model, history, batch.targets[t * b + s])?;
                    }
                }
            }
        }
    }
    Ok(score)
}

fn score_many_to_one<D: ManyToOne>(
    model: &NgramModel,
    data: &D,
    keep: usize,
    strip_padding: bool,
    score: &mut NgramScore,
) -> Result<(), NgramError> {
    let steps = data.steps();
    let mut inputs = vec![0u32; steps];
    for sample in 0..data.len() {
        let target = data.write_sample(sample, &mut inputs, 0, 1);
        let mut context: &[u32] = &inputs;
        if strip_padding {
            let pad = context.iter().take_while(|&&id| id == PADDING_ID).count();
            context = &context[pad..];
        }
        let context = &context[context.len().saturating_sub(keep)..];
        score.add(model, context, target)?;
    }
    Ok(())
}
