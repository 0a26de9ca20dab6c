//! The reset-before GRU ([`super::CellKind::GruResetBefore`]: Keras `GRU(reset_after=False)`, ONNX
//! `linear_before_reset = 0`): one time step for a block of batch rows, forward and backward.
//!
//! The reset gate multiplies `h_{t-1}` *before* the candidate's recurrent matmul, so a step cannot
//! be one gate-interleaved GEMM like the other cells: the candidate's A operand, `s = r⊙h_{t-1}`,
//! exists only after the `r` gate. A step is two register-tiled matmuls, each with its epilogue
//! fused (rows `b`, hidden unit `j`; `Xp` the hoisted `x·W_ihᵀ + b_ih + b_hh`, every bias summed
//! in, since none sits inside the reset):
//!
//! ```text
//! 1. u_rz = h_{t-1}·W_h{r,z}ᵀ    2-gate interleaved panels (r, z of w units side by side), MR × 2U tile
//!    r, z = σ(Xp_{r,z} + u_rz);  s = r⊙h_{t-1}                      (epilogue; s kept for backward)
//! 2. u_n  = s·W_hnᵀ               W_hnᵀ as a PackedMatrix, the packed_matmul tile
//!    n = tanh(Xp_n + u_n);  h_t = n + z⊙(h_{t-1} − n)                (epilogue)
//! ```
//!
//! Backward (reverse time; `dh = dy_t + dh_carry`; formulas of `recur_engine::reference::cell`):
//!
//! ```text
//! 1. δ_n = dh⊙(1−z)⊙(1−n²);  δ_z = dh⊙(h'−n)⊙z(1−z);  dh ← dh⊙z         (elementwise)
//! 2. d_s = δ_n·W_hn;  δ_r = d_s⊙h'⊙r(1−r);  dh += d_s⊙r               (tile over W_hn + epilogue)
//! 3. dh += [δ_r, δ_z]·W_h{r,z}                                        (packed_matmul, β = 1)
//! ```
//!
//! `δ = [δ_r, δ_z, δ_n]` is left over the gates cache: it is the gradient w.r.t. both the input
//! and the recurrent pre-activations (`δ_a = δ_u`). `s` stays in the `hn` buffer, because
//! `dW_hn = Σ δ_nᵀ·s` while `dW_h{r,z} = Σ δ_{r,z}ᵀ·h'` (the engine's GEMMs after the loop).
//!
//! The two phases of a step are separate column-split passes ([`split_panels`]): phase 2 reads
//! all of `s` (forward) or `δ_n` (backward), which phase 1 finishes first.

use std::ops::Range;

use super::pack::{self, PackFor, PackedMatrix, PackedRecurrent};
use super::step::{
    BackwardStep, ForwardStep, SharedArgs, check_len, load_n, missing, packed_matmul, split_panels,
    store_n, tile,
};
use crate::activations::{sigmoid_v, tanh_v};
use crate::simd::{Portable, Simd};
use crate::{Isa, Par};

/// The candidate gate's recurrent weights `W_hn` (the last H rows of `W_hh`), packed for both
/// matmuls it takes part in.
#[derive(Clone, Debug)]
pub(crate) struct CandidateWeights {
    /// `W_hnᵀ` (H × H): forward `u_n = s·W_hnᵀ`.
    forward: PackedMatrix,
    /// `W_hn` (H × H): backward `d_s = δ_n·W_hn`. `None` for [`PackFor::Inference`].
    backward: Option<PackedMatrix>,
}

