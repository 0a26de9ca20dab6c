//! N-gram baselines: probabilities against hand-computed values (Kneser–Ney and add-k),
//! normalisation over the vocabulary (unseen ids and contexts included), the typed errors, and
//! the held-out split matching `recur train --val-frac`.

use proptest::prelude::*;
use recur_engine::data::dataset::DatasetConfig;
use recur_engine::data::{
    CharTokenizerConfig, Corpus, PrepareOptions, TokenizerConfig, WordTokenizerConfig, prepare,
};
use recur_engine::ngram::model::estimate_discounts;
use recur_engine::ngram::{
    Discounts, NgramConfig, NgramError, NgramModel, Smoothing, Vocabulary, fit_ranges,
    score_dataset, training_ranges,
};

const A: u32 = 0;
const B: u32 = 1;
const C: u32 = 2;

fn kn_fixed(order: usize, d: f64) -> NgramConfig {
    NgramConfig {
        order,
        smoothing: Smoothing::KneserNey(Discounts::Fixed([d; 3])),
    }
}

fn close(found: f64, expected: f64) {
    assert!(
        (found - expected).abs() < 1e-12,
        "found {found}, expected {expected}"
    );
}

/// Bigram KN with D = 0.5 on the one sequence `a b a b c` (V = 3, `<s>` before it).
///
/// Bigram counts: (<s>,a) 1, (a,b) 2, (b,a) 1, (b,c) 1. Continuation counts of the unigrams
/// (distinct left neighbours): a 2 (<s>, b), b 1, c 1; total 4, N₁ = 2, N₂ = 1, so
/// γ = 0.5·2 + 0.5·1 = 1.5 and p₁(a) = (2 − 0.5 + 1.5/3)/4 = 0.5, p₁(b) = p₁(c) = 0.25.
/// Context a: c(a,b) = 2, total 2, γ = 0.5: p(b|a) = (1.5 + 0.5·0.25)/2 = 0.8125,
/// p(a|a) = 0.5·0.5/2 = 0.125, p(c|a) = 0.5·0.25/2 = 0.0625.
/// Context b: (b,a) 1, (b,c) 1, γ = 1: p(a|b) = (0.5 + 0.5)/2 = 0.5, p(c|b) = (0.5 + 0.25)/2 =
/// 0.375, p(b|b) = 0.25/2 = 0.125. Context <s>: (<s>,a) 1, γ = 0.5: p(a|<s>) = 0.5 + 0.25 = 0.75.
/// Context c was never followed by anything: p(·|c) = p₁.
#[test]
fn bigram_kneser_ney_by_hand() {
    let vocab = Vocabulary::new(3, None).unwrap();
    let m = NgramModel::fit(kn_fixed(2, 0.5), vocab, [vec![A, B, A, B, C]]).unwrap();
    for (ctx, w, p) in [
        (&[][..], A, 0.75),
        (&[][..], B, 0.125),
        (&[][..], C, 0.125),
        (&[A][..], B, 0.8125),
        (&[A][..], A, 0.125),
        (&[A][..], C, 0.0625),
        (&[B][..], A, 0.5),
        (&[B][..], C, 0.375),
        (&[B][..], B, 0.125),
        (&[C][..], A, 0.5),
        (&[C][..], B, 0.25),
        (&[C][..], C, 0.25),
    ] {
        close(m.probability(ctx, w).unwrap(), p);
    }
    // Only the last n − 1 ids of a longer context matter.
    close(m.probability(&[C, C, A], B).unwrap(), 0.8125);
    assert_eq!(m.smoothing_count(&[A]), Some(2));
    assert_eq!(m.smoothing_count(&[A, B]), Some(2));
    assert_eq!(m.smoothing_count(&[A, B, C]), None);
}

