//! The fused step kernels: one time step of one cell for a block of batch rows, forward and
//! backward.
//!
//! Forward (per step, rows `b` of the block, hidden unit `j`, gate `g`):
//!
//! ```text
//! u[b, g, j]  = Σ_k h_{t-1}[b, k] · W_hh[g·H + j, k]          (register tile, gate-interleaved panel)
//! a[b, g, j]  = Xp[b, g·H + j]                                 (hoisted x·W_ihᵀ + biases)
//! LSTM  i,f,o = σ(a + u), g = tanh(a + u); c = f⊙c' + i⊙g; h = o⊙tanh(c)
//! GRU   r,z   = σ(a + u); n = tanh(a_n + r⊙(u_n + b_hn)); h = n + z⊙(h' − n)
//! RNN   h     = act(a + u)
//! ```
//!
//! The gates are activated while the tile is in registers and written over `Xp` in place, which
//! is exactly the cache backward needs (plus `c` for LSTM and `u_n + b_hn` for GRU).
//!
//! Backward (per step, reverse time): the elementwise gate backward turns the cached gates and
//! `dh = dy + dh_carry` into the recurrent pre-activation gradients `δ_u` (over the gates cache, in
//! place), then `dh_{t-1} = δ_u·W_hh` (+ `dh⊙z` for GRU) through the backward panels. The formulas
//! are those of `recur_engine::reference::cell` (module doc there).

use std::ops::Range;

use rayon::prelude::*;

use super::pack::{self, PackedMatrix, PackedRecurrent};
use super::{CellKind, RnnActivation};
use crate::simd::{Portable, Simd};
use crate::{Isa, Par};

use crate::activations::{sigmoid_v, tanh_v};

// ---------------------------------------------------------------------------------------------
// Safe, shape-checked API
// ---------------------------------------------------------------------------------------------

/// The buffers of one forward step over `rows` batch rows. Every buffer is row-major with the
/// row stride equal to its width.
#[derive(Debug)]
pub struct ForwardStep<'a> {
    /// Batch rows in this block.
    pub rows: usize,
    /// `h_{t-1}`. (rows, H)
    pub h_prev: &'a [f32],
    /// `c_{t-1}`, LSTM only. (rows, H)
    pub c_prev: Option<&'a [f32]>,
    /// On entry the hoisted input projection `x·W_ihᵀ + b` (gate blocks in PyTorch order); on exit
    /// the activated gates, kept for backward. (rows, G·H)
    pub gates: &'a mut [f32],
    /// `h_t`. (rows, H)
    pub h: &'a mut [f32],
    /// `c_t`, LSTM only. (rows, H)
    pub c: Option<&'a mut [f32]>,
    /// GRU only: `u_n = W_hn h_{t-1} + b_hn`, kept for backward. (rows, H)
    pub hn: Option<&'a mut [f32]>,
}

/// The buffers of one backward step over `rows` batch rows (row-major, stride = width).
#[derive(Debug)]
pub struct BackwardStep<'a> {
    /// Batch rows in this block.
    pub rows: usize,
    /// `∂L/∂y_t` arriving from above (the layer's output gradient). (rows, H)
    pub dy: &'a [f32],
    /// In: `∂L/∂h_t` carried through the recurrence (from step t+1, or the final state's
    /// gradient). Out: `∂L/∂h_{t-1}`. (rows, H)
    pub dh: &'a mut [f32],
    /// LSTM only. In: `∂L/∂c_t` carried; out: `∂L/∂c_{t-1}`. (rows, H)
    pub dc: Option<&'a mut [f32]>,
    /// In: the activated gates of the forward step. Out: `δ_u`, the gradient w.r.t. the recurrent
    /// pre-activation `W_hh h_{t-1} + b_hh` (for LSTM and RNN also the input one). (rows, G·H)
    pub gates: &'a mut [f32],
    /// `h_{t-1}` (read by GRU). (rows, H)
    pub h_prev: &'a [f32],
    /// `h_t` (read by RNN). (rows, H)
    pub h: &'a [f32],
    /// LSTM only: `c_{t-1}`. (rows, H)
    pub c_prev: Option<&'a [f32]>,
    /// LSTM only: `c_t`. (rows, H)
    pub c: Option<&'a [f32]>,
    /// GRU only. In: `u_n` from forward; out: `δ_a` of gate n (the input-side gradient, which
    /// differs from the recurrent one `δ_u,n = δ_a,n ⊙ r`). (rows, H)
    pub hn: Option<&'a mut [f32]>,
}

/// Optional facts and inputs of one forward step ([`forward_step_with`]); the default is none.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepExtras<'a> {
    /// `h_{t-1}` (and `c_{t-1}`) are all zeros (a pass's first step from a zero initial state):
    /// the recurrent product is skipped and the epilogue runs on zero accumulators. The result is
    /// the one the full product gives (every `0·w` term is `±0` and a sum of them from `+0` stays
    /// `+0`) as long as `W_hh` is finite. The buffers must still be given (and be zeros).
    pub zero_state: bool,
    /// The input projection of row `r` is row `ids[r]` of `table` (`(V, G·H)`, a one-hot input's
    /// `W_ih[:, id] + b`) instead of the contents of `gates` on entry. `gates` is then only
    /// written (the activated gates of LSTM and GRU; a SimpleRNN writes nothing there).
    pub table: Option<(&'a [f32], &'a [u32])>,
}

