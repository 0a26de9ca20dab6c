//! Fast paths of the network against its plain ones: one-hot ids against dense one-hot input,
//! pooled buffers against fresh ones (a NaN-poisoned pool), cached packs against fresh packing
//! after a parameter change. On every ISA the host runs.

use recur_kernels::{CellKind, Isa, RnnActivation};

use super::{Mode, Outputs, Rnn, RnnConfig, RnnError, RnnState, SeqBatch, TokenBatch};

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

fn network(kind: CellKind, isa: Isa, input: usize, layers: usize, bidi: bool) -> Rnn {
    RnnConfig::new(kind, input, 11)
        .with_num_layers(layers)
        .with_bidirectional(bidi)
        .with_isa(isa)
        .init(5)
        .unwrap()
}

fn initial(rnn: &Rnn, batch: usize, seed: u64) -> RnnState {
    let mut state = RnnState::zeros(rnn.config(), batch);
    state.h = values(state.h.len(), seed, 0.5);
    if let Some(c) = state.c.as_mut() {
        *c = values(c.len(), seed + 1, 0.5);
    }
    state
}

/// Output, final state, every parameter gradient and the initial-state gradient of one
/// forward + backward (dense input), flattened.
fn train_pass(rnn: &Rnn, x: &[f32], steps: usize, batch: usize, lengths: &[usize]) -> Vec<f32> {
    let init = initial(rnn, batch, 3);
    let (out, cache) = rnn
        .forward(
            SeqBatch::new(x, steps, batch).with_lengths(lengths),
            Some(&init),
            Mode::Training { dropout_seed: 1 },
        )
        .unwrap();
    let dy = values(out.output.len(), 9, 1.0);
    let mut grads = rnn.zero_grads();
    let back = rnn.backward(cache, &dy, None, &mut grads).unwrap();
    let mut all = out.output.clone();
    all.extend(&out.state.h);
    for (_, g) in grads.named("d_") {
        all.extend(g);
    }
    all.extend(&back.d_input);
    all.extend(&back.d_state.h);
    rnn.recycle(out.output);
    rnn.recycle(back.d_input);
    all
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn one_hot_ids_match_dense_one_hot_input() {
    let (steps, batch, vocab) = (4, 5, 7);
    let lengths = [4, 2, 3, 4, 1];
    let ids: Vec<u32> = (0..steps * batch)
        .map(|i| ((i * 5 + 3) % vocab) as u32)
        .collect();
    let mut x = vec![0.0f32; steps * batch * vocab];
    for (row, &id) in x.chunks_exact_mut(vocab).zip(&ids) {
        row[id as usize] = 1.0;
    }
    for isa in Isa::available() {
        for kind in KINDS {
            for (layers, bidi) in [(1, false), (2, true)] {
                let rnn = network(kind, isa, vocab, layers, bidi);
                let init = initial(&rnn, batch, 4);
                let mode = Mode::Training { dropout_seed: 0 };
                let (dense, dense_cache) = rnn
                    .forward(
                        SeqBatch::new(&x, steps, batch).with_lengths(&lengths),
                        Some(&init),
                        mode,
                    )
                    .unwrap();
                let (sparse, sparse_cache) = rnn
                    .forward_one_hot(
                        TokenBatch::new(&ids, steps, batch).with_lengths(&lengths),
                        Some(&init),
                        mode,
                    )
                    .unwrap();
                let what = format!("{isa:?} {kind:?} layers {layers} bidi {bidi}");
                // The gather adds the same two numbers the GEMM does: identical forward.
                assert_bits(&format!("{what}: output"), &sparse.output, &dense.output);
                assert_eq!(sparse.state, dense.state, "{what}: state");
                let dy = values(dense.output.len(), 2, 1.0);
                let (mut gd, mut gs) = (rnn.zero_grads(), rnn.zero_grads());
                let bd = rnn.backward(dense_cache, &dy, None, &mut gd).unwrap();
                let bs = rnn.backward(sparse_cache, &dy, None, &mut gs).unwrap();
                assert!(
                    bs.d_input.is_empty(),
                    "{what}: one-hot input has no d_input"
                );
                assert_eq!(bd.d_input.len(), x.len());
                assert_bits(&format!("{what}: d_state"), &bs.d_state.h, &bd.d_state.h);
                for ((name, d), (_, s)) in gd.named("d_").into_iter().zip(gs.named("d_")) {
                    for (i, (&a, &b)) in d.iter().zip(s).enumerate() {
                        // Only the summation order of dW_ih differs.
                        assert!(
                            (a - b).abs() <= 1e-5 + 1e-5 * a.abs(),
                            "{what}: {name}[{i}]: dense {a}, one-hot {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn one_hot_ids_are_checked() {
    let rnn = network(CellKind::Gru, Isa::active(), 6, 1, false);
    let e = rnn
        .forward_one_hot(TokenBatch::new(&[0, 5, 6, 1], 2, 2), None, Mode::Inference)
        .unwrap_err();
    assert_eq!(
        e,
        RnnError::TokenOutOfRange {
            index: 2,
            id: 6,
            input_size: 6
        }
    );
    assert!(e.to_string().contains("below input_size = 6, found 6"));
    let e = rnn
        .forward_one_hot(TokenBatch::new(&[0, 5, 1], 2, 2), None, Mode::Inference)
        .unwrap_err();
    assert!(
        matches!(
            e,
            RnnError::Shape {
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn results_do_not_depend_on_pooled_buffers() {
    for isa in Isa::available() {
        for kind in KINDS {
            for (layers, bidi) in [(1, false), (2, true)] {
                let rnn = network(kind, isa, 6, layers, bidi);
                // Fill the pool with bigger buffers of another shape, then poison it.
                let big = values(7 * 9 * 6, 1, 1.0);
                train_pass(&rnn, &big, 7, 9, &[7; 9]);
                assert!(rnn.workspace_stats().0 > 0, "the pass returned its buffers");
                rnn.poison_workspace();
                let (steps, batch, lengths) = (5, 4, [5, 2, 5, 1]);
                let x = values(steps * batch * 6, 2, 1.0);
                let got = train_pass(&rnn, &x, steps, batch, &lengths);
                let fresh = rnn.clone(); // a clone starts with an empty pool
                assert_eq!(fresh.workspace_stats(), (0, 0));
                let want = train_pass(&fresh, &x, steps, batch, &lengths);
                assert_bits(&format!("{isa:?} {kind:?} {layers} {bidi}"), &got, &want);
                rnn.poison_workspace();
                let infer = rnn
                    .infer(SeqBatch::new(&x, steps, batch).with_lengths(&lengths), None)
                    .unwrap();
                let infer_fresh = rnn
                    .clone()
                    .infer(SeqBatch::new(&x, steps, batch).with_lengths(&lengths), None)
                    .unwrap();
                assert_bits("infer", &infer.output, &infer_fresh.output);
            }
        }
    }
}

#[test]
fn packs_follow_parameter_changes() {
    for kind in KINDS {
        let mut rnn = network(kind, Isa::active(), 4, 2, false);
        let (steps, batch) = (3, 2);
        let x = values(steps * batch * 4, 6, 1.0);
        let before = train_pass(&rnn, &x, steps, batch, &[3, 2]);
        assert_eq!(rnn.workspace_stats().1, 2, "both layers packed");
        for p in &mut rnn.params_mut().directions {
            p.weight_hh.iter_mut().for_each(|w| *w *= -0.5);
            p.bias_hh.iter_mut().for_each(|b| *b += 0.25);
        }
        assert_eq!(rnn.workspace_stats().1, 0, "params_mut drops the packs");
        let after = train_pass(&rnn, &x, steps, batch, &[3, 2]);
        let fresh = Rnn::from_params(rnn.config().clone(), rnn.params().clone());
        let want = train_pass(&fresh, &x, steps, batch, &[3, 2]);
        assert_bits(&format!("{kind:?}"), &after, &want);
        assert_ne!(before, after);
        // An inference pack is upgraded when backward needs the backward panels.
        let fresh = Rnn::from_params(rnn.config().clone(), rnn.params().clone());
        fresh.infer(SeqBatch::new(&x, steps, batch), None).unwrap();
        let (out, cache) = fresh
            .forward(SeqBatch::new(&x, steps, batch), None, Mode::Inference)
            .unwrap();
        let mut grads = fresh.zero_grads();
        let dy = vec![1.0; out.output.len()];
        fresh.backward(cache, &dy, None, &mut grads).unwrap();
        let mut want = rnn.zero_grads();
        let (out, cache) = rnn
            .forward(
                SeqBatch::new(&x, steps, batch),
                None,
                Mode::Training { dropout_seed: 0 },
            )
            .unwrap();
        rnn.backward(cache, &dy, None, &mut want).unwrap();
        drop(out);
        assert_eq!(grads, want, "{kind:?}");
    }
}

/// `Outputs::FinalState` + `backward_from_state` against the plain pass: the same state and
/// cache (so the same gradients) as `forward`, and the gradients of `backward` with a zero
/// `d_output`, bit for bit — ragged, stacked, bidirectional, one-hot and dense. With every row `T`
/// steps long and one direction, that is also `backward` with `d_output` non-zero at the last step
/// only (the many-to-one language model's case).
#[test]
fn final_state_pass_matches_the_full_output_pass() {
    let (steps, batch, vocab) = (4, 7, 6);
    let ids: Vec<u32> = (0..steps * batch)
        .map(|i| ((i * 5 + 1) % vocab) as u32)
        .collect();
    let x = values(steps * batch * vocab, 8, 1.0);
    for isa in Isa::available() {
        for kind in KINDS {
            for (layers, bidi, ragged) in [(1, false, false), (2, false, false), (2, true, true)] {
                let rnn = network(kind, isa, vocab, layers, bidi);
                let lengths: Vec<usize> = (0..batch)
                    .map(|b| if ragged { 1 + b % steps } else { steps })
                    .collect();
                let init = initial(&rnn, batch, 4);
                let mode = Mode::Training { dropout_seed: 3 };
                let mut d_final = RnnState::zeros(rnn.config(), batch);
                d_final.h = values(d_final.h.len(), 5, 1.0);
                if let Some(c) = d_final.c.as_mut() {
                    *c = values(c.len(), 6, 1.0);
                }
                for one_hot in [false, true] {
                    let what = format!("{isa:?} {kind:?} {layers} {bidi} one-hot {one_hot}");
                    let run = |outputs| {
                        if one_hot {
                            let input = TokenBatch::new(&ids, steps, batch).with_lengths(&lengths);
                            rnn.forward_one_hot_with(input, Some(&init), mode, outputs)
                        } else {
                            let input = SeqBatch::new(&x, steps, batch).with_lengths(&lengths);
                            rnn.forward_with(input, Some(&init), mode, outputs)
                        }
                        .unwrap()
                    };
                    let (full, full_cache) = run(Outputs::EveryStep);
                    let (last, last_cache) = run(Outputs::FinalState);
                    assert!(last.output.is_empty(), "{what}: no output");
                    assert_eq!(last.state, full.state, "{what}: state");
                    let zeros = vec![0.0; full.output.len()];
                    let (mut want, mut got) = (rnn.zero_grads(), rnn.zero_grads());
                    let bw = rnn
                        .backward(full_cache, &zeros, Some(&d_final), &mut want)
                        .unwrap();
                    let bg = rnn
                        .backward_from_state(last_cache, &d_final, &mut got)
                        .unwrap();
                    for ((name, w), (_, g)) in want.named("d_").into_iter().zip(got.named("d_")) {
                        assert_bits(&format!("{what}: {name}"), g, w);
                    }
                    assert_bits(&format!("{what}: d_input"), &bg.d_input, &bw.d_input);
                    assert_eq!(bg.d_state, bw.d_state, "{what}: d_state");
                    if !ragged && !bidi {
                        // Many-to-one: d_output at the last step = the last layer's d_final rows.
                        let top = (layers - 1) * batch * 11;
                        let mut d_output = zeros.clone();
                        d_output[(steps - 1) * batch * 11..].copy_from_slice(&d_final.h[top..]);
                        let mut d_lower = d_final.clone();
                        d_lower.h[top..].fill(0.0);
                        let (_, cache) = run(Outputs::EveryStep);
                        let mut m2o = rnn.zero_grads();
                        rnn.backward(cache, &d_output, Some(&d_lower), &mut m2o)
                            .unwrap();
                        assert_eq!(m2o, got, "{what}: many-to-one");
                    }
                }
            }
        }
    }
}

/// The zero-initial-state fast paths (no initial state: the first step's `W_hh·h0` and
/// `δ_0ᵀ·h0` are skipped) against an explicit all-zero initial state, which runs the full
/// products; and `without_initial_state_grad` against a full backward. Bit for bit: outputs,
/// final states, every weight gradient and the input gradient; the skipped `d_state` is zeros.
#[test]
fn zero_initial_state_paths_match_the_full_products() {
    let (steps, batch, vocab) = (4, 7, 6);
    let ids: Vec<u32> = (0..steps * batch)
        .map(|i| ((i * 5 + 2) % vocab) as u32)
        .collect();
    let x = values(steps * batch * vocab, 18, 1.0);
    for isa in Isa::available() {
        for kind in KINDS {
            for (layers, bidi, ragged) in [(1, false, false), (2, false, true), (2, true, true)] {
                let rnn = network(kind, isa, vocab, layers, bidi);
                let lengths: Vec<usize> = (0..batch)
                    .map(|b| if ragged { 1 + b % steps } else { steps })
                    .collect();
                let zero_state = RnnState::zeros(rnn.config(), batch);
                let mode = Mode::Training { dropout_seed: 3 };
                for one_hot in [false, true] {
                    let what = format!("{isa:?} {kind:?} {layers} {bidi} one-hot {one_hot}");
                    let run = |initial: Option<&RnnState>| {
                        if one_hot {
                            let input = TokenBatch::new(&ids, steps, batch).with_lengths(&lengths);
                            rnn.forward_one_hot_with(input, initial, mode, Outputs::EveryStep)
                        } else {
                            let input = SeqBatch::new(&x, steps, batch).with_lengths(&lengths);
                            rnn.forward_with(input, initial, mode, Outputs::EveryStep)
                        }
                        .unwrap()
                    };
                    let (full, full_cache) = run(Some(&zero_state));
                    let (fast, fast_cache) = run(None);
                    assert_bits(&format!("{what}: output"), &fast.output, &full.output);
                    assert_eq!(fast.state, full.state, "{what}: state");
                    let dy = values(full.output.len(), 19, 1.0);
                    let (mut want, mut got) = (rnn.zero_grads(), rnn.zero_grads());
                    let bw = rnn.backward(full_cache, &dy, None, &mut want).unwrap();
                    let bg = rnn.backward(fast_cache, &dy, None, &mut got).unwrap();
                    for ((name, w), (_, g)) in want.named("d_").into_iter().zip(got.named("d_")) {
                        assert_bits(&format!("{what}: {name}"), g, w);
                    }
                    assert_bits(&format!("{what}: d_input"), &bg.d_input, &bw.d_input);
                    assert_eq!(bg.d_state, bw.d_state, "{what}: d_state");
                    assert!(
                        bw.d_state.h.iter().any(|&v| v != 0.0),
                        "{what}: the full pass has an initial-state gradient"
                    );
                    let (_, skip_cache) = run(None);
                    let mut skipped = rnn.zero_grads();
                    let bs = rnn
                        .backward(
                            skip_cache.without_initial_state_grad(),
                            &dy,
                            None,
                            &mut skipped,
                        )
                        .unwrap();
                    assert_eq!(skipped, want, "{what}: weight gradients without d_state");
                    assert_bits(
                        &format!("{what}: d_input without d_state"),
                        &bs.d_input,
                        &bw.d_input,
                    );
                    assert_eq!(
                        bs.d_state, zero_state,
                        "{what}: the skipped d_state is zeros"
                    );
                }
            }
        }
    }
}
