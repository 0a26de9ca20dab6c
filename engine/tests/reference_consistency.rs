//! Consistency of the reference with itself:
//! - the f32 instantiation agrees with the f64 one within what f32 rounding explains;
//! - ragged batches: a row of length L padded to T (padding filled with garbage) gives the same
//!   outputs, final state and gradients as that row run alone with T = L, in both directions,
//!   for a single layer and for a stacked bidirectional network;
//! - the streaming `RefCell::step` equals a one-step sequence.

use recur_engine::kernels::{CellKind, RnnActivation};
use recur_engine::reference::{
    Direction, Real, RefCell, RefNetwork, RefState, seeded_uniform, sequence_backward,
    sequence_forward,
};

const KINDS: [CellKind; 4] = [
    CellKind::Rnn(RnnActivation::Tanh),
    CellKind::Rnn(RnnActivation::Relu),
    CellKind::Lstm,
    CellKind::Gru,
];

fn random_state<T: Real>(kind: CellKind, batch: usize, hidden: usize, seed: u64) -> RefState<T> {
    RefState {
        h: seeded_uniform(batch * hidden, 0.8, seed),
        c: kind
            .has_cell_state()
            .then(|| seeded_uniform(batch * hidden, 0.8, seed + 1)),
    }
}

/// `|a − e| ≤ atol + rtol·|e|` element-wise.
fn assert_close<T: Real>(what: &str, actual: &[T], expected: &[f64], atol: f64, rtol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (k, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let a = a.to_f64();
        assert!(
            (a - e).abs() <= atol + rtol * e.abs(),
            "{what}[{k}]: {a} vs {e} (atol {atol}, rtol {rtol})"
        );
    }
}

fn to_f64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Runs a 2-layer bidirectional network in `T` with loss `Σ y⊙R + Σ h_final⊙R'`; returns the
/// outputs, final states and every gradient flattened, as f64.
fn network_run<T: Real>(
    net: &RefNetwork<T>,
    steps: usize,
    lengths: &[usize],
    seed: u64,
) -> Vec<(String, Vec<f64>)> {
    let (batch, hid) = (lengths.len(), net.hidden());
    let dirs = net.num_directions();
    let x: Vec<T> = seeded_uniform(steps * batch * net.input(), 1.0, seed);
    let init: Vec<RefState<T>> = (0..net.num_layers() * dirs)
        .map(|k| random_state(net.kind(), batch, hid, seed + 10 + 2 * k as u64))
        .collect();
    let fwd = net.forward(&x, steps, batch, lengths, Some(&init), None);
    let dy: Vec<T> = seeded_uniform(fwd.y.len(), 1.0, seed + 50);
    let d_final: Vec<RefState<T>> = (0..net.num_layers() * dirs)
        .map(|k| random_state(net.kind(), batch, hid, seed + 60 + 2 * k as u64))
        .collect();
    let grads = net.backward(&fwd, &dy, Some(&d_final));
    let mut out = vec![("y".to_string(), to_f64(&fwd.y))];
    for (k, s) in fwd.final_states.iter().enumerate() {
        out.push((format!("h_n[{k}]"), to_f64(&s.h)));
        if let Some(c) = &s.c {
            out.push((format!("c_n[{k}]"), to_f64(c)));
        }
    }
    for (name, g) in grads.named_parameters() {
        out.push((format!("d_{name}"), to_f64(g)));
    }
    out.push(("d_x".into(), to_f64(&grads.d_x)));
    for (k, s) in grads.d_init.iter().enumerate() {
        out.push((format!("d_h0[{k}]"), to_f64(&s.h)));
        if let Some(c) = &s.c {
            out.push((format!("d_c0[{k}]"), to_f64(c)));
        }
    }
    out
}

