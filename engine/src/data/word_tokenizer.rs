//! The word tokeniser: Keras's `Tokenizer` semantics (keras `preprocessing/text.py`, the
//! legacy `text_to_word_sequence` / `fit_on_texts` / `texts_to_sequences`).
//!
//! - Each line (split on `\n`) is lower-cased, every character of `filters` becomes a space, and
//!   the line is split on single spaces with empty pieces dropped. Only `' '` and the filter
//!   characters separate words: a `\r` or a non-breaking space stays inside a word, as in Keras.
//! - Ids count from 1 in order of descending frequency; ties keep the order of first occurrence
//!   (Keras sorts the insertion-ordered `word_counts` with Python's stable `sort`). 0 is padding.
//! - With an out-of-vocabulary token, it takes id 1 and the words start at 2 (Keras's
//!   `sorted_voc = [oov_token] + sorted_voc`).
//! - `max_vocab` is Keras's `num_words`: only ids `< max_vocab` are used, so it counts padding
//!   (and the OOV token). Rarer words become the OOV id, or are dropped when there is no OOV
//!   token (Keras's behaviour, which shortens lines).

use serde::{Deserialize, Serialize};

use super::corpus::Corpus;
use super::error::DataError;
use super::hash::FxHashMap;
use super::text::{CaseAndScript, for_each_clean_line};
use super::tokenizer::{CorpusStats, CountingSink, Encoded, TokenSink};

/// Keras's default `filters`: ASCII punctuation except `'`, plus tab and newline.
pub const KERAS_FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

/// The padding id.
pub const PAD_ID: u32 = 0;

/// How text becomes words.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WordTokenizerConfig {
    /// Lower-case the text (Keras `lower=True`).
    pub lowercase: bool,
    /// Drop non-ASCII bytes before splitting (not Keras's behaviour; off by default).
    pub ascii_only: bool,
    /// Characters replaced by spaces (Keras `filters`).
    pub filters: String,
    /// Number of ids kept, padding included (Keras `num_words`); `None` keeps every word.
    pub max_vocab: Option<u32>,
    /// The out-of-vocabulary token (Keras `oov_token`); `None` drops unknown words.
    pub oov_token: Option<String>,
}

impl WordTokenizerConfig {
    /// The seed's word experiment: Keras `Tokenizer()` with its defaults.
    pub fn keras() -> WordTokenizerConfig {
        WordTokenizerConfig {
            lowercase: true,
            ascii_only: false,
            filters: KERAS_FILTERS.to_string(),
            max_vocab: None,
            oov_token: None,
        }
    }

    fn case_and_script(&self) -> CaseAndScript {
        CaseAndScript {
            lowercase: self.lowercase,
            ascii_only: self.ascii_only,
        }
    }
}

impl Default for WordTokenizerConfig {
    fn default() -> Self {
        WordTokenizerConfig::keras()
    }
}

/// Splits cleaned lines into words: a bitmap for ASCII separators, a list for the rest.
#[derive(Clone, Debug)]
struct WordSplitter {
    ascii: [bool; 128],
    other: Vec<char>,
}

impl WordSplitter {
    fn new(filters: &str) -> WordSplitter {
        let mut ascii = [false; 128];
        ascii[b' ' as usize] = true;
        let mut other = Vec::new();
        for c in filters.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else if !other.contains(&c) {
                other.push(c);
            }
        }
        WordSplitter { ascii, other }
    }

    fn is_separator(&self, c: char) -> bool {
        if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            self.other.contains(&c)
        }
    }

    fn words<'a>(&'a self, line: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        line.split(|c| self.is_separator(c))
            .filter(|w| !w.is_empty())
    }
}

/// A fitted word vocabulary.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "WordVocabRepr", into = "WordVocabRepr")]
pub struct WordVocab {
    config: WordTokenizerConfig,
    /// `words[i]` has id `i + 1`; with an OOV token, `words[0]` is that token.
    words: Vec<String>,
    /// Corpus frequency of `words[i]` (0 for the OOV token).
    counts: Vec<u64>,
    index: FxHashMap<String, u32>,
    splitter: WordSplitter,
}

impl PartialEq for WordVocab {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.words == other.words && self.counts == other.counts
    }
}

#[derive(Serialize, Deserialize)]
struct WordVocabRepr {
    config: WordTokenizerConfig,
    /// In id order from 1.
    words: Vec<String>,
    counts: Vec<u64>,
}

impl TryFrom<WordVocabRepr> for WordVocab {
    type Error = DataError;
    fn try_from(r: WordVocabRepr) -> Result<Self, DataError> {
        WordVocab::from_words(r.config, r.words, r.counts)
    }
}

