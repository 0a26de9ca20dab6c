//! One layer in one direction over a whole (internal-layout) sequence batch: the hoisted input
//! projection, the chunk-parallel time loop of fused steps, and BPTT with the weight gradients as
//! single GEMMs after the loop.

use std::sync::Arc;

use rayon::prelude::*;
use recur_kernels::cells::{
    BackwardStep, ForwardStep, PackedRecurrent, StepExtras, accumulate_rows, backward_step_with,
    forward_step_with,
};
use recur_kernels::{CellKind, Isa, Par};

use super::gemm::{View, gemm};
use super::params::DirectionParams;
use super::plan::{Chunk, Plan};
use super::workspace::Workspace;

/// The input of one direction of one layer, internal layout (T·B rows).
#[derive(Clone, Copy, Debug)]
pub(crate) enum DirInput<'a> {
    /// (T·B, width) values.
    Dense { x: &'a [f32], width: usize },
    /// (T·B) token ids, each standing for a one-hot row of `width` values (every id < width).
    OneHot { ids: &'a [u32], width: usize },
}

impl DirInput<'_> {
    fn width(&self) -> usize {
        match *self {
            DirInput::Dense { width, .. } | DirInput::OneHot { width, .. } => width,
        }
    }
}

/// What one direction of one layer keeps from forward for backward. Buffers are internal
/// layout (see `plan`), T·B rows.
#[derive(Debug)]
pub(crate) struct DirectionCache {
    /// After forward: the activated gates (LSTM `i,f,g,o`; GRU `r,z,n`; unused for RNN, which
    /// keeps only h). After backward: `δ_u`. (T·B, G·H)
    pub gates: Vec<f32>,
    /// `h_t`; zero at steps past a row's length. (T·B, H)
    pub h: Vec<f32>,
    /// LSTM `c_t`, else empty. (T·B, H)
    pub c: Vec<f32>,
    /// GRU `u_n = W_hn h_{t-1} + b_hn`, else empty. (T·B, H)
    pub hn: Vec<f32>,
    /// Initial state, sorted rows. (B, H)
    pub h0: Vec<f32>,
    /// LSTM initial cell state, sorted rows, else empty. (B, H)
    pub c0: Vec<f32>,
    /// `h0` (and `c0`) are all zeros (no initial state was given): the first step's recurrent
    /// products are skipped, forward (`W_hh·h0`) and backward (`δ_0ᵀ·h0` of `dW_hh`).
    pub h0_zero: bool,
    /// `W_hh` packed (shared with the network's pack cache).
    pub packed: Arc<PackedRecurrent>,
}

/// What backward of one direction returns besides the weight gradients.
#[derive(Debug)]
pub(crate) struct DirectionInputGrads {
    /// `∂L/∂x` of this direction's (internal, direction-ordered) input (T·B, I_k); empty for a
    /// one-hot input, which has no gradient.
    pub dx: Vec<f32>,
    /// `∂L/∂h_0`, sorted rows. (B, H)
    pub dh0: Vec<f32>,
    /// `∂L/∂c_0` (LSTM), sorted rows, else empty. (B, H)
    pub dc0: Vec<f32>,
}

/// The step kernel's own parallelism for a chunk: the column split only pays when the whole batch
/// is one small chunk (batch-1 streaming); otherwise chunks are the parallel unit.
fn step_par(plan: &Plan, par: Par) -> Par {
    if plan.chunks.len() == 1 {
        par
    } else {
        Par::Seq
    }
}

fn for_each_chunk<W: Send>(work: Vec<W>, par: Par, f: impl Fn(W) + Sync + Send) {
    if par.threads() > 1 && work.len() > 1 {
        work.into_par_iter().for_each(f);
    } else {
        work.into_iter().for_each(f);
    }
}

/// Splits `buf` into per-chunk blocks of `T·rows·width` values.
fn split_chunks<'a>(mut buf: &'a mut [f32], plan: &Plan, width: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(plan.chunks.len());
    for chunk in &plan.chunks {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(plan.steps * chunk.rows * width);
        out.push(head);
        buf = tail;
    }
    out
}

fn chunk_rows<'a>(buf: &'a [f32], chunk: &Chunk, width: usize) -> &'a [f32] {
    &buf[chunk.start * width..(chunk.start + chunk.rows) * width]
}

