//! Golden values for the reference cells, derived by hand for a tiny case of each cell
//! (B = 1, I = 1, T = 2; H = 1 except ReLU with H = 2).
//!
//! Inputs are chosen so that every activation is rational: with `L = ln 3`,
//! `σ(0) = 1/2`, `σ(L) = 3/4`, `σ(−L) = 1/4`, `tanh(0) = 0`, `tanh(L/2) = 1/2`, `tanh(L) = 4/5`
//! (`tanh(y) = (e^{2y} − 1)/(e^{2y} + 1)`). Weights are solved from the pre-activations wanted
//! at each step, so the forward values are exact fractions and the gradients are worked out by
//! the chain rule, step by step, in each test's doc comment. Only the final combination of the
//! hand-derived per-step terms (sums, products with the inputs) is left to the code.

use recur_engine::kernels::{CellKind, RnnActivation};
use recur_engine::reference::{
    Direction, RefCell, RefGrads, RefSequence, RefState, sequence_backward, sequence_forward,
};

/// Hand values involve `ln 3` and a few roundings: 1e-12 is many ulps above f64 rounding here
/// and far below any derivation error.
fn assert_close(what: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (k, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-12 * (1.0 + e.abs()),
            "{what}[{k}]: got {a}, derived {e}"
        );
    }
}

fn ln3() -> f64 {
    3f64.ln()
}

/// Runs forward and backward over the batch-1 sequence `x` (T = 2) with `dy = (1, 1)`.
fn run(
    cell: &RefCell<f64>,
    x: &[f64],
    init: RefState<f64>,
    d_final: RefState<f64>,
) -> (RefSequence<f64>, RefGrads<f64>) {
    let steps = x.len() / cell.input;
    let fwd = sequence_forward(cell, x, steps, 1, &[steps], &init, Direction::Forward);
    let dy = vec![1.0; fwd.y.len()];
    let grads = sequence_backward(cell, x, &fwd, &dy, &d_final);
    (fwd, grads)
}

/// SimpleRNN, tanh, H = I = 1: `w_ih = 1`, `w_hh = 2`, `b_ih = 1/2`, `b_hh = 0`, `h_0 = 1/4`,
/// `x = (L/2 − 1, L − 3/2)`; loss `y_1 + y_2 + h_final` (dy = (1, 1), dh_final = 1).
///
/// Forward:
/// - `a_1 = (L/2 − 1) + 1/2 + 2·(1/4) = L/2`, `h_1 = tanh(L/2) = 1/2`;
/// - `a_2 = (L − 3/2) + 1/2 + 2·(1/2) = L`, `h_2 = tanh(L) = 4/5`.
///
/// Backward (`δ = dh·(1 − h²)`):
/// - step 2: `dh_2 = 1 + 1 = 2`, `δ_2 = 2·(1 − 16/25) = 18/25`, passes `w_hh·δ_2 = 36/25` down;
/// - step 1: `dh_1 = 1 + 36/25 = 61/25`, `δ_1 = 61/25·3/4 = 183/100`;
/// - `dW_hh = δ_2·h_1 + δ_1·h_0 = 9/25 + 183/400 = 327/400`; `dW_ih = δ_1 x_1 + δ_2 x_2`;
///   `db_ih = db_hh = δ_1 + δ_2 = 51/20`; `dx = (183/100, 18/25)`; `dh_0 = 2·183/100 = 183/50`.
#[test]
fn rnn_tanh_by_hand() {
    let l = ln3();
    let mut cell = RefCell::<f64>::zeros(CellKind::Rnn(RnnActivation::Tanh), 1, 1);
    (cell.w_ih, cell.w_hh) = (vec![1.0], vec![2.0]);
    (cell.b_ih, cell.b_hh) = (vec![0.5], vec![0.0]);
    let x = [l / 2.0 - 1.0, l - 1.5];
    let init = RefState {
        h: vec![0.25],
        c: None,
    };
    let (fwd, grads) = run(
        &cell,
        &x,
        init,
        RefState {
            h: vec![1.0],
            c: None,
        },
    );

    assert_close("y", &fwd.y, &[0.5, 0.8]);
    assert_close("h_final", &fwd.final_state.h, &[0.8]);
    let (delta_1, delta_2) = (183.0 / 100.0, 18.0 / 25.0);
    assert_close("d_w_hh", &grads.d_w_hh, &[327.0 / 400.0]);
    assert_close("d_w_ih", &grads.d_w_ih, &[delta_1 * x[0] + delta_2 * x[1]]);
    assert_close("d_b_ih", &grads.d_b_ih, &[51.0 / 20.0]);
    assert_close("d_b_hh", &grads.d_b_hh, &[51.0 / 20.0]);
    assert_close("d_x", &grads.d_x, &[delta_1, delta_2]);
    assert_close("d_h0", &grads.d_init.h, &[183.0 / 50.0]);
}