/// At most this many rows take the weight-stationary column split when `par` allows threads: the
/// batch-1 (streaming) case, where the step is a matrix-vector product bound by reading `W_hh`.
pub const COLUMN_SPLIT_MAX_ROWS: usize = 4;

/// One fused forward step: see the module doc. With `rows ≤ COLUMN_SPLIT_MAX_ROWS` and a
/// parallel `par`, the hidden units are split across threads by panel (each output is computed
/// whole by one thread, so results do not depend on the thread count).
///
/// # Panics
/// If a buffer is shorter than its documented shape or an optional buffer the cell needs is
/// missing (kernel API misuse).
pub fn forward_step(packed: &PackedRecurrent, step: ForwardStep<'_>, par: Par) {
    forward_step_with(packed, step, StepExtras::default(), par);
}

/// [`forward_step`] with [`StepExtras`].
///
/// # Panics
/// As [`forward_step`]; also if `extras.table` has fewer than `rows` ids or an id past the
/// table's rows.
pub fn forward_step_with(
    packed: &PackedRecurrent,
    step: ForwardStep<'_>,
    extras: StepExtras<'_>,
    par: Par,
) {
    let (h, g, rows) = (packed.hidden, packed.kind.gates(), step.rows);
    check_len("gates (rows, G·H)", rows * g * h, step.gates.len());
    let table = extras.table.map(|(table, ids)| {
        check_len("ids (rows)", rows, ids.len());
        let ids = &ids[..rows];
        let last = ids.iter().copied().max().map_or(0, |id| id as usize + 1);
        check_len("table (max id + 1, G·H)", last * g * h, table.len());
        (table, ids)
    });
    debug_assert!(
        !extras.zero_state || step.h_prev[..rows * h].iter().all(|&v| v == 0.0),
        "zero_state with a non-zero h_prev"
    );
    if packed.kind == CellKind::GruResetBefore {
        // Its two-phase step reads the projection from `gates`: fill it first.
        if let Some((table, ids)) = table {
            for (row, &id) in step.gates.chunks_exact_mut(g * h).zip(ids) {
                let id = id as usize;
                row.copy_from_slice(&table[id * g * h..(id + 1) * g * h]);
            }
        }
        return super::gru_rb::forward_step(packed, step, par);
    }
    check_len("h_prev (rows, H)", rows * h, step.h_prev.len());
    check_len("h (rows, H)", rows * h, step.h.len());
    let mut args = ForwardArgs {
        rows,
        hidden: h,
        panels: packed.forward.as_ptr(),
        h_prev: step.h_prev.as_ptr(),
        c_prev: std::ptr::null(),
        gates: step.gates.as_mut_ptr(),
        h: step.h.as_mut_ptr(),
        c: std::ptr::null_mut(),
        hn: std::ptr::null_mut(),
        b_hn: std::ptr::null(),
        zero_state: extras.zero_state,
        table: table.map_or(std::ptr::null(), |(table, _)| table.as_ptr()),
        ids: table.map_or(std::ptr::null(), |(_, ids)| ids.as_ptr()),
    };
    match packed.kind {
        CellKind::Lstm => {
            let c_prev = step.c_prev.unwrap_or_else(|| missing("c_prev"));
            let c = step.c.unwrap_or_else(|| missing("c"));
            check_len("c_prev (rows, H)", rows * h, c_prev.len());
            check_len("c (rows, H)", rows * h, c.len());
            args.c_prev = c_prev.as_ptr();
            args.c = c.as_mut_ptr();
        }
        CellKind::Gru => {
            let hn = step.hn.unwrap_or_else(|| missing("hn"));
            check_len("hn (rows, H)", rows * h, hn.len());
            args.hn = hn.as_mut_ptr();
            args.b_hn = packed.b_hn.as_ptr();
        }
        CellKind::Rnn(_) => {}
        CellKind::GruResetBefore => unreachable!("gru_rb::forward_step"),
    }
    if rows == 0 {
        return;
    }
    let kernel = forward_kernel(packed.isa, packed.kind);
    let panels = h.div_ceil(packed.units);
    let args = SharedArgs(args);
    split_panels(panels, rows, par, &|range: Range<usize>| {
        // SAFETY: every pointer in `args` was checked above to cover its documented shape (a
        // table covers every id of the step's rows), the packed panels match `hidden`/`kind`/`isa` by construction, the ISA was clamped to the
        // host when packing, and concurrent calls receive disjoint panel ranges, i.e. disjoint
        // hidden units, so they write disjoint elements.
        unsafe { kernel(args.get(), range.start, range.end) }
    });
}

/// One fused backward step: see the module doc.
///
/// # Panics
/// If a buffer is shorter than its documented shape, a needed optional buffer is missing, or
/// `packed` was packed without [`pack::PackFor::Training`].
pub fn backward_step(packed: &PackedRecurrent, step: BackwardStep<'_>, par: Par) {
    backward_step_with(packed, step, true, par);
}

