//! The shape heads (`recur_engine::heads`): gradient checks of each head's loss through the RNN
//! (central differences on tiny models), masking (padding contributes nothing, bit for bit),
//! generation against teacher forcing, and the typed errors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_engine::heads::{
    Conditioning, HeadError, HeadGrads, ManyToMany, ManyToOne, Objective, OneToMany, Readout,
    Targets,
};
use recur_engine::kernels::{CellKind, RnnActivation};
use recur_engine::model::dense::Dense;
use recur_engine::rnn::{Rnn, RnnConfig, RnnError, SeqBatch};

const CELLS: [CellKind; 3] = [
    CellKind::Rnn(RnnActivation::Tanh),
    CellKind::Lstm,
    CellKind::Gru,
];

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// The parameter called `name` (`rnn.*`, `head.*`, `bridge.*`), mutable.
fn param_mut<'a>(
    rnn: &'a mut Rnn,
    head: &'a mut Dense,
    bridge: Option<&'a mut Dense>,
    name: &str,
) -> &'a mut [f32] {
    if let Some(bare) = name.strip_prefix("rnn.") {
        return rnn.params_mut().get_mut(bare).unwrap();
    }
    match name {
        "head.weight" => &mut head.weight,
        "head.bias" => &mut head.bias,
        "bridge.weight" => &mut bridge.unwrap().weight,
        "bridge.bias" => &mut bridge.unwrap().bias,
        other => panic!("no parameter {other}"),
    }
}

/// Checks every element of every gradient against central differences of `loss` with step
/// `H = 4e-3` (f32 network, f64 loss): the truncation error is O(H²·L''') ≈ 1e-5 and the
/// rounding error ≈ 1e-7·|L|/H ≈ 3e-5, so `|analytic − numeric| ≤ 1e-4 + 1e-2·|numeric|`.
/// A gradient that is wrong by a factor, a sign or a missing term fails by orders of magnitude.
fn check_gradients<M>(
    what: &str,
    model: &mut M,
    names: Vec<String>,
    grads: &HeadGrads,
    mut loss: impl FnMut(&M) -> f64,
    param: for<'a> fn(&'a mut M, &str) -> &'a mut [f32],
) {
    const H: f32 = 4e-3;
    let analytic: Vec<(String, Vec<f32>)> = grads
        .named()
        .into_iter()
        .map(|(n, g)| (n, g.to_vec()))
        .collect();
    assert_eq!(
        analytic.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names,
        "{what}: gradient names follow the parameters"
    );
    let mut worst = 0.0f64;
    let mut nonzero = 0;
    for (name, g) in &analytic {
        for k in 0..g.len() {
            let original = param(model, name)[k];
            param(model, name)[k] = original + H;
            let up = loss(model);
            param(model, name)[k] = original - H;
            let down = loss(model);
            param(model, name)[k] = original;
            let numeric = (up - down) / (2.0 * H as f64);
            let error = (g[k] as f64 - numeric).abs();
            worst = worst.max(error / (1e-4 + 1e-2 * numeric.abs()));
            assert!(
                error <= 1e-4 + 1e-2 * numeric.abs(),
                "{what}: {name}[{k}]: analytic {} vs numeric {numeric}",
                g[k]
            );
            nonzero += usize::from(g[k] != 0.0);
        }
    }
    assert!(nonzero > 0, "{what}: every gradient is zero");
    eprintln!("{what}: worst error / tolerance = {worst:.3}");
}

fn targets_for(objective: Objective, rows: usize, rng: &mut ChaCha8Rng) -> (Vec<u32>, Vec<f32>) {
    match objective {
        Objective::Classify { classes } => (
            (0..rows)
                .map(|_| rng.random_range(0..classes as u32))
                .collect(),
            Vec::new(),
        ),
        Objective::Regress { outputs } => (Vec::new(), random(rng, rows * outputs, 1.0)),
    }
}

fn as_targets<'a>(objective: Objective, ids: &'a [u32], values: &'a [f32]) -> Targets<'a> {
    match objective {
        Objective::Classify { .. } => Targets::Classes(ids),
        Objective::Regress { .. } => Targets::Values(values),
    }
}

const OBJECTIVES: [Objective; 2] = [
    Objective::Classify { classes: 3 },
    Objective::Regress { outputs: 2 },
];

