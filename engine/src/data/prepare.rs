//! From a corpus to training and validation datasets in one call, through the token cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::{CacheLookup, StaleReason, load_token_cache, write_token_cache};
use super::corpus::Corpus;
use super::dataset::{Dataset, DatasetConfig, build_datasets, plan_split};
use super::error::DataError;
use super::store::TokenStore;
use super::tokenizer::{CorpusStats, Tokenizer, TokenizerConfig, VecSink};

/// What to build from a corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct PrepareOptions {
    /// How to tokenise.
    pub tokenizer: TokenizerConfig,
    /// Which dataset.
    pub dataset: DatasetConfig,
    /// Fraction of the data held out for validation, in `[0, 1)`.
    pub val_frac: f64,
    /// The token cache file (normally `<run dir>/tokens.bin`); `None` tokenises into memory,
    /// which is only sensible for short texts.
    pub cache_path: Option<PathBuf>,
}

/// Where the token ids came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// A valid cache was mapped; the corpus was not tokenised again.
    Reused,
    /// The cache was (re)built, and why the old one was not used.
    Built(StaleReason),
    /// No cache: ids held in memory.
    InMemory,
}

/// A tokenised corpus with its datasets: what the trainer receives.
#[derive(Debug)]
pub struct PreparedData {
    /// The fitted tokeniser (goes into checkpoints).
    pub tokenizer: Tokenizer,
    /// Statistics of the whole token stream.
    pub stats: CorpusStats,
    /// The token stream (mapped from the cache, or in memory).
    pub store: Arc<TokenStore>,
    /// The training dataset.
    pub train: Dataset,
    /// The validation dataset, when `val_frac > 0`.
    pub val: Option<Dataset>,
    /// The cache file used, if any.
    pub cache_path: Option<PathBuf>,
    /// Whether the cache was reused or rebuilt.
    pub cache_status: CacheStatus,
}

/// Tokenises `corpus` (or maps a valid cache of it) and builds the datasets.
///
/// Nothing is written until the corpus has been fully checked (encoding, size for the dataset
/// and the split): on every error of the corpus or the options, no file or directory is created.
pub fn prepare(corpus: &Corpus, options: &PrepareOptions) -> Result<PreparedData, DataError> {
    let unit = options.tokenizer.unit();
    if let Some(cache) = &options.cache_path {
        match load_token_cache(cache, &options.tokenizer, corpus.fingerprint())? {
            CacheLookup::Hit(tokenizer, store) => {
                let stats = stats_of(&store);
                return finish(
                    corpus.path(),
                    unit,
                    tokenizer,
                    stats,
                    Arc::new(store),
                    options,
                    CacheStatus::Reused,
                );
            }
            CacheLookup::Stale(reason) => {
                let (tokenizer, stats) = Tokenizer::fit(corpus, &options.tokenizer)?;
                // Check sizes before the cache (and its directory) is written.
                plan_split(
                    corpus.path(),
                    unit,
                    &stats,
                    &options.dataset,
                    options.val_frac,
                )?;
                let store = write_token_cache(cache, corpus, &tokenizer, stats)?;
                return finish(
                    corpus.path(),
                    unit,
                    tokenizer,
                    stats,
                    Arc::new(store),
                    options,
                    CacheStatus::Built(reason),
                );
            }
        }
    }
    let (tokenizer, stats) = Tokenizer::fit(corpus, &options.tokenizer)?;
    plan_split(
        corpus.path(),
        unit,
        &stats,
        &options.dataset,
        options.val_frac,
    )?;
    let mut sink = VecSink::default();
    tokenizer.encode_corpus(corpus, &mut sink)?;
    let store = TokenStore::from_ids(sink.ids, sink.line_ends)?;
    finish(
        corpus.path(),
        unit,
        tokenizer,
        stats,
        Arc::new(store),
        options,
        CacheStatus::InMemory,
    )
}

fn finish(
    path: &Path,
    unit: &str,
    tokenizer: Tokenizer,
    stats: CorpusStats,
    store: Arc<TokenStore>,
    options: &PrepareOptions,
    cache_status: CacheStatus,
) -> Result<PreparedData, DataError> {
    let plan = plan_split(path, unit, &stats, &options.dataset, options.val_frac)?;
    let (train, val) = build_datasets(&store, &options.dataset, &plan)?;
    Ok(PreparedData {
        tokenizer,
        stats,
        store,
        train,
        val,
        cache_path: options.cache_path.clone(),
        cache_status,
    })
}