/// [`backward_step`]; with `carry = false` only `δ_u` is computed (written over `gates`, as
/// always) and the recurrent product `dh_{t-1} = δ_u·W_hh` is skipped, which leaves `dh` (and
/// `dc`) unspecified: for a pass's first step when the initial state's gradient is not wanted.
/// (The reset-before GRU always carries.)
///
/// # Panics
/// As [`backward_step`].
pub fn backward_step_with(packed: &PackedRecurrent, step: BackwardStep<'_>, carry: bool, par: Par) {
    if packed.kind == CellKind::GruResetBefore {
        return super::gru_rb::backward_step(packed, step, par);
    }
    let (h, g, rows) = (packed.hidden, packed.kind.gates(), step.rows);
    if packed.backward.is_none() {
        missing("backward panels (pack with PackFor::Training)");
    }
    check_len("dy (rows, H)", rows * h, step.dy.len());
    check_len("dh (rows, H)", rows * h, step.dh.len());
    check_len("gates (rows, G·H)", rows * g * h, step.gates.len());
    let mut args = BackwardArgs {
        rows,
        hidden: h,
        dy: step.dy.as_ptr(),
        dh: step.dh.as_mut_ptr(),
        dc: std::ptr::null_mut(),
        gates: step.gates.as_mut_ptr(),
        h_prev: std::ptr::null(),
        h: std::ptr::null(),
        c_prev: std::ptr::null(),
        c: std::ptr::null(),
        hn: std::ptr::null_mut(),
    };
    match packed.kind {
        CellKind::Lstm => {
            let dc = step.dc.unwrap_or_else(|| missing("dc"));
            let c_prev = step.c_prev.unwrap_or_else(|| missing("c_prev"));
            let c = step.c.unwrap_or_else(|| missing("c"));
            check_len("dc (rows, H)", rows * h, dc.len());
            check_len("c_prev (rows, H)", rows * h, c_prev.len());
            check_len("c (rows, H)", rows * h, c.len());
            args.dc = dc.as_mut_ptr();
            args.c_prev = c_prev.as_ptr();
            args.c = c.as_ptr();
        }
        CellKind::Gru => {
            let hn = step.hn.unwrap_or_else(|| missing("hn"));
            check_len("hn (rows, H)", rows * h, hn.len());
            check_len("h_prev (rows, H)", rows * h, step.h_prev.len());
            args.hn = hn.as_mut_ptr();
            args.h_prev = step.h_prev.as_ptr();
        }
        CellKind::Rnn(_) => {
            check_len("h (rows, H)", rows * h, step.h.len());
            args.h = step.h.as_ptr();
        }
        CellKind::GruResetBefore => unreachable!("gru_rb::backward_step"),
    }
    if rows == 0 {
        return;
    }
    let gates_kernel = backward_kernel(packed.isa, packed.kind);
    // SAFETY: pointers cover their documented shapes (checked above); the ISA was clamped to the
    // host when packing; single-threaded here.
    unsafe { gates_kernel(&args) };
    if !carry {
        return;
    }
    // dh_{t-1} (+)= δ_u · W_hh: GRU adds to the direct path dh⊙z the gates kernel left in `dh`.
    let w_hh = packed
        .backward
        .as_ref()
        .expect("checked by has_backward above");
    let accumulate = packed.kind == CellKind::Gru;
    packed_matmul(w_hh, rows, step.gates, g * h, step.dh, h, accumulate, par);
}

/// `C ← A·B` (or `C ← C + A·B` if `accumulate`) for `rows` rows: A (rows, k) with row stride
/// `lda`, B packed ([`PackedMatrix`], k × n), C (rows, n) with row stride `ldc`. With few rows
/// and a parallel `par`, the columns are split across threads (no reduction is split).
///
/// # Panics
/// If a buffer is shorter than its shape (kernel API misuse).
pub fn packed_matmul(
    b: &PackedMatrix,
    rows: usize,
    a: &[f32],
    lda: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    par: Par,
) {
    if rows == 0 || b.n == 0 {
        return;
    }
    check_len("A (rows, k)", (rows - 1) * lda + b.k, a.len());
    check_len("C (rows, n)", (rows - 1) * ldc + b.n, c.len());
    let args = SharedArgs(MatmulArgs {
        rows,
        k: b.k,
        n: b.n,
        a: a.as_ptr(),
        lda,
        panels: b.data.as_ptr(),
        c: c.as_mut_ptr(),
        ldc,
        accumulate,
    });
    let kernel = matmul_kernel(b.isa);
    split_panels(b.n.div_ceil(b.cols), rows, par, &|range: Range<usize>| {
        // SAFETY: A and C cover their shapes (checked above), B's panels match (k, n, cols) by
        // construction, its ISA was clamped to the host; concurrent calls get disjoint panel
        // ranges, i.e. disjoint columns of C.
        unsafe { kernel(args.get(), range.start, range.end) }
    });
}

#[cold]
#[inline(never)]
pub(super) fn missing(what: &str) -> ! {
    panic!("recur-kernels cell step: the {what} buffer is required for this cell but was not given")
}

#[inline]
pub(super) fn check_len(what: &str, expected: usize, found: usize) {
    if found < expected {
        super::shape_mismatch(what, expected, found);
    }
}