#[test]
fn many_to_one_gradients_match_central_differences() {
    let (steps, batch, input, hidden) = (4, 3, 2, 3);
    let lengths = [4, 1, 3];
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for cell in CELLS {
        for objective in OBJECTIVES {
            for (readout, bidirectional, layers) in [
                (Readout::LastStep, false, 2),
                (Readout::LastStep, true, 1),
                (Readout::FinalState, true, 2),
            ] {
                let rnn = RnnConfig::new(cell, input, hidden)
                    .with_num_layers(layers)
                    .with_bidirectional(bidirectional)
                    .init(rng.random())
                    .unwrap();
                let mut model = ManyToOne::new(rnn, objective, readout, rng.random()).unwrap();
                let x = random(&mut rng, steps * batch * input, 1.0);
                let (ids, values) = targets_for(objective, batch, &mut rng);
                let targets = as_targets(objective, &ids, &values);
                let batch_of = |x| SeqBatch::new(x, steps, batch).with_lengths(&lengths);
                let mut grads = model.zero_grads();
                let loss = model
                    .loss_and_grads(batch_of(&x), targets, 0, &mut grads)
                    .unwrap();
                let plain = model.loss(batch_of(&x), targets).unwrap();
                assert!((loss - plain).abs() < 1e-6, "{loss} vs {plain}");
                let names = model.named_params().into_iter().map(|(n, _)| n).collect();
                check_gradients(
                    &format!("many-to-one {cell:?} {objective:?} {readout:?} bi={bidirectional}"),
                    &mut model,
                    names,
                    &grads,
                    |m| m.loss(batch_of(&x), targets).unwrap(),
                    |m, name| param_mut(&mut m.rnn, &mut m.head, None, name),
                );
            }
        }
    }
}

#[test]
fn many_to_many_gradients_match_central_differences() {
    let (steps, batch, input, hidden) = (4, 3, 2, 3);
    let lengths = [2, 4, 1];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for cell in CELLS {
        for objective in OBJECTIVES {
            for bidirectional in [false, true] {
                let rnn = RnnConfig::new(cell, input, hidden)
                    .with_bidirectional(bidirectional)
                    .init(rng.random())
                    .unwrap();
                let mut model = ManyToMany::new(rnn, objective, rng.random()).unwrap();
                let x = random(&mut rng, steps * batch * input, 1.0);
                let (ids, values) = targets_for(objective, steps * batch, &mut rng);
                let targets = as_targets(objective, &ids, &values);
                let batch_of = |x| SeqBatch::new(x, steps, batch).with_lengths(&lengths);
                let mut grads = model.zero_grads();
                model
                    .loss_and_grads(batch_of(&x), targets, 0, &mut grads)
                    .unwrap();
                let names = model.named_params().into_iter().map(|(n, _)| n).collect();
                check_gradients(
                    &format!("many-to-many {cell:?} {objective:?} bi={bidirectional}"),
                    &mut model,
                    names,
                    &grads,
                    |m| m.loss(batch_of(&x), targets).unwrap(),
                    |m, name| param_mut(&mut m.rnn, &mut m.head, None, name),
                );
            }
        }
    }
}

#[test]
fn one_to_many_gradients_match_central_differences() {
    let (steps, batch, vector, hidden) = (4, 3, 2, 3);
    let lengths = [3, 4, 1];
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for cell in CELLS {
        for objective in OBJECTIVES {
            for conditioning in [
                Conditioning::InitialState,
                Conditioning::EveryStep,
                Conditioning::Both,
            ] {
                let input = OneToMany::input_size(objective, vector, conditioning);
                let rnn = RnnConfig::new(cell, input, hidden)
                    .with_num_layers(2)
                    .init(rng.random())
                    .unwrap();
                let mut model =
                    OneToMany::new(rnn, vector, objective, conditioning, rng.random()).unwrap();
                let v = random(&mut rng, batch * vector, 1.0);
                let (ids, values) = targets_for(objective, steps * batch, &mut rng);
                let targets = as_targets(objective, &ids, &values);
                let mut grads = model.zero_grads();
                model
                    .loss_and_grads(&v, targets, steps, Some(&lengths), 0, &mut grads)
                    .unwrap();
                let names = model.named_params().into_iter().map(|(n, _)| n).collect();
                check_gradients(
                    &format!("one-to-many {cell:?} {objective:?} {conditioning:?}"),
                    &mut model,
                    names,
                    &grads,
                    |m| m.loss(&v, targets, steps, Some(&lengths)).unwrap(),
                    |m, name| param_mut(&mut m.rnn, &mut m.head, m.bridge.as_mut(), name),
                );
            }
        }
    }
}

