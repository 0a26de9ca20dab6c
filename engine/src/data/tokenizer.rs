//! The tokeniser as one serialisable value (for checkpoints and caches), the sinks that
//! receive streamed token ids, and the corpus statistics datasets are checked against.

use serde::{Deserialize, Serialize};

use super::char_tokenizer::{CharTokenizerConfig, CharVocab};
use super::corpus::Corpus;
use super::error::DataError;
use super::hash::fnv1a64;
use super::word_tokenizer::{WordTokenizerConfig, WordVocab};

/// Receives the ids of a corpus as a tokeniser streams them.
pub trait TokenSink {
    /// One token id.
    fn push(&mut self, id: u32) -> Result<(), DataError>;
    /// Several token ids, in order (the tokenisers hand over a line at a time).
    fn push_ids(&mut self, ids: &[u32]) -> Result<(), DataError> {
        ids.iter().try_for_each(|&id| self.push(id))
    }
    /// The end of a line (word tokeniser only; the character tokeniser has no line records).
    fn end_line(&mut self) -> Result<(), DataError> {
        Ok(())
    }
}

/// Collects ids and line ends in memory (tests, short texts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VecSink {
    /// The ids.
    pub ids: Vec<u32>,
    /// `ids.len()` at the end of every line that had at least one token.
    pub line_ends: Vec<u64>,
}

impl TokenSink for VecSink {
    fn push(&mut self, id: u32) -> Result<(), DataError> {
        self.ids.push(id);
        Ok(())
    }
    fn push_ids(&mut self, ids: &[u32]) -> Result<(), DataError> {
        self.ids.extend_from_slice(ids);
        Ok(())
    }
    fn end_line(&mut self) -> Result<(), DataError> {
        let end = self.ids.len() as u64;
        if self.line_ends.last().copied().unwrap_or(0) != end {
            self.line_ends.push(end);
        }
        Ok(())
    }
}

/// What a tokenised corpus holds, known before anything is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusStats {
    /// Token ids in the stream.
    pub tokens: u64,
    /// Lines with at least one token (0 for the character tokeniser, which has no lines).
    pub lines: u64,
    /// Tokens in the longest line.
    pub longest_line: u64,
    /// Samples of the per-line prefix dataset: Σ over lines of (tokens − 1).
    pub prefix_samples: u64,
}

impl CorpusStats {
    /// Stats of a stream without line structure.
    pub fn stream(tokens: u64) -> CorpusStats {
        CorpusStats {
            tokens,
            ..CorpusStats::default()
        }
    }
}

/// Counts tokens and line statistics without storing ids.
#[derive(Clone, Debug, Default)]
pub struct CountingSink {
    stats: CorpusStats,
    current_line: u64,
}

impl CountingSink {
    /// One more token.
    pub fn count_token(&mut self) {
        self.stats.tokens += 1;
        self.current_line += 1;
    }

    /// The current line ends.
    pub fn count_line_end(&mut self) {
        if self.current_line > 0 {
            self.stats.lines += 1;
            self.stats.longest_line = self.stats.longest_line.max(self.current_line);
            self.stats.prefix_samples += self.current_line - 1;
        }
        self.current_line = 0;
    }

    /// The statistics so far.
    pub fn stats(&self) -> CorpusStats {
        self.stats
    }
}

impl TokenSink for CountingSink {
    fn push(&mut self, _id: u32) -> Result<(), DataError> {
        self.count_token();
        Ok(())
    }
    fn push_ids(&mut self, ids: &[u32]) -> Result<(), DataError> {
        self.stats.tokens += ids.len() as u64;
        self.current_line += ids.len() as u64;
        Ok(())
    }
    fn end_line(&mut self) -> Result<(), DataError> {
        self.count_line_end();
        Ok(())
    }
}

/// A short text encoded with a fitted vocabulary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The ids (unknown symbols left out, or the OOV id where the vocabulary has one).
    pub ids: Vec<u32>,
    /// Symbols or words the vocabulary lacks, once each, in order of appearance.
    pub unknown: Vec<String>,
}

/// How to tokenise a corpus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenizerConfig {
    /// One id per character.
    Char(CharTokenizerConfig),
    /// Keras-style words.
    Word(WordTokenizerConfig),
}

impl TokenizerConfig {
    /// A stable 64-bit hash of the configuration (FNV-1a of its JSON), for cache keys.
    pub fn stable_hash(&self) -> u64 {
        let json = serde_json::to_vec(self).expect("a tokeniser config always serialises");
        fnv1a64(&json)
    }

    /// "characters" or "words".
    pub fn unit(&self) -> &'static str {
        match self {
            TokenizerConfig::Char(_) => "characters",
            TokenizerConfig::Word(_) => "words",
        }
    }
}

