//! Datasets over a token stream, and the minibatches they fill.
//!
//! # Minibatch layout
//!
//! Every minibatch is a pair of flat `u32` id buffers, **time-major** as the recurrent layers
//! consume them:
//!
//! ```text
//! inputs   (T, B)   inputs[t * B + b] = id of sequence b at step t
//! targets  (B)      targets[b]         (many-to-one: windows, line prefixes)
//!          (T, B)   targets[t * B + b] (many-to-many: truncated-BPTT streams)
//! ```
//!
//! so the B ids of one time step are contiguous (one row gather of the embedding or one-hot
//! input per step).
//!
//! # The three datasets
//!
//! - [`SlidingWindows`] — the seed's character task: window `i` is `T` ids from `i·stride`, its
//!   label the id after it (`range(0, n − T, stride)` in the seed, so `⌈(n − T)/stride⌉`
//!   windows).
//! - [`LinePrefixes`] — the seed's word task: for every line of `n ≥ 2` tokens, every prefix of
//!   length `k = 2..=n` is a sample whose label is its last token and whose input is the `k − 1`
//!   tokens before it, **left-padded** with id 0 to `T` steps (Keras `pad_sequences(...,
//!   padding='pre')` then `X = seq[:, :-1]`). `T` is the longest line minus one (the seed's
//!   `max_sequence_len − 1`), optionally capped, in which case long prefixes keep their last `T`
//!   tokens.
//! - [`BpttStreams`] — char-rnn's truncated BPTT: the stream is cut into `B` contiguous parallel
//!   streams of `L = ⌊(n − 1)/B⌋` ids; chunk `k` holds steps `k·T .. (k+1)·T` of every stream,
//!   targets shifted by one. Chunks must be visited in order, and the final hidden state of
//!   stream `b` after chunk `k` is the initial state of stream `b` for chunk `k + 1` (reset at
//!   the start of an epoch).
//!
//! # Validation split
//!
//! Deterministic, no randomness: the **last** `val_frac` of the data is held out (as Keras's
//! `validation_split` and char-rnn do) — the last tokens for windows and streams (so no window
//! straddles the boundary), the last samples for line prefixes (a line cut by the boundary gives
//! its shorter prefixes to training; no label is shared).
//!
//! # Order
//!
//! [`EpochOrder`] visits the samples of a many-to-one dataset sequentially or in a seeded
//! shuffled order that depends only on `(seed, epoch)`, in O(1) memory (see [`super::shuffle`]).
//! The last minibatch of an epoch may be smaller than `B` (as in Keras `fit`).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::error::DataError;
use super::shuffle::{IndexPermutation, splitmix64_mix};
use super::store::TokenStore;
use super::tokenizer::CorpusStats;

/// Whether targets are one per sequence or one per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// `targets` is `(B)`: the label after the last step.
    LastStep,
    /// `targets` is `(T, B)`: the next id at every step.
    EveryStep,
}

/// A reusable minibatch buffer (see the module docs for the layout).
#[derive(Clone, Debug)]
pub struct Minibatch {
    /// T: time steps.
    pub steps: usize,
    /// B: sequences in this minibatch (the last one of an epoch may be short).
    pub batch: usize,
    /// (T, B) input ids, time-major.
    pub inputs: Vec<u32>,
    /// (B) or (T, B) target ids, see [`Minibatch::targets_kind`].
    pub targets: Vec<u32>,
    /// Shape of `targets`.
    pub targets_kind: Targets,
}

impl Default for Minibatch {
    fn default() -> Self {
        Minibatch::new()
    }
}

impl Minibatch {
    /// An empty buffer; filling it sizes it, refilling reuses its capacity.
    pub fn new() -> Minibatch {
        Minibatch {
            steps: 0,
            batch: 0,
            inputs: Vec::new(),
            targets: Vec::new(),
            targets_kind: Targets::LastStep,
        }
    }

    fn reset(&mut self, steps: usize, batch: usize, targets_kind: Targets) {
        self.steps = steps;
        self.batch = batch;
        self.targets_kind = targets_kind;
        self.inputs.clear();
        self.inputs.resize(steps * batch, 0);
        self.targets.clear();
        let n = match targets_kind {
            Targets::LastStep => batch,
            Targets::EveryStep => steps * batch,
        };
        self.targets.resize(n, 0);
    }
}