/// Overwrites the inputs (T, B, I) and targets of every padding step with garbage.
fn scramble_padding(
    x: &mut [f32],
    ids: &mut [u32],
    values: &mut [f32],
    (steps, batch, input, width): (usize, usize, usize, usize),
    lengths: &[usize],
) {
    for t in 0..steps {
        for b in 0..batch {
            if t >= lengths[b] {
                let row = t * batch + b;
                x[row * input..(row + 1) * input].fill(1e3 * (t + b + 1) as f32);
                if !ids.is_empty() {
                    ids[row] = u32::MAX; // not even a valid class: never read
                }
                if !values.is_empty() {
                    values[row * width..(row + 1) * width].fill(-7e5);
                }
            }
        }
    }
}

fn grads_bits(grads: &HeadGrads) -> Vec<(String, Vec<u32>)> {
    grads
        .named()
        .into_iter()
        .map(|(n, g)| (n, g.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn padding_contributes_nothing_bit_for_bit() {
    let (steps, batch, input, hidden) = (6, 4, 3, 5);
    let lengths = [6, 2, 4, 1];
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for cell in CELLS {
        for objective in OBJECTIVES {
            let width = objective.width();
            let x = random(&mut rng, steps * batch * input, 1.0);
            let (ids, values) = targets_for(objective, steps * batch, &mut rng);
            let (mut x2, mut ids2, mut values2) = (x.clone(), ids.clone(), values.clone());
            scramble_padding(
                &mut x2,
                &mut ids2,
                &mut values2,
                (steps, batch, input, width),
                &lengths,
            );
            for bidirectional in [false, true] {
                let rnn = RnnConfig::new(cell, input, hidden)
                    .with_bidirectional(bidirectional)
                    .with_num_layers(2)
                    .init(rng.random())
                    .unwrap();
                // many-to-many: padded inputs and targets
                let tagger = ManyToMany::new(rnn.clone(), objective, 1).unwrap();
                let run = |x: &[f32], ids: &[u32], values: &[f32]| {
                    let mut grads = tagger.zero_grads();
                    let loss = tagger
                        .loss_and_grads(
                            SeqBatch::new(x, steps, batch).with_lengths(&lengths),
                            as_targets(objective, ids, values),
                            0,
                            &mut grads,
                        )
                        .unwrap();
                    (loss.to_bits(), grads_bits(&grads))
                };
                assert_eq!(
                    run(&x, &ids, &values),
                    run(&x2, &ids2, &values2),
                    "many-to-many {cell:?} {objective:?} bi={bidirectional}"
                );
                // many-to-one: padded inputs (its targets are one per row)
                for readout in [Readout::LastStep, Readout::FinalState] {
                    let classifier = ManyToOne::new(rnn.clone(), objective, readout, 2).unwrap();
                    let row_targets = as_targets(
                        objective,
                        &ids[..if ids.is_empty() { 0 } else { batch }],
                        &values[..if values.is_empty() { 0 } else { batch * width }],
                    );
                    let run = |x: &[f32]| {
                        let mut grads = classifier.zero_grads();
                        let loss = classifier
                            .loss_and_grads(
                                SeqBatch::new(x, steps, batch).with_lengths(&lengths),
                                row_targets,
                                0,
                                &mut grads,
                            )
                            .unwrap();
                        (loss.to_bits(), grads_bits(&grads))
                    };
                    assert_eq!(
                        run(&x),
                        run(&x2),
                        "many-to-one {cell:?} {objective:?} {readout:?} bi={bidirectional}"
                    );
                }
            }
            // one-to-many: padded targets (they would be fed back and scored)
            let conditioning = Conditioning::Both;
            let vector = 2;
            let rnn = RnnConfig::new(
                cell,
                OneToMany::input_size(objective, vector, conditioning),
                hidden,
            )
            .init(rng.random())
            .unwrap();
            let generator = OneToMany::new(rnn, vector, objective, conditioning, 3).unwrap();
            let v = random(&mut rng, batch * vector, 1.0);
            let run = |ids: &[u32], values: &[f32]| {
                let mut grads = generator.zero_grads();
                let loss = generator
                    .loss_and_grads(
                        &v,
                        as_targets(objective, ids, values),
                        steps,
                        Some(&lengths),
                        0,
                        &mut grads,
                    )
                    .unwrap();
                (loss.to_bits(), grads_bits(&grads))
            };
            assert_eq!(
                run(&ids, &values),
                run(&ids2, &values2),
                "one-to-many {cell:?} {objective:?}"
            );
        }
    }
}

#[test]
fn many_to_many_loss_is_the_mean_over_real_steps() {
    // Each row's loss alone, weighted by its length, averages to the batch loss.
    let (steps, batch, input, hidden) = (5, 3, 2, 4);
    let lengths = [5, 2, 3];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let rnn = RnnConfig::new(CellKind::Gru, input, hidden)
        .init(1)
        .unwrap();
    let objective = Objective::Classify { classes: 4 };
    let model = ManyToMany::new(rnn, objective, 2).unwrap();
    let x = random(&mut rng, steps * batch * input, 1.0);
    let (ids, _) = targets_for(objective, steps * batch, &mut rng);
    let all = model
        .loss(
            SeqBatch::new(&x, steps, batch).with_lengths(&lengths),
            Targets::Classes(&ids),
        )
        .unwrap();
    let mut weighted = 0.0;
    for b in 0..batch {
        let len = lengths[b];
        let xb: Vec<f32> = (0..len)
            .flat_map(|t| x[(t * batch + b) * input..(t * batch + b + 1) * input].to_vec())
            .collect();
        let ib: Vec<u32> = (0..len).map(|t| ids[t * batch + b]).collect();
        let alone = model
            .loss(SeqBatch::new(&xb, len, 1), Targets::Classes(&ib))
            .unwrap();
        weighted += alone * len as f64;
    }
    let mean = weighted / lengths.iter().sum::<usize>() as f64;
    assert!((all - mean).abs() < 1e-6, "{all} vs {mean}");
}

#[test]
fn final_state_readout_equals_last_step_when_unidirectional() {
    let (steps, batch, input, hidden) = (5, 3, 2, 4);
    let lengths = [3, 5, 1];
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for cell in CELLS {
        let rnn = RnnConfig::new(cell, input, hidden)
            .with_num_layers(2)
            .init(3)
            .unwrap();
        let objective = Objective::Regress { outputs: 2 };
        let last = ManyToOne::new(rnn.clone(), objective, Readout::LastStep, 9).unwrap();
        let fin = ManyToOne::new(rnn, objective, Readout::FinalState, 9).unwrap();
        let x = random(&mut rng, steps * batch * input, 1.0);
        let batch_of = SeqBatch::new(&x, steps, batch).with_lengths(&lengths);
        assert_eq!(
            last.predict(batch_of).unwrap(),
            fin.predict(batch_of).unwrap()
        );
    }
}

#[test]
fn generation_matches_teacher_forcing_on_its_own_outputs() {
    // Fed its own outputs as targets, the teacher-forced pass (one forward over T steps) must
    // reproduce what the stream produced step by step.
    let (steps, batch, vector, hidden) = (6, 3, 2, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for cell in CELLS {
        for objective in OBJECTIVES {
            for conditioning in [
                Conditioning::InitialState,
                Conditioning::EveryStep,
                Conditioning::Both,
            ] {
                let input = OneToMany::input_size(objective, vector, conditioning);
                let rnn = RnnConfig::new(cell, input, hidden)
                    .with_num_layers(2)
                    .init(rng.random())
                    .unwrap();
                let model = OneToMany::new(rnn, vector, objective, conditioning, 4).unwrap();
                let v = random(&mut rng, batch * vector, 1.0);
                let generated = model.generate(&v, steps).unwrap();
                let forced = match &generated.classes {
                    Some(classes) => model
                        .predict(&v, Targets::Classes(classes), steps, None)
                        .unwrap(),
                    None => model
                        .predict(&v, Targets::Values(&generated.outputs), steps, None)
                        .unwrap(),
                };
                for (k, (&a, &b)) in generated.outputs.iter().zip(&forced).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
                        "{cell:?} {objective:?} {conditioning:?} [{k}]: stream {a} vs forced {b}"
                    );
                }
                if let Some(classes) = &generated.classes {
                    let argmax: Vec<u32> = forced
                        .chunks_exact(objective.width())
                        .map(|row| recur_engine::model::sampling::argmax(row) as u32)
                        .collect();
                    assert_eq!(classes, &argmax);
                }
            }
        }
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let classify = Objective::Classify { classes: 3 };
    let rnn = RnnConfig::new(CellKind::Gru, 2, 4).init(1).unwrap();
    let model = ManyToOne::new(rnn.clone(), classify, Readout::LastStep, 1).unwrap();
    let x = vec![0.0f32; 3 * 2 * 2]; // (T=3, B=2, I=2)
    let batch = SeqBatch::new(&x, 3, 2);
    assert!(matches!(
        model.loss(batch, Targets::Values(&[0.0, 1.0])),
        Err(HeadError::TargetKind { .. })
    ));
    assert!(matches!(
        model.loss(batch, Targets::Classes(&[0])),
        Err(HeadError::Shape {
            what: "targets",
            expected: 2,
            found: 1,
            ..
        })
    ));
    let err = model.loss(batch, Targets::Classes(&[0, 3])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "targets[1]: expected a class id in 0..3, found 3"
    );
    assert!(matches!(
        model.loss(batch.with_lengths(&[3, 0]), Targets::Classes(&[0, 1])),
        Err(HeadError::Rnn(RnnError::Length { row: 1, .. }))
    ));
    assert!(matches!(
        model.loss(batch.with_lengths(&[3]), Targets::Classes(&[0, 1])),
        Err(HeadError::Shape {
            what: "lengths",
            ..
        })
    ));
    assert!(matches!(
        model.predict(SeqBatch::new(&x[1..], 3, 2)),
        Err(HeadError::Rnn(RnnError::Shape { .. }))
    ));
    assert!(matches!(
        ManyToOne::new(
            rnn.clone(),
            Objective::Regress { outputs: 0 },
            Readout::LastStep,
            1
        ),
        Err(HeadError::ZeroSize { what: "outputs" })
    ));
    // many-to-many: (T, B) targets; a bad id on a real step is caught, on padding ignored
    let tagger = ManyToMany::new(rnn.clone(), classify, 1).unwrap();
    let mut tags = vec![0u32; 6];
    tags[5] = 9; // t = 2, b = 1
    assert!(matches!(
        tagger.loss(batch, Targets::Classes(&tags)),
        Err(HeadError::Class { index: 5, .. })
    ));
    assert!(
        tagger
            .loss(batch.with_lengths(&[3, 2]), Targets::Classes(&tags))
            .is_ok()
    );
    // one-to-many: input size, bidirectional, vectors, steps
    let err = OneToMany::new(rnn.clone(), 5, classify, Conditioning::Both, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rnn input_size (fed-back output width + vector size if fed every step): expected 8, found 2"
    );
    let bi = RnnConfig::new(CellKind::Gru, 3, 4)
        .with_bidirectional(true)
        .init(1)
        .unwrap();
    assert!(matches!(
        OneToMany::new(bi, 2, classify, Conditioning::InitialState, 1),
        Err(HeadError::Bidirectional { .. })
    ));
    let gen_rnn = RnnConfig::new(CellKind::Gru, 3, 4).init(1).unwrap();
    let generator = OneToMany::new(gen_rnn, 2, classify, Conditioning::InitialState, 1).unwrap();
    assert!(matches!(
        generator.generate(&[0.0; 3], 4),
        Err(HeadError::Shape {
            what: "vectors",
            ..
        })
    ));
    assert!(matches!(
        generator.generate(&[0.0; 4], 0),
        Err(HeadError::ZeroSize { what: "steps" })
    ));
    assert!(matches!(
        generator.loss(&[0.0; 4], Targets::Classes(&[0; 5]), 3, None),
        Err(HeadError::Shape {
            what: "targets",
            expected: 6,
            ..
        })
    ));
    assert!(matches!(
        generator.loss(&[0.0; 4], Targets::Classes(&[0; 6]), 0, None),
        Err(HeadError::Rnn(RnnError::EmptyBatch { .. }))
    ));
}