/// Raw pointers shared by the threads of one column-split step.
pub(super) struct SharedArgs<A>(pub(super) A);
// SAFETY: the threads of `split_panels` write disjoint hidden units (see the callers).
unsafe impl<A> Sync for SharedArgs<A> {}

impl<A> SharedArgs<A> {
    /// A method (not a field access), so closures capture the whole `Sync` wrapper.
    pub(super) fn get(&self) -> &A {
        &self.0
    }
}

/// Runs `f` over all panels: on this thread, or (few rows and threads available) over contiguous
/// panel groups in parallel. Splitting columns never splits a reduction.
pub(super) fn split_panels(
    panels: usize,
    rows: usize,
    par: Par,
    f: &(dyn Fn(Range<usize>) + Sync),
) {
    let threads = par.threads();
    if threads <= 1 || rows > COLUMN_SPLIT_MAX_ROWS || panels < 2 {
        f(0..panels);
        return;
    }
    let groups = threads.min(panels);
    let per = panels.div_ceil(groups);
    (0..groups)
        .into_par_iter()
        .for_each(|group| f(group * per..((group + 1) * per).min(panels)));
}

// ---------------------------------------------------------------------------------------------
// Kernel bodies, written once over `Simd`
// ---------------------------------------------------------------------------------------------

struct ForwardArgs {
    rows: usize,
    hidden: usize,
    panels: *const f32,
    h_prev: *const f32,
    c_prev: *const f32,
    gates: *mut f32,
    h: *mut f32,
    c: *mut f32,
    hn: *mut f32,
    b_hn: *const f32,
    /// Skip the recurrent product: `h_prev` is all zeros ([`StepExtras::zero_state`]).
    zero_state: bool,
    /// Null: the input projection is in `gates`. Else row `ids[r]` of this `(V, G·H)` table.
    table: *const f32,
    /// (rows), with `table`.
    ids: *const u32,
}

impl ForwardArgs {
    /// The input projection of `row` (its `G·H` values).
    ///
    /// # Safety
    /// `row < rows`; the shapes checked by [`forward_step_with`].
    #[inline(always)]
    unsafe fn input_row(&self, row: usize, gh: usize) -> *const f32 {
        // SAFETY: `row < rows`; with a table, `ids[row]` is below its row count (checked).
        unsafe {
            if self.table.is_null() {
                self.gates.add(row * gh)
            } else {
                self.table.add(*self.ids.add(row) as usize * gh)
            }
        }
    }
}

struct MatmulArgs {
    rows: usize,
    k: usize,
    n: usize,
    a: *const f32,
    lda: usize,
    panels: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

struct BackwardArgs {
    rows: usize,
    hidden: usize,
    dy: *const f32,
    dh: *mut f32,
    dc: *mut f32,
    gates: *mut f32,
    h_prev: *const f32,
    h: *const f32,
    c_prev: *const f32,
    c: *const f32,
    hn: *mut f32,
}

const LSTM: u8 = 0;
const GRU: u8 = 1;
const RNN_TANH: u8 = 2;
const RNN_RELU: u8 = 3;

/// The register tiles of a block of `rows` batch rows for a kernel of at most `mr` rows per tile,
/// as `(first row, height)`: `ceil(rows / mr)` tiles whose heights differ by at most one, taller
/// first. 32 rows with `mr = 6` run as 6,6,5,5,5,5 rather than five 6-row tiles and two 1-row
/// tiles: a 1-row tile has only `NV` accumulator chains, too few to hide the FMA latency, so it
/// ran at a quarter of the 6-row tile's rate and took a fifth of the step's time.
#[inline(always)]
pub(super) fn row_tiles(rows: usize, mr: usize) -> impl Iterator<Item = (usize, usize)> {
    let count = rows.div_ceil(mr);
    // `count = 0` only for `rows = 0`, which yields no tile.
    let base = rows.checked_div(count).unwrap_or(0);
    let taller = rows.checked_rem(count).unwrap_or(0);
    (0..count).map(move |i| (i * base + i.min(taller), base + usize::from(i < taller)))
}

/// Runs `$run!(N)` with the literal `N` equal to the runtime tile height `$height`
/// (`1 ≤ height ≤ $mr ≤ 12`), so every height gets its own register tile; heights above `$mr`
/// are never produced by [`row_tiles`] and their arms fold away.
macro_rules! by_height {
    ($height:expr, $mr:expr, $run:ident) => {{
        const { assert!($mr <= 12, "register tiles have at most 12 rows") };
        match $height {
            1 => $run!(1),
            2 if $mr >= 2 => $run!(2),
            3 if $mr >= 3 => $run!(3),
            4 if $mr >= 4 => $run!(4),
            5 if $mr >= 5 => $run!(5),
            6 if $mr >= 6 => $run!(6),
            7 if $mr >= 7 => $run!(7),
            8 if $mr >= 8 => $run!(8),
            9 if $mr >= 9 => $run!(9),
            10 if $mr >= 10 => $run!(10),
            11 if $mr >= 11 => $run!(11),
            12 if $mr >= 12 => $run!(12),
            _ => unreachable!("tile height above the kernel's MR"),
        }
    }};
}

/// `acc[r][v] = Σ_k a[r·lda + k] · panel[k·NV·L + v·L ..][lanes]`: an `MR × NV` register tile.
///
/// # Safety
/// `a` covers `MR` rows of `k` floats at stride `lda`; `panel` covers `k·NV·LANES` floats; the
/// CPU runs `S`.
#[inline(always)]
pub(super) unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    a: *const f32,
    lda: usize,
    k: usize,
    panel: *const f32,
) -> [[S::V; NV]; MR] {
    // SAFETY: reads stay inside the ranges the caller guarantees.
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        let mut b = panel;
        for kk in 0..k {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let ar = S::splat(*a.add(r * lda + kk));
                for (v, acc_rv) in acc_r.iter_mut().enumerate() {
                    *acc_rv = S::fma(ar, S::load(b.add(v * S::LANES)), *acc_rv);
                }
            }
            b = b.add(NV * S::LANES);
        }
        acc
    }
}

