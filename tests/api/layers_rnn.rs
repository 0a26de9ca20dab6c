//! The fused recurrent layers (`recur_engine::rnn`) against the plain f64 reference
//! (`recur_engine::reference`), on every ISA path the host runs: forward outputs and final
//! states, and every gradient, over random shapes (B and T including 1, H and I not multiples of
//! 8 or 16, I ≠ H), ragged lengths, stacking, bidirectional and initial states. Plus determinism
//! across thread counts and the typed errors for bad input.

use proptest::prelude::*;
use recur_engine::kernels::{CellKind, Isa, Par, RnnActivation};
use recur_engine::reference::{RefNetwork, RefState};
use recur_engine::rnn::{Mode, Rnn, RnnConfig, RnnError, RnnState, SeqBatch};

const KINDS: [CellKind; 5] = [
    CellKind::Lstm,
    CellKind::Gru,
    CellKind::GruResetBefore,
    CellKind::Rnn(RnnActivation::Tanh),
    CellKind::Rnn(RnnActivation::Relu),
];

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// `|got − want| ≤ atol + rtol·|want|` elementwise, naming the first offender.
fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    const ATOL: f64 = 5e-5;
    const RTOL: f64 = 5e-4;
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= ATOL + RTOL * w.abs(),
            "{what}[{i}]: fast {g}, reference {w} (|err| {err:.3e})"
        );
    }
}

#[derive(Clone, Debug)]
struct Case {
    kind: CellKind,
    steps: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    layers: usize,
    bidirectional: bool,
    lengths: Vec<usize>,
    with_initial: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..KINDS.len(),
        1..6usize,
        1..7usize,
        1..21usize,
        1..21usize,
        1..3usize,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_flat_map(
            |(k, steps, batch, input, hidden, layers, bidirectional, with_initial, seed)| {
                proptest::collection::vec(1..=steps, batch).prop_map(move |lengths| Case {
                    kind: KINDS[k],
                    steps,
                    batch,
                    input,
                    hidden,
                    layers,
                    bidirectional,
                    lengths,
                    with_initial,
                    seed,
                })
            },
        )
}

/// A fast network and the f64 reference with the very same (f32-rounded) weights.
fn networks(c: &Case, isa: Isa, par: Par) -> (Rnn, RefNetwork<f64>) {
    let reference =
        RefNetwork::<f64>::seeded(c.kind, c.input, c.hidden, c.layers, c.bidirectional, c.seed)
            .cast::<f32>()
            .cast::<f64>();
    let mut rnn = RnnConfig::new(c.kind, c.input, c.hidden)
        .with_num_layers(c.layers)
        .with_bidirectional(c.bidirectional)
        .with_isa(isa)
        .with_par(par)
        .init(0)
        .unwrap();
    for (name, values) in reference.named_parameters() {
        let dst = rnn.params_mut().get_mut(&name).unwrap();
        assert_eq!(dst.len(), values.len(), "{name}");
        for (d, &v) in dst.iter_mut().zip(values) {
            *d = v as f32;
        }
    }
    (rnn, reference)
}

fn to_ref_states(state: &RnnState, count: usize) -> Vec<RefState<f64>> {
    let per = state.h.len() / count;
    (0..count)
        .map(|i| RefState {
            h: f64s(&state.h[i * per..(i + 1) * per]),
            c: state.c.as_ref().map(|c| f64s(&c[i * per..(i + 1) * per])),
        })
        .collect()
}

fn flatten(states: &[RefState<f64>]) -> (Vec<f64>, Option<Vec<f64>>) {
    let h = states.iter().flat_map(|s| s.h.iter().copied()).collect();
    let c = states[0]
        .c
        .as_ref()
        .map(|_| states.iter().flat_map(|s| s.c.clone().unwrap()).collect());
    (h, c)
}