/// Trigram KN with D = 0.5 on `a b a b c`: the bigram and unigram levels are those of
/// `bigram_kneser_ney_by_hand` (the continuation counts happen to equal the raw bigram counts).
/// Context (a,b): (a,b,a) 1, (a,b,c) 1, γ = 1: p(c|a,b) = (0.5 + p₂(c|b))/2 = (0.5 + 0.375)/2 =
/// 0.4375, p(a|a,b) = (0.5 + 0.5)/2 = 0.5, p(b|a,b) = 0.125/2 = 0.0625.
/// Context (<s>,<s>): (<s>,<s>,a) 1, γ = 0.5: p(a) = 0.5 + 0.5·0.75 = 0.875, p(b) = 0.5·0.125.
/// Context (c,a) unseen: p(·|c,a) = p₂(·|a).
#[test]
fn trigram_kneser_ney_by_hand() {
    let vocab = Vocabulary::new(3, None).unwrap();
    let m = NgramModel::fit(kn_fixed(3, 0.5), vocab, [vec![A, B, A, B, C]]).unwrap();
    close(m.probability(&[A, B], C).unwrap(), 0.4375);
    close(m.probability(&[A, B], A).unwrap(), 0.5);
    close(m.probability(&[A, B], B).unwrap(), 0.0625);
    close(m.probability(&[], A).unwrap(), 0.875);
    close(m.probability(&[], B).unwrap(), 0.0625);
    close(m.probability(&[C, A], B).unwrap(), 0.8125);
    close(m.probability(&[C, A], C).unwrap(), 0.0625);
}

/// Lower-order n-grams that begin with `<s>` keep their raw counts (they have no other left
/// neighbour): lines `a b` and `a c`, trigram. (<s>,a) occurs twice, always after <s>: its
/// continuation count would be 1, its count is 2. (a,b) and (a,c) have one left neighbour each.
/// Unigram continuation counts: a 1 (<s>), b 1, c 1 → p₁ = 1/3 each (γ = 1.5·... = total mass).
/// p₂(a|<s>) = (2 − 0.5 + 0.5·p₁(a))/2 = (1.5 + 1/6)/2 = 5/6.
#[test]
fn begin_symbol_ngrams_keep_raw_counts() {
    let vocab = Vocabulary::new(3, None).unwrap();
    let m = NgramModel::fit(kn_fixed(3, 0.5), vocab, [vec![A, B], vec![A, C]]).unwrap();
    let s = m.begin_symbol();
    assert_eq!(m.smoothing_count(&[s, A]), Some(2));
    assert_eq!(m.smoothing_count(&[A, B]), Some(1));
    assert_eq!(m.smoothing_count(&[A]), Some(1));
    assert_eq!(m.smoothing_count(&[s, s, A]), Some(2));
    // Unigram: counts 1,1,1, total 3, γ = 1.5 → (0.5 + 0.5)/3 = 1/3.
    close(m.probability(&[C, C], A).unwrap(), 1.0 / 3.0);
    // p₂(a|<s>) = 5/6 as above; p₃(a|<s>,<s>) = (2 − 0.5 + 0.5·5/6)/2.
    close(
        m.probability(&[], A).unwrap(),
        (1.5 + 0.5 * 5.0 / 6.0) / 2.0,
    );
}

/// Add-k, k = 0.5, bigram on `a b a b c`, V = 3: p(w|h) = (c(hw) + 0.5)/(c(h) + 1.5).
#[test]
fn add_k_by_hand() {
    let vocab = Vocabulary::new(3, None).unwrap();
    let config = NgramConfig {
        order: 2,
        smoothing: Smoothing::AddK(0.5),
    };
    let m = NgramModel::fit(config, vocab, [vec![A, B, A, B, C]]).unwrap();
    close(m.probability(&[A], B).unwrap(), 2.5 / 3.5);
    close(m.probability(&[A], A).unwrap(), 0.5 / 3.5);
    close(m.probability(&[B], C).unwrap(), 1.5 / 3.5);
    close(m.probability(&[], A).unwrap(), 1.5 / 2.5);
    close(m.probability(&[C], A).unwrap(), 1.0 / 3.0); // unseen context: uniform
    // Unigram add-1 (Laplace): (c + 1)/(5 + 3).
    let unigram = NgramConfig {
        order: 1,
        smoothing: Smoothing::AddK(1.0),
    };
    let m = NgramModel::fit(unigram, vocab, [vec![A, B, A, B, C]]).unwrap();
    close(m.probability(&[B], A).unwrap(), 3.0 / 8.0);
    close(m.probability(&[], C).unwrap(), 2.0 / 8.0);
}

