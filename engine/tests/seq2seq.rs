//! The encoder–decoder against its plain f64 reference (loss and central-difference gradients,
//! including the gradient reaching the encoder through the decoder's initial state), greedy and
//! beam search (width 1 = greedy, a hand-built case where beam beats greedy, EOS and length
//! limits, length normalisation), scheduled sampling, typed errors, and a tiny end-to-end run.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_engine::kernels::{CellKind, RnnActivation};
use recur_engine::optim::{GradClip, OptimizerConfig};
use recur_engine::seq2seq::reference::RefSeq2Seq;
use recur_engine::seq2seq::train::{TeacherSchedule, TrainConfig, Trainer, exact_match_greedy};
use recur_engine::seq2seq::{
    BeamConfig, Bridge, Feeding, Hypothesis, Seq2SeqConfig, Seq2SeqError, Seq2SeqGrads,
    StepDecoder, beam_search, greedy_search,
};

fn tiny_config(
    cell: CellKind,
    bidirectional: bool,
    bridge: Bridge,
    layers: usize,
) -> Seq2SeqConfig {
    Seq2SeqConfig {
        embed_dim: 3,
        num_layers: layers,
        bidirectional,
        bridge,
        decoder_hidden: if bridge == Bridge::Dense { 5 } else { 4 },
        ..Seq2SeqConfig::new(cell, 5, 4, 4)
    }
}

/// A ragged batch: sources of lengths 3, 1, 4; targets of lengths 2, 0 (EOS only), 3.
fn tiny_batch() -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    (
        vec![vec![1, 4, 0], vec![3], vec![2, 2, 4, 1]],
        vec![vec![3, 0], vec![], vec![1, 2, 3]],
    )
}

const CASES: [(CellKind, bool, Bridge, usize); 5] = [
    (CellKind::Lstm, false, Bridge::Identity, 1),
    (CellKind::Gru, true, Bridge::Dense, 1),
    (CellKind::Rnn(RnnActivation::Tanh), true, Bridge::Sum, 1),
    (CellKind::Lstm, true, Bridge::Dense, 2),
    (CellKind::Lstm, true, Bridge::Sum, 1),
];

#[test]
fn teacher_forced_loss_matches_the_reference() {
    let (sources, targets) = tiny_batch();
    for (k, &(cell, bi, bridge, layers)) in CASES.iter().enumerate() {
        let model = tiny_config(cell, bi, bridge, layers)
            .init(10 + k as u64)
            .unwrap();
        let fast = model
            .loss(&sources, &targets, Feeding::Teacher, None)
            .unwrap();
        assert_eq!(fast.tokens, 8);
        let expected = RefSeq2Seq::from_model(&model).loss(&sources, &targets);
        let diff = (fast.mean_loss() - expected).abs();
        assert!(diff < 1e-5, "case {k}: {} vs {expected}", fast.mean_loss());
    }
}

/// Central differences of the f64 reference loss against the fast f32 gradient, every
/// parameter of every tensor — the encoder's included, whose only path to the loss is the
/// decoder's initial state.
#[test]
fn gradients_match_central_differences_of_the_reference() {
    let (sources, targets) = tiny_batch();
    for (k, &(cell, bi, bridge, layers)) in CASES.iter().enumerate() {
        let model = tiny_config(cell, bi, bridge, layers)
            .init(20 + k as u64)
            .unwrap();
        let mut grads = Seq2SeqGrads::zeros(&model);
        model
            .loss(&sources, &targets, Feeding::Teacher, Some(&mut grads))
            .unwrap();
        let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
        let analytic = grads.buffers();
        assert_eq!(names.len(), analytic.len());
        let mut reference = RefSeq2Seq::from_model(&model);
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        let mut encoder_norm = 0.0;
        for (p, name) in names.iter().enumerate() {
            let len = reference.params_mut()[p].len();
            assert_eq!(len, analytic[p].len(), "{name}");
            for i in 0..len {
                let original = reference.params_mut()[p][i];
                reference.params_mut()[p][i] = original + h;
                let plus = reference.loss(&sources, &targets);
                reference.params_mut()[p][i] = original - h;
                let minus = reference.loss(&sources, &targets);
                reference.params_mut()[p][i] = original;
                let numeric = (plus - minus) / (2.0 * h);
                let got = f64::from(analytic[p][i]);
                let err = (got - numeric).abs();
                worst = worst.max(err / (1e-3 + numeric.abs()));
                assert!(
                    err <= 2e-5 + 1e-3 * numeric.abs(),
                    "case {k} {name}[{i}]: fast {got} vs central difference {numeric}"
                );
                if name.starts_with("encoder.") || name.starts_with("source_embedding") {
                    encoder_norm += numeric * numeric;
                }
            }
        }
        assert!(
            encoder_norm > 1e-8,
            "case {k}: the encoder's gradient should not vanish"
        );
        eprintln!("case {k}: worst scaled gradient error {worst:.2e}");
    }
}

