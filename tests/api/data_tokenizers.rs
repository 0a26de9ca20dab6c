//! Tokenisers on arbitrary input (proptest): no panics, ids in range, round trips, and the word
//! tokeniser agrees with a plain re-statement of Keras's `text_to_word_sequence`.

use proptest::prelude::*;
use recur::engine::data::tokenizer::VecSink;
use recur::engine::data::word_tokenizer::KERAS_FILTERS;
use recur::engine::data::{
    CharTokenizerConfig, Corpus, DataError, LineMode, Tokenizer, TokenizerConfig,
    WordTokenizerConfig,
};

fn corpus_of(bytes: &[u8]) -> Option<(tempfile::TempDir, Corpus)> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.txt");
    std::fs::write(&p, bytes).unwrap();
    Corpus::open(&p).ok().map(|c| (dir, c))
}

/// Keras: lower, every filter character → " ", split(" "), drop empties; per line.
fn keras_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let lowered = line.to_lowercase();
        let replaced: String = lowered
            .chars()
            .map(|c| if KERAS_FILTERS.contains(c) { ' ' } else { c })
            .collect();
        out.extend(
            replaced
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(String::from),
        );
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn unicode_chars_round_trip(text in "\\PC{1,200}") {
        let config = TokenizerConfig::Char(CharTokenizerConfig {
            lowercase: false,
            ascii_only: false,
            lines: LineMode::Keep,
        });
        let Some((_d, corpus)) = corpus_of(text.as_bytes()) else { return Ok(()) };
        let (tok, stats) = Tokenizer::fit(&corpus, &config).unwrap();
        let mut sink = VecSink::default();
        tok.encode_corpus(&corpus, &mut sink).unwrap();
        prop_assert_eq!(stats.tokens as usize, sink.ids.len());
        prop_assert!(sink.ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
        prop_assert_eq!(tok.decode(&sink.ids), text);
    }

    #[test]
    fn ascii_only_accepts_any_bytes(bytes in proptest::collection::vec(1u8..=255, 1..300)) {
        let Some((_d, corpus)) = corpus_of(&bytes) else { return Ok(()) };
        match Tokenizer::fit(&corpus, &TokenizerConfig::Char(CharTokenizerConfig::SEED)) {
            Ok((tok, stats)) => {
                let mut sink = VecSink::default();
                tok.encode_corpus(&corpus, &mut sink).unwrap();
                prop_assert_eq!(stats.tokens as usize, sink.ids.len());
                let text = tok.decode(&sink.ids);
                prop_assert!(text.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()));
                prop_assert!(!text.starts_with(' ') || bytes.iter().any(|&b| b >= 0x80));
            }
            Err(DataError::CorpusTooShort { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn unicode_mode_rejects_or_accepts_like_std(bytes in proptest::collection::vec(1u8..=255, 1..300)) {
        let Some((_d, corpus)) = corpus_of(&bytes) else { return Ok(()) };
        let config = TokenizerConfig::Word(WordTokenizerConfig::keras());
        match (std::str::from_utf8(&bytes), Tokenizer::fit(&corpus, &config)) {
            (Err(e), Err(DataError::InvalidUtf8 { offset, .. })) => {
                prop_assert_eq!(offset as usize, e.valid_up_to());
            }
            (Ok(_), Ok(_)) | (Ok(_), Err(DataError::CorpusTooShort { .. })) => {}
            (utf8, fit) => prop_assert!(false, "from_utf8 {utf8:?} but fit {fit:?}"),
        }
    }

    #[test]
    fn words_match_keras_text_to_word_sequence(
        text in "([a-zA-Zé'’]{1,6}|[ ,.!?\\t\\n\\r\u{a0}-]{1,3}){1,40}"
    ) {
        let Some((_d, corpus)) = corpus_of(text.as_bytes()) else { return Ok(()) };
        let expected = keras_words(&text);
        let config = TokenizerConfig::Word(WordTokenizerConfig::keras());
        match Tokenizer::fit(&corpus, &config) {
            Ok((tok, stats)) => {
                let mut sink = VecSink::default();
                tok.encode_corpus(&corpus, &mut sink).unwrap();
                prop_assert_eq!(stats.tokens as usize, expected.len());
                prop_assert!(sink.ids.iter().all(|&id| id >= 1 && (id as usize) < tok.vocab_size()));
                prop_assert_eq!(tok.decode(&sink.ids), expected.join(" "));
            }
            Err(DataError::CorpusTooShort { .. }) => prop_assert!(expected.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