/// Loads `n ≤ LANES` floats (the rest zero).
#[inline(always)]
pub(super) unsafe fn load_n<S: Simd>(p: *const f32, n: usize) -> S::V {
    // SAFETY: `n` floats readable at `p` (caller).
    unsafe {
        if n == S::LANES {
            S::load(p)
        } else {
            S::load_partial(p, n)
        }
    }
}

/// Stores the first `n ≤ LANES` lanes.
#[inline(always)]
pub(super) unsafe fn store_n<S: Simd>(p: *mut f32, v: S::V, n: usize) {
    // SAFETY: `n` floats writable at `p` (caller).
    unsafe {
        if n == S::LANES {
            S::store(p, v)
        } else {
            S::store_partial(p, v, n)
        }
    }
}

/// The forward step over panels `p0..p1`.
///
/// # Safety
/// `a` satisfies the shapes checked by [`forward_step`] and was packed with `U·LANES` units per
/// panel and `NV = G·U`; the CPU runs `S`.
#[inline(always)]
unsafe fn forward_body<
    S: Simd,
    const CELL: u8,
    const MR: usize,
    const U: usize,
    const NV: usize,
>(
    a: &ForwardArgs,
    p0: usize,
    p1: usize,
) {
    let h = a.hidden;
    let units = U * S::LANES;
    for p in p0..p1 {
        // SAFETY: panel `p < ceil(H/units)` lies inside the packed buffer of `panels·H·NV·L`.
        let panel = unsafe { a.panels.add(p * h * NV * S::LANES) };
        let j0 = p * units;
        for (r, height) in row_tiles(a.rows, MR) {
            macro_rules! run {
                ($rows:literal) => {
                    // SAFETY: rows r..r+height ≤ rows of h_prev (H floats each) and the panel are
                    // in bounds.
                    unsafe {
                        let acc = if a.zero_state {
                            [[S::zero(); NV]; $rows]
                        } else {
                            tile::<S, $rows, NV>(a.h_prev.add(r * h), h, h, panel)
                        };
                        forward_epilogue::<S, CELL, $rows, U, NV>(&acc, a, r, j0);
                    }
                };
            }
            by_height!(height, MR, run);
        }
    }
}

/// Applies the cell to an `MR`-row tile of gate pre-activations for units `j0..j0+U·LANES`.
///
/// # Safety
/// As [`forward_body`]; rows `r0..r0+MR` exist.
#[inline(always)]
unsafe fn forward_epilogue<
    S: Simd,
    const CELL: u8,
    const MR: usize,
    const U: usize,
    const NV: usize,