#[test]
fn full_teacher_ratio_is_teacher_forcing_and_zero_ratio_feeds_own_predictions() {
    let (sources, targets) = tiny_batch();
    let model = tiny_config(CellKind::Gru, false, Bridge::Identity, 1)
        .init(3)
        .unwrap();
    let mut g_teacher = Seq2SeqGrads::zeros(&model);
    let mut g_mixed = Seq2SeqGrads::zeros(&model);
    let a = model
        .loss(&sources, &targets, Feeding::Teacher, Some(&mut g_teacher))
        .unwrap();
    let mixed = Feeding::Mixed {
        teacher_ratio: 1.0,
        seed: 9,
    };
    let b = model
        .loss(&sources, &targets, mixed, Some(&mut g_mixed))
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(g_teacher, g_mixed);

    // Ratio 0: every input after the start token is the model's own argmax at the previous
    // step. Rebuild those inputs with the reference, one example at a time, and compare losses.
    let reference = RefSeq2Seq::from_model(&model);
    let own = Feeding::Mixed {
        teacher_ratio: 0.0,
        seed: 9,
    };
    let fast = model.loss(&sources, &targets, own, None).unwrap();
    let eos = model.config().eos();
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for (source, target) in sources.iter().zip(&targets) {
        let mut input = vec![eos];
        for _ in 0..target.len() {
            // Run the reference decoder over `input` and take the argmax of its last step.
            let next = reference_argmax_after(&reference, source, &input);
            input.push(next);
        }
        inputs.push(input);
        labels.push(target.iter().copied().chain([eos]).collect::<Vec<u32>>());
    }
    let (sum, count) = reference.loss_sum(&sources, &inputs, &labels);
    assert!(
        (fast.mean_loss() - sum / count as f64).abs() < 1e-5,
        "{} vs {}",
        fast.mean_loss(),
        sum / count as f64
    );
}

/// The reference decoder's argmax after reading `input` (start token first).
fn reference_argmax_after(reference: &RefSeq2Seq, source: &[u32], input: &[u32]) -> u32 {
    let classes = reference.classes;
    // Score every class as the label of the last step; the most probable has the least loss.
    let mut best = (f64::INFINITY, 0);
    for c in 0..classes as u32 {
        let mut labels = vec![0; input.len()];
        *labels.last_mut().unwrap() = c;
        let (sum_c, _) =
            reference.loss_sum(&[source.to_vec()], &[input.to_vec()], &[labels.clone()]);
        let mut base_labels = labels;
        *base_labels.last_mut().unwrap() = 0;
        let (sum_0, _) = reference.loss_sum(&[source.to_vec()], &[input.to_vec()], &[base_labels]);
        let last = sum_c - sum_0; // differs only in the last step's term
        if last < best.0 {
            best = (last, c);
        }
    }
    best.1
}

#[test]
fn greedy_is_batch_independent_and_beam_width_one_is_greedy() {
    for (k, &(cell, bi, bridge, layers)) in CASES.iter().enumerate() {
        let model = tiny_config(cell, bi, bridge, layers)
            .init(40 + k as u64)
            .unwrap();
        let (sources, _) = tiny_batch();
        let batched = model.greedy(&sources, 7).unwrap();
        for (source, out) in sources.iter().zip(&batched) {
            assert_eq!(&model.greedy(&[source], 7).unwrap()[0], out);
            let beam = model
                .beam(source, &BeamConfig::new(1, 7).with_length_penalty(0.0))
                .unwrap();
            assert_eq!(&beam[0].tokens, out, "case {k}");
            // And with length normalisation: one hypothesis, same tokens.
            let beam = model.beam(source, &BeamConfig::new(1, 7)).unwrap();
            assert_eq!(&beam[0].tokens, out, "case {k}");
        }
    }
}

