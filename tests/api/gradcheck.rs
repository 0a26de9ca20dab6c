//! Central finite-difference checks of the f64 reference backward (`recur_engine::reference`).
//!
//! The loss is `L = Σ y⊙R + Σ_states (h_final⊙R_h + c_final⊙R_c)` with fixed random `R`, so
//! every output and every final state matters. For every scalar `θ` among all weights, biases,
//! the input `x` and every initial state, the analytic `∂L/∂θ` from `backward` is compared with
//! `(L(θ+ε) − L(θ−ε)) / 2ε`, `ε = 1e-6`. The error measure is
//! `|analytic − numeric| / max(|analytic|, |numeric|, 0.01)`: relative for gradients of magnitude
//! ≥ 0.01; below, the error is measured against 0.01, because the rounding noise of the
//! difference quotient, ~1e-16·|L|/ε ≈ 1e-10 here, is absolute and swamps the relative error of
//! a gradient that is nearly 0.
//!
//! Steps past a row's length must get exactly zero gradient (`d_x` there is compared exactly).

use recur::engine::reference::{
    Direction, RefNetwork, RefState, seeded_uniform, sequence_backward, sequence_forward,
};
use recur::kernels::{CellKind, RnnActivation};

const EPSILON: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;
/// Gradients smaller than this are compared absolutely (see the module doc).
const ERROR_FLOOR: f64 = 1e-2;

/// Everything the loss depends on, plus the fixed random weights `R` of the loss.
#[derive(Clone)]
struct Problem {
    net: RefNetwork<f64>,
    /// `Some(direction)`: a single cell (`net.layers[0][0]`) run by `sequence_forward` in that
    /// direction instead of the whole network.
    single: Option<Direction>,
    /// (T, B, I)
    x: Vec<f64>,
    steps: usize,
    batch: usize,
    /// (B)
    lengths: Vec<usize>,
    /// L·D, (layer, direction)
    init: Vec<RefState<f64>>,
    /// L − 1 masks of (T, B, D·H)
    dropout_masks: Option<Vec<Vec<f64>>>,
    /// (T, B, D·H)
    r_y: Vec<f64>,
    /// L·D
    r_final: Vec<RefState<f64>>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn state_dot(a: &RefState<f64>, b: &RefState<f64>) -> f64 {
    let c = match (&a.c, &b.c) {
        (Some(ac), Some(bc)) => dot(ac, bc),
        _ => 0.0,
    };
    dot(&a.h, &b.h) + c
}

impl Problem {
    fn loss(&self) -> f64 {
        match self.single {
            Some(direction) => {
                let cell = &self.net.layers[0][0];
                let fwd = sequence_forward(
                    cell,
                    &self.x,
                    self.steps,
                    self.batch,
                    &self.lengths,
                    &self.init[0],
                    direction,
                );
                dot(&fwd.y, &self.r_y) + state_dot(&fwd.final_state, &self.r_final[0])
            }
            None => {
                let fwd = self.net.forward(
                    &self.x,
                    self.steps,
                    self.batch,
                    &self.lengths,
                    Some(&self.init),
                    self.dropout_masks.as_deref(),
                );
                let finals: f64 = fwd
                    .final_states
                    .iter()
                    .zip(&self.r_final)
                    .map(|(s, r)| state_dot(s, r))
                    .sum();
                dot(&fwd.y, &self.r_y) + finals
            }
        }
    }

    /// Analytic gradients, in the order of [`Problem::slots`].
    fn analytic(&self) -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        let (d_x, d_init) = match self.single {
            Some(direction) => {
                let cell = &self.net.layers[0][0];
                let fwd = sequence_forward(
                    cell,
                    &self.x,
                    self.steps,
                    self.batch,
                    &self.lengths,
                    &self.init[0],
                    direction,
                );
                let grads = sequence_backward(cell, &self.x, &fwd, &self.r_y, &self.r_final[0]);
                for (name, g) in grads.named_parameters() {
                    out.push((format!("{name}_l0"), g.clone()));
                }
                (grads.d_x, vec![grads.d_init])
            }
            None => {
                let fwd = self.net.forward(
                    &self.x,
                    self.steps,
                    self.batch,
                    &self.lengths,
                    Some(&self.init),
                    self.dropout_masks.as_deref(),
                );
                let grads = self.net.backward(&fwd, &self.r_y, Some(&self.r_final));
                for (name, g) in grads.named_parameters() {
                    out.push((name, g.clone()));
                }
                (grads.d_x, grads.d_init)
            }
        };
        out.push(("x".into(), d_x));
        for (k, state) in d_init.into_iter().enumerate() {
            out.push((format!("h0[{k}]"), state.h));
            if let Some(c) = state.c {
                out.push((format!("c0[{k}]"), c));
            }
        }
        out
    }

