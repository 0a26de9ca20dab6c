//! Data: memory-mapped corpora, tokenisers, token caches, datasets and metrics.
//!
//! The path from a text file to minibatches:
//!
//! 1. [`corpus`] — [`Corpus::open`] maps the file read-only (never copied onto the heap) and
//!    rejects what cannot be text: missing, a directory, not a regular file, empty, NUL bytes.
//!    Named corpora (`alice`, `sherlock`) are found in `$RECUR_DATA`, `./data`,
//!    `../shared/data` and checked against their SHA-256.
//! 2. [`text`] — line-wise preprocessing: the seed's strip-lower-ASCII-join for characters,
//!    UTF-8 validation with byte offset, line and column on failure.
//! 3. [`char_tokenizer`] and [`word_tokenizer`] — fitted vocabularies ([`Tokenizer`],
//!    serialisable to JSON for checkpoints). The word tokeniser follows Keras's `Tokenizer`.
//! 4. [`cache`] — the ids, the vocabulary and line records in one binary file beside the run,
//!    keyed by the tokeniser config and the corpus fingerprint, memory-mapped on re-runs
//!    ([`store::TokenStore`]).
//! 5. [`dataset`] — sliding windows, per-line prefixes and truncated-BPTT streams, a
//!    deterministic validation split, seeded O(1)-memory shuffling ([`shuffle`]), and
//!    time-major `(T, B)` minibatches.
//! 6. [`metrics`] — perplexity, bits per character, accuracy.
//!
//! [`prepare::prepare`] runs 1–5 for the command line and the trainer. Heap use is bounded by
//! the vocabulary and the longest line, not by the corpus size.

pub mod cache;
pub mod char_tokenizer;
pub mod corpus;
pub mod dataset;
pub mod error;
pub mod hash;
pub mod metrics;
pub mod prepare;
pub mod shuffle;
pub mod store;
pub mod text;
pub mod tokenizer;
pub mod word_tokenizer;

pub use char_tokenizer::{CharTokenizerConfig, CharVocab};
pub use corpus::{Corpus, NamedCorpus};
pub use dataset::{
    BpttStreams, Dataset, DatasetConfig, EpochOrder, LinePrefixes, ManyToOne, Minibatch,
    SlidingWindows, Targets,
};
pub use error::DataError;
pub use prepare::{CacheStatus, PrepareOptions, PreparedData, prepare};
pub use store::TokenStore;
pub use text::LineMode;
pub use tokenizer::{CorpusStats, Encoded, Tokenizer, TokenizerConfig};
pub use word_tokenizer::{WordTokenizerConfig, WordVocab};