/// Forward of one direction: `input` (T·B rows) internal layout (already reversed for the reverse
/// direction), initial state `h0`/`c0` (B, H) sorted rows (`h0_zero`: both are all zeros),
/// `W_hh` packed as `packed`. Buffers come from `ws`.
pub(crate) fn forward_direction(
    cell: CellKind,
    hidden: usize,
    params: &DirectionParams,
    input: DirInput<'_>,
    plan: &Plan,
    h0: Vec<f32>,
    c0: Vec<f32>,
    h0_zero: bool,
    packed: Arc<PackedRecurrent>,
    ws: &Workspace,
    isa: Isa,
    par: Par,
) -> DirectionCache {
    let (g, h) = (cell.gates(), hidden);
    let gh = g * h;
    let rows_total = plan.steps * plan.batch;
    let lstm = cell == CellKind::Lstm;
    let gru = cell == CellKind::Gru;
    // Both GRUs keep a (T·B, H) buffer beside the gates: u_n (GRU), r⊙h_{t-1} (reset-before).
    let keeps_hn = cell.is_gru();

    // Hoisted input projection: gates = x·W_ihᵀ + b_ih + b_hh over all T·B rows. GRU's b_hn
    // stays out (it sits inside r⊙(…)); the step kernel adds it.
    let bias: Vec<f32> = (0..gh)
        .map(|m| {
            params.bias_ih[m]
                + if gru && m >= 2 * h {
                    0.0
                } else {
                    params.bias_hh[m]
                }
        })
        .collect();
    // Dense input: every row of `gates` is written here (bias rows then the GEMM with β = 1).
    // One-hot input: the steps read the projection from the table and write the activated gates
    // of active rows only (a SimpleRNN none); backward writes δ over every row of `gates` (zeros
    // at idle rows) before it reads any, so pooled contents never leak either way.
    let mut gates = ws.take(rows_total * gh);
    // One-hot input: the (width, G·H) table `W_ih[:, id] + bias` and the ids.
    let mut one_hot: Option<(Vec<f32>, &[u32])> = None;
    match input {
        DirInput::Dense { x, width } => {
            for row in gates.chunks_exact_mut(gh) {
                row.copy_from_slice(&bias);
            }
            gemm(
                isa,
                par,
                1.0,
                View::row_major(x, rows_total, width),
                View::row_major(&params.weight_ih, gh, width).t(),
                1.0,
                &mut gates,
                gh,
            );
        }
        DirInput::OneHot { ids, width } => {
            // A one-hot row selects one column of W_ih: read `W_ih[:, id] + bias` from a table
            // (width, G·H) instead of multiplying by zeros. Same value as the GEMM: the zeros
            // add exactly, and `w + bias` is rounded once either way. The step kernel's
            // epilogue reads the table rows of its ids directly (no per-step copy).
            let mut table = ws.take(width * gh);
            for (m, w_row) in params.weight_ih.chunks_exact(width).enumerate() {
                for (i, &w) in w_row.iter().enumerate() {
                    table[i * gh + m] = w + bias[m];
                }
            }
            one_hot = Some((table, ids));
        }
    }

    // h, c and u_n are written by the steps at active rows and zeroed below at the others.
    let mut h_all = ws.take(rows_total * h);
    let mut c_all = ws.take(if lstm { rows_total * h } else { 0 });
    let mut hn_all = ws.take(if keeps_hn { rows_total * h } else { 0 });

    struct Work<'a> {
        chunk: &'a Chunk,
        gates: &'a mut [f32],
        h: &'a mut [f32],
        c: &'a mut [f32],
        hn: &'a mut [f32],
        h0: &'a [f32],
        c0: &'a [f32],
        /// One-hot input: the chunk's ids, internal layout. (T·rows)
        ids: &'a [u32],
    }
    let work: Vec<Work<'_>> = {
        let gates = split_chunks(&mut gates, plan, gh);
        let hs = split_chunks(&mut h_all, plan, h);
        let cs = split_chunks(&mut c_all, plan, if lstm { h } else { 0 });
        let hns = split_chunks(&mut hn_all, plan, if keeps_hn { h } else { 0 });
        plan.chunks
            .iter()
            .zip(gates)
            .zip(hs)
            .zip(cs)
            .zip(hns)
            .map(|((((chunk, gates), h_c), c), hn)| Work {
                chunk,
                gates,
                h: h_c,
                c,
                hn,
                h0: chunk_rows(&h0, chunk, h),
                c0: if lstm { chunk_rows(&c0, chunk, h) } else { &[] },
                ids: match one_hot {
                    Some((_, ids)) => {
                        &ids[plan.steps * chunk.start..plan.steps * (chunk.start + chunk.rows)]
                    }
                    None => &[],
                },
            })
            .collect()
    };
    let inner = step_par(plan, par);
    let packed_ref = &*packed;
    let table = one_hot.as_ref().map(|(table, _)| &table[..]);
    for_each_chunk(work, par, |w| {
        let rows = w.chunk.rows;
        // Steps past a row's length: h (and c, u_n) are 0 there, for the weight GEMMs of
        // backward and the next layer's input.
        for (t, &n) in w.chunk.active.iter().enumerate() {
            let idle = (t * rows + n) * h..(t + 1) * rows * h;
            w.h[idle.clone()].fill(0.0);
            if lstm {
                w.c[idle.clone()].fill(0.0);
            }
            if keeps_hn {
                w.hn[idle].fill(0.0);
            }
        }
        for t in 0..plan.steps {
            let n = w.chunk.active[t];
            if n == 0 {
                continue;
            }
            let (h_done, h_rest) = w.h.split_at_mut(t * rows * h);
            let h_prev = if t == 0 {
                &w.h0[..n * h]
            } else {
                &h_done[(t - 1) * rows * h..][..n * h]
            };
            let (c_prev, c_out) = if lstm {
                let (c_done, c_rest) = w.c.split_at_mut(t * rows * h);
                let c_prev = if t == 0 {
                    &w.c0[..n * h]
                } else {
                    &c_done[(t - 1) * rows * h..][..n * h]
                };
                (Some(c_prev), Some(&mut c_rest[..n * h]))
            } else {
                (None, None)
            };
            let extras = StepExtras {
                zero_state: t == 0 && h0_zero,
                table: table.map(|table| (table, &w.ids[t * rows..][..n])),
            };
            forward_step_with(
                packed_ref,
                ForwardStep {
                    rows: n,
                    h_prev,
                    c_prev,
                    gates: &mut w.gates[t * rows * gh..][..n * gh],
                    h: &mut h_rest[..n * h],
                    c: c_out,
                    hn: if keeps_hn {
                        Some(&mut w.hn[t * rows * h..][..n * h])
                    } else {
                        None
                    },
                },
                extras,
                inner,
            );
        }
    });
    if let Some((table, _)) = one_hot {
        ws.give(table);
    }
    DirectionCache {
        gates,
        h: h_all,
        c: c_all,
        hn: hn_all,
        h0,
        c0,
        h0_zero,
        packed,
    }
}

