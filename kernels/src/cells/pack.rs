//! Packing the recurrent weights `W_hh` (PyTorch layout `(G·H, H)`) into the panel layouts of the
//! step kernels, once per pass. See `README.md` beside this file for the pictures.

use super::CellKind;
use crate::Isa;

/// `(rows per register tile, vectors per gate)` of the forward step kernel, by lane count and cell.
///
/// The tile holds `rows × G·U` accumulators: AVX2 has 16 ymm registers, so LSTM (G = 4) takes 2
/// rows (8 accumulators + 4 gate vectors + a broadcast), GRU (G = 3) 3 rows, and the one-gate RNN 6 rows of 2
/// vectors (the classic 6×16 SGEMM tile). AVX-512 has 32 zmm registers and doubles the rows.
pub(crate) const fn forward_blocking(lanes: usize, kind: CellKind) -> (usize, usize) {
    match (lanes, kind) {
        (16, CellKind::Lstm) => LSTM_16,
        (16, CellKind::Gru) => GRU_16,
        (16, CellKind::GruResetBefore) => GRU_RB_16,
        (16, CellKind::Rnn(_)) => RNN_16,
        (_, CellKind::Lstm) => LSTM_8,
        (_, CellKind::Gru) => GRU_8,
        (_, CellKind::GruResetBefore) => GRU_RB_8,
        (_, CellKind::Rnn(_)) => RNN_8,
    }
}

pub(crate) const LSTM_8: (usize, usize) = (2, 1);
pub(crate) const GRU_8: (usize, usize) = (3, 1);
pub(crate) const RNN_8: (usize, usize) = (6, 2);
pub(crate) const LSTM_16: (usize, usize) = (6, 1);
pub(crate) const GRU_16: (usize, usize) = (8, 1);
pub(crate) const RNN_16: (usize, usize) = (12, 2);
/// The reset-before GRU's forward panels hold only the `r, z` gates (2 accumulators per row and
/// unit vector), so its tile is the 6×2 (12×2) SGEMM shape; the candidate gate has its own matmul
/// (see `gru_rb.rs`).
pub(crate) const GRU_RB_8: (usize, usize) = (6, 1);
pub(crate) const GRU_RB_16: (usize, usize) = (12, 1);

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
    /// `W_hh` `(G·H, H)` itself in column panels, for `dh_{t-1} = δ_u·W_hh`. `None` for
    /// [`PackFor::Inference`].
    pub(crate) backward: Option<PackedMatrix>,
    /// GRU only: `b_hn`, the recurrent bias of the `n` gate, which stays inside `r⊙(…)`. (H)
    pub(crate) b_hn: Vec<f32>,
    /// Reset-before GRU only: its candidate matmul's weights (then `forward` holds the `r, z`
    /// panels and `backward` the `r, z` rows of `W_hh`).
    pub(crate) candidate: Option<super::gru_rb::CandidateWeights>,
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
        let mut packed = PackedRecurrent {
            kind,
            hidden,
            isa,
            units: u * lanes,
            forward: Vec::new(),
            backward: None,
            b_hn: Vec::new(),
            candidate: None,
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
        if self.kind == CellKind::GruResetBefore {
            super::gru_rb::repack(self, w_hh, purpose);
            return;
        }
        pack_gate_panels(&mut self.forward, w_hh, h, g, self.units);
        if purpose == PackFor::Training {
            match self.backward.as_mut() {
                Some(packed) => packed.repack(w_hh, h, 1),
                None => {
                    self.backward = Some(PackedMatrix::with_isa(self.isa, w_hh, g * h, h, h, 1));
                }
            }
        } else {
            self.backward = None;
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
        self.backward.is_some()
    }
}

/// Packs the first `g` gate blocks of `w_hh` `(G·H, H)` into `out` as gate-interleaved panels of
/// `w` units (the forward layout drawn in `README.md`): panel `p` row `k` holds
/// `[W_hh[gate·H + j, k] for gate in 0..g for j in p·w .. p·w + w]`, zero past `H`.
pub(crate) fn pack_gate_panels(out: &mut Vec<f32>, w_hh: &[f32], h: usize, g: usize, w: usize) {
    let panels = h.div_ceil(w);
    out.clear();
    out.resize(panels * h * g * w, 0.0);
    // Source rows are read in order (row `gate·H + j` of `W_hh` becomes column `gate·w + q` of
    // its panel): a transpose that streams `W_hh` once, writing inside one L1-sized panel.
    for (p, panel) in out.chunks_exact_mut(h * g * w).enumerate() {
        for gate in 0..g {
            for q in 0..w.min(h - p * w) {
                let j = p * w + q;
                let row = &w_hh[(gate * h + j) * h..][..h];
                let column = panel[gate * w + q..].iter_mut().step_by(g * w);
                for (dst, &value) in column.zip(row) {
                    *dst = value;
                }
            }
        }
    }
}

/// A `k × n` matrix B packed into column panels for [`super::packed_matmul`] (`C (+)= A·B`),
/// once, then multiplied many times — e.g. `W_ihᵀ` of a streaming layer, or `W_hh` for the
/// backward step.
///
/// Layout: `ceil(n / cols)` panels (`cols = 2·LANES`), panel `q` row `p` holding
/// `B[p, q·cols .. q·cols + cols]`, zero past `n`.
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    pub(crate) isa: Isa,
    pub(crate) k: usize,
    pub(crate) n: usize,
    /// Columns per panel.
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

impl PackedMatrix {
    /// Packs B (`k × n`, element `(p, j)` at `b[p·row_stride + j·col_stride]`) for `isa`.
    ///
    /// # Panics
    /// If `b` is too short for the given shape and strides.
    pub fn with_isa(
        isa: Isa,
        b: &[f32],
        k: usize,
        n: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let isa = isa.clamp_to_host();
        let (_, nv) = backward_blocking(lanes(isa));
        let mut packed = PackedMatrix {
            isa,
            k,
            n,
            cols: nv * lanes(isa),
            data: Vec::new(),
        };
        packed.repack_strided(b, row_stride, col_stride);
        packed
    }

    /// Packs new values of a row-major (`row_stride`, `col_stride`) B of the same shape.
    pub(crate) fn repack(&mut self, b: &[f32], row_stride: usize, col_stride: usize) {
        self.repack_strided(b, row_stride, col_stride);
    }

    fn repack_strided(&mut self, b: &[f32], row_stride: usize, col_stride: usize) {
        let (k, n, nb) = (self.k, self.n, self.cols);
        if k > 0 && n > 0 {
            let last = (k - 1) * row_stride + (n - 1) * col_stride;
            if b.len() <= last {
                super::shape_mismatch("packed matrix B values", last + 1, b.len());
            }
        }
        let panels = n.div_ceil(nb);
        self.data.clear();
        self.data.resize(panels * k * nb, 0.0);
        for (q, panel) in self.data.chunks_exact_mut(k * nb).enumerate() {
            let (j0, width) = (q * nb, nb.min(n - q * nb));
            for (p, dst) in panel.chunks_exact_mut(nb).enumerate() {
                if col_stride == 1 {
                    // Row-major B (e.g. `W_hh` for the backward step): a panel row is a slice.
                    let start = p * row_stride + j0;
                    dst[..width].copy_from_slice(&b[start..start + width]);
                } else {
                    for (s, d) in dst[..width].iter_mut().enumerate() {
                        *d = b[p * row_stride + (j0 + s) * col_stride];
                    }
                }
            }
        }
    }

    /// k (rows of B).
    pub fn k(&self) -> usize {
        self.k
    }

    /// n (columns of B).
    pub fn n(&self) -> usize {
        self.n
    }
}