    /// Every perturbable buffer, named, in the order of [`Problem::analytic`].
    fn slots(&mut self) -> Vec<(String, &mut Vec<f64>)> {
        let mut out = self.net.named_parameters_mut();
        out.push(("x".into(), &mut self.x));
        for (k, state) in self.init.iter_mut().enumerate() {
            out.push((format!("h0[{k}]"), &mut state.h));
            if let Some(c) = &mut state.c {
                out.push((format!("c0[{k}]"), c));
            }
        }
        out
    }
}

struct Case {
    kind: CellKind,
    input: usize,
    hidden: usize,
    steps: usize,
    lengths: Vec<usize>,
    num_layers: usize,
    bidirectional: bool,
    /// drop probability of the fixed mask between layers, if any
    dropout: Option<f64>,
    single: Option<Direction>,
    seed: u64,
}

fn build(case: &Case, seed: u64) -> Problem {
    let batch = case.lengths.len();
    let dirs = if case.bidirectional { 2 } else { 1 };
    let net = RefNetwork::<f64>::seeded(
        case.kind,
        case.input,
        case.hidden,
        case.num_layers,
        case.bidirectional,
        seed,
    );
    let states = |seed: u64| -> Vec<RefState<f64>> {
        (0..case.num_layers * dirs)
            .map(|k| RefState {
                h: seeded_uniform(batch * case.hidden, 0.8, seed + 2 * k as u64),
                c: case
                    .kind
                    .has_cell_state()
                    .then(|| seeded_uniform(batch * case.hidden, 0.8, seed + 2 * k as u64 + 1)),
            })
            .collect()
    };
    let out_width = case.steps * batch * dirs * case.hidden;
    let dropout_masks = case.dropout.map(|p| {
        (0..case.num_layers - 1)
            .map(|k| {
                let u: Vec<f64> = seeded_uniform(out_width, 0.5, seed + 900 + k as u64);
                // keep with probability 1 − p, scaled by 1/(1 − p) (inverted dropout)
                u.iter()
                    .map(|&v| if v + 0.5 < p { 0.0 } else { 1.0 / (1.0 - p) })
                    .collect()
            })
            .collect()
    });
    Problem {
        net,
        single: case.single,
        x: seeded_uniform(case.steps * batch * case.input, 1.0, seed + 100),
        steps: case.steps,
        batch,
        lengths: case.lengths.clone(),
        init: states(seed + 200),
        dropout_masks,
        r_y: seeded_uniform(out_width, 1.0, seed + 300),
        r_final: states(seed + 400),
    }
}

/// Whether a ReLU problem is fit for finite differences: every pre-activation the loss evaluates
/// stays ≥ 1e-3 from the kink at 0 (differences across it are meaningless), and at least a
/// quarter of them are active (a mostly dead network would have mostly zero gradients, which
/// check little). Other cells are always fit.
fn relu_fit(problem: &Problem) -> bool {
    if problem.net.kind() != CellKind::Rnn(RnnActivation::Relu) {
        return true;
    }
    let (mut active, mut total) = (0, 0);
    let fwd = problem.net.forward(
        &problem.x,
        problem.steps,
        problem.batch,
        &problem.lengths,
        Some(&problem.init),
        problem.dropout_masks.as_deref(),
    );
    let mut margin = f64::INFINITY;
    for (layer, cells) in problem.net.layers.iter().enumerate() {
        let input = &fwd.layer_inputs[layer];
        for (d, cell) in cells.iter().enumerate() {
            let seq = &fwd.sequences[layer][d];
            let (inp, hid) = (cell.input, cell.hidden);
            for b in 0..problem.batch {
                for t in 0..problem.lengths[b] {
                    let tb = t * problem.batch + b;
                    for j in 0..hid {
                        let mut pre = cell.b_ih[j] + cell.b_hh[j];
                        for k in 0..inp {
                            pre += cell.w_ih[j * inp + k] * input[tb * inp + k];
                        }
                        for k in 0..hid {
                            pre += cell.w_hh[j * hid + k] * seq.h_prev[tb * hid + k];
                        }
                        margin = margin.min(pre.abs());
                        active += usize::from(pre > 0.0);
                        total += 1;
                    }
                }
            }
        }
    }
    margin >= 1e-3 && 4 * active >= total
}