/// SimpleRNN, ReLU, H = 2, I = 1: `w_ih = (1, −1)ᵀ`, `w_hh = [[1/2, 0], [1, 1]]`,
/// `b_ih = (0, 1)`, `b_hh = 0`, `h_0 = 0`, `x = (2, 1)`; `dy_1 = (1, 2)`, `dy_2 = (1, −1)`,
/// no gradient on the final state.
///
/// Forward:
/// - `a_1 = (2, −2 + 1) = (2, −1)`, `h_1 = (2, 0)`: unit 2 is off;
/// - `a_2 = (1, −1 + 1) + w_hh·(2, 0) = (1 + 1, 0 + 2) = (2, 2)`, `h_2 = (2, 2)`.
///
/// Backward (`δ = dh ⊙ [a > 0]`):
/// - step 2: `δ_2 = (1, −1)`; `w_hhᵀδ_2 = (1/2 − 1, −1) = (−1/2, −1)`; `dx_2 = 1 + 1 = 2`;
/// - step 1: `dh_1 = (1, 2) + (−1/2, −1) = (1/2, 1)`, `δ_1 = (1/2, 0)` (unit 2 off: its gradient
///   stops); `dx_1 = 1/2`; `dh_0 = w_hhᵀδ_1 = (1/4, 0)`;
/// - `dW_ih = δ_1·2 + δ_2·1 = (2, −1)`; `dW_hh = δ_2 h_1ᵀ + δ_1 h_0ᵀ = [[2, 0], [−2, 0]]`;
///   `db = δ_1 + δ_2 = (3/2, −1)`.
#[test]
fn rnn_relu_by_hand() {
    let mut cell = RefCell::<f64>::zeros(CellKind::Rnn(RnnActivation::Relu), 1, 2);
    cell.w_ih = vec![1.0, -1.0];
    cell.w_hh = vec![0.5, 0.0, 1.0, 1.0];
    cell.b_ih = vec![0.0, 1.0];
    let x = [2.0, 1.0];
    let fwd = sequence_forward(
        &cell,
        &x,
        2,
        1,
        &[2],
        &RefState::zeros(cell.kind, 1, 2),
        Direction::Forward,
    );
    assert_close("y", &fwd.y, &[2.0, 0.0, 2.0, 2.0]);
    assert_close("h_final", &fwd.final_state.h, &[2.0, 2.0]);
    let dy = [1.0, 2.0, 1.0, -1.0];
    let grads = sequence_backward(&cell, &x, &fwd, &dy, &RefState::zeros(cell.kind, 1, 2));
    assert_close("d_w_ih", &grads.d_w_ih, &[2.0, -1.0]);
    assert_close("d_w_hh", &grads.d_w_hh, &[2.0, 0.0, -2.0, 0.0]);
    assert_close("d_b_ih", &grads.d_b_ih, &[1.5, -1.0]);
    assert_close("d_b_hh", &grads.d_b_hh, &[1.5, -1.0]);
    assert_close("d_x", &grads.d_x, &[0.5, 2.0]);
    assert_close("d_h0", &grads.d_init.h, &[0.25, 0.0]);
}