/// Packs `w_hh` `(3H, H)` for the reset-before cell: `packed.forward` gets the `r, z` rows as
/// 2-gate panels, `packed.backward` the `r, z` rows `(2H, H)` as a plain [`PackedMatrix`] (for
/// `dh += δ_{r,z}·W_h{r,z}`), `packed.candidate` the `n` rows. Shapes were checked by the caller.
pub(super) fn repack(packed: &mut PackedRecurrent, w_hh: &[f32], purpose: PackFor) {
    let (h, isa) = (packed.hidden, packed.isa);
    let (w_rz, w_n) = w_hh.split_at(2 * h * h);
    pack::pack_gate_panels(&mut packed.forward, w_rz, h, 2, packed.units);
    packed.b_hn.clear();
    let training = purpose == PackFor::Training;
    packed.backward = training.then(|| PackedMatrix::with_isa(isa, w_rz, 2 * h, h, h, 1));
    packed.candidate = Some(CandidateWeights {
        forward: PackedMatrix::with_isa(isa, w_n, h, h, 1, h),
        backward: training.then(|| PackedMatrix::with_isa(isa, w_n, h, h, h, 1)),
    });
}

/// Raw pointers of one step (forward or backward; unused ones are null).
struct Args {
    rows: usize,
    hidden: usize,
    /// Forward phase 1: the `r, z` panels. Backward phase 2: `W_hn` panels.
    panels: *const f32,
    /// Forward phase 2: `W_hnᵀ` panels.
    candidate: *const f32,
    /// (rows, H)
    h_prev: *const f32,
    /// (rows, 3H)
    gates: *mut f32,
    /// Forward: `h_t`. (rows, H)
    h: *mut f32,
    /// Forward: `s = r⊙h_{t-1}`. (rows, H)
    s: *mut f32,
    /// Backward: `dy_t`. (rows, H)
    dy: *const f32,
    /// Backward: the carried `dh`. (rows, H)
    dh: *mut f32,
}

impl Args {
    fn empty(rows: usize, hidden: usize) -> Self {
        Args {
            rows,
            hidden,
            panels: std::ptr::null(),
            candidate: std::ptr::null(),
            h_prev: std::ptr::null(),
            gates: std::ptr::null_mut(),
            h: std::ptr::null_mut(),
            s: std::ptr::null_mut(),
            dy: std::ptr::null(),
            dh: std::ptr::null_mut(),
        }
    }
}

/// [`super::forward_step`] for [`super::CellKind::GruResetBefore`]: the `hn` buffer receives
/// `s = r⊙h_{t-1}`.
pub(super) fn forward_step(packed: &PackedRecurrent, step: ForwardStep<'_>, par: Par) {
    let (h, rows) = (packed.hidden, step.rows);
    check_len("h_prev (rows, H)", rows * h, step.h_prev.len());
    check_len("gates (rows, 3H)", rows * 3 * h, step.gates.len());
    check_len("h (rows, H)", rows * h, step.h.len());
    let s = step.hn.unwrap_or_else(|| missing("hn (r⊙h_{t-1})"));
    check_len("hn (rows, H)", rows * h, s.len());
    let candidate = candidate_of(packed);
    if rows == 0 {
        return;
    }
    let mut args = Args::empty(rows, h);
    args.panels = packed.forward.as_ptr();
    args.candidate = candidate.forward.data.as_ptr();
    args.h_prev = step.h_prev.as_ptr();
    args.gates = step.gates.as_mut_ptr();
    args.h = step.h.as_mut_ptr();
    args.s = s.as_mut_ptr();
    let args = SharedArgs(args);
    let kernels = kernels(packed.isa);
    for (kernel, panels) in [
        (kernels.forward_rz, h.div_ceil(packed.units)),
        (kernels.forward_n, h.div_ceil(candidate.forward.cols)),
    ] {
        split_panels(panels, rows, par, &|range: Range<usize>| {
            // SAFETY: every pointer covers its documented shape (checked above); the panels were
            // packed for this `hidden` and ISA (clamped to the host); concurrent calls get
            // disjoint panel ranges, i.e. disjoint hidden units, and phase 2 starts only after
            // phase 1 has written all of `s`.
            unsafe { kernel(args.get(), range.start, range.end) }
        });
    }
}

