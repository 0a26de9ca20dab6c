//! One recurrent cell: its weights, its state, and one time step of one batch row, forward and
//! backward, in plain loops.
//!
//! Notation (PyTorch's, `torch.nn.RNN/LSTM/GRU` docs): `a = W_ih x + b_ih` and
//! `u = W_hh h_{t-1} + b_hh` are the two affine maps, each `(G·H)`, gate blocks stacked in
//! PyTorch's order; `σ` is the logistic function.
//!
//! | cell | forward | gate activations kept for backward |
//! |---|---|---|
//! | RNN | `h = act(a + u)` | `h` |
//! | LSTM | `i,f,o = σ(a+u)`, `g = tanh(a+u)`; `c = f⊙c' + i⊙g`; `h = o⊙tanh(c)` | `i, f, g, o`, and `c` |
//! | GRU | `r,z = σ(a+u)`; `n = tanh(a_n + r⊙u_n)`; `h = (1−z)⊙n + z⊙h'` | `r, z, n`, and `u_n` |
//! | GRU reset-before | `r,z = σ(a+u)`; `n = tanh(a_n + W_hn (r⊙h') + b_hn)`; `h` as GRU | `r, z, n`, and `r⊙h'` |
//!
//! Backward, for one step with incoming `dh = ∂L/∂h_t` (and `dc = ∂L/∂c_t` for LSTM). Writing `δ`
//! for the gradient of the loss w.r.t. a pre-activation, the weight gradients are always
//! `dW_ih += δ_a xᵀ`, `db_ih += δ_a`, `dW_hh += δ_u h'ᵀ`, `db_hh += δ_u`, `dx = W_ihᵀ δ_a`,
//! `dh' = W_hhᵀ δ_u (+ the direct path)`, where per cell:
//!
//! - RNN: `δ_a = δ_u = dh ⊙ act'(·)` with `tanh' = 1 − h²`, `relu' = [h > 0]`.
//! - LSTM: `dc_t = dc + dh ⊙ o ⊙ (1 − tanh²c)`; `δ_i = dc_t⊙g⊙i(1−i)`, `δ_f = dc_t⊙c'⊙f(1−f)`,
//!   `δ_g = dc_t⊙i⊙(1−g²)`, `δ_o = dh⊙tanh(c)⊙o(1−o)`; `δ_a = δ_u = [δ_i, δ_f, δ_g, δ_o]`;
//!   `dc' = dc_t ⊙ f`.
//! - GRU: `δ_n = dh⊙(1−z)⊙(1−n²)`, `δ_z = dh⊙(h'−n)⊙z(1−z)`, `δ_r = δ_n⊙u_n⊙r(1−r)`;
//!   `δ_a = [δ_r, δ_z, δ_n]`, `δ_u = [δ_r, δ_z, δ_n⊙r]` (the reset gate sits between `u_n` and the
//!   sum); the direct path adds `dh ⊙ z` to `dh'`.
//! - GRU reset-before (Keras `reset_after=False`): `u_n = W_hn (r⊙h') + b_hn` reads `r⊙h'`, not
//!   `h'`. With `δ_n`, `δ_z` as for GRU, `d(r⊙h') = W_hnᵀ δ_n` and `δ_r = d(r⊙h') ⊙ h' ⊙ r(1−r)`;
//!   `δ_a = δ_u = [δ_r, δ_z, δ_n]`; `dW_hh` rows `r, z` get `δ_{r,z} h'ᵀ` but rows `n` get
//!   `δ_n (r⊙h')ᵀ`; `dh' = W_h{r,z}ᵀ δ_{r,z} + d(r⊙h') ⊙ r + dh ⊙ z`.
//!
//! These agree with PyTorch's `_thnn_differentiable_lstm_cell_backward` /
//! `_thnn_differentiable_gru_cell_backward` (aten/src/ATen/native/RNN.cpp) and are checked by
//! central finite differences in `tests/api/gradcheck.rs`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::{CellKind, RnnActivation};

use super::real::{Real, cast_slice, sigmoid};