/// A dataset of fixed-length input sequences with one label each.
pub trait ManyToOne {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// T: steps per input sequence.
    fn steps(&self) -> usize;

    /// Writes sample `sample`'s input ids into column `column` of the time-major `inputs`
    /// buffer of width `batch` (`inputs[t * batch + column]`) and returns its label.
    fn write_sample(&self, sample: usize, inputs: &mut [u32], column: usize, batch: usize) -> u32;
}

/// Sliding windows over a range of the token stream (the seed's character task).
#[derive(Clone, Debug)]
pub struct SlidingWindows {
    store: Arc<TokenStore>,
    span: Range<usize>,
    steps: usize,
    stride: usize,
}

impl SlidingWindows {
    /// Windows of `steps` ids every `stride` ids over `store[span]`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidOption`] for `steps` or `stride` of 0 or a span outside the store;
    /// [`DataError::CorpusTooShort`] if not one window fits.
    pub fn new(
        store: Arc<TokenStore>,
        span: Range<usize>,
        steps: usize,
        stride: usize,
    ) -> Result<SlidingWindows, DataError> {
        check_positive("--seq-length", steps)?;
        check_positive("window stride", stride)?;
        check_span(&span, store.len())?;
        if window_count(span.len() as u64, steps, stride) == 0 {
            return Err(too_short(
                Path::new("<tokens>"),
                format!("{} tokens", span.len()),
                window_need(steps),
            ));
        }
        Ok(SlidingWindows {
            store,
            span,
            steps,
            stride,
        })
    }

    /// The token range the windows cover.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }
}

fn window_count(tokens: u64, steps: usize, stride: usize) -> u64 {
    tokens.saturating_sub(steps as u64).div_ceil(stride as u64)
}

fn window_need(steps: usize) -> String {
    format!(
        "one window of {steps} steps plus its label needs {}",
        steps + 1
    )
}

impl ManyToOne for SlidingWindows {
    fn len(&self) -> usize {
        window_count(self.span.len() as u64, self.steps, self.stride) as usize
    }

    fn steps(&self) -> usize {
        self.steps
    }

    fn write_sample(&self, sample: usize, inputs: &mut [u32], column: usize, batch: usize) -> u32 {
        let start = self.span.start + sample * self.stride;
        let ids = self.store.ids();
        ids.copy_strided(start, self.steps, inputs, column, batch);
        ids.get(start + self.steps)
    }
}

/// Every prefix (length ≥ 2) of every line, left-padded (the seed's word task).
#[derive(Clone, Debug)]
pub struct LinePrefixes {
    store: Arc<TokenStore>,
    /// Global sample indices covered (see [`TokenStore::line_sample_ends`]).
    samples: Range<u64>,
    steps: usize,
}

/// The padding id that fills the front of short prefixes.
pub const PADDING_ID: u32 = 0;

impl LinePrefixes {
    /// Samples `samples` (global prefix-sample indices) of `store`, `steps` input steps each.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidOption`] if the store has no line records, `steps` is 0, or the
    /// range is empty or beyond the store's samples.
    pub fn new(
        store: Arc<TokenStore>,
        samples: Range<u64>,
        steps: usize,
    ) -> Result<LinePrefixes, DataError> {
        check_positive("--seq-length", steps)?;
        let total = store.line_sample_ends().last().copied().unwrap_or(0);
        if store.lines() == 0 || total == 0 {
            return Err(DataError::InvalidOption {
                name: "--dataset",
                message: "line prefixes need a word corpus with a line of at least 2 words, \
                          found none"
                    .into(),
            });
        }
        if samples.is_empty() || samples.end > total {
            return Err(DataError::InvalidOption {
                name: "line prefix samples",
                message: format!("expected a non-empty range within 0..{total}, found {samples:?}"),
            });
        }
        Ok(LinePrefixes {
            store,
            samples,
            steps,
        })
    }

    /// All samples of `store`, with the seed's `T` = longest line − 1 capped at `max_steps`.
    pub fn all(
        store: Arc<TokenStore>,
        max_steps: Option<usize>,
    ) -> Result<LinePrefixes, DataError> {
        let total = store.line_sample_ends().last().copied().unwrap_or(0);
        let steps = prefix_steps(store.longest_line(), max_steps);
        LinePrefixes::new(store, 0..total, steps)
    }
}