/// A fitted tokeniser: what a checkpoint stores to turn text into ids and back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// One tokeniser exists per run or checkpoint: its inline size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Tokenizer {
    /// Characters.
    Char(CharVocab),
    /// Words.
    Word(WordVocab),
}

impl Tokenizer {
    /// Fits `config` to `corpus` and returns the statistics of the token stream it will produce.
    /// Reads the corpus once (twice for a word vocabulary truncated without an OOV token) and
    /// writes nothing.
    pub fn fit(
        corpus: &Corpus,
        config: &TokenizerConfig,
    ) -> Result<(Tokenizer, CorpusStats), DataError> {
        match config {
            TokenizerConfig::Char(c) => {
                CharVocab::fit(corpus, *c).map(|(v, s)| (Tokenizer::Char(v), s))
            }
            TokenizerConfig::Word(w) => {
                WordVocab::fit(corpus, w.clone()).map(|(v, s)| (Tokenizer::Word(v), s))
            }
        }
    }

    /// The configuration it was fitted with.
    pub fn config(&self) -> TokenizerConfig {
        match self {
            Tokenizer::Char(v) => TokenizerConfig::Char(*v.config()),
            Tokenizer::Word(v) => TokenizerConfig::Word(v.config().clone()),
        }
    }

    /// Number of ids (`0..vocab_size`): the width of a one-hot input or of the output layer.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Char(v) => v.size(),
            Tokenizer::Word(v) => v.size(),
        }
    }

    /// Streams the ids of `corpus` into `sink`.
    pub fn encode_corpus(
        &self,
        corpus: &Corpus,
        sink: &mut dyn TokenSink,
    ) -> Result<(), DataError> {
        match self {
            Tokenizer::Char(v) => v.encode_corpus(corpus, sink),
            Tokenizer::Word(v) => v.encode_corpus(corpus, sink),
        }
    }

    /// Encodes a short text, e.g. a prime for sampling.
    pub fn encode_text(&self, text: &str) -> Encoded {
        match self {
            Tokenizer::Char(v) => v.encode_text(text),
            Tokenizer::Word(v) => v.encode_text(text),
        }
    }

    /// The text of `ids` (characters concatenated; words joined by spaces, padding skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Char(v) => v.decode(ids),
            Tokenizer::Word(v) => v.decode(ids),
        }
    }

    /// The JSON form stored in checkpoints and token caches.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a vocabulary always serialises")
    }

    /// Parses [`Tokenizer::to_json`]'s output, validating the vocabulary.
    pub fn from_json(json: &str) -> Result<Tokenizer, DataError> {
        Ok(serde_json::from_str(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text::LineMode;

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        let seed = TokenizerConfig::Char(CharTokenizerConfig::SEED);
        let raw = TokenizerConfig::Char(CharTokenizerConfig {
            lines: LineMode::Keep,
            ..CharTokenizerConfig::SEED
        });
        assert_eq!(seed.stable_hash(), seed.clone().stable_hash());
        assert_ne!(seed.stable_hash(), raw.stable_hash());
        assert_ne!(
            seed.stable_hash(),
            TokenizerConfig::Word(WordTokenizerConfig::keras()).stable_hash()
        );
    }

    #[test]
    fn tokenizer_json_round_trip() {
        let v = CharVocab::from_symbols(CharTokenizerConfig::SEED, vec![' ', 'a']).unwrap();
        let t = Tokenizer::Char(v);
        let json = t.to_json();
        assert!(json.contains("\"kind\":\"char\""), "{json}");
        assert_eq!(Tokenizer::from_json(&json).unwrap(), t);
        let w = WordVocab::from_words(
            WordTokenizerConfig::keras(),
            vec!["the".into(), "cat".into()],
            vec![2, 1],
        )
        .unwrap();
        let t = Tokenizer::Word(w);
        assert_eq!(Tokenizer::from_json(&t.to_json()).unwrap(), t);
        assert!(matches!(
            Tokenizer::from_json("{\"kind\":\"char\"}"),
            Err(DataError::VocabularyJson(_))
        ));
    }

    #[test]
    fn counting_sink_counts_lines_with_tokens_only() {
        let mut s = CountingSink::default();
        for n in [3u32, 0, 1, 5] {
            for _ in 0..n {
                s.push(7).unwrap();
            }
            s.end_line().unwrap();
        }
        let st = s.stats();
        assert_eq!(st.tokens, 9);
        assert_eq!(st.lines, 3);
        assert_eq!(st.longest_line, 5);
        assert_eq!(st.prefix_samples, 2 + 4);
    }
}