/// A decoder whose next-token distribution depends only on the previous token: a bigram table
/// of probabilities, `table[prev][next]`. Class 0 is EOS; the start token is the last row.
struct TableDecoder {
    table: Vec<Vec<f64>>,
    prev: Vec<u32>,
}

impl TableDecoder {
    fn new(table: Vec<Vec<f64>>, rows: usize) -> Self {
        TableDecoder {
            table,
            prev: vec![0; rows],
        }
    }
}

impl StepDecoder for TableDecoder {
    fn classes(&self) -> usize {
        self.table[0].len()
    }
    fn eos(&self) -> u32 {
        0
    }
    fn start(&self) -> u32 {
        (self.table.len() - 1) as u32
    }
    fn rows(&self) -> usize {
        self.prev.len()
    }
    fn step_log_probs(
        &mut self,
        tokens: &[u32],
        log_probs: &mut [f32],
    ) -> Result<(), Seq2SeqError> {
        let c = self.classes();
        for (r, &t) in tokens.iter().enumerate() {
            self.prev[r] = t;
            for (j, &p) in self.table[t as usize].iter().enumerate() {
                log_probs[r * c + j] = (p as f32).ln();
            }
        }
        Ok(())
    }
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Seq2SeqError> {
        self.prev = parents.iter().map(|&p| self.prev[p]).collect();
        Ok(())
    }
}

/// Classes: 0 EOS, 1 A, 2 B, 3 C, 4 D; row 5 is the start token.
///
/// Greedy takes A (0.6), then C (0.35, first of a tie with D), then EOS (1.0): p = 0.21.
/// B (0.4) then EOS (0.9) has p = 0.36; a beam of 2 keeps B and finds it.
fn garden_path_table() -> Vec<Vec<f64>> {
    vec![
        vec![1.0, 0.0, 0.0, 0.0, 0.0],   // after EOS (never read)
        vec![0.3, 0.0, 0.0, 0.35, 0.35], // after A
        vec![0.9, 0.0, 0.0, 0.1, 0.0],   // after B
        vec![1.0, 0.0, 0.0, 0.0, 0.0],   // after C
        vec![1.0, 0.0, 0.0, 0.0, 0.0],   // after D
        vec![0.0, 0.6, 0.4, 0.0, 0.0],   // start
    ]
}

#[test]
fn beam_search_finds_the_better_sequence_greedy_misses() {
    let greedy = greedy_search(&mut TableDecoder::new(garden_path_table(), 1), 10).unwrap();
    assert_eq!(greedy[0].tokens, vec![1, 3]);
    assert!(greedy[0].finished);
    assert!((greedy[0].log_prob - (0.6f64 * 0.35).ln()).abs() < 1e-6);

    let config = BeamConfig::new(2, 10).with_length_penalty(0.0);
    let beam = beam_search(&mut TableDecoder::new(garden_path_table(), 2), &config).unwrap();
    assert_eq!(beam[0].tokens, vec![2]);
    assert!(beam[0].finished);
    assert!((beam[0].log_prob - (0.4f64 * 0.9).ln()).abs() < 1e-6);
    assert!(beam[0].log_prob > greedy[0].log_prob);
    // Best first; every finished hypothesis is listed.
    assert!(beam.windows(2).all(|w| w[0].score >= w[1].score));

    let one = beam_search(
        &mut TableDecoder::new(garden_path_table(), 1),
        &BeamConfig::new(1, 10).with_length_penalty(0.0),
    )
    .unwrap();
    assert_eq!(one[0], greedy[0]);
}