fn prefix_steps(longest_line: u64, max_steps: Option<usize>) -> usize {
    let natural = longest_line.saturating_sub(1) as usize;
    max_steps.map_or(natural, |m| natural.min(m))
}

impl ManyToOne for LinePrefixes {
    fn len(&self) -> usize {
        (self.samples.end - self.samples.start) as usize
    }

    fn steps(&self) -> usize {
        self.steps
    }

    fn write_sample(&self, sample: usize, inputs: &mut [u32], column: usize, batch: usize) -> u32 {
        let global = self.samples.start + sample as u64;
        let sample_ends = self.store.line_sample_ends();
        let token_ends = self.store.line_token_ends();
        // The line holding `global`: the first whose running sample count exceeds it.
        let line = sample_ends.partition_point(|&end| end <= global);
        let line_start = if line == 0 { 0 } else { token_ends[line - 1] } as usize;
        let first_sample = if line == 0 { 0 } else { sample_ends[line - 1] };
        // Prefix length k = offset + 2: inputs are the k − 1 tokens before the label.
        let context = (global - first_sample) as usize + 1;
        let kept = context.min(self.steps);
        let pad = self.steps - kept;
        for t in 0..pad {
            inputs[t * batch + column] = PADDING_ID;
        }
        let ids = self.store.ids();
        let label_at = line_start + context;
        ids.copy_strided(label_at - kept, kept, inputs, pad * batch + column, batch);
        ids.get(label_at)
    }
}

/// Contiguous parallel streams for truncated BPTT (char-rnn's loader).
#[derive(Clone, Debug)]
pub struct BpttStreams {
    store: Arc<TokenStore>,
    span: Range<usize>,
    batch: usize,
    steps: usize,
    /// L: ids per stream.
    stream_len: usize,
}

impl BpttStreams {
    /// `batch` streams over `store[span]`, chunks of `steps`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidOption`] for a zero size or a span outside the store;
    /// [`DataError::CorpusTooShort`] if not one chunk fits.
    pub fn new(
        store: Arc<TokenStore>,
        span: Range<usize>,
        batch: usize,
        steps: usize,
    ) -> Result<BpttStreams, DataError> {
        check_positive("--batch-size", batch)?;
        check_positive("--seq-length", steps)?;
        check_span(&span, store.len())?;
        if stream_chunks(span.len() as u64, batch, steps) == 0 {
            return Err(too_short(
                Path::new("<tokens>"),
                format!("{} tokens", span.len()),
                stream_need(batch, steps),
            ));
        }
        Ok(BpttStreams {
            store,
            stream_len: (span.len() - 1) / batch,
            span,
            batch,
            steps,
        })
    }

    /// Number of chunks (minibatches) per epoch.
    pub fn chunks(&self) -> usize {
        self.stream_len / self.steps
    }

    /// T: steps per chunk.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// B: parallel streams.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Fills `out` with chunk `chunk`: inputs and targets both `(T, B)`.
    ///
    /// # Panics
    ///
    /// If `chunk >= chunks()`.
    pub fn fill(&self, chunk: usize, out: &mut Minibatch) {
        assert!(
            chunk < self.chunks(),
            "chunk {chunk} out of range 0..{}",
            self.chunks()
        );
        out.reset(self.steps, self.batch, Targets::EveryStep);
        let ids = self.store.ids();
        for b in 0..self.batch {
            let start = self.span.start + b * self.stream_len + chunk * self.steps;
            ids.copy_strided(start, self.steps, &mut out.inputs, b, self.batch);
            ids.copy_strided(start + 1, self.steps, &mut out.targets, b, self.batch);
        }
    }
}

fn stream_chunks(tokens: u64, batch: usize, steps: usize) -> u64 {
    (tokens.saturating_sub(1) / batch as u64) / steps as u64
}

fn stream_need(batch: usize, steps: usize) -> String {
    format!(
        "one chunk of {batch} streams × {steps} steps plus the next target needs {}",
        batch * steps + 1
    )
}

/// The order in which an epoch visits the samples of a many-to-one dataset.
#[derive(Clone, Debug)]
pub struct EpochOrder {
    len: usize,
    batch_size: usize,
    permutation: Option<IndexPermutation>,
}