/// BPTT of one direction. `dy` (T·B, H) is the gradient of this direction's outputs (internal,
/// direction-ordered, zero past each length; `None`: zero); `dh_n`/`dc_n` (B, H) sorted rows, the gradient of
/// the final state; `cache.packed` must hold the backward panels. Weight gradients are
/// accumulated (`+=`) into `grads`; `dx` comes from `ws` (empty for a one-hot input). Without
/// `initial_state_grad`, the first step's `δ_0·W_hh` is skipped and `dh0`/`dc0` are zeros.
pub(crate) fn backward_direction(
    cell: CellKind,
    hidden: usize,
    params: &DirectionParams,
    cache: &mut DirectionCache,
    input: DirInput<'_>,
    plan: &Plan,
    dy: Option<&[f32]>,
    dh_n: Vec<f32>,
    dc_n: Vec<f32>,
    initial_state_grad: bool,
    grads: &mut DirectionParams,
    ws: &Workspace,
    isa: Isa,
    par: Par,
) -> DirectionInputGrads {
    let (g, h) = (cell.gates(), hidden);
    let gh = g * h;
    let steps = plan.steps;
    let rows_total = steps * plan.batch;
    let lstm = cell == CellKind::Lstm;
    let gru = cell == CellKind::Gru;
    let keeps_hn = cell.is_gru();
    // The reset-before GRU's W_hn rows read r⊙h_{t-1} (kept in `hn`), not h_{t-1}.
    let reset_before = cell == CellKind::GruResetBefore;
    let mut dh = dh_n;
    let mut dc = dc_n;
    // A zero output gradient reads one (rows, H) block of zeros at every step instead of a
    // (T·B, H) buffer.
    let max_rows = plan.chunks.iter().map(|c| c.rows).max().unwrap_or(0);
    let zeros = if dy.is_none() {
        ws.take_zeroed(max_rows * h)
    } else {
        Vec::new()
    };

    // Each chunk's task also forms its own share of dW_hh, the bias gradients and (one-hot) the
    // used columns of dW_ih right after its time loop, while its δ rows are still in cache, into a
    // per-chunk partial: [dW_hh rows (h_rows, H) | d_bias_hh (G·H) | d_bias_ih (G·H) | one-hot
    // table (width, G·H)]. The partials are added in chunk order after the loop — a fixed order
    // (chunks depend on B only), so results do not depend on the thread count.
    // The reset-before GRU's W_hn rows read r⊙h_{t-1} (kept in `hn`): dW_hn is one GEMM below.
    let h_rows = if reset_before { 2 * h } else { gh };
    let input_width = input.width();
    let one_hot_ids = match input {
        DirInput::OneHot { ids, .. } => Some(ids),
        DirInput::Dense { .. } => None,
    };
    let table_len = if one_hot_ids.is_some() {
        input_width * gh
    } else {
        0
    };
    let part_len = h_rows * h + 2 * gh + table_len;
    let mut partials = ws.take(plan.chunks.len() * part_len);

    struct Work<'a> {
        chunk: &'a Chunk,
        gates: &'a mut [f32],
        hn: &'a mut [f32],
        dh: &'a mut [f32],
        dc: &'a mut [f32],
        /// This chunk's partial gradients (layout above). (part_len)
        partial: &'a mut [f32],
    }
    {
        let packed = &*cache.packed;
        let (h_all, c_all, h0, c0) = (&cache.h, &cache.c, &cache.h0, &cache.c0);
        let h0_zero = cache.h0_zero;
        let mut dh_rest = &mut dh[..];
        let mut dc_rest = &mut dc[..];
        let mut work = Vec::with_capacity(plan.chunks.len());
        let gates = split_chunks(&mut cache.gates, plan, gh);
        let hns = split_chunks(&mut cache.hn, plan, if keeps_hn { h } else { 0 });
        let parts = partials.chunks_exact_mut(part_len);
        for (((chunk, gates), hn), partial) in plan.chunks.iter().zip(gates).zip(hns).zip(parts) {
            let (dh_c, rest) = std::mem::take(&mut dh_rest).split_at_mut(chunk.rows * h);
            dh_rest = rest;
            let dc_width = if lstm { h } else { 0 };
            let (dc_c, rest) = std::mem::take(&mut dc_rest).split_at_mut(chunk.rows * dc_width);
            dc_rest = rest;
            work.push(Work {
                chunk,
                gates,
                hn,
                dh: dh_c,
                dc: dc_c,
                partial,
            });
        }
        let inner = step_par(plan, par);
        for_each_chunk(work, par, |w| {
            let rows = w.chunk.rows;
            let base = steps * w.chunk.start;
            let h_chunk = &h_all[base * h..(base + steps * rows) * h];
            let c_chunk = if lstm {
                &c_all[base * h..(base + steps * rows) * h]
            } else {
                &[][..]
            };
            let h0 = chunk_rows(h0, w.chunk, h);
            let c0 = if lstm {
                chunk_rows(c0, w.chunk, h)
            } else {
                &[][..]
            };
            let dy_chunk = dy.map(|dy| &dy[base * h..(base + steps * rows) * h]);
            for t in (0..steps).rev() {
                let n = w.chunk.active[t];
                // Rows past their length take no gradient: zero them so the weight GEMMs over
                // all T·B rows ignore them.
                w.gates[(t * rows + n) * gh..(t + 1) * rows * gh].fill(0.0);
                if keeps_hn {
                    w.hn[(t * rows + n) * h..(t + 1) * rows * h].fill(0.0);
                }
                if n == 0 {
                    continue;
                }
                let at = t * rows * h;
                let h_prev = if t == 0 {
                    &h0[..n * h]
                } else {
                    &h_chunk[at - rows * h..][..n * h]
                };
                let c_prev = if t == 0 { c0 } else { c_chunk };
                backward_step_with(
                    packed,
                    BackwardStep {
                        rows: n,
                        dy: match dy_chunk {
                            Some(dy) => &dy[at..][..n * h],
                            None => &zeros[..n * h],
                        },
                        dh: &mut w.dh[..n * h],
                        dc: if lstm { Some(&mut w.dc[..n * h]) } else { None },
                        gates: &mut w.gates[t * rows * gh..][..n * gh],
                        h_prev,
                        h: &h_chunk[at..][..n * h],
                        c_prev: if lstm {
                            Some(if t == 0 {
                                &c_prev[..n * h]
                            } else {
                                &c_prev[at - rows * h..][..n * h]
                            })
                        } else {
                            None
                        },
                        c: if lstm {
                            Some(&c_chunk[at..][..n * h])
                        } else {
                            None
                        },
                        hn: if keeps_hn {
                            Some(&mut w.hn[at..][..n * h])
                        } else {
                            None
                        },
                    },
                    t > 0 || initial_state_grad,
                    inner,
                );
            }
            if !initial_state_grad {
                // The skipped product left them unspecified; the initial state's gradient is
                // reported as zeros.
                w.dh.fill(0.0);
                w.dc.fill(0.0);
            }
            // The chunk's partial gradients (see above), on this thread.
            let (dw_hh, rest) = w.partial.split_at_mut(h_rows * h);
            rest.fill(0.0);
            let (d_bias_hh, rest) = rest.split_at_mut(gh);
            let (d_bias_ih, d_table) = rest.split_at_mut(gh);
            // dW_hh = Σ_t δ_u,tᵀ·h_{t-1} (h_{-1} = h0); β = 0 first: the partial is not read.
            // A zero h0 contributes δ_0ᵀ·0 = +0 to every element (the GEMM sums from +0, and
            // +0 + ±0 = +0), so its GEMM is skipped and the next one takes β = 0: the same bits
            // (a sum from +0 is never −0, so `acc` and `+0 + acc` agree).
            let mut beta = 1.0;
            if !h0_zero {
                let first = View::strided(&w.gates[..rows * gh], rows, h_rows, gh);
                let h0_view = View::row_major(h0, rows, h);
                gemm(isa, Par::Seq, 1.0, first.t(), h0_view, 0.0, dw_hh, h);
            } else if steps > 1 {
                beta = 0.0;
            } else {
                dw_hh.fill(0.0);
            }
            if steps > 1 {
                let later = (steps - 1) * rows;
                let delta =
                    View::strided(&w.gates[rows * gh..steps * rows * gh], later, h_rows, gh);
                let h_prev = View::row_major(&h_chunk[..later * h], later, h);
                gemm(isa, Par::Seq, 1.0, delta.t(), h_prev, beta, dw_hh, h);
            }
            // Bias gradients (column sums) and a one-hot input's dW_ih columns, in row order.
            // δ_x (the input-side pre-activation gradient) is δ_u except GRU's n block (in `hn`).
            let ids = one_hot_ids.map(|ids| &ids[base..base + steps * rows]);
            let all = steps * rows;
            if gru {
                accumulate_rows(isa, w.gates, gh, all, gh, d_bias_hh, None);
                let (bias_rz, bias_n) = d_bias_ih.split_at_mut(2 * h);
                accumulate_rows(
                    isa,
                    w.gates,
                    gh,
                    all,
                    2 * h,
                    bias_rz,
                    table(d_table, gh, ids),
                );
                // The n block of each table row starts 2H in (an empty table has no rows).
                let table_n = &mut d_table[(2 * h).min(table_len)..];
                accumulate_rows(isa, w.hn, h, all, h, bias_n, table(table_n, gh, ids));
            } else {
                // δ_x = δ_u: the input bias takes the same sums, in the same order.
                accumulate_rows(
                    isa,
                    w.gates,
                    gh,
                    all,
                    gh,
                    d_bias_hh,
                    table(d_table, gh, ids),
                );
                d_bias_ih.copy_from_slice(d_bias_hh);
            }
        });
    }
    ws.give(zeros);
    // The chunks' partials, in chunk order (each element: `((g + p_0) + p_1) + …`).
    let mut d_table = ws.take_zeroed(table_len);
    let chunks = plan.chunks.len();
    let at = |offset: usize| &partials[offset..];
    add_partials(
        isa,
        par,
        at(0),
        part_len,
        chunks,
        &mut grads.weight_hh[..h_rows * h],
    );
    add_partials(
        isa,
        par,
        at(h_rows * h),
        part_len,
        chunks,
        &mut grads.bias_hh,
    );
    add_partials(
        isa,
        par,
        at(h_rows * h + gh),
        part_len,
        chunks,
        &mut grads.bias_ih,
    );
    add_partials(
        isa,
        par,
        at(h_rows * h + 2 * gh),
        part_len,
        chunks,
        &mut d_table,
    );
    ws.give(partials);

    // Input gradients: single GEMMs over all T·B rows, after the loop.
    let gates = &cache.gates;
    let dx = match input {
        DirInput::Dense { x, width } => {
            // β = 0 in the first GEMM into dx: pooled contents are never read.
            let mut dx = ws.take(rows_total * width);
            dense_input_grads(
                cell, h, params, gates, &cache.hn, x, width, rows_total, grads, &mut dx, isa, par,
            );
            dx
        }
        DirInput::OneHot { width, .. } => {
            // dW_ih[:, id] += the summed δ_x rows of id (the chunks' tables, added above); no
            // dx for a one-hot input.
            for (m, d_row) in grads.weight_ih.chunks_exact_mut(width).enumerate() {
                for (i, d) in d_row.iter_mut().enumerate() {
                    *d += d_table[i * gh + m];
                }
            }
            Vec::new()
        }
    };
    ws.give(d_table);
    debug_assert!(dx.is_empty() || dx.len() == rows_total * input_width);
    if reset_before {
        // dW_hn = Σ δ_nᵀ·(r⊙h_{t-1}).
        let delta_n = View::strided(&gates[2 * h..], rows_total, h, gh);
        let s = View::row_major(&cache.hn, rows_total, h);
        gemm(
            isa,
            par,
            1.0,
            delta_n.t(),
            s,
            1.0,
            &mut grads.weight_hh[2 * h * h..],
            h,
        );
    }
    DirectionInputGrads {
        dx,
        dh0: dh,
        dc0: dc,
    }
}