/// Chen & Goodman eq. 26 and its fallbacks.
#[test]
fn discount_estimates() {
    // Y = 10/20; D1 = 1 − 2·0.5·5/10; D2 = 2 − 3·0.5·3/5; D3 = 3 − 4·0.5·2/3.
    let d = estimate_discounts([10, 5, 3, 2]);
    close(d[0], 0.5);
    close(d[1], 1.1);
    close(d[2], 3.0 - 4.0 / 3.0);
    // Y = 4/6: D₂ = 2 − 3·(2/3)·1/1 = 0 would give γ = 0 after a context whose ids all
    // followed it twice (and unseen ids probability 0): fall back to Y for all three.
    assert_eq!(estimate_discounts([4, 1, 1, 1]), [4.0 / 6.0; 3]);
    // n₂ = 0: Ney's single discount Y = n₁/(n₁ + 2n₂) = 1 for all three.
    assert_eq!(estimate_discounts([3, 0, 1, 1]), [1.0; 3]);
    assert_eq!(estimate_discounts([0, 0, 0, 0]), [0.5; 3]);
    // Estimated discounts on a real model stay inside [0, r].
    let vocab = Vocabulary::new(3, None).unwrap();
    let seq: Vec<u32> = (0..200u32).map(|i| (i * i + i / 3) % 3).collect();
    let m = NgramModel::fit(
        NgramConfig {
            order: 3,
            smoothing: Smoothing::KNESER_NEY,
        },
        vocab,
        [seq],
    )
    .unwrap();
    for k in 1..=3 {
        let d = m.discounts(k).unwrap();
        for (r, &v) in d.iter().enumerate() {
            assert!(v > 0.0 && v <= (r + 1) as f64, "order {k}: {d:?}");
        }
    }
    assert_eq!(m.discounts(4), None);
}