impl EpochOrder {
    /// Samples in order `0, 1, 2, …`.
    ///
    /// # Panics
    ///
    /// If `batch_size` is 0.
    pub fn sequential(len: usize, batch_size: usize) -> EpochOrder {
        assert!(batch_size > 0, "batch size must be positive");
        EpochOrder {
            len,
            batch_size,
            permutation: None,
        }
    }

    /// A shuffled order that depends only on `(seed, epoch)`.
    ///
    /// # Panics
    ///
    /// If `batch_size` is 0.
    pub fn shuffled(len: usize, batch_size: usize, seed: u64, epoch: u64) -> EpochOrder {
        assert!(batch_size > 0, "batch size must be positive");
        let key = splitmix64_mix(seed ^ splitmix64_mix(epoch.wrapping_add(0x5eed)));
        EpochOrder {
            len,
            batch_size,
            permutation: Some(IndexPermutation::new(len as u64, key)),
        }
    }

    /// Minibatches in the epoch (the last may be short).
    pub fn num_batches(&self) -> usize {
        self.len.div_ceil(self.batch_size)
    }

    /// The positions `batch` covers.
    pub fn batch_positions(&self, batch: usize) -> Range<usize> {
        let start = batch * self.batch_size;
        start..(start + self.batch_size).min(self.len)
    }

    /// The sample visited at `position`.
    pub fn sample_at(&self, position: usize) -> usize {
        match &self.permutation {
            None => position,
            Some(p) => p.get(position as u64) as usize,
        }
    }

    /// Fills `out` with minibatch `batch` of `data`: inputs `(T, B)`, targets `(B)`.
    ///
    /// # Panics
    ///
    /// If `batch >= num_batches()` or the order was made for another length than `data.len()`.
    pub fn fill<D: ManyToOne + ?Sized>(&self, data: &D, batch: usize, out: &mut Minibatch) {
        assert_eq!(self.len, data.len(), "order made for another dataset");
        assert!(
            batch < self.num_batches(),
            "batch {batch} out of range 0..{}",
            self.num_batches()
        );
        let positions = self.batch_positions(batch);
        let width = positions.len();
        out.reset(data.steps(), width, Targets::LastStep);
        for (column, position) in positions.enumerate() {
            let sample = self.sample_at(position);
            out.targets[column] = data.write_sample(sample, &mut out.inputs, column, width);
        }
    }
}

/// Which dataset to build over a token stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetConfig {
    /// [`SlidingWindows`] of `steps` every `stride`.
    Windows { steps: usize, stride: usize },
    /// [`LinePrefixes`], `T` = longest line − 1, capped at `max_steps`.
    LinePrefixes { max_steps: Option<usize> },
    /// [`BpttStreams`] of `batch` streams and `steps`-step chunks.
    Streams { batch: usize, steps: usize },
}

/// A built dataset.
#[derive(Clone, Debug)]
pub enum Dataset {
    Windows(SlidingWindows),
    LinePrefixes(LinePrefixes),
    Streams(BpttStreams),
}

impl Dataset {
    /// Samples (windows, prefixes) or, for streams, target ids per epoch (chunks · T · B).
    pub fn num_samples(&self) -> usize {
        match self {
            Dataset::Windows(d) => d.len(),
            Dataset::LinePrefixes(d) => d.len(),
            Dataset::Streams(d) => d.chunks() * d.steps() * d.batch(),
        }
    }

    /// T: steps per input sequence.
    pub fn steps(&self) -> usize {
        match self {
            Dataset::Windows(d) => d.steps(),
            Dataset::LinePrefixes(d) => d.steps(),
            Dataset::Streams(d) => d.steps(),
        }
    }

    /// One line for a summary, e.g. "140159 windows of 10 steps".
    pub fn describe(&self) -> String {
        match self {
            Dataset::Windows(d) => format!("{} windows of {} steps", d.len(), d.steps()),
            Dataset::LinePrefixes(d) => {
                format!("{} line prefixes padded to {} steps", d.len(), d.steps())
            }
            Dataset::Streams(d) => format!(
                "{} chunks of {} streams × {} steps",
                d.chunks(),
                d.batch(),
                d.steps()
            ),
        }
    }
}