#[test]
fn eos_and_length_limits() {
    // EOS first: an empty, finished output.
    let eos_first = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.9, 0.1]];
    let g = greedy_search(&mut TableDecoder::new(eos_first.clone(), 3), 5).unwrap();
    assert!(g.iter().all(|h| h.tokens.is_empty() && h.finished));
    let b = beam_search(&mut TableDecoder::new(eos_first, 2), &BeamConfig::new(2, 5)).unwrap();
    assert!(b[0].tokens.is_empty() && b[0].finished);

    // Never EOS: stops after max_len tokens, unfinished.
    let never = vec![vec![0.0, 1.0], vec![0.0, 1.0], vec![0.0, 1.0]];
    let g = greedy_search(&mut TableDecoder::new(never.clone(), 2), 4).unwrap();
    assert!(g.iter().all(|h| h.tokens == vec![1; 4] && !h.finished));
    let b = beam_search(&mut TableDecoder::new(never, 3), &BeamConfig::new(3, 4)).unwrap();
    assert_eq!(b[0].tokens, vec![1; 4]);
    assert!(!b[0].finished);

    // A likely continuation beats a less likely EOS, up to the cap.
    let table = vec![
        vec![1.0, 0.0, 0.0],
        vec![0.2, 0.8, 0.0],
        vec![0.0, 0.5, 0.5],
    ];
    let g = greedy_search(&mut TableDecoder::new(table, 1), 3).unwrap();
    assert_eq!(g[0].tokens, vec![1, 1, 1]);
    assert!(!g[0].finished);

    // The max_len cap counts EOS: with max_len 1 only an immediate EOS finishes.
    let m = Seq2SeqConfig::new(CellKind::Gru, 3, 3, 4).init(1).unwrap();
    let out = m.beam(&[0, 1], &BeamConfig::new(2, 1)).unwrap();
    assert!(
        out.iter()
            .all(|h| h.tokens.len() + usize::from(h.finished) <= 1)
    );
}

#[test]
fn length_normalisation_prefers_the_longer_sequence_when_asked() {
    // start → EOS 0.3 (n = 1) or A 0.7; A → B 1.0; B → EOS 0.4 or C 0.6; C → C.
    // Short: ln 0.3 = −1.20; long "A B": ln 0.28 = −1.27 over n = 3.
    let table = vec![
        vec![1.0, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 1.0, 0.0],
        vec![0.4, 0.0, 0.0, 0.6],
        vec![0.0, 0.0, 0.0, 1.0],
        vec![0.3, 0.7, 0.0, 0.0],
    ];
    let raw = beam_search(
        &mut TableDecoder::new(table.clone(), 2),
        &BeamConfig::new(2, 6).with_length_penalty(0.0),
    )
    .unwrap();
    assert_eq!(raw[0].tokens, Vec::<u32>::new());
    let normalised = beam_search(
        &mut TableDecoder::new(table, 2),
        &BeamConfig::new(2, 6).with_length_penalty(1.0),
    )
    .unwrap();
    assert_eq!(normalised[0].tokens, vec![1, 2]);
    let Hypothesis {
        log_prob, score, ..
    } = normalised[0];
    assert!((score - log_prob / 3.0).abs() < 1e-12);
}