/// [`super::backward_step`] for [`super::CellKind::GruResetBefore`]: `gates` becomes
/// `δ = [δ_r, δ_z, δ_n]` (input and recurrent side alike); `hn` (`s`) is only read, by nobody
/// here — the engine's `dW_hn` GEMM needs it afterwards.
pub(super) fn backward_step(packed: &PackedRecurrent, step: BackwardStep<'_>, par: Par) {
    let (h, rows) = (packed.hidden, step.rows);
    let Some(w_rz) = packed.backward.as_ref() else {
        missing("backward panels (pack with PackFor::Training)")
    };
    let w_n = candidate_of(packed)
        .backward
        .as_ref()
        .unwrap_or_else(|| missing("backward panels (pack with PackFor::Training)"));
    check_len("dy (rows, H)", rows * h, step.dy.len());
    check_len("dh (rows, H)", rows * h, step.dh.len());
    check_len("gates (rows, 3H)", rows * 3 * h, step.gates.len());
    check_len("h_prev (rows, H)", rows * h, step.h_prev.len());
    if rows == 0 {
        return;
    }
    let mut args = Args::empty(rows, h);
    args.panels = w_n.data.as_ptr();
    args.h_prev = step.h_prev.as_ptr();
    args.gates = step.gates.as_mut_ptr();
    args.dy = step.dy.as_ptr();
    args.dh = step.dh.as_mut_ptr();
    let kernels = kernels(packed.isa);
    // SAFETY: pointers cover their shapes (checked above), the ISA was clamped to the host when
    // packing; one thread.
    unsafe { (kernels.backward_gates)(&args, 0, 0) };
    let args = SharedArgs(args);
    split_panels(h.div_ceil(w_n.cols), rows, par, &|range: Range<usize>| {
        // SAFETY: as above; concurrent calls get disjoint panel ranges, i.e. disjoint columns of
        // `dh` and of the `r` block of `gates`, and read only the `n` block, which the
        // elementwise pass finished.
        unsafe { (kernels.backward_s)(args.get(), range.start, range.end) }
    });
    // dh += [δ_r, δ_z]·W_h{r,z}: A is the first 2H columns of the gates rows.
    packed_matmul(w_rz, rows, step.gates, 3 * h, step.dh, h, true, par);
}

fn candidate_of(packed: &PackedRecurrent) -> &CandidateWeights {
    packed
        .candidate
        .as_ref()
        .expect("a reset-before GRU is always packed with its candidate weights")
}

// ---------------------------------------------------------------------------------------------
// Kernel bodies, written once over `Simd`
// ---------------------------------------------------------------------------------------------

/// Forward phase 1 over `r, z` panels `p0..p1`: `r, z` over the gates, `s = r⊙h_{t-1}`.
///
/// # Safety
/// `a` holds the forward pointers checked by [`forward_step`], panels packed with `U·LANES` units
/// and `NV = 2U`; the CPU runs `S`.
#[inline(always)]
unsafe fn forward_rz_body<S: Simd, const MR: usize, const NV: usize>(
    a: &Args,
    p0: usize,
    p1: usize,
) {
    let (h, l) = (a.hidden, S::LANES);
    let u_count = NV / 2;
    let units = u_count * l;
    for p in p0..p1 {
        // SAFETY: panel `p < ceil(H/units)` lies inside the packed `panels·H·NV·L` floats.
        let panel = unsafe { a.panels.add(p * h * NV * l) };
        let mut r = 0;
        while r < a.rows {
            let block = if r + MR <= a.rows { MR } else { 1 };
            // SAFETY: rows r..r+block of h_prev (H floats each) exist; the epilogue stays inside
            // rows r..r+block and units p·units.. clipped to H.
            unsafe {
                if block == MR {
                    let acc = tile::<S, MR, NV>(a.h_prev.add(r * h), h, h, panel);
                    rz_epilogue::<S, MR, NV>(&acc, a, r, p * units);
                } else {
                    let acc = tile::<S, 1, NV>(a.h_prev.add(r * h), h, h, panel);
                    rz_epilogue::<S, 1, NV>(&acc, a, r, p * units);
                }
            }
            r += block;
        }
    }
}