/// Where the training and validation parts of a corpus lie: token ranges for windows and
/// streams, prefix-sample ranges for line prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    pub train: Range<u64>,
    pub val: Option<Range<u64>>,
    /// T of the line-prefix dataset (unused otherwise).
    pub prefix_steps: usize,
}

/// Plans the train/validation split of a corpus with `stats` and checks that each part holds
/// at least one sample — before any token is written, so a too-short corpus leaves no files.
///
/// `val_frac` is in `[0, 1)`; 0 means no validation set. The last `round(n · val_frac)` tokens
/// (or prefix samples) are held out.
///
/// # Errors
///
/// [`DataError::CorpusTooShort`] (naming `path`) when the corpus or one of its parts is too
/// short; [`DataError::InvalidOption`] for a bad `val_frac`, zero sizes, or line prefixes over a
/// corpus without lines.
pub fn plan_split(
    path: &Path,
    unit: &str,
    stats: &CorpusStats,
    config: &DatasetConfig,
    val_frac: f64,
) -> Result<SplitPlan, DataError> {
    if !(0.0..1.0).contains(&val_frac) {
        return Err(DataError::InvalidOption {
            name: "--val-frac",
            message: format!("expected a fraction in [0, 1), found {val_frac}"),
        });
    }
    let (total, what, need, count): (u64, String, String, Box<dyn Fn(u64) -> u64>) = match *config {
        DatasetConfig::Windows { steps, stride } => {
            check_positive("--seq-length", steps)?;
            check_positive("window stride", stride)?;
            (
                stats.tokens,
                unit.to_string(),
                window_need(steps),
                Box::new(move |n| window_count(n, steps, stride)),
            )
        }
        DatasetConfig::Streams { batch, steps } => {
            check_positive("--batch-size", batch)?;
            check_positive("--seq-length", steps)?;
            (
                stats.tokens,
                unit.to_string(),
                stream_need(batch, steps),
                Box::new(move |n| stream_chunks(n, batch, steps)),
            )
        }
        DatasetConfig::LinePrefixes { max_steps } => {
            if let Some(m) = max_steps {
                check_positive("--seq-length", m)?;
            }
            if stats.lines == 0 && stats.tokens > 0 {
                return Err(DataError::InvalidOption {
                    name: "--dataset",
                    message: "line prefixes need the word tokeniser (lines of words), found a \
                              character stream"
                        .into(),
                });
            }
            (
                stats.prefix_samples,
                "line-prefix samples".to_string(),
                "one sample needs a line of at least 2 words".to_string(),
                Box::new(|n| n),
            )
        }
    };
    let prefix_steps = prefix_steps(
        stats.longest_line,
        match *config {
            DatasetConfig::LinePrefixes { max_steps } => max_steps,
            _ => None,
        },
    );
    let held_out = (total as f64 * val_frac).round() as u64;
    let kept = total - held_out;
    if count(kept) == 0 {
        let found = if held_out > 0 {
            format!("{kept} {what} left for training after --val-frac {val_frac}")
        } else {
            format!("{total} {what} after preprocessing")
        };
        return Err(too_short(path, found, need));
    }
    let val = if val_frac > 0.0 {
        if count(held_out) == 0 {
            return Err(too_short(
                path,
                format!("{held_out} {what} held out for validation by --val-frac {val_frac}"),
                need,
            ));
        }
        Some(kept..total)
    } else {
        None
    };
    Ok(SplitPlan {
        train: 0..kept,
        val,
        prefix_steps,
    })
}

/// Builds the datasets of `plan` over `store`.
pub fn build_datasets(
    store: &Arc<TokenStore>,
    config: &DatasetConfig,
    plan: &SplitPlan,
) -> Result<(Dataset, Option<Dataset>), DataError> {
    let build = |range: &Range<u64>| -> Result<Dataset, DataError> {
        let span = range.start as usize..range.end as usize;
        Ok(match *config {
            DatasetConfig::Windows { steps, stride } => {
                Dataset::Windows(SlidingWindows::new(store.clone(), span, steps, stride)?)
            }
            DatasetConfig::Streams { batch, steps } => {
                Dataset::Streams(BpttStreams::new(store.clone(), span, batch, steps)?)
            }
            DatasetConfig::LinePrefixes { .. } => Dataset::LinePrefixes(LinePrefixes::new(
                store.clone(),
                range.clone(),
                plan.prefix_steps,
            )?),
        })
    };
    let train = build(&plan.train)?;
    let val = plan.val.as_ref().map(build).transpose()?;
    Ok((train, val))
}