/// LSTM, H = I = 1, gates (i, f, g, o). Wanted pre-activations: step 1 `P_1 = (0, L, L/2, L)`,
/// step 2 `P_2 = (−L, 0, 0, 0)`. With `x = (1, 1)`, `h_0 = 0`, `b_ih = 1/4`, `b_hh = −1/4`
/// (they cancel), `w_ih = P_1` and `w_hh = 5/3·(P_2 − P_1) = (−5L/3, −5L/3, −5L/6, −5L/3)` (so
/// that `w_hh·h_1 = P_2 − P_1` once `h_1 = 3/5`), and `c_0 = (4L − 1)/3`.
/// Loss `y_1 + y_2 + c_final` (dy = (1, 1), dh_final = 0, dc_final = 1).
///
/// Forward:
/// - step 1: `i = 1/2, f = 3/4, g = 1/2, o = 3/4`; `c_1 = 3/4·(4L − 1)/3 + 1/4 = L`,
///   `tanh c_1 = 4/5`, `h_1 = 3/5`;
/// - step 2: `i = 1/4, f = 1/2, g = 0, o = 1/2`; `c_2 = L/2`, `tanh c_2 = 1/2`, `h_2 = 1/4`.
///
/// Backward (`dc_t = dc + dh·o·(1 − tanh²c)`, `δ_i = dc_t·g·i(1−i)`, `δ_f = dc_t·c'·f(1−f)`,
/// `δ_g = dc_t·i·(1 − g²)`, `δ_o = dh·tanh c·o(1−o)`, `dc' = dc_t·f`):
/// - step 2: `dh = 1`, `dc = 1`: `dc_t = 1 + 1/2·3/4 = 11/8`;
///   `δ_2 = (0, 11/8·L·1/4, 11/8·1/4, 1/2·1/4) = (0, 11L/32, 11/32, 1/8)`; `dc_1 = 11/16`;
///   `dx_2 = w_ih·δ_2 = 11L²/32 + 19L/64`; `w_hh·δ_2 = −55L²/96 − 95L/192`;
/// - step 1: `D = dh_1 = 1 − 55L²/96 − 95L/192`; `dc_t = 11/16 + D·3/4·9/25 = 11/16 + 27D/100`;
///   `δ_1 = (dc_t/8, dc_t·c_0·3/16, 3dc_t/8, D·4/5·3/16 = 3D/20)`;
///   `dc_0 = 3/4·dc_t`, `dh_0 = w_hh·δ_1`, `dx_1 = w_ih·δ_1`;
/// - `dW_ih = δ_1 + δ_2` (x = 1), `dW_hh = h_0·δ_1 + h_1·δ_2 = 3/5·δ_2`, `db = δ_1 + δ_2`.
#[test]
fn lstm_by_hand() {
    let l = ln3();
    let mut cell = RefCell::<f64>::zeros(CellKind::Lstm, 1, 1);
    cell.w_ih = vec![0.0, l, l / 2.0, l];
    cell.w_hh = vec![
        -5.0 * l / 3.0,
        -5.0 * l / 3.0,
        -5.0 * l / 6.0,
        -5.0 * l / 3.0,
    ];
    (cell.b_ih, cell.b_hh) = (vec![0.25; 4], vec![-0.25; 4]);
    let c_0 = (4.0 * l - 1.0) / 3.0;
    let init = RefState {
        h: vec![0.0],
        c: Some(vec![c_0]),
    };
    let d_final = RefState {
        h: vec![0.0],
        c: Some(vec![1.0]),
    };
    let (fwd, grads) = run(&cell, &[1.0, 1.0], init, d_final);

    assert_close("y", &fwd.y, &[0.6, 0.25]);
    assert_close("h_final", &fwd.final_state.h, &[0.25]);
    assert_close("c_final", fwd.final_state.c.as_ref().unwrap(), &[l / 2.0]);

    let delta_2 = [0.0, 11.0 * l / 32.0, 11.0 / 32.0, 1.0 / 8.0];
    let big_d = 1.0 - 55.0 * l * l / 96.0 - 95.0 * l / 192.0;
    let dc_t = 11.0 / 16.0 + 27.0 * big_d / 100.0;
    let delta_1 = [
        dc_t / 8.0,
        dc_t * c_0 * 3.0 / 16.0,
        3.0 * dc_t / 8.0,
        3.0 * big_d / 20.0,
    ];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let sum: Vec<f64> = (0..4).map(|k| delta_1[k] + delta_2[k]).collect();
    assert_close("d_w_ih", &grads.d_w_ih, &sum);
    assert_close("d_b_ih", &grads.d_b_ih, &sum);
    assert_close("d_b_hh", &grads.d_b_hh, &sum);
    let d_w_hh: Vec<f64> = delta_2.iter().map(|d| 0.6 * d).collect();
    assert_close("d_w_hh", &grads.d_w_hh, &d_w_hh);
    let dx_2 = 11.0 * l * l / 32.0 + 19.0 * l / 64.0;
    assert_close("dx_2 (hand form)", &[dot(&cell.w_ih, &delta_2)], &[dx_2]);
    assert_close("d_x", &grads.d_x, &[dot(&cell.w_ih, &delta_1), dx_2]);
    assert_close("d_h0", &grads.d_init.h, &[dot(&cell.w_hh, &delta_1)]);
    assert_close("d_c0", grads.d_init.c.as_ref().unwrap(), &[0.75 * dc_t]);
}

