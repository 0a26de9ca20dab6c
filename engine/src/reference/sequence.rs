//! One layer, one direction, over a whole (possibly ragged) batch of sequences: forward and
//! backpropagation through time.
//!
//! Inputs are time-major: `x` is (T, B, I), element `[t, b, k]` at `(t·B + b)·I + k`.
//! Every row `b` has its own length `L_b ∈ 1..=T` (PyTorch's packed-sequence semantics):
//! - [`Direction::Forward`] processes steps `0, 1, …, L_b − 1`;
//! - [`Direction::Reverse`] processes steps `L_b − 1, …, 1, 0` — it starts at the row's own end,
//!   not at `T − 1`;
//! - steps `t ≥ L_b` neither read `x[t, b]` nor change the state, `y[t, b] = 0` there, and in
//!   backward they receive no gradient (`d_x[t, b] = 0`, `dy[t, b]` is ignored);
//! - the final state of row `b` is its state after its last processed step.

use super::cell::{CellGrads, RefCell, RefState, RowCache};
use super::real::Real;

/// Which way a layer walks through time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `t = 0, 1, …, L − 1`.
    Forward,
    /// `t = L − 1, …, 0` (PyTorch's `_reverse` weights of a bidirectional layer).
    Reverse,
}

impl Direction {
    /// The steps a row of length `length` visits, in processing order.
    pub fn steps(self, length: usize) -> Box<dyn Iterator<Item = usize>> {
        match self {
            Direction::Forward => Box::new(0..length),
            Direction::Reverse => Box::new((0..length).rev()),
        }
    }
}

/// The result of [`sequence_forward`]: outputs, final state, and the cache backward reads.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSequence<T> {
    /// T
    pub steps: usize,
    /// B
    pub batch: usize,
    /// (B), each in `1..=T`
    pub lengths: Vec<usize>,
    pub direction: Direction,
    /// (T, B, H): `h` after step t; 0 at steps past a row's length
    pub y: Vec<T>,
    /// h (B, H) and c (B, H, LSTM) after each row's last processed step
    pub final_state: RefState<T>,
    /// (T, B, H): the hidden state entering step t (0 past a row's length)
    pub h_prev: Vec<T>,
    /// (T, B, H), LSTM only (else empty): the cell state entering step t
    pub c_prev: Vec<T>,
    /// (T, B, H), LSTM only (else empty): the cell state after step t
    pub c: Vec<T>,
    /// (T, B, G·H): gate activations (RNN h; LSTM i,f,g,o; GRU r,z,n)
    pub gates: Vec<T>,
    /// (T, B, H), GRU only (else empty): `W_hn h_{t−1} + b_hn` (reset-before: `r⊙h_{t−1}`)
    pub gru_hn: Vec<T>,
}

/// The gradients of [`sequence_backward`], each named after what it is the gradient of.
#[derive(Clone, Debug, PartialEq)]
pub struct RefGrads<T> {
    /// (G·H, I)
    pub d_w_ih: Vec<T>,
    /// (G·H, H)
    pub d_w_hh: Vec<T>,
    /// (G·H)
    pub d_b_ih: Vec<T>,
    /// (G·H)
    pub d_b_hh: Vec<T>,
    /// (T, B, I): 0 at steps past a row's length
    pub d_x: Vec<T>,
    /// h (B, H) and c (B, H, LSTM): gradient w.r.t. the initial state
    pub d_init: RefState<T>,
}