fn check_against_reference(c: &Case, isa: Isa, par: Par) {
    let (rnn, reference) = networks(c, isa, par);
    let cfg = rnn.config().clone();
    let count = c.layers * cfg.directions();
    let x = values(c.steps * c.batch * c.input, c.seed ^ 1, 1.0);
    let initial = c.with_initial.then(|| {
        let n = count * c.batch * c.hidden;
        RnnState {
            h: values(n, c.seed ^ 2, 0.8),
            c: c.kind.has_cell_state().then(|| values(n, c.seed ^ 3, 0.8)),
        }
    });
    let tag = format!("{isa} {c:?}");
    let batch = SeqBatch::new(&x, c.steps, c.batch).with_lengths(&c.lengths);
    let (out, cache) = rnn
        .forward(batch, initial.as_ref(), Mode::Training { dropout_seed: 0 })
        .unwrap();
    let ref_init = initial.as_ref().map(|s| to_ref_states(s, count));
    let fwd = reference.forward(
        &f64s(&x),
        c.steps,
        c.batch,
        &c.lengths,
        ref_init.as_deref(),
        None,
    );
    assert_close(&format!("{tag} output"), &out.output, &fwd.y);
    let (ref_h, ref_c) = flatten(&fwd.final_states);
    assert_close(&format!("{tag} h_n"), &out.state.h, &ref_h);
    if let Some(ref_c) = ref_c {
        assert_close(&format!("{tag} c_n"), out.state.c.as_ref().unwrap(), &ref_c);
    }

    let dy = values(out.output.len(), c.seed ^ 4, 1.0);
    let d_final = RnnState {
        h: values(out.state.h.len(), c.seed ^ 5, 1.0),
        c: out
            .state
            .c
            .as_ref()
            .map(|cs| values(cs.len(), c.seed ^ 6, 1.0)),
    };
    let mut grads = rnn.zero_grads();
    let back = rnn
        .backward(cache, &dy, Some(&d_final), &mut grads)
        .unwrap();
    let ref_d_final = to_ref_states(&d_final, count);
    let ref_back = reference.backward(&fwd, &f64s(&dy), Some(&ref_d_final));
    assert_close(&format!("{tag} d_input"), &back.d_input, &ref_back.d_x);
    let (ref_dh0, ref_dc0) = flatten(&ref_back.d_init);
    assert_close(&format!("{tag} d_h0"), &back.d_state.h, &ref_dh0);
    if let Some(ref_dc0) = ref_dc0 {
        assert_close(
            &format!("{tag} d_c0"),
            back.d_state.c.as_ref().unwrap(),
            &ref_dc0,
        );
    }
    for (name, want) in ref_back.named_parameters() {
        let got = grads.get(&format!("d_{name}")).unwrap();
        assert_close(&format!("{tag} d_{name}"), got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fast_layers_match_the_reference_on_every_isa(c in case()) {
        for isa in Isa::ALL {
            if !isa.is_available() {
                eprintln!("skipping {isa}: not available on this CPU");
                continue;
            }
            check_against_reference(&c, isa, Par::Seq);
        }
    }
}

#[test]
fn larger_shapes_match_the_reference_with_threads() {
    // Several chunks (B > 8), a column-split batch of 1, and widths past one AVX-512 panel.
    for kind in KINDS {
        for (batch, hidden, input, bidirectional) in
            [(19, 37, 29, true), (1, 70, 33, false), (12, 16, 8, false)]
        {
            let c = Case {
                kind,
                steps: 7,
                batch,
                input,
                hidden,
                layers: 2,
                bidirectional,
                lengths: (0..batch).map(|b| 7 - (b * 3) % 7).collect(),
                with_initial: true,
                seed: 99 + batch as u64,
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.install(|| check_against_reference(&c, Isa::active(), Par::Rayon(0)));
        }
    }
}

/// Everything a training step produces, as bits.
fn run_bits(kind: CellKind, batch: usize, threads: usize, dropout: f32) -> Vec<u32> {
    let (steps, input, hidden) = (6, 13, 21);
    let rnn = RnnConfig::new(kind, input, hidden)
        .with_num_layers(2)
        .with_bidirectional(true)
        .with_dropout(dropout)
        .init(5)
        .unwrap();
    let x = values(steps * batch * input, 7, 1.0);
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % steps).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let (out, cache) = rnn
            .forward(
                SeqBatch::new(&x, steps, batch).with_lengths(&lengths),
                None,
                Mode::Training { dropout_seed: 3 },
            )
            .unwrap();
        let dy = vec![1.0f32; out.output.len()];
        let mut grads = rnn.zero_grads();
        let back = rnn.backward(cache, &dy, None, &mut grads).unwrap();
        let mut bits: Vec<u32> = out
            .output
            .iter()
            .chain(&out.state.h)
            .map(|v| v.to_bits())
            .collect();
        bits.extend(
            back.d_input
                .iter()
                .chain(&back.d_state.h)
                .map(|v| v.to_bits()),
        );
        for (_, g) in grads.named("d_") {
            bits.extend(g.iter().map(|v| v.to_bits()));
        }
        bits
    })
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    for kind in KINDS {
        for batch in [1, 3, 17, 40] {
            let one = run_bits(kind, batch, 1, 0.25);
            let two = run_bits(kind, batch, 2, 0.25);
            assert!(
                one == two,
                "{} B={batch}: 1 and 2 threads differ",
                kind.name()
            );
        }
    }
}