/// `dst += Σ_c src[c·stride ..][..len]` over `count` per-chunk partials, in chunk order, on up to
/// `par` threads: each thread takes whole column blocks, so every element is summed in the same
/// order for any thread count.
fn add_partials(isa: Isa, par: Par, src: &[f32], stride: usize, count: usize, dst: &mut [f32]) {
    /// Values per parallel task (16 KiB).
    const BLOCK: usize = 4096;
    if par.threads() > 1 && dst.len() > BLOCK {
        dst.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(i, block)| {
                let len = block.len();
                accumulate_rows(isa, &src[i * BLOCK..], stride, count, len, block, None);
            });
    } else {
        accumulate_rows(isa, src, stride, count, dst.len(), dst, None);
    }
}

/// The table argument of [`accumulate_rows`]: `(table, row stride, ids)` when there are ids.
fn table<'t>(
    d_table: &'t mut [f32],
    stride: usize,
    ids: Option<&'t [u32]>,
) -> Option<(&'t mut [f32], usize, &'t [u32])> {
    ids.map(|ids| (d_table, stride, ids))
}

/// `dW_ih += δ_xᵀ·X` and `dX = δ_x·W_ih` for a dense input `x` (rows, width); `dx` is written
/// whole (β = 0 first).
fn dense_input_grads(
    cell: CellKind,
    h: usize,
    params: &DirectionParams,
    gates: &[f32],
    hn: &[f32],
    x: &[f32],
    input: usize,
    rows_total: usize,
    grads: &mut DirectionParams,
    dx: &mut [f32],
    isa: Isa,
    par: Par,
) {
    let gh = cell.gates() * h;
    if cell == CellKind::Gru {
        let (w_rz, w_n) = params.weight_ih.split_at(2 * h * input);
        let (d_rz, d_n) = grads.weight_ih.split_at_mut(2 * h * input);
        let delta_rz = View::strided(gates, rows_total, 2 * h, gh);
        let delta_n = View::row_major(hn, rows_total, h);
        let xv = View::row_major(x, rows_total, input);
        gemm(isa, par, 1.0, delta_rz.t(), xv, 1.0, d_rz, input);
        gemm(isa, par, 1.0, delta_n.t(), xv, 1.0, d_n, input);
        gemm(
            isa,
            par,
            1.0,
            delta_rz,
            View::row_major(w_rz, 2 * h, input),
            0.0,
            dx,
            input,
        );
        gemm(
            isa,
            par,
            1.0,
            delta_n,
            View::row_major(w_n, h, input),
            1.0,
            dx,
            input,
        );
    } else {
        let delta = View::row_major(gates, rows_total, gh);
        gemm(
            isa,
            par,
            1.0,
            delta.t(),
            View::row_major(x, rows_total, input),
            1.0,
            &mut grads.weight_ih,
            input,
        );
        gemm(
            isa,
            par,
            1.0,
            delta,
            View::row_major(&params.weight_ih, gh, input),
            0.0,
            dx,
            input,
        );
    }
}