#[test]
fn bad_configurations_and_batches_are_typed_errors() {
    let base = Seq2SeqConfig::new(CellKind::Lstm, 5, 4, 8);
    let err = |c: Seq2SeqConfig| c.init(0).unwrap_err();
    assert_eq!(
        err(Seq2SeqConfig {
            decoder_hidden: 6,
            ..base.clone()
        }),
        Seq2SeqError::SizeMismatch {
            bridge: "identity",
            encoder: 8,
            decoder: 6
        }
    );
    let e = err(Seq2SeqConfig {
        decoder_hidden: 6,
        bidirectional: true,
        bridge: Bridge::Sum,
        ..base.clone()
    });
    assert!(e.to_string().contains("encoder 8, decoder 6"), "{e}");
    assert_eq!(
        err(Seq2SeqConfig {
            bidirectional: true,
            ..base.clone()
        }),
        Seq2SeqError::BridgeDirections
    );
    assert_eq!(
        err(Seq2SeqConfig::new(CellKind::Gru, 0, 4, 8)),
        Seq2SeqError::EmptyVocabulary { which: "source" }
    );
    assert_eq!(
        err(Seq2SeqConfig::new(CellKind::Gru, 4, 0, 8)),
        Seq2SeqError::EmptyVocabulary { which: "target" }
    );
    assert_eq!(
        err(Seq2SeqConfig {
            embed_dim: 0,
            ..base.clone()
        }),
        Seq2SeqError::ZeroSize { what: "embed_dim" }
    );
    // A dense bridge maps between any sizes.
    Seq2SeqConfig {
        decoder_hidden: 6,
        bidirectional: true,
        bridge: Bridge::Dense,
        ..base.clone()
    }
    .init(0)
    .unwrap();

    let model = base.init(0).unwrap();
    let loss =
        |s: &[Vec<u32>], t: &[Vec<u32>]| model.loss(s, t, Feeding::Teacher, None).unwrap_err();
    assert_eq!(
        loss(&[vec![1]], &[]),
        Seq2SeqError::BatchSize {
            sources: 1,
            targets: 0
        }
    );
    assert_eq!(
        loss(&[], &[]),
        Seq2SeqError::BatchSize {
            sources: 0,
            targets: 0
        }
    );
    assert_eq!(
        loss(&[vec![1], vec![]], &[vec![1], vec![2]]),
        Seq2SeqError::EmptySource { index: 1 }
    );
    let e = loss(&[vec![1, 5]], &[vec![1]]);
    assert_eq!(
        e,
        Seq2SeqError::Token {
            which: "source",
            index: 0,
            position: 1,
            vocab: 5,
            found: 5
        }
    );
    assert_eq!(
        e.to_string(),
        "source 0, position 1: expected a token id below 5, found 5"
    );
    // EOS (= target_vocab) is not a valid target token: the model appends it itself.
    assert!(matches!(
        loss(&[vec![1]], &[vec![4]]),
        Seq2SeqError::Token {
            which: "target",
            found: 4,
            ..
        }
    ));
    let bad_ratio = Feeding::Mixed {
        teacher_ratio: 1.5,
        seed: 0,
    };
    assert_eq!(
        model
            .loss(&[vec![1]], &[vec![1]], bad_ratio, None)
            .unwrap_err(),
        Seq2SeqError::TeacherForcing { found: 1.5 }
    );
    assert_eq!(
        model.beam(&[1], &BeamConfig::new(0, 5)).unwrap_err(),
        Seq2SeqError::Decoding { what: "beam width" }
    );
    assert_eq!(
        model.greedy(&[vec![1]], 0).unwrap_err(),
        Seq2SeqError::Decoding { what: "max_len" }
    );
    assert!(matches!(
        model.beam(&[1], &BeamConfig::new(2, 5).with_length_penalty(-1.0)),
        Err(Seq2SeqError::LengthPenalty { .. })
    ));
    assert!(matches!(
        beam_search(
            &mut TableDecoder::new(garden_path_table(), 3),
            &BeamConfig::new(2, 5)
        ),
        Err(Seq2SeqError::BeamRows { width: 2, rows: 3 })
    ));
}

/// End to end in a second or two: a small GRU learns to reverse strings of 1–3 symbols.
#[test]
fn learns_to_reverse_short_strings() {
    let model_config = Seq2SeqConfig {
        embed_dim: 8,
        ..Seq2SeqConfig::new(CellKind::Gru, 4, 4, 24)
    };
    let mut model = model_config.init(5).unwrap();
    let config = TrainConfig {
        batch: 32,
        steps: 300,
        optimizer: OptimizerConfig::pytorch_adam().with_learning_rate(0.01),
        clip: GradClip::GlobalNorm(5.0),
        teacher: TeacherSchedule::ALWAYS,
        seed: 3,
    };
    let sample = |rng: &mut ChaCha8Rng| {
        let len = rng.random_range(1..=3);
        let s: Vec<u32> = (0..len).map(|_| rng.random_range(0..4)).collect();
        let t = s.iter().rev().copied().collect();
        (s, t)
    };
    let mut trainer = Trainer::new(&model, &config).unwrap();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..config.steps {
        let stats = trainer.step(&mut model, sample).unwrap();
        first.get_or_insert(stats.mean_loss());
        last = stats.mean_loss();
    }
    assert!(last < 0.2 * first.unwrap(), "loss {first:?} → {last}");
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = (0..200).map(|_| sample(&mut rng)).collect();
    let em = exact_match_greedy(&model, &pairs, 64, 5).unwrap();
    assert!(em.rate() > 0.95, "exact match {}", em.rate());
}