>(
    acc: &[[S::V; NV]; MR],
    a: &ForwardArgs,
    r0: usize,
    j0: usize,
) {
    let h = a.hidden;
    let l = S::LANES;
    for (r, acc) in acc.iter().enumerate() {
        let row = r0 + r;
        for u in 0..U {
            let j = j0 + u * l;
            if j >= h {
                break;
            }
            let n = (h - j).min(l);
            // SAFETY: `j + n ≤ H` and `row < rows`, so every access is inside the checked
            // (rows, H) / (rows, G·H) buffers; the optional buffers are non-null for their cell.
            unsafe {
                match CELL {
                    LSTM => {
                        let x = a.input_row(row, 4 * h).add(j);
                        let out = a.gates.add(row * 4 * h + j);
                        let i = sigmoid_v::<S>(S::add(acc[u], load_n::<S>(x, n)));
                        let f = sigmoid_v::<S>(S::add(acc[U + u], load_n::<S>(x.add(h), n)));
                        let g = tanh_v::<S>(S::add(acc[2 * U + u], load_n::<S>(x.add(2 * h), n)));
                        let o =
                            sigmoid_v::<S>(S::add(acc[3 * U + u], load_n::<S>(x.add(3 * h), n)));
                        let c_prev = load_n::<S>(a.c_prev.add(row * h + j), n);
                        let c = S::fma(f, c_prev, S::mul(i, g));
                        let hv = S::mul(o, tanh_v::<S>(c));
                        store_n::<S>(out, i, n);
                        store_n::<S>(out.add(h), f, n);
                        store_n::<S>(out.add(2 * h), g, n);
                        store_n::<S>(out.add(3 * h), o, n);
                        store_n::<S>(a.c.add(row * h + j), c, n);
                        store_n::<S>(a.h.add(row * h + j), hv, n);
                    }
                    GRU => {
                        let x = a.input_row(row, 3 * h).add(j);
                        let out = a.gates.add(row * 3 * h + j);
                        let rg = sigmoid_v::<S>(S::add(acc[u], load_n::<S>(x, n)));
                        let z = sigmoid_v::<S>(S::add(acc[U + u], load_n::<S>(x.add(h), n)));
                        let un = S::add(acc[2 * U + u], load_n::<S>(a.b_hn.add(j), n));
                        let nv = tanh_v::<S>(S::fma(rg, un, load_n::<S>(x.add(2 * h), n)));
                        let h_prev = load_n::<S>(a.h_prev.add(row * h + j), n);
                        let hv = S::fma(z, S::sub(h_prev, nv), nv);
                        store_n::<S>(out, rg, n);
                        store_n::<S>(out.add(h), z, n);
                        store_n::<S>(out.add(2 * h), nv, n);
                        store_n::<S>(a.hn.add(row * h + j), un, n);
                        store_n::<S>(a.h.add(row * h + j), hv, n);
                    }
                    _ => {
                        let x = a.input_row(row, h).add(j);
                        let pre = S::add(acc[u], load_n::<S>(x, n));
                        let hv = if CELL == RNN_TANH {
                            tanh_v::<S>(pre)
                        } else {
                            // `max(0, pre)` returns `pre` when it is NaN (x86 semantics), like
                            // PyTorch's relu.
                            S::max(S::zero(), pre)
                        };
                        store_n::<S>(a.h.add(row * h + j), hv, n);
                    }
                }
            }
        }
    }
}

/// The elementwise gate backward of one step, over all rows and units.
///
/// # Safety
/// `a` satisfies the shapes checked by [`backward_step`]; the CPU runs `S`.
#[inline(always)]
unsafe fn backward_gates_body<S: Simd, const CELL: u8>(a: &BackwardArgs) {
    let h = a.hidden;
    let l = S::LANES;
    for row in 0..a.rows {
        let mut j = 0;
        while j < h {
            let n = (h - j).min(l);
            let at = row * h + j;
            // SAFETY: `row < rows`, `j + n ≤ H`: inside every checked buffer.
            unsafe {
                let one = S::splat(1.0);
                let dh = S::add(load_n::<S>(a.dy.add(at), n), load_n::<S>(a.dh.add(at), n));
                match CELL {
                    LSTM => {
                        let x = a.gates.add(row * 4 * h + j);
                        let i = load_n::<S>(x, n);
                        let f = load_n::<S>(x.add(h), n);
                        let g = load_n::<S>(x.add(2 * h), n);
                        let o = load_n::<S>(x.add(3 * h), n);
                        let tc = tanh_v::<S>(load_n::<S>(a.c.add(at), n));
                        let c_prev = load_n::<S>(a.c_prev.add(at), n);
                        // dc_t = dc + dh⊙o⊙(1 − tanh²c)
                        let dct = S::fma(
                            S::mul(dh, o),
                            S::sub(one, S::mul(tc, tc)),
                            load_n::<S>(a.dc.add(at), n),
                        );
                        let di = S::mul(S::mul(dct, g), S::mul(i, S::sub(one, i)));
                        let df = S::mul(S::mul(dct, c_prev), S::mul(f, S::sub(one, f)));
                        let dg = S::mul(S::mul(dct, i), S::sub(one, S::mul(g, g)));
                        let d_o = S::mul(S::mul(dh, tc), S::mul(o, S::sub(one, o)));
                        store_n::<S>(x, di, n);
                        store_n::<S>(x.add(h), df, n);
                        store_n::<S>(x.add(2 * h), dg, n);
                        store_n::<S>(x.add(3 * h), d_o, n);
                        store_n::<S>(a.dc.add(at), S::mul(dct, f), n);
                    }
                    GRU => {
                        let x = a.gates.add(row * 3 * h + j);
                        let r = load_n::<S>(x, n);
                        let z = load_n::<S>(x.add(h), n);
                        let nv = load_n::<S>(x.add(2 * h), n);
                        let un = load_n::<S>(a.hn.add(at), n);
                        let h_prev = load_n::<S>(a.h_prev.add(at), n);
                        // δ_n = dh⊙(1−z)⊙(1−n²); δ_z = dh⊙(h'−n)⊙z(1−z); δ_r = δ_n⊙u_n⊙r(1−r)
                        let dn = S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(nv, nv)));
                        let dz = S::mul(S::mul(dh, S::sub(h_prev, nv)), S::mul(z, S::sub(one, z)));
                        let dr = S::mul(S::mul(dn, un), S::mul(r, S::sub(one, r)));
                        store_n::<S>(x, dr, n);
                        store_n::<S>(x.add(h), dz, n);
                        store_n::<S>(x.add(2 * h), S::mul(dn, r), n);
                        store_n::<S>(a.hn.add(at), dn, n);
                        store_n::<S>(a.dh.add(at), S::mul(dh, z), n);
                    }
                    RNN_TANH => {
                        let hv = load_n::<S>(a.h.add(at), n);
                        let dpre = S::mul(dh, S::sub(one, S::mul(hv, hv)));
                        store_n::<S>(a.gates.add(row * h + j), dpre, n);
                    }
                    _ => {
                        // relu' = [h > 0]; the vocabulary has no compare, and this is one pass
                        // over (rows, H), so it is scalar.
                        let mut buf = [0.0f32; 16];
                        store_n::<S>(buf.as_mut_ptr(), dh, n);
                        for (q, value) in buf.iter().enumerate().take(n) {
                            let hv = *a.h.add(at + q);
                            *a.gates.add(row * h + j + q) = if hv > 0.0 { *value } else { 0.0 };
                        }
                    }
                }
            }
            j += n;
        }
    }
}