#[test]
fn the_reserved_id_gets_no_mass_and_cannot_be_trained_on() {
    // Word vocabularies reserve id 0 for padding.
    let vocab = Vocabulary::new(4, Some(0)).unwrap();
    assert_eq!(vocab.predictable(), 3);
    let m = NgramModel::fit(kn_fixed(2, 0.75), vocab, [vec![1, 2, 3, 1]]).unwrap();
    let mut p = Vec::new();
    m.distribution(&[2], &mut p).unwrap();
    assert_eq!(p[0], 0.0);
    close(p.iter().sum(), 1.0);
    let err = NgramModel::fit(kn_fixed(2, 0.75), vocab, [vec![1, 0, 2]]).unwrap_err();
    assert!(
        matches!(err, NgramError::TokenOutOfVocabulary { id: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("id 0 reserved"), "{err}");
    let err = m.probability(&[1], 0).unwrap_err();
    assert!(matches!(err, NgramError::TokenOutOfVocabulary { .. }));
    let err = m.probability(&[7], 1).unwrap_err();
    assert!(matches!(
        err,
        NgramError::TokenOutOfVocabulary { id: 7, .. }
    ));
}

#[test]
fn bad_options_are_typed_errors() {
    let vocab = Vocabulary::new(3, None).unwrap();
    let fit = |config| NgramModel::fit(config, vocab, [vec![A, B]]);
    let err = fit(kn_fixed(0, 0.5)).unwrap_err();
    assert_eq!(err, NgramError::OrderTooSmall { found: 0 });
    assert!(err.to_string().contains("expected n ≥ 1, found 0"));
    for k in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = fit(NgramConfig {
            order: 2,
            smoothing: Smoothing::AddK(k),
        })
        .unwrap_err();
        assert!(matches!(err, NgramError::InvalidAddK { .. }), "{k}: {err}");
    }
    let err = fit(NgramConfig {
        order: 2,
        smoothing: Smoothing::KneserNey(Discounts::Fixed([0.5, 2.5, 1.0])),
    })
    .unwrap_err();
    assert_eq!(
        err,
        NgramError::InvalidDiscount {
            count: 2,
            found: 2.5
        }
    );
    assert!(matches!(
        Vocabulary::new(0, None).unwrap_err(),
        NgramError::EmptyVocabulary { .. }
    ));
    let err = Vocabulary::new(1, Some(0)).unwrap_err();
    assert!(err.to_string().contains("all reserved"), "{err}");
    // 8,639 word ids + <s> need 14 bits: at most 9 ids in a 128-bit key.
    let words = Vocabulary::new(8639, Some(0)).unwrap();
    let err = NgramModel::fit(kn_fixed(10, 0.5), words, [vec![1u32]]).unwrap_err();
    assert!(
        matches!(err, NgramError::OrderTooLarge { max: 9, .. }),
        "{err}"
    );
    assert!(NgramModel::fit(kn_fixed(9, 0.5), words, [vec![1u32]]).is_ok());
    let none: [Vec<u32>; 1] = [vec![]];
    assert_eq!(
        NgramModel::fit(kn_fixed(2, 0.5), vocab, none).unwrap_err(),
        NgramError::NoTrainingData
    );
}

#[test]
fn sampling_is_seeded_and_stays_in_the_vocabulary() {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    let vocab = Vocabulary::new(5, Some(0)).unwrap();
    let m = NgramModel::fit(kn_fixed(3, 0.75), vocab, [vec![1, 2, 3, 4, 1, 2, 3]]).unwrap();
    let draw = |seed| {
        m.sample(&mut ChaCha8Rng::seed_from_u64(seed), &[1, 2], 40)
            .unwrap()
    };
    let a = draw(7);
    assert_eq!(a, draw(7));
    assert_eq!(a.len(), 40);
    assert!(a.iter().all(|&id| (1..5).contains(&id)));
    // A strongly trained continuation dominates: after (1, 2) comes 3 most of the time.
    let threes = (0..200)
        .filter(|&s| {
            m.sample(&mut ChaCha8Rng::seed_from_u64(s), &[1, 2], 1)
                .unwrap()[0]
                == 3
        })
        .count();
    assert!(threes > 100, "{threes}");
}

fn arbitrary_model() -> impl Strategy<Value = (Vec<Vec<u32>>, usize, usize, bool, Option<u32>)> {
    (2usize..7, 1usize..5, any::<bool>(), any::<bool>()).prop_flat_map(
        |(size, order, add_k, reserve)| {
            let reserved = reserve.then_some(0u32);
            let low = u32::from(reserve);
            (
                prop::collection::vec(prop::collection::vec(low..size as u32, 0..12), 1..5),
                Just(size),
                Just(order),
                Just(add_k),
                Just(reserved),
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every conditional distribution sums to 1 over the predictable ids — for seen and unseen
    /// contexts, with ids never seen in training — and gives every predictable id mass > 0.
    #[test]
    fn distributions_sum_to_one(
        (sequences, size, order, add_k, reserved) in arbitrary_model(),
        context in prop::collection::vec(0u32..16, 0..5),
    ) {
        prop_assume!(sequences.iter().any(|s| !s.is_empty()));
        let vocab = Vocabulary::new(size, reserved).unwrap();
        let smoothing = if add_k { Smoothing::AddK(0.3) } else { Smoothing::KNESER_NEY };
        let m = NgramModel::fit(NgramConfig { order, smoothing }, vocab, sequences.clone()).unwrap();
        let low = u32::from(reserved.is_some());
        let context: Vec<u32> = context.iter().map(|&c| low + c % (size as u32 - low)).collect();
        let mut contexts = vec![context];
        // Every context that occurs in training, too.
        for s in &sequences {
            for i in 0..=s.len() {
                contexts.push(s[..i].to_vec());
            }
        }
        let mut p = Vec::new();
        for ctx in &contexts {
            m.distribution(ctx, &mut p).unwrap();
            let sum: f64 = p.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-9, "context {ctx:?}: sum {sum}");
            for (id, &q) in p.iter().enumerate() {
                if Some(id as u32) == reserved {
                    prop_assert_eq!(q, 0.0);
                } else {
                    prop_assert!(q > 0.0 && q < 1.0 + 1e-12, "p({id}) = {q}");
                }
            }
        }
    }
}

fn prepared(
    text: &str,
    tokenizer: TokenizerConfig,
    dataset: DatasetConfig,
    val_frac: f64,
) -> recur_engine::data::PreparedData {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.txt");
    std::fs::write(&path, text).unwrap();
    let corpus = Corpus::open(&path).unwrap();
    prepare(
        &corpus,
        &PrepareOptions {
            tokenizer,
            dataset,
            val_frac,
            cache_path: None,
        },
    )
    .unwrap()
}

/// Line prefixes: the n-gram trains on the lines (and the part of the boundary line) whose labels
/// are training samples, and scores exactly the validation samples.
#[test]
fn line_prefix_split_matches_the_trainer() {
    // Lines of 3, 2, 4 words: 2 + 1 + 3 = 6 prefix samples; val_frac 0.5 keeps samples 0..3
    // (line 1 and line 2) for training and holds out line 3's three labels.
    let text = "a b c\nb c\nc a b a\n";
    let config = DatasetConfig::LinePrefixes { max_steps: None };
    let data = prepared(
        text,
        TokenizerConfig::Word(WordTokenizerConfig::keras()),
        config,
        0.5,
    );
    let ranges = training_ranges(&data, &config, 0.5).unwrap();
    assert_eq!(ranges, vec![0..3, 3..5]);
    // val_frac 1/3 keeps 4 samples: line 3 contributes its first label (2 tokens).
    let ranges = training_ranges(&data, &config, 1.0 / 3.0).unwrap();
    assert_eq!(ranges, vec![0..3, 3..5, 5..7]);

    let model = fit_ranges(
        NgramConfig {
            order: 1,
            smoothing: Smoothing::AddK(1.0),
        },
        &data,
        &training_ranges(&data, &config, 0.5).unwrap(),
    )
    .unwrap();
    let score = score_dataset(&model, data.val.as_ref().unwrap()).unwrap();
    assert_eq!(score.tokens, 3);
    // Unigram add-1 over 5 training tokens (a 1, b 2, c 2), V = 3 words: the held-out labels are
    // a, b, a of "c a b a" → p = 2/8, 3/8, 2/8.
    let expected = -((2.0f64 / 8.0).ln() + (3.0f64 / 8.0).ln() + (2.0f64 / 8.0).ln());
    close(score.loss_sum, expected);
    assert_eq!(score.unseen_targets, 0);
}

/// Streams: the n-gram scores every target of every validation chunk (B × T per chunk), and a
/// bigram's context is the previous id of the same stream.
#[test]
fn stream_split_scores_every_validation_target() {
    let text = "abcabcabcabcabcabcabcabcabcabcabcabcabcabc";
    let config = DatasetConfig::Streams { batch: 2, steps: 3 };
    let data = prepared(
        text,
        TokenizerConfig::Char(CharTokenizerConfig::SEED),
        config,
        0.5,
    );
    let ranges = training_ranges(&data, &config, 0.5).unwrap();
    assert_eq!(ranges, vec![0..21]);
    let bigram = fit_ranges(kn_fixed(2, 0.5), &data, &ranges).unwrap();
    let val = data.val.as_ref().unwrap();
    let score = score_dataset(&bigram, val).unwrap();
    assert_eq!(score.tokens as usize, val.num_samples());
    // Training always follows a by b, b by c, c by a: every validation target but the first of
    // each stream (predicted from <s>) is the most likely continuation; the bigram beats the
    // unigram by far.
    let unigram = fit_ranges(kn_fixed(1, 0.5), &data, &ranges).unwrap();
    let uni = score_dataset(&unigram, val).unwrap();
    assert!(
        score.perplexity() < 0.6 * uni.perplexity(),
        "{} vs {}",
        score.perplexity(),
        uni.perplexity()
    );
    // Unigram: a, b, c 7 times each in training → p = (6.5 + 1.5/3)/21 = 1/3 each.
    assert!(
        (uni.perplexity() - 3.0).abs() < 1e-9,
        "{}",
        uni.perplexity()
    );
}