/// GRU, H = I = 1, gates (r, z, n), linear-before-reset. `x = (1, −1)`, `h_0 = 1`;
/// wanted: step 1 `r = 3/4, z = 1/2, n = 1/2`; step 2 `r = 1/2, z = 1/4, n = 4/5`.
/// `w_hh = (4, 4, 4)`, `b_hh = (0, 0, −1)` so `u_n = 4h − 1` is 3 then 2 (given `h_1 = 3/4`);
/// solving `w x_t + b + 4h_{t−1} = wanted` for the r and z rows, and
/// `w x_t + b_in + r_t·u_n = wanted` for the n row:
/// `w_ih = ((L−1)/2, (L−1)/2, −L/4 − 5/8)`, `b_ih = ((L−7)/2, (−L−7)/2, 3L/4 − 13/8)`.
/// Loss `y_1 + y_2`.
///
/// Forward:
/// - step 1: pre-activations `(L, 0, (−L/4 − 5/8) + 3L/4 − 13/8 + 3/4·3 = L/2)`;
///   `h_1 = 1/2·1/2 + 1/2·1 = 3/4`;
/// - step 2: pre-activations `(0, −L, L/4 + 5/8 + 3L/4 − 13/8 + 1/2·2 = L)`;
///   `h_2 = 3/4·4/5 + 1/4·3/4 = 63/80`.
///
/// Backward (`δ_n = dh(1−z)(1−n²)`, `δ_z = dh(h'−n)z(1−z)`, `δ_r = δ_n·u_n·r(1−r)`;
/// `δ_a = (δ_r, δ_z, δ_n)`, `δ_u = (δ_r, δ_z, r·δ_n)`, `dh' = z·dh + w_hh·δ_u`):
/// - step 2: `dh = 1`: `δ_n = 3/4·9/25 = 27/100`, `δ_z = (3/4 − 4/5)·3/16 = −3/320`,
///   `δ_r = 27/100·2·1/4 = 27/200`; `δ_u = (27/200, −3/320, 27/200)`;
///   `dh_1 = 1/4 + 4·(27/100 − 3/320) = 517/400`; `dx_2 = w_ih·δ_a = (−15L − 741)/3200`;
/// - step 1: `dh = 1 + 517/400 = 917/400`: `δ_n = 917/400·1/2·3/4 = 2751/3200`,
///   `δ_z = 917/400·(1 − 1/2)·1/4 = 917/3200`, `δ_r = 2751/3200·3·3/16 = 24759/51200`;
///   `δ_u = (24759/51200, 917/3200, 8253/12800)`; `dh_0 = 917/800 + 4·72443/51200 = 87115/12800`;
/// - `dW_ih = δ_a1 − δ_a2`, `dW_hh = 1·δ_u1 + 3/4·δ_u2`, `db_ih = δ_a1 + δ_a2`,
///   `db_hh = δ_u1 + δ_u2`, `dx_1 = w_ih·δ_a1`.
#[test]
fn gru_by_hand() {
    let l = ln3();
    let mut cell = RefCell::<f64>::zeros(CellKind::Gru, 1, 1);
    cell.w_ih = vec![(l - 1.0) / 2.0, (l - 1.0) / 2.0, -l / 4.0 - 5.0 / 8.0];
    cell.w_hh = vec![4.0, 4.0, 4.0];
    cell.b_ih = vec![
        (l - 7.0) / 2.0,
        (-l - 7.0) / 2.0,
        3.0 * l / 4.0 - 13.0 / 8.0,
    ];
    cell.b_hh = vec![0.0, 0.0, -1.0];
    let init = RefState {
        h: vec![1.0],
        c: None,
    };
    let (fwd, grads) = run(
        &cell,
        &[1.0, -1.0],
        init,
        RefState {
            h: vec![0.0],
            c: None,
        },
    );

    assert_close("y", &fwd.y, &[0.75, 63.0 / 80.0]);
    assert_close("h_final", &fwd.final_state.h, &[63.0 / 80.0]);

    let delta_a2 = [27.0 / 200.0, -3.0 / 320.0, 27.0 / 100.0];
    let delta_u2 = [27.0 / 200.0, -3.0 / 320.0, 27.0 / 200.0];
    let delta_a1 = [24759.0 / 51200.0, 917.0 / 3200.0, 2751.0 / 3200.0];
    let delta_u1 = [24759.0 / 51200.0, 917.0 / 3200.0, 8253.0 / 12800.0];
    let combine = |p: f64, a: &[f64; 3], q: f64, b: &[f64; 3]| -> Vec<f64> {
        (0..3).map(|k| p * a[k] + q * b[k]).collect()
    };
    assert_close(
        "d_w_ih",
        &grads.d_w_ih,
        &combine(1.0, &delta_a1, -1.0, &delta_a2),
    );
    assert_close(
        "d_w_hh",
        &grads.d_w_hh,
        &combine(1.0, &delta_u1, 0.75, &delta_u2),
    );
    assert_close(
        "d_b_ih",
        &grads.d_b_ih,
        &combine(1.0, &delta_a1, 1.0, &delta_a2),
    );
    assert_close(
        "d_b_hh",
        &grads.d_b_hh,
        &combine(1.0, &delta_u1, 1.0, &delta_u2),
    );
    let dx_1: f64 = (0..3).map(|k| cell.w_ih[k] * delta_a1[k]).sum();
    assert_close("d_x", &grads.d_x, &[dx_1, (-15.0 * l - 741.0) / 3200.0]);
    assert_close("d_h0", &grads.d_init.h, &[87115.0 / 12800.0]);
}

