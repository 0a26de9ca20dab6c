//! Packing the recurrent weights `W_hh` (PyTorch layout `(G·H, H)`) into the panel layouts of the
//! step kernels, once per pass. See `README.md` beside this file for the pictures.

use super::CellKind;
use crate::Isa;

/// `(rows per register tile, vectors per gate)` of the forward step kernel, by lane count and cell.
///
/// The tile holds `rows × G·U` accumulators: AVX2 has 16 ymm registers, so LSTM (G = 4) takes 3
/// rows (12 accumulators + broadcasts), GRU (G = 3) 4 rows, and the one-gate RNN 6 rows of 2
/// vectors (the classic 6×16 SGEMM tile). AVX-512 has 32 zmm registers and doubles the rows.
pub(crate) const fn forward_blocking(lanes: usize, kind: CellKind) -> (usize, usize) {
    match (lanes, kind) {
        (16, CellKind::Lstm) => LSTM_16,
        (16, CellKind::Gru) => GRU_16,
        (16, CellKind::Rnn(_)) => RNN_16,
        (_, CellKind::Lstm) => LSTM_8,
        (_, CellKind::Gru) => GRU_8,
        (_, CellKind::Rnn(_)) => RNN_8,
    }
}

pub(crate) const LSTM_8: (usize, usize) = (2, 1);
pub(crate) const GRU_8: (usize, usize) = (3, 1);
pub(crate) const RNN_8: (usize, usize) = (6, 2);
pub(crate) const LSTM_16: (usize, usize) = (6, 1);
pub(crate) const GRU_16: (usize, usize) = (8, 1);
pub(crate) const RNN_16: (usize, usize) = (12, 2);

/// `(rows, vectors)` of the backward `dh_{t-1} = δ_u·W_hh` tile (one gate-free SGEMM tile).
pub(crate) const fn backward_blocking(lanes: usize) -> (usize, usize) {
    if lanes == 16 { BWD_16 } else { BWD_8 }
}
pub(crate) const BWD_8: (usize, usize) = (6, 2);
pub(crate) const BWD_16: (usize, usize) = (12, 2);

/// f32 lanes of one register on `isa` (the portable path mimics AVX2).
pub(crate) fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Scalar => 8,
    }
}

/// What a packed weight set will be used for: training also needs the backward panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackFor {
    /// Forward steps only.
    Inference,
    /// Forward and backward steps.
    Training,
}

/// The recurrent weights of one cell (one layer, one direction), packed for the step kernels of
/// one ISA.
///
/// Built once per pass (or once per model for streaming inference) and read by every time step.
#[derive(Clone, Debug)]
pub struct PackedRecurrent {
    pub(crate) kind: CellKind,
    pub(crate) hidden: usize,
    pub(crate) isa: Isa,
    /// Hidden units per forward panel: `U·LANES`.
    pub(crate) units: usize,
    /// `ceil(H / units)` panels, each `(H, G·units)`: row `k` holds
    /// `[W_hh[g·H + j, k] for g in gates for j in panel's units]`, zero past `H`.
    pub(crate) forward: Vec<f32>,
    /// Output columns per backward panel.
    pub(crate) backward_cols: usize,
    /// `ceil(H / backward_cols)` panels, each `(G·H, backward_cols)`: row `m` holds
    /// `W_hh[m, panel's columns]`, zero past `H`. Empty for [`PackFor::Inference`].
    pub(crate) backward: Vec<f32>,
    /// GRU only: `b_hn`, the recurrent bias of the `n` gate, which stays inside `r⊙(…)`. (H)
    pub(crate) b_hn: Vec<f32>,
}

impl PackedRecurrent {
    /// Packs `w_hh` `(G·H, H)` (and, for GRU, `b_hn` from `b_hh` `(G·H)`) for the active ISA.
    ///
    /// # Panics
    /// If `w_hh` or `b_hh` has the wrong length or `hidden` is 0 (kernel API misuse: the engine
    /// checks user input before it gets here).
    pub fn new(
        kind: CellKind,
        hidden: usize,
        w_hh: &[f32],
        b_hh: &[f32],
        purpose: PackFor,
    ) -> Self {
        Self::with_isa(Isa::active(), kind, hidden, w_hh, b_hh, purpose)
    }

    /// [`PackedRecurrent::new`] for an explicit ISA (clamped to what the host runs).
    pub fn with_isa(
        isa: Isa,
        kind: CellKind,
        hidden: usize,
        w_hh: &[f32],
        b_hh: &[f32],
        purpose: PackFor,
    ) -> Self {
        let isa = isa.clamp_to_host();
        let lanes = lanes(isa);
        let (_, u) = forward_blocking(lanes, kind);
        let (_, nv) = backward_blocking(lanes);
        let mut packed = PackedRecurrent {
            kind,
            hidden,
            isa,
            units: u * lanes,
            forward: Vec::new(),
            backward_cols: nv * lanes,
            backward: Vec::new(),
            b_hn: Vec::new(),
        };
        packed.repack(w_hh, b_hh, purpose);
        packed
    }

    /// Packs new values of the same shape into the existing buffers (no allocation once sized).
    ///
    /// # Panics
    /// As [`PackedRecurrent::new`].
    pub fn repack(&mut self, w_hh: &[f32], b_hh: &[f32], purpose: PackFor) {
        let (h, g) = (self.hidden, self.kind.gates());
        if h == 0 {
            super::shape_mismatch("hidden size", 1, 0);
        }
        if w_hh.len() != g * h * h {
            super::shape_mismatch("w_hh (G·H, H) values", g * h * h, w_hh.len());
        }
        if b_hh.len() != g * h {
            super::shape_mismatch("b_hh (G·H) values", g * h, b_hh.len());
        }
        let w = self.units;
        let panels = h.div_ceil(w);
        self.forward.clear();
        self.forward.resize(panels * h * g * w, 0.0);
        for p in 0..panels {
            let panel = &mut self.forward[p * h * g * w..(p + 1) * h * g * w];
            for k in 0..h {
                for gate in 0..g {
                    for q in 0..w {
                        let j = p * w + q;
                        if j < h {
                            panel[(k * g + gate) * w + q] = w_hh[(gate * h + j) * h + k];
                        }
                    }
                }
            }
        }
        self.backward.clear();
        if purpose == PackFor::Training {
            let nb = self.backward_cols;
            let panels = h.div_ceil(nb);
            let m = g * h;
            self.backward.resize(panels * m * nb, 0.0);
            for q in 0..panels {
                let panel = &mut self.backward[q * m * nb..(q + 1) * m * nb];
                for row in 0..m {
                    for s in 0..nb {
                        let col = q * nb + s;
                        if col < h {
                            panel[row * nb + s] = w_hh[row * h + col];
                        }
                    }
                }
            }
        }
        self.b_hn.clear();
        if self.kind == CellKind::Gru {
            self.b_hn.extend_from_slice(&b_hh[2 * h..3 * h]);
        }
    }

    /// The cell this was packed for.
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// H.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The ISA path the step kernels will take.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether the backward panels are present ([`PackFor::Training`]).
    pub fn has_backward(&self) -> bool {
        !self.backward.is_empty()
    }
}