/// The statistics of a stored stream (what fitting reported when it was written).
fn stats_of(store: &TokenStore) -> CorpusStats {
    CorpusStats {
        tokens: store.len() as u64,
        lines: store.lines() as u64,
        longest_line: store.longest_line(),
        prefix_samples: store.line_sample_ends().last().copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::char_tokenizer::CharTokenizerConfig;
    use crate::data::word_tokenizer::WordTokenizerConfig;

    fn options(cache: Option<PathBuf>) -> PrepareOptions {
        PrepareOptions {
            tokenizer: TokenizerConfig::Char(CharTokenizerConfig::SEED),
            dataset: DatasetConfig::Windows {
                steps: 4,
                stride: 1,
            },
            val_frac: 0.0,
            cache_path: cache,
        }
    }

    #[test]
    fn builds_then_reuses_then_rebuilds_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let corpus_path = dir.path().join("c.txt");
        std::fs::write(&corpus_path, "Hello there\nGeneral\n").unwrap();
        let cache = dir.path().join("run").join("tokens.bin");
        let corpus = Corpus::open(&corpus_path).unwrap();

        let first = prepare(&corpus, &options(Some(cache.clone()))).unwrap();
        assert_eq!(first.cache_status, CacheStatus::Built(StaleReason::Missing));
        assert_eq!(first.stats.tokens, "hello there general".len() as u64);
        assert_eq!(first.train.num_samples(), 19 - 4);
        assert!(first.store.is_mapped());

        let second = prepare(&corpus, &options(Some(cache.clone()))).unwrap();
        assert_eq!(second.cache_status, CacheStatus::Reused);
        assert_eq!(second.store.ids().to_vec(), first.store.ids().to_vec());
        assert_eq!(second.tokenizer, first.tokenizer);

        // Same corpus, other preprocessing: rebuilt.
        let mut keep_case = options(Some(cache.clone()));
        keep_case.tokenizer = TokenizerConfig::Char(CharTokenizerConfig {
            lowercase: false,
            ..CharTokenizerConfig::SEED
        });
        let third = prepare(&corpus, &keep_case).unwrap();
        assert_eq!(
            third.cache_status,
            CacheStatus::Built(StaleReason::TokenizerChanged)
        );

        // The corpus changes (new length): rebuilt with the new text.
        drop((first, second, third, corpus));
        std::fs::write(&corpus_path, "Hello there\nGeneral Kenobi\n").unwrap();
        let corpus = Corpus::open(&corpus_path).unwrap();
        let fourth = prepare(&corpus, &keep_case).unwrap();
        assert_eq!(
            fourth.cache_status,
            CacheStatus::Built(StaleReason::CorpusChanged)
        );
        assert_eq!(
            fourth.stats.tokens,
            "Hello there General Kenobi".len() as u64
        );

        keep_case.cache_path = None;
        let in_memory = prepare(&corpus, &keep_case).unwrap();
        assert_eq!(in_memory.cache_status, CacheStatus::InMemory);
        assert_eq!(in_memory.store.ids().to_vec(), fourth.store.ids().to_vec());
    }

    #[test]
    fn a_too_short_corpus_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let corpus_path = dir.path().join("c.txt");
        std::fs::write(&corpus_path, "abc").unwrap();
        let run = dir.path().join("run");
        let corpus = Corpus::open(&corpus_path).unwrap();
        let err = prepare(&corpus, &options(Some(run.join("tokens.bin")))).unwrap_err();
        assert!(matches!(err, DataError::CorpusTooShort { .. }), "{err}");
        assert!(!run.exists());
    }

    #[test]
    fn word_prefixes_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let corpus_path = dir.path().join("w.txt");
        std::fs::write(&corpus_path, "a b c\nb\nc a\n").unwrap();
        let corpus = Corpus::open(&corpus_path).unwrap();
        let opts = PrepareOptions {
            tokenizer: TokenizerConfig::Word(WordTokenizerConfig::keras()),
            dataset: DatasetConfig::LinePrefixes { max_steps: None },
            val_frac: 0.0,
            cache_path: Some(dir.path().join("tokens.bin")),
        };
        let data = prepare(&corpus, &opts).unwrap();
        assert_eq!(data.train.num_samples(), 3);
        assert_eq!(data.train.steps(), 2);
        let again = prepare(&corpus, &opts).unwrap();
        assert_eq!(again.cache_status, CacheStatus::Reused);
        assert_eq!(again.stats, data.stats);
    }
}
