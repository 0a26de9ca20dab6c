//! The character tokeniser: one id per Unicode scalar value of the preprocessed text.
//!
//! Ids are assigned in code-point order from 0 (the seed used a Python `set`, whose order varies
//! from run to run; sorting makes vocabularies reproducible). There is no padding id: the seed's
//! character task feeds one-hot vectors of exactly the symbols present (42 for Alice).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::corpus::Corpus;
use super::error::DataError;
use super::text::{CaseAndScript, LineMode, for_each_char, for_each_char_run};
use super::tokenizer::{CorpusStats, Encoded, TokenSink};

/// How text becomes characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CharTokenizerConfig {
    /// Lower-case the text.
    pub lowercase: bool,
    /// Drop non-ASCII bytes (and do not require UTF-8).
    pub ascii_only: bool,
    /// Line handling: the seed's strip-and-join, or the text verbatim.
    pub lines: LineMode,
}

impl CharTokenizerConfig {
    /// The seed's character experiment: lines stripped, lower-cased, non-ASCII dropped, joined
    /// with single spaces.
    pub const SEED: CharTokenizerConfig = CharTokenizerConfig {
        lowercase: true,
        ascii_only: true,
        lines: LineMode::StripAndJoin,
    };

    fn case_and_script(&self) -> CaseAndScript {
        CaseAndScript {
            lowercase: self.lowercase,
            ascii_only: self.ascii_only,
        }
    }
}

impl Default for CharTokenizerConfig {
    fn default() -> Self {
        CharTokenizerConfig::SEED
    }
}

/// A fitted character vocabulary: the sorted symbols of a corpus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CharVocabRepr", into = "CharVocabRepr")]
pub struct CharVocab {
    config: CharTokenizerConfig,
    /// `symbols[id]`, strictly increasing code points.
    symbols: Vec<char>,
    /// Fast path for ASCII: `ascii_ids[b]` is the id of `b`, or `u32::MAX`.
    ascii_ids: Box<[u32; 128]>,
}

/// The serialised form: config and symbols (the lookup table is rebuilt).
#[derive(Serialize, Deserialize)]
struct CharVocabRepr {
    config: CharTokenizerConfig,
    symbols: Vec<char>,
}

impl TryFrom<CharVocabRepr> for CharVocab {
    type Error = DataError;
    fn try_from(repr: CharVocabRepr) -> Result<Self, DataError> {
        CharVocab::from_symbols(repr.config, repr.symbols)
    }
}

impl From<CharVocab> for CharVocabRepr {
    fn from(v: CharVocab) -> Self {
        CharVocabRepr {
            config: v.config,
            symbols: v.symbols,
        }
    }
}

const NO_ID: u32 = u32::MAX;

impl CharVocab {
    /// A vocabulary of exactly `symbols`, which must be sorted and distinct.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidVocabulary`] if `symbols` is empty, unsorted or has duplicates.
    pub fn from_symbols(
        config: CharTokenizerConfig,
        symbols: Vec<char>,
    ) -> Result<CharVocab, DataError> {
        if symbols.is_empty() {
            return Err(DataError::InvalidVocabulary(
                "a character vocabulary needs at least one symbol, found none".into(),
            ));
        }
        if let Some(w) = symbols.windows(2).find(|w| w[0] >= w[1]) {
            return Err(DataError::InvalidVocabulary(format!(
                "character symbols must be sorted and distinct, found {:?} before {:?}",
                w[0], w[1]
            )));
        }
        let mut ascii_ids = Box::new([NO_ID; 128]);
        for (id, &c) in symbols.iter().enumerate() {
            if c.is_ascii() {
                ascii_ids[c as usize] = id as u32;
            }
        }
        Ok(CharVocab {
            config,
            symbols,
            ascii_ids,
        })
    }

    /// Fits a vocabulary to `corpus`: one pass over the preprocessed text.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidUtf8`] (Unicode mode), [`DataError::CorpusTooShort`] if nothing is
    /// left after preprocessing.
    pub fn fit(
        corpus: &Corpus,
        config: CharTokenizerConfig,
    ) -> Result<(CharVocab, CorpusStats), DataError> {
        let mut seen_ascii = [false; 128];
        let mut seen_other = BTreeSet::new();
        let tokens = for_each_char_run(
            corpus.bytes(),
            corpus.path(),
            config.case_and_script(),
            config.lines,
            |run| {
                if run.is_ascii() {
                    for b in run.bytes() {
                        seen_ascii[b as usize] = true;
                    }
                } else {
                    for c in run.chars() {
                        if c.is_ascii() {
                            seen_ascii[c as usize] = true;
                        } else {
                            seen_other.insert(c);
                        }
                    }
                }
            },
        )?;
        if tokens == 0 {
            return Err(DataError::CorpusTooShort {
                path: corpus.path().to_path_buf(),
                found: "no characters left after preprocessing".into(),
                needed: "a character model needs text".into(),
            });
        }
        let symbols: Vec<char> = (0u8..128)
            .filter(|&b| seen_ascii[b as usize])
            .map(char::from)
            .chain(seen_other)
            .collect();
        let vocab = CharVocab::from_symbols(config, symbols)?;
        Ok((vocab, CorpusStats::stream(tokens)))
    }

    /// The preprocessing this vocabulary was fitted with.
    pub fn config(&self) -> &CharTokenizerConfig {
        &self.config
    }

    /// Number of symbols (ids are `0..size`).
    pub fn size(&self) -> usize {
        self.symbols.len()
    }