/// The weights of one recurrent cell (one layer, one direction), in PyTorch's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct RefCell<T> {
    pub kind: CellKind,
    /// I: width of an input row.
    pub input: usize,
    /// H: width of the hidden state.
    pub hidden: usize,
    /// (G·H, I), gate blocks in PyTorch order (LSTM i,f,g,o; GRU r,z,n)
    pub w_ih: Vec<T>,
    /// (G·H, H)
    pub w_hh: Vec<T>,
    /// (G·H)
    pub b_ih: Vec<T>,
    /// (G·H)
    pub b_hh: Vec<T>,
}

/// The recurrent state of a batch: `h`, and `c` for LSTM.
#[derive(Clone, Debug, PartialEq)]
pub struct RefState<T> {
    /// (B, H)
    pub h: Vec<T>,
    /// (B, H), `Some` exactly for LSTM
    pub c: Option<Vec<T>>,
}

impl<T: Real> RefState<T> {
    /// The all-zero state of `batch` rows (PyTorch's default when no `h_0` is given).
    pub fn zeros(kind: CellKind, batch: usize, hidden: usize) -> Self {
        RefState {
            h: vec![T::ZERO; batch * hidden],
            c: kind.has_cell_state().then(|| vec![T::ZERO; batch * hidden]),
        }
    }

    /// The same state in another precision.
    pub fn cast<U: Real>(&self) -> RefState<U> {
        RefState {
            h: cast_slice(&self.h),
            c: self.c.as_deref().map(cast_slice),
        }
    }

    /// Panics unless this is a valid state of `batch` rows of `cell`.
    pub(crate) fn check_shape(&self, cell: &RefCell<T>, batch: usize, what: &str) {
        let want = batch * cell.hidden;
        assert_eq!(
            self.h.len(),
            want,
            "{what}: h must be (B={batch}, H={}) = {want} values, found {}",
            cell.hidden,
            self.h.len()
        );
        match (&self.c, cell.kind.has_cell_state()) {
            (Some(c), true) => assert_eq!(
                c.len(),
                want,
                "{what}: c must be (B={batch}, H={}) = {want} values, found {}",
                cell.hidden,
                c.len()
            ),
            (None, false) => {}
            (Some(_), false) => panic!("{what}: a {} cell has no cell state c", cell.kind.name()),
            (None, true) => panic!("{what}: an LSTM state needs a cell state c"),
        }
    }
}

impl<T: Real> RefCell<T> {
    /// A cell with every weight and bias 0.
    pub fn zeros(kind: CellKind, input: usize, hidden: usize) -> Self {
        let rows = kind.gates() * hidden;
        RefCell {
            kind,
            input,
            hidden,
            w_ih: vec![T::ZERO; rows * input],
            w_hh: vec![T::ZERO; rows * hidden],
            b_ih: vec![T::ZERO; rows],
            b_hh: vec![T::ZERO; rows],
        }
    }

