//! The errors a user can cause through the data pipeline: bad corpora, bad options, broken caches.

use std::io;
use std::path::PathBuf;

use super::corpus::NamedCorpus;

/// Everything that can go wrong between a path on disk and a minibatch.
///
/// Each message names the file (or option) and says what was expected and what was found, on one
/// line, so a command line can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The corpus path does not exist.
    #[error("corpus {}: no such file", path.display())]
    CorpusNotFound { path: PathBuf },

    /// The corpus exists but cannot be opened or mapped.
    #[error("corpus {}: cannot read it: {source}", path.display())]
    CorpusUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The corpus path is a directory.
    #[error("corpus {}: is a directory, expected a text file", path.display())]
    CorpusIsDirectory { path: PathBuf },

    /// The corpus path is a FIFO, socket or device, which cannot be memory-mapped.
    #[error("corpus {}: is not a regular file (a pipe, socket or device?), expected a text file", path.display())]
    CorpusNotRegularFile { path: PathBuf },

    /// The corpus has no bytes.
    #[error("corpus {}: the file is empty, expected text", path.display())]
    CorpusEmpty { path: PathBuf },

    /// The corpus contains a NUL byte, which text never does.
    #[error("corpus {}: looks like a binary file (NUL byte at byte offset {offset}), expected text", path.display())]
    CorpusBinary { path: PathBuf, offset: u64 },

    /// The corpus is not valid UTF-8 and the tokeniser needs Unicode text.
    ///
    /// `offset` is the 0-based byte offset of the first bad byte; `line` and `column` are 1-based,
    /// the column counted in characters.
    #[error(
        "corpus {}: invalid UTF-8 at byte offset {offset} (line {line}, column {column}); \
         expected UTF-8 text (ASCII-only mode drops non-ASCII bytes instead)",
        path.display()
    )]
    InvalidUtf8 {
        path: PathBuf,
        offset: u64,
        line: u64,
        column: u64,
    },

    /// After preprocessing the corpus holds too few tokens (or lines) for the requested dataset.
    #[error("corpus {}: too short: {found}, but {needed}", path.display())]
    CorpusTooShort {
        path: PathBuf,
        /// What there is, e.g. "5 characters after preprocessing".
        found: String,
        /// What the dataset needs, e.g. "one window of 10 steps plus its label needs 11".
        needed: String,
    },

    /// A named corpus (`alice`, `sherlock`) is in none of the searched directories.
    #[error(
        "corpus `{}` not found: looked for {} in {searched}; download Project Gutenberg ebook \
         #{} ({}) as plain text UTF-8 from https://www.gutenberg.org/ebooks/{}, save it as {} \
         in one of them or in a directory named by $RECUR_DATA, or pass --corpus PATH \
         (expected SHA-256 {})",
        .corpus.name,
        .corpus.file_name,
        .corpus.gutenberg_ebook,
        .corpus.title,
        .corpus.gutenberg_ebook,
        .corpus.file_name,
        .corpus.sha256
    )]
    NamedCorpusNotFound {
        corpus: &'static NamedCorpus,
        /// The directories searched, in order, joined for display.
        searched: String,
    },

    /// An option of the data pipeline is out of range.
    #[error("{name}: {message}")]
    InvalidOption {
        /// The option, as the user knows it (e.g. `--val-frac`).
        name: &'static str,
        message: String,
    },

    /// The token cache could not be written or read back.
    #[error("token cache {}: {source}", path.display())]
    CacheIo {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A vocabulary could not be parsed (e.g. from a checkpoint).
    #[error("vocabulary: {0}")]
    VocabularyJson(#[from] serde_json::Error),

    /// A vocabulary is internally inconsistent (duplicate symbols, wrong lengths, ...).
    #[error("vocabulary: {0}")]
    InvalidVocabulary(String),
}

impl DataError {
    /// The path of the file the error is about, if it is about one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            DataError::CorpusNotFound { path }
            | DataError::CorpusUnreadable { path, .. }
            | DataError::CorpusIsDirectory { path }
            | DataError::CorpusNotRegularFile { path }
            | DataError::CorpusEmpty { path }
            | DataError::CorpusBinary { path, .. }
            | DataError::InvalidUtf8 { path, .. }
            | DataError::CorpusTooShort { path, .. }
            | DataError::CacheIo { path, .. } => Some(path),
            DataError::NamedCorpusNotFound { .. }
            | DataError::InvalidOption { .. }
            | DataError::VocabularyJson(_)
            | DataError::InvalidVocabulary(_) => None,
        }
    }
}