/// # Safety
/// As [`forward_rz_body`]; rows `r0..r0+MR` exist.
#[inline(always)]
unsafe fn rz_epilogue<S: Simd, const MR: usize, const NV: usize>(
    acc: &[[S::V; NV]; MR],
    a: &Args,
    r0: usize,
    j0: usize,
) {
    let (h, l) = (a.hidden, S::LANES);
    let u_count = NV / 2;
    for (r, acc) in acc.iter().enumerate() {
        let row = r0 + r;
        for u in 0..u_count {
            let j = j0 + u * l;
            if j >= h {
                break;
            }
            let n = (h - j).min(l);
            // SAFETY: `j + n ≤ H`, `row < rows`: inside the (rows, 3H) and (rows, H) buffers.
            unsafe {
                let x = a.gates.add(row * 3 * h + j);
                let rg = sigmoid_v::<S>(S::add(acc[u], load_n::<S>(x, n)));
                let z = sigmoid_v::<S>(S::add(acc[u_count + u], load_n::<S>(x.add(h), n)));
                let h_prev = load_n::<S>(a.h_prev.add(row * h + j), n);
                store_n::<S>(x, rg, n);
                store_n::<S>(x.add(h), z, n);
                store_n::<S>(a.s.add(row * h + j), S::mul(rg, h_prev), n);
            }
        }
    }
}

/// Forward phase 2 over `W_hnᵀ` panels `p0..p1` (columns = hidden units): `n`, `h_t`.
///
/// # Safety
/// As [`forward_rz_body`], with `s` complete and `candidate` packed `NV·LANES` columns a panel.
#[inline(always)]
unsafe fn forward_n_body<S: Simd, const MR: usize, const NV: usize>(
    a: &Args,
    p0: usize,
    p1: usize,
) {
    let (h, cols) = (a.hidden, NV * S::LANES);
    for p in p0..p1 {
        // SAFETY: panel p lies inside the packed `panels·H·cols` floats.
        let panel = unsafe { a.candidate.add(p * h * cols) };
        let mut r = 0;
        while r < a.rows {
            let block = if r + MR <= a.rows { MR } else { 1 };
            // SAFETY: rows r..r+block of s (H floats each) exist; the epilogue clips to H.
            unsafe {
                if block == MR {
                    let acc = tile::<S, MR, NV>(a.s.add(r * h), h, h, panel);
                    n_epilogue::<S, MR, NV>(&acc, a, r, p * cols);
                } else {
                    let acc = tile::<S, 1, NV>(a.s.add(r * h), h, h, panel);
                    n_epilogue::<S, 1, NV>(&acc, a, r, p * cols);
                }
            }
            r += block;
        }
    }
}

/// # Safety
/// As [`forward_n_body`]; rows `r0..r0+MR` exist.
#[inline(always)]
unsafe fn n_epilogue<S: Simd, const MR: usize, const NV: usize>(
    acc: &[[S::V; NV]; MR],
    a: &Args,
    r0: usize,
    j0: usize,
) {
    let (h, l) = (a.hidden, S::LANES);
    for (r, acc) in acc.iter().enumerate() {
        let row = r0 + r;
        for (v, &u_n) in acc.iter().enumerate() {
            let j = j0 + v * l;
            if j >= h {
                break;
            }
            let n = (h - j).min(l);
            // SAFETY: `j + n ≤ H`, `row < rows`.
            unsafe {
                let x = a.gates.add(row * 3 * h + j);
                let z = load_n::<S>(x.add(h), n);
                let nv = tanh_v::<S>(S::add(u_n, load_n::<S>(x.add(2 * h), n)));
                let h_prev = load_n::<S>(a.h_prev.add(row * h + j), n);
                store_n::<S>(x.add(2 * h), nv, n);
                store_n::<S>(a.h.add(row * h + j), S::fma(z, S::sub(h_prev, nv), nv), n);
            }
        }
    }
}