    /// PyTorch's default initialisation: every weight and bias drawn from `U(−k, k)` with
    /// `k = 1/√H` (`torch.nn.RNN/LSTM/GRU` docs, "Variables"). Values are drawn in f64 in the order
    /// `w_ih, w_hh, b_ih, b_hh`, row-major, then rounded to `T`, so the f32 and f64 cells made
    /// from the same generator state agree to f32 rounding.
    pub fn random<R: Rng + ?Sized>(
        kind: CellKind,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Self {
        let mut cell = Self::zeros(kind, input, hidden);
        let bound = 1.0 / (hidden as f64).sqrt();
        for buffer in [
            &mut cell.w_ih,
            &mut cell.w_hh,
            &mut cell.b_ih,
            &mut cell.b_hh,
        ] {
            for value in buffer.iter_mut() {
                *value = T::from_f64(rng.random_range(-bound..=bound));
            }
        }
        cell
    }

    /// [`RefCell::random`] from a `ChaCha8Rng` seeded with `seed`.
    pub fn seeded(kind: CellKind, input: usize, hidden: usize, seed: u64) -> Self {
        Self::random(kind, input, hidden, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// The same cell in another precision.
    pub fn cast<U: Real>(&self) -> RefCell<U> {
        RefCell {
            kind: self.kind,
            input: self.input,
            hidden: self.hidden,
            w_ih: cast_slice(&self.w_ih),
            w_hh: cast_slice(&self.w_hh),
            b_ih: cast_slice(&self.b_ih),
            b_hh: cast_slice(&self.b_hh),
        }
    }

    /// G·H: rows of the stacked gate weights.
    pub fn gate_rows(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// The four parameters with PyTorch's names (without the `_l{k}` suffix).
    pub fn named_parameters(&self) -> [(&'static str, &Vec<T>); 4] {
        [
            ("weight_ih", &self.w_ih),
            ("weight_hh", &self.w_hh),
            ("bias_ih", &self.b_ih),
            ("bias_hh", &self.b_hh),
        ]
    }

    /// [`RefCell::named_parameters`], mutable.
    pub fn named_parameters_mut(&mut self) -> [(&'static str, &mut Vec<T>); 4] {
        [
            ("weight_ih", &mut self.w_ih),
            ("weight_hh", &mut self.w_hh),
            ("bias_ih", &mut self.b_ih),
            ("bias_hh", &mut self.b_hh),
        ]
    }

    /// Panics unless the buffers have the sizes `kind`, `input` and `hidden` imply.
    pub(crate) fn check_shape(&self) {
        let rows = self.gate_rows();
        let name = self.kind.name();
        for (what, len, want, shape) in [
            ("w_ih", self.w_ih.len(), rows * self.input, "(G·H, I)"),
            ("w_hh", self.w_hh.len(), rows * self.hidden, "(G·H, H)"),
            ("b_ih", self.b_ih.len(), rows, "(G·H)"),
            ("b_hh", self.b_hh.len(), rows, "(G·H)"),
        ] {
            assert_eq!(
                len, want,
                "{name} cell with I={} H={}: {what} must be {shape} = {want} values, found {len}",
                self.input, self.hidden
            );
        }
    }

    /// One time step for a whole batch, no cache: the streaming-inference oracle.
    ///
    /// `x` is (B, I); returns the state after the step.
    ///
    /// # Panics
    /// If `x` is not (B, I) or `state` is not a state of B rows of this cell.
    pub fn step(&self, x: &[T], batch: usize, state: &RefState<T>) -> RefState<T> {
        self.check_shape();
        state.check_shape(self, batch, "state");
        assert_eq!(x.len(), batch * self.input, "x must be (B, I)");
        let (hid, rows) = (self.hidden, self.gate_rows());
        let mut next = RefState::zeros(self.kind, batch, hid);
        let mut gates = vec![T::ZERO; rows];
        let mut gru_hn = vec![T::ZERO; hid];
        for b in 0..batch {
            let row = b * hid..(b + 1) * hid;
            let c_prev = state.c.as_ref().map(|c| &c[row.clone()]);
            let c_next = next.c.as_mut().map(|c| &mut c[row.clone()]);
            self.forward_row(
                &x[b * self.input..(b + 1) * self.input],
                &state.h[row.clone()],
                c_prev,
                &mut gates,
                &mut gru_hn,
                &mut next.h[row],
                c_next,
            );
        }
        next
    }

    /// Forward one step of one batch row.
    ///
    /// Reads `x` (I), `h_prev` (H), `c_prev` (H, LSTM); writes `gates` (G·H, the activations
    /// of the table above), `gru_hn` (H, GRU: `u_n = W_hn h' + b_hn`; GRU reset-before: `r⊙h'`;
    /// untouched otherwise),
    /// `h` (H) and `c` (H, LSTM).
    pub(crate) fn forward_row(
        &self,
        x: &[T],
        h_prev: &[T],
        c_prev: Option<&[T]>,
        gates: &mut [T],
        gru_hn: &mut [T],
        h: &mut [T],
        c: Option<&mut [T]>,
    ) {
        let hid = self.hidden;
        // a = W_ih x + b_ih, u = W_hh h' + b_hh, both (G·H)
        let mut a = self.b_ih.clone();
        let mut u = self.b_hh.clone();
        matvec_acc(&mut a, &self.w_ih, x);
        if self.kind == CellKind::GruResetBefore {
            // only the r, z rows read h'; the n rows read r⊙h', which needs r first
            matvec_acc(&mut u[..2 * hid], &self.w_hh[..2 * hid * hid], h_prev);
        } else {
            matvec_acc(&mut u, &self.w_hh, h_prev);
        }
        match self.kind {
            CellKind::Rnn(activation) => {
                for j in 0..hid {
                    let pre = a[j] + u[j];
                    h[j] = match activation {
                        RnnActivation::Tanh => pre.tanh(),
                        RnnActivation::Relu => pre.max(T::ZERO),
                    };
                    gates[j] = h[j];
                }
            }
            CellKind::Lstm => {
                let c_prev = c_prev.expect("LSTM needs c_prev");
                let c = c.expect("LSTM writes c");
                for j in 0..hid {
                    let i = sigmoid(a[j] + u[j]);
                    let f = sigmoid(a[hid + j] + u[hid + j]);
                    let g = (a[2 * hid + j] + u[2 * hid + j]).tanh();
                    let o = sigmoid(a[3 * hid + j] + u[3 * hid + j]);
                    c[j] = f * c_prev[j] + i * g;
                    h[j] = o * c[j].tanh();
                    (gates[j], gates[hid + j]) = (i, f);
                    (gates[2 * hid + j], gates[3 * hid + j]) = (g, o);
                }
            }
            CellKind::Gru => {
                for j in 0..hid {
                    let r = sigmoid(a[j] + u[j]);
                    let z = sigmoid(a[hid + j] + u[hid + j]);
                    // linear-before-reset: b_hn is inside r ⊙ (W_hn h' + b_hn)
                    let n = (a[2 * hid + j] + r * u[2 * hid + j]).tanh();
                    h[j] = (T::ONE - z) * n + z * h_prev[j];
                    (gates[j], gates[hid + j], gates[2 * hid + j]) = (r, z, n);
                    gru_hn[j] = u[2 * hid + j];
                }
            }
            CellKind::GruResetBefore => {
                for j in 0..hid {
                    let r = sigmoid(a[j] + u[j]);
                    gates[j] = r;
                    gates[hid + j] = sigmoid(a[hid + j] + u[hid + j]);
                    gru_hn[j] = r * h_prev[j];
                }
                // u_n = W_hn (r⊙h') + b_hn
                matvec_acc(&mut u[2 * hid..], &self.w_hh[2 * hid * hid..], gru_hn);
                for j in 0..hid {
                    let z = gates[hid + j];
                    let n = (a[2 * hid + j] + u[2 * hid + j]).tanh();
                    h[j] = (T::ONE - z) * n + z * h_prev[j];
                    gates[2 * hid + j] = n;
                }
            }
        }
    }

    /// Backward one step of one batch row (see the module doc for the formulas).
    ///
    /// Inputs are what [`RefCell::forward_row`] read and wrote, plus `dh` (H) and `dc` (H, LSTM),
    /// the total gradients reaching `h_t` and `c_t`. Accumulates (`+=`) into `grads`' weights and
    /// biases and into `dx` (I); overwrites `dh_prev` (H) and `dc_prev` (H, LSTM).
    pub(crate) fn backward_row(
        &self,
        row: RowCache<'_, T>,
        dh: &[T],
        dc: Option<&[T]>,
        grads: &mut CellGrads<'_, T>,
        dx: &mut [T],
        dh_prev: &mut [T],
        dc_prev: Option<&mut [T]>,
    ) {
        if self.kind == CellKind::GruResetBefore {
            return self.backward_row_reset_before(row, dh, grads, dx, dh_prev);
        }
        let hid = self.hidden;
        let rows = self.gate_rows();
        // δ_a and δ_u: gradients w.r.t. the pre-activations a = W_ih x + b_ih, u = W_hh h' + b_hh
        let mut delta_a = vec![T::ZERO; rows];
        let mut delta_u = vec![T::ZERO; rows];
        // the part of dh' that does not go through W_hh (GRU's z ⊙ h')
        dh_prev.fill(T::ZERO);
        let gates = row.gates;
        match self.kind {
            CellKind::Rnn(activation) => {
                for j in 0..hid {
                    let h = gates[j];
                    let slope = match activation {
                        RnnActivation::Tanh => T::ONE - h * h,
                        RnnActivation::Relu if h > T::ZERO => T::ONE,
                        RnnActivation::Relu => T::ZERO,
                    };
                    delta_a[j] = dh[j] * slope;
                    delta_u[j] = delta_a[j];
                }
            }
            CellKind::Lstm => {
                let (c, c_prev) = (
                    row.c.expect("LSTM cache has c"),
                    row.c_prev.expect("c_prev"),
                );
                let dc = dc.expect("LSTM backward needs dc");
                let dc_prev = dc_prev.expect("LSTM backward writes dc_prev");
                for j in 0..hid {
                    let (i, f) = (gates[j], gates[hid + j]);
                    let (g, o) = (gates[2 * hid + j], gates[3 * hid + j]);
                    let tanh_c = c[j].tanh();
                    let dc_total = dc[j] + dh[j] * o * (T::ONE - tanh_c * tanh_c);
                    delta_a[j] = dc_total * g * i * (T::ONE - i);
                    delta_a[hid + j] = dc_total * c_prev[j] * f * (T::ONE - f);
                    delta_a[2 * hid + j] = dc_total * i * (T::ONE - g * g);
                    delta_a[3 * hid + j] = dh[j] * tanh_c * o * (T::ONE - o);
                    dc_prev[j] = dc_total * f;
                }
                delta_u.copy_from_slice(&delta_a);
            }
            CellKind::Gru => {
                for j in 0..hid {
                    let (r, z, n) = (gates[j], gates[hid + j], gates[2 * hid + j]);
                    let delta_n = dh[j] * (T::ONE - z) * (T::ONE - n * n);
                    let delta_z = dh[j] * (row.h_prev[j] - n) * z * (T::ONE - z);
                    let delta_r = delta_n * row.gru_hn[j] * r * (T::ONE - r);
                    (delta_a[j], delta_a[hid + j], delta_a[2 * hid + j]) =
                        (delta_r, delta_z, delta_n);
                    (delta_u[j], delta_u[hid + j], delta_u[2 * hid + j]) =
                        (delta_r, delta_z, delta_n * r);
                    dh_prev[j] = dh[j] * z;
                }
            }
            CellKind::GruResetBefore => unreachable!("handled by backward_row_reset_before"),
        }
        // dW_ih += δ_a xᵀ, db_ih += δ_a, dW_hh += δ_u h'ᵀ, db_hh += δ_u
        outer_acc(grads.d_w_ih, &delta_a, row.x);
        outer_acc(grads.d_w_hh, &delta_u, row.h_prev);
        add_acc(grads.d_b_ih, &delta_a);
        add_acc(grads.d_b_hh, &delta_u);
        // dx += W_ihᵀ δ_a, dh' += W_hhᵀ δ_u
        matvec_transposed_acc(dx, &self.w_ih, &delta_a);
        matvec_transposed_acc(dh_prev, &self.w_hh, &delta_u);
    }

    /// [`RefCell::backward_row`] of the reset-before GRU, whose `n` rows of `W_hh` read `r⊙h'`
    /// (`row.gru_hn`) instead of `h'` (formulas in the module doc).
    fn backward_row_reset_before(
        &self,
        row: RowCache<'_, T>,
        dh: &[T],
        grads: &mut CellGrads<'_, T>,
        dx: &mut [T],
        dh_prev: &mut [T],
    ) {
        let hid = self.hidden;
        let (rz, gates) = (2 * hid, row.gates);
        // δ = δ_a = δ_u, (3H): the gradient w.r.t. both pre-activations of every gate
        let mut delta = vec![T::ZERO; 3 * hid];
        for j in 0..hid {
            let (z, n) = (gates[hid + j], gates[2 * hid + j]);
            delta[hid + j] = dh[j] * (row.h_prev[j] - n) * z * (T::ONE - z);
            delta[2 * hid + j] = dh[j] * (T::ONE - z) * (T::ONE - n * n);
        }
        // d(r⊙h') = W_hnᵀ δ_n, (H)
        let mut d_rh = vec![T::ZERO; hid];
        matvec_transposed_acc(&mut d_rh, &self.w_hh[rz * hid..], &delta[rz..]);
        for j in 0..hid {
            let r = gates[j];
            delta[j] = d_rh[j] * row.h_prev[j] * r * (T::ONE - r);
            // the direct path and the path through r⊙h'
            dh_prev[j] = dh[j] * gates[hid + j] + d_rh[j] * r;
        }
        outer_acc(grads.d_w_ih, &delta, row.x);
        outer_acc(&mut grads.d_w_hh[..rz * hid], &delta[..rz], row.h_prev);
        outer_acc(&mut grads.d_w_hh[rz * hid..], &delta[rz..], row.gru_hn);
        add_acc(grads.d_b_ih, &delta);
        add_acc(grads.d_b_hh, &delta);
        matvec_transposed_acc(dx, &self.w_ih, &delta);
        matvec_transposed_acc(dh_prev, &self.w_hh[..rz * hid], &delta[..rz]);
    }
}

/// What backward of one step of one row reads: the forward's inputs and kept activations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowCache<'a, T> {
    /// (I)
    pub x: &'a [T],
    /// (H) state entering the step
    pub h_prev: &'a [T],
    /// (H) LSTM only: cell state entering the step
    pub c_prev: Option<&'a [T]>,
    /// (H) LSTM only: cell state after the step
    pub c: Option<&'a [T]>,
    /// (G·H) gate activations
    pub gates: &'a [T],
    /// (H) GRU only: `W_hn h' + b_hn` (reset-before: `r⊙h'`); empty otherwise
    pub gru_hn: &'a [T],
}

/// Mutable views of the four weight gradients of one cell.
#[derive(Debug)]
pub(crate) struct CellGrads<'a, T> {
    /// (G·H, I)
    pub d_w_ih: &'a mut [T],
    /// (G·H, H)
    pub d_w_hh: &'a mut [T],
    /// (G·H)
    pub d_b_ih: &'a mut [T],
    /// (G·H)
    pub d_b_hh: &'a mut [T],
}

/// `out += w · v` with `w` (rows, cols), `v` (cols), `out` (rows).
fn matvec_acc<T: Real>(out: &mut [T], w: &[T], v: &[T]) {
    let cols = v.len();
    for (r, o) in out.iter_mut().enumerate() {
        let mut sum = T::ZERO;
        for k in 0..cols {
            sum += w[r * cols + k] * v[k];
        }
        *o += sum;
    }
}

/// `out += wᵀ · g` with `w` (rows, cols), `g` (rows), `out` (cols).
fn matvec_transposed_acc<T: Real>(out: &mut [T], w: &[T], g: &[T]) {
    let cols = out.len();
    for (r, &gr) in g.iter().enumerate() {
        for k in 0..cols {
            out[k] += w[r * cols + k] * gr;
        }
    }
}

/// `dw += g vᵀ` with `dw` (rows, cols), `g` (rows), `v` (cols).
fn outer_acc<T: Real>(dw: &mut [T], g: &[T], v: &[T]) {
    let cols = v.len();
    for (r, &gr) in g.iter().enumerate() {
        for k in 0..cols {
            dw[r * cols + k] += gr * v[k];
        }
    }
}

/// `out += v`, element-wise.
pub(crate) fn add_acc<T: Real>(out: &mut [T], v: &[T]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o += x;
    }
}