impl<T: Real> RefGrads<T> {
    /// The four weight gradients with PyTorch's parameter names (see
    /// [`RefCell::named_parameters`]).
    pub fn named_parameters(&self) -> [(&'static str, &Vec<T>); 4] {
        [
            ("weight_ih", &self.d_w_ih),
            ("weight_hh", &self.d_w_hh),
            ("bias_ih", &self.d_b_ih),
            ("bias_hh", &self.d_b_hh),
        ]
    }
}

/// Panics unless `lengths` are B values in `1..=T`.
pub(crate) fn check_lengths(lengths: &[usize], steps: usize, batch: usize) {
    assert_eq!(
        lengths.len(),
        batch,
        "lengths must have B = {batch} entries, found {}",
        lengths.len()
    );
    for (b, &length) in lengths.iter().enumerate() {
        assert!(
            (1..=steps).contains(&length),
            "lengths[{b}] must be in 1..={steps} (T), found {length}"
        );
    }
}

/// Runs `cell` over the time-major batch `x` (T, B, I) from `init`, walking `direction`.
///
/// Returns `y` (T, B, H), the final state, and what [`sequence_backward`] needs.
///
/// # Panics
/// If `x` is not (T, B, I), `lengths` is not B values in `1..=T`, `init` is not a state of B rows
/// of `cell`, or the cell's buffers disagree with its `input`/`hidden`.
pub fn sequence_forward<T: Real>(
    cell: &RefCell<T>,
    x: &[T],
    steps: usize,
    batch: usize,
    lengths: &[usize],
    init: &RefState<T>,
    direction: Direction,
) -> RefSequence<T> {
    cell.check_shape();
    init.check_shape(cell, batch, "init");
    check_lengths(lengths, steps, batch);
    let (inp, hid, rows) = (cell.input, cell.hidden, cell.gate_rows());
    assert_eq!(
        x.len(),
        steps * batch * inp,
        "x must be (T={steps}, B={batch}, I={inp}) = {} values, found {}",
        steps * batch * inp,
        x.len()
    );
    let lstm = cell.kind.has_cell_state();
    let gru = cell.kind.is_gru();
    let per_step = |width: usize, wanted: bool| {
        if wanted {
            vec![T::ZERO; steps * batch * width]
        } else {
            Vec::new()
        }
    };
    let mut fwd = RefSequence {
        steps,
        batch,
        lengths: lengths.to_vec(),
        direction,
        y: per_step(hid, true),
        final_state: init.clone(),
        h_prev: per_step(hid, true),
        c_prev: per_step(hid, lstm),
        c: per_step(hid, lstm),
        gates: per_step(rows, true),
        gru_hn: per_step(hid, gru),
    };
    let mut gru_hn_scratch = vec![T::ZERO; hid];
    for b in 0..batch {
        // the running state of row b, (H) each
        let mut h = init.h[b * hid..(b + 1) * hid].to_vec();
        let mut c = init.c.as_ref().map(|c| c[b * hid..(b + 1) * hid].to_vec());
        for t in direction.steps(lengths[b]) {
            let tb = t * batch + b;
            let hs = tb * hid..(tb + 1) * hid;
            fwd.h_prev[hs.clone()].copy_from_slice(&h);
            if let Some(c) = &c {
                fwd.c_prev[hs.clone()].copy_from_slice(c);
            }
            let gru_hn = if gru {
                &mut fwd.gru_hn[hs.clone()]
            } else {
                &mut gru_hn_scratch[..]
            };
            cell.forward_row(
                &x[tb * inp..(tb + 1) * inp],
                &fwd.h_prev[hs.clone()],
                lstm.then(|| &fwd.c_prev[hs.clone()]),
                &mut fwd.gates[tb * rows..(tb + 1) * rows],
                gru_hn,
                &mut fwd.y[hs.clone()],
                lstm.then(|| &mut fwd.c[hs.clone()]),
            );
            h.copy_from_slice(&fwd.y[hs.clone()]);
            if let Some(c) = &mut c {
                c.copy_from_slice(&fwd.c[hs]);
            }
        }
        fwd.final_state.h[b * hid..(b + 1) * hid].copy_from_slice(&h);
        if let (Some(dst), Some(c)) = (&mut fwd.final_state.c, &c) {
            dst[b * hid..(b + 1) * hid].copy_from_slice(c);
        }
    }
    fwd
}

/// Backpropagation through time for [`sequence_forward`].
///
/// `x` (T, B, I) is the input forward saw, `dy` (T, B, H) the gradient of the loss w.r.t. `y`
/// (ignored past each row's length), `d_final` the gradient w.r.t. the final state.
/// Returns fresh gradients of the weights, biases, `x` and the initial state.
///
/// # Panics
/// If a buffer's shape disagrees with `fwd` or `cell`.
pub fn sequence_backward<T: Real>(
    cell: &RefCell<T>,
    x: &[T],
    fwd: &RefSequence<T>,
    dy: &[T],
    d_final: &RefState<T>,
) -> RefGrads<T> {
    cell.check_shape();
    let (steps, batch) = (fwd.steps, fwd.batch);
    let (inp, hid, rows) = (cell.input, cell.hidden, cell.gate_rows());
    assert_eq!(x.len(), steps * batch * inp, "x must be (T, B, I)");
    assert_eq!(dy.len(), steps * batch * hid, "dy must be (T, B, H)");
    assert_eq!(
        fwd.y.len(),
        steps * batch * hid,
        "fwd was not made by this cell"
    );
    d_final.check_shape(cell, batch, "d_final");
    let lstm = cell.kind.has_cell_state();
    let gru = cell.kind.is_gru();

    let mut grads = RefGrads {
        d_w_ih: vec![T::ZERO; rows * inp],
        d_w_hh: vec![T::ZERO; rows * hid],
        d_b_ih: vec![T::ZERO; rows],
        d_b_hh: vec![T::ZERO; rows],
        d_x: vec![T::ZERO; steps * batch * inp],
        d_init: RefState::zeros(cell.kind, batch, hid),
    };
    let mut weights = CellGrads {
        d_w_ih: &mut grads.d_w_ih,
        d_w_hh: &mut grads.d_w_hh,
        d_b_ih: &mut grads.d_b_ih,
        d_b_hh: &mut grads.d_b_hh,
    };
    let mut dh_prev = vec![T::ZERO; hid];
    let mut dc_prev = vec![T::ZERO; hid];
    for b in 0..batch {
        // dh, dc: gradient reaching the state after the step being undone, (H) each
        let mut dh = d_final.h[b * hid..(b + 1) * hid].to_vec();
        let mut dc = d_final
            .c
            .as_ref()
            .map(|c| c[b * hid..(b + 1) * hid].to_vec());
        // undo the steps in the opposite order to the one forward took
        let order: Vec<usize> = fwd.direction.steps(fwd.lengths[b]).collect();
        for &t in order.iter().rev() {
            let tb = t * batch + b;
            let hs = tb * hid..(tb + 1) * hid;
            for (d, &g) in dh.iter_mut().zip(&dy[hs.clone()]) {
                *d += g;
            }
            let row = RowCache {
                x: &x[tb * inp..(tb + 1) * inp],
                h_prev: &fwd.h_prev[hs.clone()],
                c_prev: lstm.then(|| &fwd.c_prev[hs.clone()]),
                c: lstm.then(|| &fwd.c[hs.clone()]),
                gates: &fwd.gates[tb * rows..(tb + 1) * rows],
                gru_hn: if gru { &fwd.gru_hn[hs.clone()] } else { &[] },
            };
            cell.backward_row(
                row,
                &dh,
                dc.as_deref(),
                &mut weights,
                &mut grads.d_x[tb * inp..(tb + 1) * inp],
                &mut dh_prev,
                lstm.then_some(&mut dc_prev[..]),
            );
            dh.copy_from_slice(&dh_prev);
            if let Some(dc) = &mut dc {
                dc.copy_from_slice(&dc_prev);
            }
        }
        grads.d_init.h[b * hid..(b + 1) * hid].copy_from_slice(&dh);
        if let (Some(dst), Some(dc)) = (&mut grads.d_init.c, &dc) {
            dst[b * hid..(b + 1) * hid].copy_from_slice(dc);
        }
    }
    grads
}