#[test]
fn dropout_matches_the_reference_given_the_same_masks() {
    let (steps, batch, input, hidden) = (4, 5, 6, 7);
    for kind in KINDS {
        let c = Case {
            kind,
            steps,
            batch,
            input,
            hidden,
            layers: 3,
            bidirectional: true,
            lengths: vec![4, 1, 3, 4, 2],
            with_initial: false,
            seed: 17,
        };
        let (mut rnn, reference) = networks(&c, Isa::active(), Par::Seq);
        let mut cfg = rnn.config().clone();
        cfg.dropout = 0.4;
        let params = rnn.params().clone();
        rnn = cfg.init(0).unwrap();
        *rnn.params_mut() = params;
        let x = values(steps * batch * input, 8, 1.0);
        let (out, cache) = rnn
            .forward(
                SeqBatch::new(&x, steps, batch).with_lengths(&c.lengths),
                None,
                Mode::Training { dropout_seed: 11 },
            )
            .unwrap();
        let masks: Vec<Vec<f64>> = cache
            .dropout_masks()
            .into_iter()
            .flatten()
            .map(|m| f64s(&m))
            .collect();
        assert_eq!(masks.len(), 2);
        assert!(masks[0].contains(&0.0), "p = 0.4 dropped nothing");
        let fwd = reference.forward(&f64s(&x), steps, batch, &c.lengths, None, Some(&masks));
        assert_close(
            &format!("{} dropout output", kind.name()),
            &out.output,
            &fwd.y,
        );
        let dy = values(out.output.len(), 9, 1.0);
        let mut grads = rnn.zero_grads();
        let back = rnn.backward(cache, &dy, None, &mut grads).unwrap();
        let ref_back = reference.backward(&fwd, &f64s(&dy), None);
        assert_close(
            &format!("{} dropout d_input", kind.name()),
            &back.d_input,
            &ref_back.d_x,
        );
        for (name, want) in ref_back.named_parameters() {
            assert_close(
                &format!("{} dropout d_{name}", kind.name()),
                grads.get(&format!("d_{name}")).unwrap(),
                want,
            );
        }
        // Inference applies no dropout.
        let plain = rnn
            .infer(
                SeqBatch::new(&x, steps, batch).with_lengths(&c.lengths),
                None,
            )
            .unwrap();
        let no_masks = reference.forward(&f64s(&x), steps, batch, &c.lengths, None, None);
        assert_close(
            &format!("{} inference output", kind.name()),
            &plain.output,
            &no_masks.y,
        );
    }
}