/// Backward phase 1, all rows and units: `δ_z`, `δ_n` over the gates, `dh ← (dy + dh)⊙z`.
///
/// # Safety
/// `a` holds the backward pointers checked by [`backward_step`]; the CPU runs `S`.
#[inline(always)]
unsafe fn backward_gates_body<S: Simd, const MR: usize, const NV: usize>(
    a: &Args,
    _p0: usize,
    _p1: usize,
) {
    let (h, l) = (a.hidden, S::LANES);
    for row in 0..a.rows {
        let mut j = 0;
        while j < h {
            let n = (h - j).min(l);
            let at = row * h + j;
            // SAFETY: `row < rows`, `j + n ≤ H`: inside every checked buffer.
            unsafe {
                let one = S::splat(1.0);
                let dh = S::add(load_n::<S>(a.dy.add(at), n), load_n::<S>(a.dh.add(at), n));
                let x = a.gates.add(row * 3 * h + j);
                let z = load_n::<S>(x.add(h), n);
                let nv = load_n::<S>(x.add(2 * h), n);
                let h_prev = load_n::<S>(a.h_prev.add(at), n);
                let dn = S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(nv, nv)));
                let dz = S::mul(S::mul(dh, S::sub(h_prev, nv)), S::mul(z, S::sub(one, z)));
                store_n::<S>(x.add(h), dz, n);
                store_n::<S>(x.add(2 * h), dn, n);
                store_n::<S>(a.dh.add(at), S::mul(dh, z), n);
            }
            j += n;
        }
    }
}

/// Backward phase 2 over `W_hn` panels `p0..p1` (columns = units of `s`): `d_s = δ_n·W_hn`,
/// then `δ_r` over `r` and `dh += d_s⊙r`.
///
/// # Safety
/// As [`backward_gates_body`], after it ran, with `W_hn` packed `NV·LANES` columns a panel.
#[inline(always)]
unsafe fn backward_s_body<S: Simd, const MR: usize, const NV: usize>(
    a: &Args,
    p0: usize,
    p1: usize,
) {
    let (h, cols) = (a.hidden, NV * S::LANES);
    for p in p0..p1 {
        // SAFETY: panel p lies inside the packed `panels·H·cols` floats.
        let panel = unsafe { a.panels.add(p * h * cols) };
        let mut r = 0;
        while r < a.rows {
            let block = if r + MR <= a.rows { MR } else { 1 };
            // SAFETY: A = the δ_n block of rows r..r+block (H floats each at stride 3H) exists;
            // the epilogue clips to H.
            unsafe {
                let delta_n = a.gates.add(r * 3 * h + 2 * h);
                if block == MR {
                    let acc = tile::<S, MR, NV>(delta_n, 3 * h, h, panel);
                    s_epilogue::<S, MR, NV>(&acc, a, r, p * cols);
                } else {
                    let acc = tile::<S, 1, NV>(delta_n, 3 * h, h, panel);
                    s_epilogue::<S, 1, NV>(&acc, a, r, p * cols);
                }
            }
            r += block;
        }
    }
}