/// GRU with the reset gate before the candidate's matmul (Keras `reset_after=False`), H = I = 1:
/// `n = tanh(w_in x + b_in + b_hn + w_hn·(r h'))`. `w_hh = (4, 4, 4)`, `b_hh = (0, 0, −1)` (it
/// sits outside the reset here), `h_0 = 1`, `x = (1, −1)`; `w_ih`, `b_ih` solved for the
/// pre-activations below. Loss `y_1 + y_2` (dh_final = 0).
///
/// Forward:
/// - step 1 (`h' = 1`): `r = σ(0) = 1/2`, `z = σ(0) = 1/2`, `s = r h' = 1/2`,
///   `n = tanh(L/2) = 1/2`, `h_1 = (1 − z) n + z h' = 3/4`;
/// - step 2 (`h' = 3/4`): `r = σ(L) = 3/4`, `z = σ(−L) = 1/4`, `s = 9/16`, `n = tanh(L) = 4/5`,
///   `h_2 = 3/4·4/5 + 1/4·3/4 = 63/80`.
///
/// Backward (`δ_n = dh(1−z)(1−n²)`, `δ_z = dh(h'−n)z(1−z)`, `d_s = w_hn δ_n`,
/// `δ_r = d_s h' r(1−r)`, `dh' = dh z + d_s r + w_hr δ_r + w_hz δ_z`):
/// - step 2: `dh = 1`: `δ_n = 3/4·9/25 = 27/100`, `δ_z = (−1/20)·3/16 = −3/320`,
///   `d_s = 27/25`, `δ_r = 27/25·3/4·3/16 = 243/1600`;
///   `dh_1 = 1/4 + 81/100 + 243/400 − 3/80 = 163/100`;
/// - step 1: `dh = 1 + 163/100 = 263/100`: `δ_n = 263/100·1/2·3/4 = 789/800`,
///   `δ_z = 263/100·1/2·1/4 = 263/800`, `d_s = 789/200`, `δ_r = 789/200·1·1/4 = 789/800`;
///   `dh_0 = 263/200 + 789/400 + 789/200 + 263/200 = 3419/400`;
/// - `δ_a = δ_u = δ` for every gate; `dW_ih = δ_1 − δ_2`; `dW_hh` rows r, z: `1·δ_1 + 3/4·δ_2`,
///   row n: `s_1 δ_n1 + s_2 δ_n2 = 1/2·789/800 + 9/16·27/100`; `db_ih = db_hh = δ_1 + δ_2`;
///   `dx_t = w_ih·δ_t`.
#[test]
fn gru_reset_before_by_hand() {
    let l = ln3();
    let mut cell = RefCell::<f64>::zeros(CellKind::GruResetBefore, 1, 1);
    cell.w_ih = vec![(-1.0 - l) / 2.0, (l - 1.0) / 2.0, -l / 4.0 + 1.0 / 8.0];
    cell.w_hh = vec![4.0, 4.0, 4.0];
    cell.b_ih = vec![(l - 7.0) / 2.0, (-l - 7.0) / 2.0, 3.0 * l / 4.0 - 9.0 / 8.0];
    cell.b_hh = vec![0.0, 0.0, -1.0];
    let init = RefState {
        h: vec![1.0],
        c: None,
    };
    let zero = RefState {
        h: vec![0.0],
        c: None,
    };
    let (fwd, grads) = run(&cell, &[1.0, -1.0], init, zero);

    assert_close("y", &fwd.y, &[0.75, 63.0 / 80.0]);
    assert_close("h_final", &fwd.final_state.h, &[63.0 / 80.0]);
    assert_close("r⊙h' cache", &fwd.gru_hn, &[0.5, 9.0 / 16.0]);

    let delta_1 = [789.0 / 800.0, 263.0 / 800.0, 789.0 / 800.0];
    let delta_2 = [243.0 / 1600.0, -3.0 / 320.0, 27.0 / 100.0];
    let combine =
        |p: f64, q: f64| -> Vec<f64> { (0..3).map(|k| p * delta_1[k] + q * delta_2[k]).collect() };
    assert_close("d_w_ih", &grads.d_w_ih, &combine(1.0, -1.0));
    let mut d_w_hh = combine(1.0, 0.75);
    d_w_hh[2] = 0.5 * 789.0 / 800.0 + 9.0 / 16.0 * 27.0 / 100.0;
    assert_close("d_w_hh", &grads.d_w_hh, &d_w_hh);
    assert_close("d_b_ih", &grads.d_b_ih, &combine(1.0, 1.0));
    assert_close("d_b_hh", &grads.d_b_hh, &combine(1.0, 1.0));
    let dx = |delta: &[f64; 3]| -> f64 { (0..3).map(|k| cell.w_ih[k] * delta[k]).sum() };
    assert_close("d_x", &grads.d_x, &[dx(&delta_1), dx(&delta_2)]);
    assert_close("d_h0", &grads.d_init.h, &[3419.0 / 400.0]);
}