fn check_positive(name: &'static str, value: usize) -> Result<(), DataError> {
    if value == 0 {
        return Err(DataError::InvalidOption {
            name,
            message: "expected a positive number, found 0".into(),
        });
    }
    Ok(())
}

fn check_span(span: &Range<usize>, len: usize) -> Result<(), DataError> {
    if span.start > span.end || span.end > len {
        return Err(DataError::InvalidOption {
            name: "token span",
            message: format!("expected a range within 0..{len}, found {span:?}"),
        });
    }
    Ok(())
}

fn too_short(path: &Path, found: String, needed: String) -> DataError {
    DataError::CorpusTooShort {
        path: path.to_path_buf(),
        found,
        needed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(ids: Vec<u32>, line_ends: Vec<u64>) -> Arc<TokenStore> {
        Arc::new(TokenStore::from_ids(ids, line_ends).unwrap())
    }

    #[test]
    fn windows_match_the_seeds_loop() {
        // range(0, n − T, STEP): n = 7, T = 3, STEP = 2 → starts 0, 2 (4 would need id 7).
        let s = store((10..17).collect(), vec![]);
        let w = SlidingWindows::new(s.clone(), 0..7, 3, 2).unwrap();
        assert_eq!(w.len(), 2);
        let order = EpochOrder::sequential(w.len(), 2);
        let mut mb = Minibatch::new();
        order.fill(&w, 0, &mut mb);
        // (T, B) time-major: column 0 = 10 11 12, column 1 = 12 13 14.
        assert_eq!(mb.inputs, vec![10, 12, 11, 13, 12, 14]);
        assert_eq!(mb.targets, vec![13, 15]);
        assert_eq!((mb.steps, mb.batch), (3, 2));

        let w1 = SlidingWindows::new(s.clone(), 0..7, 3, 1).unwrap();
        assert_eq!(w1.len(), 4);
        assert!(matches!(
            SlidingWindows::new(s, 0..3, 3, 1),
            Err(DataError::CorpusTooShort { .. })
        ));
    }

    #[test]
    fn line_prefixes_are_left_padded_like_keras() {
        // Lines: [1 2 3] [4] [5 6]; samples: [0 0 1]→2, [0 1 2]→3, [0 0 5]→6 with T = 2.
        let s = store(vec![1, 2, 3, 4, 5, 6], vec![3, 4, 6]);
        let p = LinePrefixes::all(s.clone(), None).unwrap();
        assert_eq!((p.len(), p.steps()), (3, 2));
        let order = EpochOrder::sequential(3, 3);
        let mut mb = Minibatch::new();
        order.fill(&p, 0, &mut mb);
        assert_eq!(mb.inputs, vec![0, 1, 0, 1, 2, 5]);
        assert_eq!(mb.targets, vec![2, 3, 6]);

        // Capped at T = 1: only the last token of the context is kept.
        let capped = LinePrefixes::all(s, Some(1)).unwrap();
        let mut mb = Minibatch::new();
        EpochOrder::sequential(3, 3).fill(&capped, 0, &mut mb);
        assert_eq!(mb.inputs, vec![1, 2, 5]);
        assert_eq!(mb.targets, vec![2, 3, 6]);
    }

    #[test]
    fn bptt_streams_are_contiguous_and_shifted_by_one() {
        // n = 13 → L = ⌊12/2⌋ = 6 per stream, T = 3 → 2 chunks.
        let s = store((0..13).collect(), vec![]);
        let st = BpttStreams::new(s, 0..13, 2, 3).unwrap();
        assert_eq!(st.chunks(), 2);
        let mut mb = Minibatch::new();
        st.fill(0, &mut mb);
        assert_eq!(mb.inputs, vec![0, 6, 1, 7, 2, 8]);
        assert_eq!(mb.targets, vec![1, 7, 2, 8, 3, 9]);
        st.fill(1, &mut mb);
        // Chunk 1 continues each stream where chunk 0 stopped.
        assert_eq!(mb.inputs, vec![3, 9, 4, 10, 5, 11]);
        assert_eq!(mb.targets, vec![4, 10, 5, 11, 6, 12]);
        assert_eq!(mb.targets_kind, Targets::EveryStep);
    }

    #[test]
    fn shuffled_epochs_cover_every_sample_once_and_differ_by_epoch() {
        let s = store((0..50).collect(), vec![]);
        let w = SlidingWindows::new(s, 0..50, 4, 1).unwrap();
        let mut mb = Minibatch::new();
        let mut labels_by_epoch = Vec::new();
        for epoch in 0..2 {
            let order = EpochOrder::shuffled(w.len(), 8, 99, epoch);
            assert_eq!(order.num_batches(), 6);
            let mut labels = Vec::new();
            for b in 0..order.num_batches() {
                order.fill(&w, b, &mut mb);
                assert_eq!(mb.batch, if b == 5 { 6 } else { 8 });
                labels.extend_from_slice(&mb.targets);
            }
            let mut sorted = labels.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (4..50).collect::<Vec<_>>());
            labels_by_epoch.push(labels);
        }
        assert_ne!(labels_by_epoch[0], labels_by_epoch[1]);
        let again: Vec<usize> = (0..w.len())
            .map(|i| EpochOrder::shuffled(w.len(), 8, 99, 0).sample_at(i))
            .collect();
        let first: Vec<usize> = (0..w.len())
            .map(|i| EpochOrder::shuffled(w.len(), 8, 99, 0).sample_at(i))
            .collect();
        assert_eq!(again, first);
    }

    #[test]
    fn split_holds_out_the_tail_and_checks_both_parts() {
        let stats = CorpusStats::stream(100);
        let windows = DatasetConfig::Windows {
            steps: 10,
            stride: 1,
        };
        let p = Path::new("c.txt");
        let plan = plan_split(p, "characters", &stats, &windows, 0.2).unwrap();
        assert_eq!(plan.train, 0..80);
        assert_eq!(plan.val, Some(80..100));
        let s = store((0..100).map(|i| i % 7).collect(), vec![]);
        let (train, val) = build_datasets(&s, &windows, &plan).unwrap();
        assert_eq!(train.num_samples(), 70);
        assert_eq!(val.unwrap().num_samples(), 10);

        let none = plan_split(p, "characters", &stats, &windows, 0.0).unwrap();
        assert_eq!(none.val, None);

        let err = plan_split(p, "characters", &stats, &windows, 0.05).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("5 characters held out"), "{msg}");
        assert!(msg.contains("c.txt"), "{msg}");
        let short = plan_split(p, "characters", &CorpusStats::stream(10), &windows, 0.0)
            .unwrap_err()
            .to_string();
        assert!(
            short.contains("10 characters after preprocessing") && short.contains("needs 11"),
            "{short}"
        );
        assert!(matches!(
            plan_split(p, "characters", &stats, &windows, 1.0),
            Err(DataError::InvalidOption {
                name: "--val-frac",
                ..
            })
        ));
        assert!(matches!(
            plan_split(p, "characters", &stats, &windows, f64::NAN),
            Err(DataError::InvalidOption { .. })
        ));
    }

    #[test]
    fn line_prefix_split_is_by_sample_and_needs_lines() {
        let s = store(vec![1, 2, 3, 4, 5, 6], vec![3, 4, 6]);
        let stats = CorpusStats {
            tokens: 6,
            lines: 3,
            longest_line: 3,
            prefix_samples: 3,
        };
        let config = DatasetConfig::LinePrefixes { max_steps: None };
        let plan = plan_split(Path::new("w"), "words", &stats, &config, 0.34).unwrap();
        assert_eq!((plan.train.clone(), plan.val.clone()), (0..2, Some(2..3)));
        let (train, val) = build_datasets(&s, &config, &plan).unwrap();
        let Some(Dataset::LinePrefixes(val)) = val else {
            panic!("expected line prefixes")
        };
        let mut mb = Minibatch::new();
        EpochOrder::sequential(1, 4).fill(&val, 0, &mut mb);
        assert_eq!(
            (mb.inputs.clone(), mb.targets.clone()),
            (vec![0, 5], vec![6])
        );
        assert_eq!(train.num_samples(), 2);

        let chars = CorpusStats::stream(100);
        assert!(matches!(
            plan_split(Path::new("c"), "characters", &chars, &config, 0.0),
            Err(DataError::InvalidOption {
                name: "--dataset",
                ..
            })
        ));
    }
}
