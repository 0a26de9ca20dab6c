//! The seed experiments' data, reproduced by the library: counts and vocabularies that the
//! Keras originals report (issue 4: 140,159 windows and 42 symbols for Alice; 98,675 samples,
//! 8,639 word ids and length 20 for Sherlock). Skipped, with a message, without ../shared/data.

use std::path::{Path, PathBuf};

use recur::engine::data::corpus::{ChecksumStatus, named_corpus, verify_named_corpus};
use recur::engine::data::{
    CharTokenizerConfig, Corpus, DatasetConfig, EpochOrder, Minibatch, PrepareOptions, Tokenizer,
    TokenizerConfig, WordTokenizerConfig, prepare,
};
use recur::engine::data::{Dataset, ManyToOne};

fn shared(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        println!("skipping: {} not found", p.display());
        None
    }
}

#[test]
fn alice_char_task_matches_the_seed() {
    let Some(path) = shared("alice.txt") else {
        return;
    };
    let corpus = Corpus::open(&path).unwrap();
    assert_eq!(
        verify_named_corpus(&corpus, named_corpus("alice").unwrap()),
        ChecksumStatus::Match
    );
    let run = tempfile::tempdir().unwrap();
    let data = prepare(
        &corpus,
        &PrepareOptions {
            tokenizer: TokenizerConfig::Char(CharTokenizerConfig::SEED),
            dataset: DatasetConfig::Windows {
                steps: 10,
                stride: 1,
            },
            val_frac: 0.0,
            cache_path: Some(run.path().join("tokens.bin")),
        },
    )
    .unwrap();
    assert_eq!(data.tokenizer.vocab_size(), 42);
    assert_eq!(data.train.num_samples(), 140_159);
    let Tokenizer::Char(vocab) = &data.tokenizer else {
        panic!("char tokenizer expected")
    };
    // The seed's 42 symbols (Python: sorted(set(text)) after the seed's preprocessing).
    let symbols: String = vocab.symbols().iter().collect();
    assert_eq!(symbols, " !()*,-.03:;?[]_abcdefghijklmnopqrstuvwxyz");

    // The first window and label, decoded, are the start of the preprocessed text.
    let Dataset::Windows(windows) = &data.train else {
        panic!("windows expected")
    };
    let mut mb = Minibatch::new();
    EpochOrder::sequential(windows.len(), 1).fill(windows, 0, &mut mb);
    let first_line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap()
        .to_lowercase();
    let ascii: String = first_line.chars().filter(char::is_ascii).collect();
    let window = vocab.decode(&mb.inputs);
    let label = vocab.decode(&mb.targets);
    assert_eq!(format!("{window}{label}"), ascii[..11]);
}

#[test]
fn sherlock_word_task_matches_the_seed() {
    let Some(path) = shared("sherlock.txt") else {
        return;
    };
    let corpus = Corpus::open(&path).unwrap();
    assert_eq!(
        verify_named_corpus(&corpus, named_corpus("sherlock").unwrap()),
        ChecksumStatus::Match
    );
    let data = prepare(
        &corpus,
        &PrepareOptions {
            tokenizer: TokenizerConfig::Word(WordTokenizerConfig::keras()),
            dataset: DatasetConfig::LinePrefixes { max_steps: None },
            val_frac: 0.0,
            cache_path: None,
        },
    )
    .unwrap();
    assert_eq!(data.tokenizer.vocab_size(), 8_639);
    assert_eq!(data.train.num_samples(), 98_675);
    assert_eq!(data.stats.longest_line, 20);
    assert_eq!(data.train.steps(), 19);
    let Tokenizer::Word(vocab) = &data.tokenizer else {
        panic!("word tokenizer expected")
    };
    // Keras's word_index on this text starts (checked with the seed's Tokenizer semantics):
    // the 5529, and 2878, to 2721, of 2645, i 2603, a 2597, ” 2292.
    let head: Vec<(&str, u64)> = vocab
        .words()
        .iter()
        .zip(vocab.counts())
        .take(7)
        .map(|(w, &c)| (w.as_str(), c))
        .collect();
    assert_eq!(
        head,
        vec![
            ("the", 5529),
            ("and", 2878),
            ("to", 2721),
            ("of", 2645),
            ("i", 2603),
            ("a", 2597),
            ("\u{201d}", 2292)
        ]
    );
    let prime = data.tokenizer.encode_text("I will close the door if");
    assert!(prime.unknown.is_empty(), "{:?}", prime.unknown);
    assert_eq!(prime.ids.len(), 6);
    assert_eq!(
        data.tokenizer.decode(&prime.ids),
        "i will close the door if"
    );
}