/// f32 and f64 instantiations of the same network on the same (f32-representable) data.
/// The weights and data are drawn in f64 and rounded to f32 for both runs, so the only
/// difference is the arithmetic. Tolerance: PyTorch's f32 defaults (`torch.testing.assert_close`:
/// rtol 1.3e-6, atol 1e-5); the worst deviation seen here is ~4e-7.
#[test]
fn f32_matches_f64() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        let net32 = RefNetwork::<f32>::seeded(kind, 5, 6, 2, true, seed as u64);
        let net64: RefNetwork<f64> = net32.cast();
        let lengths = [7, 3, 5];
        let a = network_run(&net32, 7, &lengths, 100 + seed as u64);
        // f64 run on exactly the f32 inputs: seeded_uniform::<f32> rounds the same f64 draws
        let x32: Vec<f32> = seeded_uniform(7 * 3 * 5, 1.0, 100 + seed as u64);
        let x64: Vec<f64> = seeded_uniform(7 * 3 * 5, 1.0, 100 + seed as u64);
        assert!(
            x32.iter()
                .zip(&x64)
                .all(|(p, q)| (p.to_f64() - q).abs() < 1e-7)
        );
        let b = network_run(&net64, 7, &lengths, 100 + seed as u64);
        let mut worst = 0.0f64;
        for ((name, p), (_, q)) in a.iter().zip(&b) {
            assert_close(&format!("{} {name}", kind.name()), p, q, 1e-5, 1.3e-6);
            for (u, v) in p.iter().zip(q) {
                worst = worst.max((u - v).abs() / (1.0 + v.abs()));
            }
        }
        println!(
            "{}: worst |f32 − f64|/(1 + |f64|) = {worst:.2e}",
            kind.name()
        );
    }
}

/// A single layer, either direction: row `b` of a padded, ragged batch equals that row alone.
#[test]
fn ragged_rows_equal_rows_run_alone() {
    let (steps, inp, hid) = (6, 3, 4);
    let lengths = [6, 2, 4, 1];
    let batch = lengths.len();
    for (seed, kind) in KINDS.into_iter().enumerate() {
        for direction in [Direction::Forward, Direction::Reverse] {
            let cell = RefCell::<f64>::seeded(kind, inp, hid, seed as u64);
            let mut x: Vec<f64> = seeded_uniform(steps * batch * inp, 1.0, 7);
            let mut dy: Vec<f64> = seeded_uniform(steps * batch * hid, 1.0, 8);
            // garbage past each row's length: must be neither read nor differentiated
            for b in 0..batch {
                for t in lengths[b]..steps {
                    let tb = t * batch + b;
                    x[tb * inp..(tb + 1) * inp].fill(1e6);
                    dy[tb * hid..(tb + 1) * hid].fill(-1e6);
                }
            }
            let init = random_state::<f64>(kind, batch, hid, 9);
            let d_final = random_state::<f64>(kind, batch, hid, 11);
            let fwd = sequence_forward(&cell, &x, steps, batch, &lengths, &init, direction);
            let grads = sequence_backward(&cell, &x, &fwd, &dy, &d_final);

            let mut summed = [
                vec![0.0; grads.d_w_ih.len()],
                vec![0.0; grads.d_w_hh.len()],
                vec![0.0; grads.d_b_ih.len()],
                vec![0.0; grads.d_b_hh.len()],
            ];
            for b in 0..batch {
                let len = lengths[b];
                let row_of = |v: &[f64], width: usize, t: usize| {
                    let tb = t * batch + b;
                    v[tb * width..(tb + 1) * width].to_vec()
                };
                let x_b: Vec<f64> = (0..len).flat_map(|t| row_of(&x, inp, t)).collect();
                let dy_b: Vec<f64> = (0..len).flat_map(|t| row_of(&dy, hid, t)).collect();
                let state_row = |s: &RefState<f64>| RefState {
                    h: s.h[b * hid..(b + 1) * hid].to_vec(),
                    c: s.c.as_ref().map(|c| c[b * hid..(b + 1) * hid].to_vec()),
                };
                let alone_fwd =
                    sequence_forward(&cell, &x_b, len, 1, &[len], &state_row(&init), direction);
                let alone = sequence_backward(&cell, &x_b, &alone_fwd, &dy_b, &state_row(&d_final));
                let what = format!("{} {direction:?} row {b}", kind.name());
                for t in 0..steps {
                    let y = row_of(&fwd.y, hid, t);
                    let d_x = row_of(&grads.d_x, inp, t);
                    if t < len {
                        assert_eq!(y, alone_fwd.y[t * hid..(t + 1) * hid], "{what}: y[{t}]");
                        assert_eq!(d_x, alone.d_x[t * inp..(t + 1) * inp], "{what}: d_x[{t}]");
                    } else {
                        assert!(y.iter().all(|&v| v == 0.0), "{what}: y[{t}] past length");
                        assert!(
                            d_x.iter().all(|&v| v == 0.0),
                            "{what}: d_x[{t}] past length"
                        );
                    }
                }
                assert_eq!(state_row(&fwd.final_state), alone_fwd.final_state, "{what}");
                assert_eq!(state_row(&grads.d_init), alone.d_init, "{what}: d_init");
                for (sum, g) in summed.iter_mut().zip(alone.named_parameters()) {
                    for (s, v) in sum.iter_mut().zip(g.1) {
                        *s += v;
                    }
                }
            }
            // weight gradients of the batch are the sums over the rows
            for (sum, (name, g)) in summed.iter().zip(grads.named_parameters()) {
                assert_close(&format!("{} d_{name}", kind.name()), g, sum, 1e-12, 1e-12);
            }
        }
    }
}