/// `C[:, panel cols] (+)= A · B[:, panel cols]` over B's panels `p0..p1`.
///
/// # Safety
/// `m` satisfies the shapes checked by [`packed_matmul`], with B packed `NV·LANES` columns per
/// panel; the CPU runs `S`.
#[inline(always)]
unsafe fn packed_matmul_body<S: Simd, const MR: usize, const NV: usize>(
    m: &MatmulArgs,
    p0: usize,
    p1: usize,
) {
    let cols = NV * S::LANES;
    for p in p0..p1 {
        // SAFETY: panel p lies inside the packed buffer of `panels·k·cols` floats.
        let panel = unsafe { m.panels.add(p * m.k * cols) };
        let c0 = p * cols;
        for (r, height) in row_tiles(m.rows, MR) {
            macro_rules! run {
                ($rows:literal) => {
                    // SAFETY: rows r..r+height ≤ rows of A (k floats each at stride lda) exist.
                    unsafe {
                        let acc = tile::<S, $rows, NV>(m.a.add(r * m.lda), m.lda, m.k, panel);
                        matmul_epilogue::<S, $rows, NV>(&acc, m, r, c0);
                    }
                };
            }
            by_height!(height, MR, run);
        }
    }
}

/// # Safety
/// Rows `r0..r0+MR` and columns `c0..` (clipped to n) of C exist.
#[inline(always)]
unsafe fn matmul_epilogue<S: Simd, const MR: usize, const NV: usize>(
    acc: &[[S::V; NV]; MR],
    m: &MatmulArgs,
    r0: usize,
    c0: usize,
) {
    for (r, acc) in acc.iter().enumerate() {
        for (v, value) in acc.iter().enumerate() {
            let col = c0 + v * S::LANES;
            if col >= m.n {
                break;
            }
            let n = (m.n - col).min(S::LANES);
            // SAFETY: `col + n ≤ n`, row `r0 + r < rows`.
            unsafe {
                let p = m.c.add((r0 + r) * m.ldc + col);
                let out = if m.accumulate {
                    S::add(load_n::<S>(p, n), *value)
                } else {
                    *value
                };
                store_n::<S>(p, out, n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ISA instantiations and dispatch
// ---------------------------------------------------------------------------------------------

type ForwardKernel = unsafe fn(&ForwardArgs, usize, usize);
type GatesKernel = unsafe fn(&BackwardArgs);
type MatmulKernel = unsafe fn(&MatmulArgs, usize, usize);

/// # Safety
/// As [`forward_body`] with `S = Portable` (runs anywhere).
unsafe fn forward_portable<const CELL: u8, const MR: usize, const U: usize, const NV: usize>(
    a: &ForwardArgs,
    p0: usize,
    p1: usize,
) {
    // SAFETY: forwarded contract; the portable vocabulary needs no CPU feature.
    unsafe { forward_body::<Portable, CELL, MR, U, NV>(a, p0, p1) }
}

/// # Safety
/// As [`backward_gates_body`] with `S = Portable`.
unsafe fn gates_portable<const CELL: u8>(a: &BackwardArgs) {
    // SAFETY: forwarded contract.
    unsafe { backward_gates_body::<Portable, CELL>(a) }
}

/// # Safety
/// As [`packed_matmul_body`] with `S = Portable`.
unsafe fn matmul_portable<const MR: usize, const NV: usize>(m: &MatmulArgs, p0: usize, p1: usize) {
    // SAFETY: forwarded contract.
    unsafe { packed_matmul_body::<Portable, MR, NV>(m, p0, p1) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::simd::{Avx2, Avx512};

    /// # Safety
    /// As [`forward_body`]; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2<
        const CELL: u8,
        const MR: usize,
        const U: usize,
        const NV: usize,
    >(
        a: &ForwardArgs,
        p0: usize,
        p1: usize,
    ) {
        // SAFETY: forwarded contract; AVX2+FMA guaranteed by the caller.
        unsafe { forward_body::<Avx2, CELL, MR, U, NV>(a, p0, p1) }
    }

    /// # Safety
    /// As [`forward_body`]; the CPU has AVX-512F/BW/VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn forward_avx512<
        const CELL: u8,
        const MR: usize,
        const U: usize,
        const NV: usize,
    >(
        a: &ForwardArgs,
        p0: usize,
        p1: usize,
    ) {
        // SAFETY: forwarded contract; AVX-512 guaranteed by the caller.
        unsafe { forward_body::<Avx512, CELL, MR, U, NV>(a, p0, p1) }
    }

    /// # Safety
    /// As [`backward_gates_body`]; the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gates_avx2<const CELL: u8>(a: &BackwardArgs) {
        // SAFETY: forwarded contract.
        unsafe { backward_gates_body::<Avx2, CELL>(a) }
    }

    /// # Safety
    /// As [`backward_gates_body`]; the CPU has AVX-512F/BW/VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn gates_avx512<const CELL: u8>(a: &BackwardArgs) {
        // SAFETY: forwarded contract.
        unsafe { backward_gates_body::<Avx512, CELL>(a) }
    }

    /// # Safety
    /// As [`packed_matmul_body`]; the CPU has the features enabled here.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_avx2<const MR: usize, const NV: usize>(
        m: &MatmulArgs,
        p0: usize,
        p1: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { packed_matmul_body::<Avx2, MR, NV>(m, p0, p1) }
    }

    /// # Safety
    /// As [`packed_matmul_body`]; the CPU has the features enabled here.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn matmul_avx512<const MR: usize, const NV: usize>(
        m: &MatmulArgs,
        p0: usize,
        p1: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { packed_matmul_body::<Avx512, MR, NV>(m, p0, p1) }
    }
}

use pack::{BWD_8, BWD_16, GRU_8, GRU_16, LSTM_8, LSTM_16, RNN_8, RNN_16};

/// The forward kernel of `kind` on `isa`; its blocking is the one `pack` laid the panels out for.
fn forward_kernel(isa: Isa, kind: CellKind) -> ForwardKernel {
    use CellKind::{Gru, Lstm, Rnn};
    use RnnActivation::{Relu, Tanh};
    match (isa, kind) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, Lstm) => {
            x86::forward_avx2::<LSTM, { LSTM_8.0 }, { LSTM_8.1 }, { 4 * LSTM_8.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, Gru) => x86::forward_avx2::<GRU, { GRU_8.0 }, { GRU_8.1 }, { 3 * GRU_8.1 }>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, Rnn(Tanh)) => {
            x86::forward_avx2::<RNN_TANH, { RNN_8.0 }, { RNN_8.1 }, { RNN_8.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, Rnn(Relu)) => {
            x86::forward_avx2::<RNN_RELU, { RNN_8.0 }, { RNN_8.1 }, { RNN_8.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Lstm) => {
            x86::forward_avx512::<LSTM, { LSTM_16.0 }, { LSTM_16.1 }, { 4 * LSTM_16.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Gru) => {
            x86::forward_avx512::<GRU, { GRU_16.0 }, { GRU_16.1 }, { 3 * GRU_16.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Rnn(Tanh)) => {
            x86::forward_avx512::<RNN_TANH, { RNN_16.0 }, { RNN_16.1 }, { RNN_16.1 }>
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, Rnn(Relu)) => {
            x86::forward_avx512::<RNN_RELU, { RNN_16.0 }, { RNN_16.1 }, { RNN_16.1 }>
        }
        (_, Lstm) => forward_portable::<LSTM, { LSTM_8.0 }, { LSTM_8.1 }, { 4 * LSTM_8.1 }>,
        (_, Gru) => forward_portable::<GRU, { GRU_8.0 }, { GRU_8.1 }, { 3 * GRU_8.1 }>,
        (_, Rnn(Tanh)) => forward_portable::<RNN_TANH, { RNN_8.0 }, { RNN_8.1 }, { RNN_8.1 }>,
        (_, Rnn(Relu)) => forward_portable::<RNN_RELU, { RNN_8.0 }, { RNN_8.1 }, { RNN_8.1 }>,
        (_, CellKind::GruResetBefore) => unreachable!("gru_rb has its own kernels"),
    }
}

/// The elementwise gate-backward kernel of `kind` on `isa`.
fn backward_kernel(isa: Isa, kind: CellKind) -> GatesKernel {
    let cell = match kind {
        CellKind::Lstm => LSTM,
        CellKind::Gru => GRU,
        CellKind::Rnn(RnnActivation::Tanh) => RNN_TANH,
        CellKind::Rnn(RnnActivation::Relu) => RNN_RELU,
        CellKind::GruResetBefore => unreachable!("gru_rb has its own kernels"),
    };
    macro_rules! by_cell {
        ($($f:ident)::+) => {
            match cell {
                LSTM => $($f)::+::<LSTM> as GatesKernel,
                GRU => $($f)::+::<GRU>,
                RNN_TANH => $($f)::+::<RNN_TANH>,
                _ => $($f)::+::<RNN_RELU>,
            }
        };
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => by_cell!(x86::gates_avx2),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => by_cell!(x86::gates_avx512),
        _ => by_cell!(gates_portable),
    }
}

/// The packed-matmul kernel on `isa` (blocking as `pack::backward_blocking`).
fn matmul_kernel(isa: Isa) -> MatmulKernel {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::matmul_avx2::<{ BWD_8.0 }, { BWD_8.1 }>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::matmul_avx512::<{ BWD_16.0 }, { BWD_16.1 }>,
        _ => matmul_portable::<{ BWD_8.0 }, { BWD_8.1 }>,
    }
}