#[test]
fn bad_input_is_a_typed_error_saying_expected_and_found() {
    let rnn = RnnConfig::new(CellKind::Lstm, 3, 4)
        .with_num_layers(2)
        .init(1)
        .unwrap();
    let x = vec![0.0f32; 2 * 5 * 3];
    let err = |e: RnnError| e.to_string();

    let e = rnn.infer(SeqBatch::new(&x[..29], 2, 5), None).unwrap_err();
    assert!(
        matches!(
            e,
            RnnError::Shape {
                expected: 30,
                found: 29,
                ..
            }
        ),
        "{e}"
    );
    assert!(err(e).contains("(T=2, B=5, I=3)"));

    let e = rnn
        .infer(SeqBatch::new(&x, 2, 5).with_lengths(&[1, 2, 3, 1, 1]), None)
        .unwrap_err();
    assert_eq!(
        e,
        RnnError::Length {
            row: 2,
            steps: 2,
            found: 3
        }
    );
    let e = rnn
        .infer(SeqBatch::new(&x, 2, 5).with_lengths(&[1, 2, 0, 1, 1]), None)
        .unwrap_err();
    assert_eq!(
        e,
        RnnError::Length {
            row: 2,
            steps: 2,
            found: 0
        }
    );
    let e = rnn
        .infer(SeqBatch::new(&x, 2, 5).with_lengths(&[1, 2]), None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            RnnError::Shape {
                what: "lengths",
                expected: 5,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = rnn.infer(SeqBatch::new(&[], 0, 5), None).unwrap_err();
    assert_eq!(e, RnnError::EmptyBatch { steps: 0, batch: 5 });

    let bad_state = RnnState {
        h: vec![0.0; 2 * 5 * 4 - 1],
        c: Some(vec![0.0; 2 * 5 * 4]),
    };
    let e = rnn
        .infer(SeqBatch::new(&x, 2, 5), Some(&bad_state))
        .unwrap_err();
    assert!(
        matches!(
            e,
            RnnError::Shape {
                expected: 40,
                found: 39,
                ..
            }
        ),
        "{e}"
    );
    let no_c = RnnState {
        h: vec![0.0; 40],
        c: None,
    };
    let e = rnn.infer(SeqBatch::new(&x, 2, 5), Some(&no_c)).unwrap_err();
    assert!(err(e).contains("needs a cell state"));

    assert_eq!(
        RnnConfig::new(CellKind::Gru, 3, 0).init(0).unwrap_err(),
        RnnError::ZeroSize {
            what: "hidden_size"
        }
    );
    assert_eq!(
        RnnConfig::new(CellKind::Gru, 0, 3).init(0).unwrap_err(),
        RnnError::ZeroSize { what: "input_size" }
    );
    assert!(matches!(
        RnnConfig::new(CellKind::Gru, 3, 3)
            .with_dropout(1.0)
            .init(0),
        Err(RnnError::Dropout { .. })
    ));

    let (out, cache) = rnn
        .forward(
            SeqBatch::new(&x, 2, 5),
            None,
            Mode::Training { dropout_seed: 0 },
        )
        .unwrap();
    let mut grads = rnn.zero_grads();
    let e = rnn
        .backward(cache, &out.output[1..], None, &mut grads)
        .unwrap_err();
    assert!(
        matches!(
            e,
            RnnError::Shape {
                what: "d_output",
                ..
            }
        ),
        "{e}"
    );
    assert!(rnn.params().get("weight_ih_l2").is_err());
    assert!(rnn.params().get("bias_hh_l1").is_ok());
}

#[test]
fn streaming_steps_match_the_reference_and_the_sequence_api() {
    for isa in Isa::available() {
        for kind in KINDS {
            for (batch, threads) in [(1, 2), (3, 1)] {
                let c = Case {
                    kind,
                    steps: 5,
                    batch,
                    input: 11,
                    hidden: 19,
                    layers: 2,
                    bidirectional: false,
                    lengths: vec![5; batch],
                    with_initial: true,
                    seed: 23,
                };
                let (rnn, reference) = networks(&c, isa, Par::Rayon(0));
                let count = c.layers;
                let x = values(c.steps * batch * c.input, 31, 1.0);
                let initial = RnnState {
                    h: values(count * batch * c.hidden, 32, 0.5),
                    c: kind
                        .has_cell_state()
                        .then(|| values(count * batch * c.hidden, 33, 0.5)),
                };
                let fwd = reference.forward(
                    &f64s(&x),
                    c.steps,
                    batch,
                    &c.lengths,
                    Some(&to_ref_states(&initial, count)),
                    None,
                );
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut stream = rnn.stream(batch).unwrap();
                    stream.set_state(&initial).unwrap();
                    let row = batch * c.hidden;
                    for t in 0..c.steps {
                        let h = stream
                            .step(&x[t * batch * c.input..(t + 1) * batch * c.input])
                            .unwrap();
                        assert_close(
                            &format!("{isa} {} B={batch} stream step {t}", kind.name()),
                            h,
                            &fwd.y[t * row..(t + 1) * row],
                        );
                    }
                    let (ref_h, _) = flatten(&fwd.final_states);
                    assert_close(
                        &format!("{isa} {} stream state", kind.name()),
                        &stream.state().h,
                        &ref_h,
                    );
                    let e = stream.step(&x[..batch * c.input - 1]).unwrap_err();
                    assert!(matches!(e, RnnError::Shape { what: "x_t", .. }), "{e}");
                });
            }
        }
    }
    let bi = RnnConfig::new(CellKind::Gru, 2, 3)
        .with_bidirectional(true)
        .init(0)
        .unwrap();
    assert_eq!(bi.stream(1).unwrap_err(), RnnError::BidirectionalStream);
}