/// The same for a 2-layer bidirectional network: the reverse direction of every layer must start
/// at each row's own end.
#[test]
fn ragged_network_rows_equal_rows_run_alone() {
    let (steps, inp, hid) = (5, 2, 3);
    let lengths = [3, 5];
    for (seed, kind) in KINDS.into_iter().enumerate() {
        let net = RefNetwork::<f64>::seeded(kind, inp, hid, 2, true, seed as u64);
        let batch = lengths.len();
        let mut x: Vec<f64> = seeded_uniform(steps * batch * inp, 1.0, 3);
        for b in 0..batch {
            for t in lengths[b]..steps {
                let tb = t * batch + b;
                x[tb * inp..(tb + 1) * inp].fill(-1e6);
            }
        }
        let fwd = net.forward(&x, steps, batch, &lengths, None, None);
        let width = 2 * hid;
        let mut dy: Vec<f64> = seeded_uniform(fwd.y.len(), 1.0, 4);
        for b in 0..batch {
            for t in lengths[b]..steps {
                let tb = t * batch + b;
                dy[tb * width..(tb + 1) * width].fill(1e6);
            }
        }
        let grads = net.backward(&fwd, &dy, None);
        for b in 0..batch {
            let len = lengths[b];
            let x_b: Vec<f64> = (0..len)
                .flat_map(|t| x[(t * batch + b) * inp..(t * batch + b + 1) * inp].to_vec())
                .collect();
            let alone = net.forward(&x_b, len, 1, &[len], None, None);
            let dy_b: Vec<f64> = (0..len)
                .flat_map(|t| dy[(t * batch + b) * width..(t * batch + b + 1) * width].to_vec())
                .collect();
            let alone_grads = net.backward(&alone, &dy_b, None);
            for t in 0..len {
                let tb = t * batch + b;
                assert_eq!(
                    fwd.y[tb * width..(tb + 1) * width],
                    alone.y[t * width..(t + 1) * width],
                    "{} row {b} y[{t}]",
                    kind.name()
                );
                assert_eq!(
                    grads.d_x[tb * inp..(tb + 1) * inp],
                    alone_grads.d_x[t * inp..(t + 1) * inp],
                    "{} row {b} d_x[{t}]",
                    kind.name()
                );
            }
            for (k, (s, a)) in grads.d_init.iter().zip(&alone_grads.d_init).enumerate() {
                assert_eq!(
                    s.h[b * hid..(b + 1) * hid],
                    a.h[..],
                    "{} d_h0[{k}]",
                    kind.name()
                );
            }
            for (k, (s, a)) in fwd.final_states.iter().zip(&alone.final_states).enumerate() {
                assert_eq!(
                    s.h[b * hid..(b + 1) * hid],
                    a.h[..],
                    "{} h_n[{k}]",
                    kind.name()
                );
            }
        }
    }
}

/// The streaming step equals a one-step sequence, for every cell.
#[test]
fn step_equals_one_step_sequence() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        let cell = RefCell::<f64>::seeded(kind, 3, 5, seed as u64);
        let x: Vec<f64> = seeded_uniform(2 * 3, 1.0, 5);
        let state = random_state::<f64>(kind, 2, 5, 6);
        let stepped = cell.step(&x, 2, &state);
        let seq = sequence_forward(&cell, &x, 1, 2, &[1, 1], &state, Direction::Forward);
        assert_eq!(stepped, seq.final_state, "{}", kind.name());
        assert_eq!(stepped.h, seq.y, "{}", kind.name());
    }
}