fn check(case: Case) {
    // for ReLU, the first seed that suits finite differences
    let problem = (0..50)
        .map(|offset| build(&case, case.seed + 1000 * offset))
        .find(relu_fit)
        .expect("no seed keeps the ReLU pre-activations away from 0");
    let analytic = problem.analytic();
    let (worst, checked) = worst_error(&problem, &analytic);
    println!(
        "{}: {checked} gradients, worst error {:.2e} at {}",
        case.kind.name(),
        worst.0,
        worst.1
    );
    assert!(
        worst.0 < TOLERANCE,
        "{}: gradient check failed, error {:.3e} at {}",
        case.kind.name(),
        worst.0,
        worst.1
    );

    // steps past a row's length get exactly zero input gradient
    let (_, d_x) = analytic.iter().find(|(n, _)| n == "x").expect("x slot");
    for b in 0..problem.batch {
        for t in problem.lengths[b]..problem.steps {
            let row = (t * problem.batch + b) * case.input;
            assert!(d_x[row..row + case.input].iter().all(|&g| g == 0.0));
        }
    }
}

/// The worst error over every scalar, where it happened, and how many scalars were checked.
fn worst_error(problem: &Problem, analytic: &[(String, Vec<f64>)]) -> ((f64, String), usize) {
    let mut probe = problem.clone();
    let slot_names: Vec<String> = probe.slots().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        slot_names,
        analytic.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    let mut worst = (0.0f64, String::new());
    let mut checked = 0;
    for (slot, (name, grad)) in analytic.iter().enumerate() {
        for j in 0..grad.len() {
            let original = probe.slots()[slot].1[j];
            probe.slots()[slot].1[j] = original + EPSILON;
            let up = probe.loss();
            probe.slots()[slot].1[j] = original - EPSILON;
            let down = probe.loss();
            probe.slots()[slot].1[j] = original;
            let numeric = (up - down) / (2.0 * EPSILON);
            let error =
                (grad[j] - numeric).abs() / grad[j].abs().max(numeric.abs()).max(ERROR_FLOOR);
            if error > worst.0 {
                worst = (
                    error,
                    format!("{name}[{j}]: analytic {} numeric {numeric}", grad[j]),
                );
            }
            checked += 1;
        }
    }
    (worst, checked)
}

const KINDS: [CellKind; 5] = [
    CellKind::Rnn(RnnActivation::Tanh),
    CellKind::Rnn(RnnActivation::Relu),
    CellKind::Lstm,
    CellKind::Gru,
    CellKind::GruResetBefore,
];

#[test]
fn one_layer_ragged_batch() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        check(Case {
            kind,
            input: 3,
            hidden: 4,
            steps: 5,
            lengths: vec![5, 2, 4],
            num_layers: 1,
            bidirectional: false,
            dropout: None,
            single: None,
            seed: seed as u64,
        });
    }
}

#[test]
fn reverse_direction_ragged_batch() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        check(Case {
            kind,
            input: 2,
            hidden: 3,
            steps: 4,
            lengths: vec![2, 4, 1],
            num_layers: 1,
            bidirectional: false,
            dropout: None,
            single: Some(Direction::Reverse),
            seed: 10 + seed as u64,
        });
    }
}

#[test]
fn two_layers_bidirectional_with_dropout() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        check(Case {
            kind,
            input: 3,
            hidden: 3,
            steps: 4,
            lengths: vec![3, 4],
            num_layers: 2,
            bidirectional: true,
            dropout: Some(0.3),
            single: None,
            seed: 20 + seed as u64,
        });
    }
}

#[test]
fn two_layers_unidirectional() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        check(Case {
            kind,
            input: 2,
            hidden: 4,
            steps: 3,
            lengths: vec![3, 1],
            num_layers: 2,
            bidirectional: false,
            dropout: None,
            single: None,
            seed: 30 + seed as u64,
        });
    }
}

#[test]
fn single_step_single_row() {
    for (seed, kind) in KINDS.into_iter().enumerate() {
        check(Case {
            kind,
            input: 3,
            hidden: 2,
            steps: 1,
            lengths: vec![1],
            num_layers: 1,
            bidirectional: true,
            dropout: None,
            single: None,
            seed: 40 + seed as u64,
        });
    }
}

/// The checker itself can fail: a gradient off by 1e-5 in one place is caught.
#[test]
fn checker_catches_a_wrong_gradient() {
    let case = Case {
        kind: CellKind::Gru,
        input: 2,
        hidden: 2,
        steps: 3,
        lengths: vec![3, 2],
        num_layers: 1,
        bidirectional: false,
        dropout: None,
        single: None,
        seed: 99,
    };
    let problem = build(&case, case.seed);
    let mut analytic = problem.analytic();
    assert!(worst_error(&problem, &analytic).0.0 < TOLERANCE);
    analytic[1].1[3] += 1e-5;
    assert!(worst_error(&problem, &analytic).0.0 > TOLERANCE);
}