impl From<WordVocab> for WordVocabRepr {
    fn from(v: WordVocab) -> Self {
        WordVocabRepr {
            config: v.config,
            words: v.words,
            counts: v.counts,
        }
    }
}

impl WordVocab {
    /// A vocabulary of `words` in id order (the first has id 1).
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidVocabulary`] if `words` is empty, has duplicates or empty words, does
    /// not start with the OOV token when one is configured, is longer than `max_vocab` allows, or
    /// if `counts` has another length.
    pub fn from_words(
        config: WordTokenizerConfig,
        words: Vec<String>,
        counts: Vec<u64>,
    ) -> Result<WordVocab, DataError> {
        let invalid = |m: String| Err(DataError::InvalidVocabulary(m));
        if words.is_empty() {
            return invalid("a word vocabulary needs at least one word, found none".into());
        }
        if counts.len() != words.len() {
            return invalid(format!("{} words but {} counts", words.len(), counts.len()));
        }
        if let Some(oov) = &config.oov_token
            && words[0] != *oov
        {
            return invalid(format!(
                "the out-of-vocabulary token {oov:?} must have id 1, found {:?}",
                words[0]
            ));
        }
        if let Some(max) = config.max_vocab
            && words.len() + 1 > max as usize
        {
            return invalid(format!(
                "max_vocab {max} allows {} words, found {}",
                max.saturating_sub(1),
                words.len()
            ));
        }
        let mut index = FxHashMap::default();
        index.reserve(words.len());
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() {
                return invalid(format!("word id {} is empty", i + 1));
            }
            if index.insert(w.clone(), i as u32 + 1).is_some() {
                return invalid(format!("word {w:?} appears twice"));
            }
        }
        let splitter = WordSplitter::new(&config.filters);
        Ok(WordVocab {
            config,
            words,
            counts,
            index,
            splitter,
        })
    }

    /// Fits a vocabulary to `corpus` (Keras `fit_on_texts` over its lines), then measures the
    /// token stream the vocabulary produces.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidUtf8`] (unless ASCII-only), [`DataError::CorpusTooShort`] if the
    /// corpus has no word, [`DataError::InvalidOption`] for `max_vocab` below 2 (or 3 with an
    /// OOV token: no room for a word).
    pub fn fit(
        corpus: &Corpus,
        config: WordTokenizerConfig,
    ) -> Result<(WordVocab, CorpusStats), DataError> {
        let reserved = 1 + u32::from(config.oov_token.is_some());
        if let Some(max) = config.max_vocab
            && max <= reserved
        {
            return Err(DataError::InvalidOption {
                name: "--max-vocab",
                message: format!(
                    "must leave room for a word after padding{}: expected at least {}, found {max}",
                    if reserved == 2 {
                        " and the out-of-vocabulary id"
                    } else {
                        ""
                    },
                    reserved + 1
                ),
            });
        }
        let splitter = WordSplitter::new(&config.filters);
        // word -> (count, first occurrence)
        let mut counts: FxHashMap<String, (u64, u64)> = FxHashMap::default();
        let mut seen = 0u64;
        let mut raw_stats = CountingSink::default();
        for_each_clean_line(
            corpus.bytes(),
            corpus.path(),
            config.case_and_script(),
            |line| {
                for w in splitter.words(line) {
                    if config.oov_token.as_deref() == Some(w) {
                        // Keras would let the OOV token's own occurrences collide with id 1;
                        // counting them as OOV is the same outcome.
                        raw_stats.count_token();
                        continue;
                    }
                    match counts.get_mut(w) {
                        Some(entry) => entry.0 += 1,
                        None => {
                            counts.insert(w.to_string(), (1, seen));
                        }
                    }
                    seen += 1;
                    raw_stats.count_token();
                }
                raw_stats.count_line_end();
            },
        )?;
        if counts.is_empty() {
            return Err(DataError::CorpusTooShort {
                path: corpus.path().to_path_buf(),
                found: "no words after preprocessing".into(),
                needed: "a word model needs text".into(),
            });
        }
        let mut ranked: Vec<(String, u64, u64)> =
            counts.into_iter().map(|(w, (c, f))| (w, c, f)).collect();
        // Descending count; ties by first occurrence (Keras's stable sort of an insertion-ordered
        // dict).
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));

        let mut words = Vec::with_capacity(ranked.len() + 1);
        let mut word_counts = Vec::with_capacity(ranked.len() + 1);
        if let Some(oov) = &config.oov_token {
            words.push(oov.clone());
            word_counts.push(0);
        }
        let keep = config
            .max_vocab
            .map_or(usize::MAX, |m| m as usize - 1 - words.len());
        let truncated = ranked.len() > keep;
        for (w, c, _) in ranked.into_iter().take(keep) {
            words.push(w);
            word_counts.push(c);
        }
        let vocab = WordVocab::from_words(config, words, word_counts)?;

        // Without truncation, or with an OOV id to stand in for dropped words, every raw word
        // becomes one token and the raw counts are exact. Otherwise Keras drops the rare words,
        // which shortens lines: measure again with the vocabulary.
        let stats = if !truncated || vocab.oov_id().is_some() {
            raw_stats.stats()
        } else {
            let mut measure = CountingSink::default();
            vocab.encode_corpus(corpus, &mut measure)?;
            measure.stats()
        };
        Ok((vocab, stats))
    }

    /// The configuration this vocabulary was fitted with.
    pub fn config(&self) -> &WordTokenizerConfig {
        &self.config
    }

    /// Number of ids, padding included (the output size of a model over this vocabulary; Keras's
    /// `len(word_index) + 1`, capped by `num_words`).
    pub fn size(&self) -> usize {
        self.words.len() + 1
    }

    /// The OOV id (1), if an OOV token is configured.
    pub fn oov_id(&self) -> Option<u32> {
        self.config.oov_token.as_ref().map(|_| 1)
    }

    /// The id of `word` (already lower-cased and split as the corpus was), if known.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The word of `id` (`None` for padding and unknown ids).
    pub fn word(&self, id: u32) -> Option<&str> {
        let i = (id as usize).checked_sub(1)?;
        self.words.get(i).map(String::as_str)
    }

    /// The words in id order (the first has id 1).
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The corpus frequency of each word, in id order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Streams the ids of `corpus` into `sink`, calling [`TokenSink::end_line`] after every line
    /// (Keras `texts_to_sequences` over the lines).
    pub fn encode_corpus(
        &self,
        corpus: &Corpus,
        sink: &mut dyn TokenSink,
    ) -> Result<(), DataError> {
        let mut failure: Option<DataError> = None;
        let oov = self.oov_id();
        let mut ids: Vec<u32> = Vec::new();
        for_each_clean_line(
            corpus.bytes(),
            corpus.path(),
            self.config.case_and_script(),
            |line| {
                if failure.is_some() {
                    return;
                }
                ids.clear();
                ids.extend(self.splitter.words(line).filter_map(|w| self.id(w).or(oov)));
                failure = sink.push_ids(&ids).and_then(|()| sink.end_line()).err();
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Encodes a short text (e.g. a prime for sampling) as one line. Unknown words become the
    /// OOV id when there is one; either way they are listed (once each) in `unknown`.
    pub fn encode_text(&self, text: &str) -> Encoded {
        let mut encoded = Encoded::default();
        let mut lowered = String::new();
        for c in text.chars() {
            if self.config.ascii_only && !c.is_ascii() {
                continue;
            }
            lowered.push(c);
        }
        if self.config.lowercase {
            lowered = lowered.to_lowercase();
        }
        for w in lowered
            .split(|c| c == '\n' || self.splitter.is_separator(c))
            .filter(|w| !w.is_empty())
        {
            match self.id(w) {
                Some(id) => encoded.ids.push(id),
                None => {
                    if let Some(oov) = self.oov_id() {
                        encoded.ids.push(oov);
                    }
                    if !encoded.unknown.iter().any(|u| u == w) {
                        encoded.unknown.push(w.to_string());
                    }
                }
            }
        }
        encoded
    }

    /// The words of `ids` joined by single spaces; padding is skipped, unknown ids become
    /// U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids.iter().filter(|&&id| id != PAD_ID) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(self.word(id).unwrap_or("\u{FFFD}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokenizer::VecSink;

    fn corpus(text: &str) -> (tempfile::TempDir, Corpus) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.txt");
        std::fs::write(&p, text).unwrap();
        let c = Corpus::open(&p).unwrap();
        (dir, c)
    }

    #[test]
    fn keras_word_index_by_frequency_then_first_occurrence() {
        // Hand-checked against keras.preprocessing.text.Tokenizer().fit_on_texts(lines):
        //   counts: the 3, cat 2, sat 1, on 1, mat 1, "it's" 1, “quoted” 1
        //   word_index: the 1, cat 2, sat 3, on 4, mat 5, it's 6, “quoted” 7
        let (_d, c) = corpus("The cat sat\non the MAT.\nThe cat: it's \u{201c}quoted\u{201d}");
        let (vocab, stats) = WordVocab::fit(&c, WordTokenizerConfig::keras()).unwrap();
        assert_eq!(
            vocab.words(),
            &[
                "the",
                "cat",
                "sat",
                "on",
                "mat",
                "it's",
                "\u{201c}quoted\u{201d}"
            ]
        );
        assert_eq!(vocab.counts(), &[3, 2, 1, 1, 1, 1, 1]);
        assert_eq!(vocab.size(), 8);
        assert_eq!(stats.tokens, 10);
        assert_eq!(stats.lines, 3);
        assert_eq!(stats.longest_line, 4);
        // Prefix samples: a line of n words gives n − 1 samples: 2 + 2 + 3.
        assert_eq!(stats.prefix_samples, 7);

        let mut sink = VecSink::default();
        vocab.encode_corpus(&c, &mut sink).unwrap();
        assert_eq!(sink.ids, vec![1, 2, 3, 4, 1, 5, 1, 2, 6, 7]);
        assert_eq!(sink.line_ends, vec![3, 6, 10]);
    }

    #[test]
    fn separators_are_space_and_filters_only() {
        // Keras splits on " " only: a carriage return and a no-break space stay inside words.
        let (_d, c) = corpus("a\rb a\u{a0}b\ta a");
        let (vocab, _) = WordVocab::fit(&c, WordTokenizerConfig::keras()).unwrap();
        assert_eq!(vocab.words(), &["a", "a\rb", "a\u{a0}b"]);
    }

    #[test]
    fn max_vocab_with_oov_token_maps_rare_words_to_id_1() {
        let config = WordTokenizerConfig {
            max_vocab: Some(4),
            oov_token: Some("<unk>".into()),
            ..WordTokenizerConfig::keras()
        };
        let (_d, c) = corpus("b a b c a b\nd");
        let (vocab, stats) = WordVocab::fit(&c, config).unwrap();
        // ids: 0 pad, 1 <unk>, 2 b, 3 a; c and d are out of vocabulary.
        assert_eq!(vocab.words(), &["<unk>", "b", "a"]);
        assert_eq!(vocab.size(), 4);
        let mut sink = VecSink::default();
        vocab.encode_corpus(&c, &mut sink).unwrap();
        assert_eq!(sink.ids, vec![2, 3, 2, 1, 3, 2, 1]);
        assert_eq!(stats.tokens, 7);
        let e = vocab.encode_text("B zz a");
        assert_eq!(e.ids, vec![2, 1, 3]);
        assert_eq!(e.unknown, vec!["zz".to_string()]);
        assert_eq!(vocab.decode(&[0, 2, 1, 3]), "b <unk> a");
    }

    #[test]
    fn max_vocab_without_oov_drops_rare_words_like_keras() {
        let config = WordTokenizerConfig {
            max_vocab: Some(3),
            ..WordTokenizerConfig::keras()
        };
        let (_d, c) = corpus("b a b c a b\nd e");
        let (vocab, stats) = WordVocab::fit(&c, config).unwrap();
        assert_eq!(vocab.words(), &["b", "a"]);
        let mut sink = VecSink::default();
        vocab.encode_corpus(&c, &mut sink).unwrap();
        assert_eq!(sink.ids, vec![1, 2, 1, 2, 1]);
        // The second line lost both its words: measured after dropping.
        assert_eq!(stats.tokens, 5);
        assert_eq!(stats.lines, 1);
        assert_eq!(stats.prefix_samples, 4);
    }

    #[test]
    fn max_vocab_too_small_is_an_option_error() {
        let (_d, c) = corpus("a b");
        let config = WordTokenizerConfig {
            max_vocab: Some(1),
            ..WordTokenizerConfig::keras()
        };
        assert!(matches!(
            WordVocab::fit(&c, config),
            Err(DataError::InvalidOption {
                name: "--max-vocab",
                ..
            })
        ));
    }

    #[test]
    fn serde_round_trip_rebuilds_the_index() {
        let (_d, c) = corpus("x y y");
        let (vocab, _) = WordVocab::fit(&c, WordTokenizerConfig::keras()).unwrap();
        let json = serde_json::to_string(&vocab).unwrap();
        let back: WordVocab = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.id("y"), Some(1));
        assert_eq!(back.id("x"), Some(2));
        let dup = json.replace("[\"y\",\"x\"]", "[\"y\",\"y\"]");
        assert_ne!(dup, json);
        assert!(serde_json::from_str::<WordVocab>(&dup).is_err());
    }

    #[test]
    fn a_corpus_without_words_is_too_short() {
        let (_d, c) = corpus("... !!! \n ,,,");
        assert!(matches!(
            WordVocab::fit(&c, WordTokenizerConfig::keras()),
            Err(DataError::CorpusTooShort { .. })
        ));
    }
}