    /// The symbols in id order.
    pub fn symbols(&self) -> &[char] {
        &self.symbols
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<u32> {
        if c.is_ascii() {
            let id = self.ascii_ids[c as usize];
            (id != NO_ID).then_some(id)
        } else {
            self.symbols.binary_search(&c).ok().map(|i| i as u32)
        }
    }

    /// The symbol of `id`.
    pub fn symbol(&self, id: u32) -> Option<char> {
        self.symbols.get(id as usize).copied()
    }

    /// Streams the ids of `corpus` into `sink`, preprocessed as at fit time.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidVocabulary`] if the corpus has a character the vocabulary lacks (it
    /// was fitted on another text), or what the sink or the preprocessing reports.
    pub fn encode_corpus(
        &self,
        corpus: &Corpus,
        sink: &mut dyn TokenSink,
    ) -> Result<(), DataError> {
        let mut failure: Option<DataError> = None;
        let mut ids: Vec<u32> = Vec::new();
        for_each_char_run(
            corpus.bytes(),
            corpus.path(),
            self.config.case_and_script(),
            self.config.lines,
            |run| {
                if failure.is_some() {
                    return;
                }
                ids.clear();
                let mut unknown = None;
                if run.is_ascii() {
                    for b in run.bytes() {
                        let id = self.ascii_ids[b as usize];
                        if id == NO_ID {
                            unknown = Some(char::from(b));
                            break;
                        }
                        ids.push(id);
                    }
                } else {
                    for c in run.chars() {
                        match self.id(c) {
                            Some(id) => ids.push(id),
                            None => {
                                unknown = Some(c);
                                break;
                            }
                        }
                    }
                }
                failure = match unknown {
                    Some(c) => Some(DataError::InvalidVocabulary(format!(
                        "character {c:?} of {} is not in the vocabulary",
                        corpus.path().display()
                    ))),
                    None => sink.push_ids(&ids).err(),
                };
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Encodes a short text (e.g. a prime for sampling) with the same case and script handling
    /// as the corpus. Line structure is kept as given. Characters outside the vocabulary are
    /// left out of `ids` and listed (once each, in order of appearance) in `unknown`.
    pub fn encode_text(&self, text: &str) -> Encoded {
        let mut encoded = Encoded::default();
        let options = self.config.case_and_script();
        let result = for_each_char(
            text.as_bytes(),
            std::path::Path::new("<text>"),
            options,
            LineMode::Keep,
            |c| match self.id(c) {
                Some(id) => encoded.ids.push(id),
                None => {
                    let s = c.to_string();
                    if !encoded.unknown.contains(&s) {
                        encoded.unknown.push(s);
                    }
                }
            },
        );
        // A `&str` is valid UTF-8, so preprocessing cannot fail.
        debug_assert!(result.is_ok());
        encoded
    }

    /// The text of `ids`; ids outside the vocabulary become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| self.symbol(id).unwrap_or('\u{FFFD}'))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokenizer::VecSink;

    fn corpus(text: &[u8]) -> (tempfile::TempDir, Corpus) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.txt");
        std::fs::write(&p, text).unwrap();
        let c = Corpus::open(&p).unwrap();
        (dir, c)
    }

    #[test]
    fn seed_vocabulary_is_sorted_and_encodes_round_trip() {
        let (_d, c) = corpus("Ab\u{201c}a\nB!\n".as_bytes());
        let (vocab, stats) = CharVocab::fit(&c, CharTokenizerConfig::SEED).unwrap();
        // Text after preprocessing: "aba b!" (quote dropped, lines joined by a space).
        assert_eq!(vocab.symbols(), &[' ', '!', 'a', 'b']);
        assert_eq!(stats.tokens, 6);
        let mut sink = VecSink::default();
        vocab.encode_corpus(&c, &mut sink).unwrap();
        assert_eq!(sink.ids, vec![2, 3, 2, 0, 3, 1]);
        assert_eq!(vocab.decode(&sink.ids), "aba b!");
    }

    #[test]
    fn unicode_mode_keeps_non_ascii_symbols_in_code_point_order() {
        let config = CharTokenizerConfig {
            lowercase: false,
            ascii_only: false,
            lines: LineMode::Keep,
        };
        let (_d, c) = corpus("éa\nÅ".as_bytes());
        let (vocab, stats) = CharVocab::fit(&c, config).unwrap();
        assert_eq!(vocab.symbols(), &['\n', 'a', 'Å', 'é']);
        assert_eq!(stats.tokens, 4);
        assert_eq!(vocab.id('é'), Some(3));
        assert_eq!(vocab.id('z'), None);
    }

    #[test]
    fn encode_text_reports_unknown_characters() {
        let (_d, c) = corpus(b"abc abc");
        let (vocab, _) = CharVocab::fit(&c, CharTokenizerConfig::SEED).unwrap();
        let e = vocab.encode_text("Cab? zz");
        assert_eq!(vocab.decode(&e.ids), "cab ");
        assert_eq!(e.unknown, vec!["?".to_string(), "z".to_string()]);
    }

    #[test]
    fn serde_round_trip_and_rejects_unsorted_symbols() {
        let vocab = CharVocab::from_symbols(CharTokenizerConfig::SEED, vec!['a', 'é']).unwrap();
        let json = serde_json::to_string(&vocab).unwrap();
        let back: CharVocab = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.id('a'), Some(0));
        let bad = json.replace("[\"a\",\"é\"]", "[\"é\",\"a\"]");
        assert_ne!(bad, json);
        assert!(serde_json::from_str::<CharVocab>(&bad).is_err());
    }

    #[test]
    fn nothing_left_after_preprocessing_is_too_short() {
        let (_d, c) = corpus("\u{201c}\u{201d}\n \n".as_bytes());
        let err = CharVocab::fit(&c, CharTokenizerConfig::SEED).unwrap_err();
        assert!(matches!(err, DataError::CorpusTooShort { .. }), "{err}");
    }
}