/// # Safety
/// As [`backward_s_body`]; rows `r0..r0+MR` exist.
#[inline(always)]
unsafe fn s_epilogue<S: Simd, const MR: usize, const NV: usize>(
    acc: &[[S::V; NV]; MR],
    a: &Args,
    r0: usize,
    j0: usize,
) {
    let (h, l) = (a.hidden, S::LANES);
    for (r, acc) in acc.iter().enumerate() {
        let row = r0 + r;
        for (v, &d_s) in acc.iter().enumerate() {
            let j = j0 + v * l;
            if j >= h {
                break;
            }
            let n = (h - j).min(l);
            // SAFETY: `j + n ≤ H`, `row < rows`.
            unsafe {
                let one = S::splat(1.0);
                let x = a.gates.add(row * 3 * h + j);
                let rg = load_n::<S>(x, n);
                let h_prev = load_n::<S>(a.h_prev.add(row * h + j), n);
                let dr = S::mul(S::mul(d_s, h_prev), S::mul(rg, S::sub(one, rg)));
                let dh = a.dh.add(row * h + j);
                store_n::<S>(x, dr, n);
                store_n::<S>(dh, S::fma(d_s, rg, load_n::<S>(dh, n)), n);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ISA instantiations and dispatch
// ---------------------------------------------------------------------------------------------

type Kernel = unsafe fn(&Args, usize, usize);

/// The four kernels of one ISA, each with the blocking its panels were packed for.
struct Kernels {
    forward_rz: Kernel,
    forward_n: Kernel,
    backward_gates: Kernel,
    backward_s: Kernel,
}

/// One-line `#[target_feature]` shims of a body, per ISA.
macro_rules! shims {
    ($body:ident => $portable:ident, $avx2:ident, $avx512:ident) => {
        /// # Safety
        /// As the body, with `S = Portable` (runs anywhere).
        unsafe fn $portable<const MR: usize, const NV: usize>(a: &Args, p0: usize, p1: usize) {
            // SAFETY: forwarded contract; the portable vocabulary needs no CPU feature.
            unsafe { $body::<Portable, MR, NV>(a, p0, p1) }
        }

        /// # Safety
        /// As the body; the CPU has AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2<const MR: usize, const NV: usize>(a: &Args, p0: usize, p1: usize) {
            // SAFETY: forwarded contract; AVX2+FMA guaranteed by the caller.
            unsafe { $body::<crate::simd::Avx2, MR, NV>(a, p0, p1) }
        }

        /// # Safety
        /// As the body; the CPU has AVX-512F/BW/VL.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
        unsafe fn $avx512<const MR: usize, const NV: usize>(a: &Args, p0: usize, p1: usize) {
            // SAFETY: forwarded contract; AVX-512 guaranteed by the caller.
            unsafe { $body::<crate::simd::Avx512, MR, NV>(a, p0, p1) }
        }
    };
}

shims!(forward_rz_body => forward_rz_portable, forward_rz_avx2, forward_rz_avx512);
shims!(forward_n_body => forward_n_portable, forward_n_avx2, forward_n_avx512);
shims!(backward_gates_body => gates_portable, gates_avx2, gates_avx512);
shims!(backward_s_body => backward_s_portable, backward_s_avx2, backward_s_avx512);

use pack::{BWD_8, BWD_16, GRU_RB_8, GRU_RB_16};

/// The kernels on `isa`: phase 1 with the `r, z` panel blocking (`pack::forward_blocking`,
/// `NV = 2U`), the `W_hn` matmuls with the [`PackedMatrix`] one (`pack::backward_blocking`).
fn kernels(isa: Isa) -> Kernels {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Kernels {
            forward_rz: forward_rz_avx2::<{ GRU_RB_8.0 }, { 2 * GRU_RB_8.1 }>,
            forward_n: forward_n_avx2::<{ BWD_8.0 }, { BWD_8.1 }>,
            backward_gates: gates_avx2::<1, 1>,
            backward_s: backward_s_avx2::<{ BWD_8.0 }, { BWD_8.1 }>,
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Kernels {
            forward_rz: forward_rz_avx512::<{ GRU_RB_16.0 }, { 2 * GRU_RB_16.1 }>,
            forward_n: forward_n_avx512::<{ BWD_16.0 }, { BWD_16.1 }>,
            backward_gates: gates_avx512::<1, 1>,
            backward_s: backward_s_avx512::<{ BWD_16.0 }, { BWD_16.1 }>,
        },
        _ => Kernels {
            forward_rz: forward_rz_portable::<{ GRU_RB_8.0 }, { 2 * GRU_RB_8.1 }>,
            forward_n: forward_n_portable::<{ BWD_8.0 }, { BWD_8.1 }>,
            backward_gates: gates_portable::<1, 1>,
            backward_s: backward_s_portable::<{ BWD_8.0 }, { BWD_8.1 }>,
        },
    }
}
