//! The convolution's three products without an im2col matrix in memory.
//!
//! The im2col matrix, extended with a column of ones for the bias,
//! `cols⁺ = [cols | 1]` (`T_out·B × K·C_in + 1`), is never written out: its pieces are packed
//! straight from `x` into the micro-kernel's panels (`pack_cols_a`, `pack_cols_b`) by a small
//! GEMM loop ([`gemm_packed_by`]) that takes its packers as closures.
//!
//! ```text
//! forward    y        = cols⁺ · [Wᵀ; bias]      A = cols⁺ packed from x; β = 0 (no bias fill)
//! d_weight   dW⁺      = dyᵀ · cols⁺             B = cols⁺ packed from x; last column = d_bias
//! d_input    d_cols   = dy · W                  block by block into an L2-sized scratch, each
//!            dx      += scatter(d_cols)         block scattered into dx while it is hot
//! ```
//!
//! The d_weight reduction over the `T_out·B` rows is cut into chunks whose number depends only on
//! the row count (never on the thread count); each chunk's product is summed into its own partial,
//! and the partials are added in chunk order. The d_input scatter visits output rows from the last
//! to the first, so every input row receives its taps in increasing `k` — the order of
//! [`super::col2im`]. Both make results bit-identical for every [`Par`].

use std::cell::RefCell;

use rayon::prelude::*;

use super::Conv1dShape;
use crate::gemm::kernel::{Kernel, MacroArgs};
use crate::gemm::{MatRef, PackedB};
use crate::{Isa, Par};

/// Output rows per task of the forward product under [`Par::Rayon`].
const FORWARD_ROWS_PER_TASK: usize = 1024;
/// Output rows per d_cols block of the d_input pass (`rows × K·C_in` floats of scratch).
const D_INPUT_BLOCK_ROWS: usize = 192;
/// Input steps per task of the d_input pass under [`Par::Rayon`] (each task recomputes the
/// `≈ span / S` output steps its neighbour also needs).
const D_INPUT_STEPS_PER_TASK: usize = 32;
/// The d_weight reduction is cut into `4·⌈rows / D_WEIGHT_ROWS_PER_FOUR⌉` chunks (at most one per
/// `D_WEIGHT_MIN_CHUNK` rows): a count that balances 1, 2 or 4 threads and depends on the shape only.
const D_WEIGHT_ROWS_PER_FOUR: usize = 16_384;
const D_WEIGHT_MIN_CHUNK: usize = 512;

thread_local! {
    static A_PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static B_PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's cached buffer of at least `len` floats (a fresh one if the cache
/// is in use further up the stack).
fn with_buf<R>(
    cache: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    cache.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

// ---------------------------------------------------------------------------------------------
// The GEMM loop with caller-supplied packers
// ---------------------------------------------------------------------------------------------

/// A packer of panels: `(first row, rows, first column, columns, destination)`.
pub(super) type Packer<'a> = &'a dyn Fn(usize, usize, usize, usize, &mut [f32]);

/// Where [`gemm_packed_by`] gets its B panels.
pub(super) enum BSource<'a> {
    /// A packer called per (JC, PC) step: `(pc, kc, jc, nc, dst)` writes rows `pc..pc+kc`,
    /// columns `jc..jc+nc` of B as `⌈nc/NR⌉` panels of `kc·NR` floats
    /// (`dst[q·kc·NR + p·NR + j] = B[pc + p, jc + q·NR + j]`, columns past `nc` zero).
    Packer(Packer<'a>),
    /// B packed once, whole depth, for this kernel.
    Packed(&'a PackedB),
}

/// `C ← A·B + β·C` for an `m × n` C (row stride `ldc`, unit column stride, first element
/// `c[0]`), `k` deep, on one thread, where A exists only through its packer and B through `b`:
///
/// - `pack_a(ic, mc, pc, kc, dst)` writes rows `ic..ic+mc`, columns `pc..pc+kc` of A as
///   `⌈mc/MR⌉` panels of `MR·kc` floats (`dst[r·MR·kc + p·MR + i] = A[ic + r·MR + i, pc + p]`,
///   rows past `mc` zero);
/// - `b`: see [`BSource`].
///
/// The loops are those of `crate::gemm` (JC, PC, IC; the macro-kernel does JR, IR), so every
/// element of C sees one FMA sequence: the k reduction in KC slabs, in order.
///
/// # Panics
/// If `c` is too short for the `m × n` block, or a pre-packed B is not `k × n` for this kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_packed_by(
    kernel: &Kernel,
    m: usize,
    n: usize,
    k: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    pack_a: impl Fn(usize, usize, usize, usize, &mut [f32]),
    b: BSource<'_>,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm_packed_by: C of {} floats cannot hold {m}×{n} at row stride {ldc}",
        c.len()
    );
    let Kernel { mr, nr, .. } = *kernel;
    if let BSource::Packed(packed) = b {
        assert!(
            packed.k() == k && packed.n() == n && packed.panel_width() == nr,
            "gemm_packed_by: B packed as {}×{} (NR {}), expected {k}×{n} (NR {nr})",
            packed.k(),
            packed.n(),
            packed.panel_width()
        );
    }
    let kc_max = kernel.kc.min(k);
    let a_len = kernel.mc.min(m).next_multiple_of(mr) * kc_max;
    let b_len = match b {
        BSource::Packer(_) => kernel.nc.min(n).next_multiple_of(nr) * kc_max,
        BSource::Packed(_) => 0,
    };
    with_buf(&A_PANELS, a_len, |a_buf| {
        with_buf(&B_PANELS, b_len, |b_buf| {
            for jc in (0..n).step_by(kernel.nc) {
                let nc = kernel.nc.min(n - jc);
                for pc in (0..k).step_by(kernel.kc) {
                    let kc = kernel.kc.min(k - pc);
                    let (b_panels, b_panel_stride): (&[f32], usize) = match b {
                        BSource::Packer(pack_b) => {
                            let panels = &mut b_buf[..nc.div_ceil(nr) * nr * kc];
                            pack_b(pc, kc, jc, nc, panels);
                            (panels, kc * nr)
                        }
                        BSource::Packed(packed) => {
                            let stride = packed.panel_stride();
                            let start = (jc / nr) * stride + pc * nr;
                            // The last panel's slab ends at (q_last·stride + pc·NR + kc·NR).
                            let end = (jc / nr + nc.div_ceil(nr) - 1) * stride + (pc + kc) * nr;
                            (&packed.data()[start..end], stride)
                        }
                    };
                    for ic in (0..m).step_by(kernel.mc) {
                        let mc = kernel.mc.min(m - ic);
                        let a_panels = &mut a_buf[..mc.div_ceil(mr) * mr * kc];
                        pack_a(ic, mc, pc, kc, a_panels);
                        let args = MacroArgs {
                            mc,
                            nc,
                            kc,
                            alpha: 1.0,
                            beta: if pc == 0 { beta } else { 1.0 },
                            a: a_panels.as_ptr(),
                            a_panel_stride: mr * kc,
                            b: b_panels.as_ptr(),
                            b_panel_stride,
                            // SAFETY: (ic, jc) is inside the m × n block, which fits in `c`
                            // (asserted above).
                            c: unsafe { c.as_mut_ptr().add(ic * ldc + jc) },
                            rs_c: ldc,
                            cs_c: 1,
                        };
                        // SAFETY: the A and B slices hold the ⌈mc/MR⌉ and ⌈nc/NR⌉ panels (kc
                        // deep, at their strides) the macro-kernel reads (initialised floats: the
                        // packers are safe code over initialised buffers; a pre-packed B was
                        // checked to be k × n above); the mc × nc block of C at (ic, jc) lies
                        // inside `c` (asserted above), which is borrowed mutably, so no one else
                        // touches it; `kernel` came from `Kernel::for_isa`, which checked the ISA.
                        unsafe { kernel.run_macro(&args) };
                    }
                }
            }
        });
    });
}

// ---------------------------------------------------------------------------------------------
// Packing pieces of cols⁺ straight from x
// ---------------------------------------------------------------------------------------------

/// One contiguous piece of a row of `cols⁺`: columns `start..start + len` are `src` (a run of `x`)
/// or all equal to `fill` (padding zeros, the ones column).
#[derive(Clone, Copy)]
enum Piece<'a> {
    Copy(&'a [f32]),
    Fill(f32, usize),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Copy(s) => s.len(),
            Piece::Fill(_, n) => *n,
        }
    }
}

/// Calls `f(first_column, piece)` for the pieces of row `row` of `cols⁺` that overlap columns
/// `lo..hi` (clipped to them), in column order. Columns `K·C_in` (if `ones`) is 1; further
/// columns are 0.
fn row_pieces<'x>(
    s: &Conv1dShape,
    x: &'x [f32],
    ones: bool,
    row: usize,
    lo: usize,
    hi: usize,
    mut f: impl FnMut(usize, Piece<'x>),
) {
    let (c_in, width) = (s.in_channels, s.col_width());
    let (t, b) = (row / s.batch, row % s.batch);
    let mut col = lo;
    while col < hi {
        let piece = if col < width {
            let (k, c) = (col / c_in, col % c_in);
            let len = (c_in - c).min(hi - col);
            match s.input_step(t, k) {
                Some(step) => {
                    let src = (step * s.batch + b) * c_in + c;
                    Piece::Copy(&x[src..src + len])
                }
                None => Piece::Fill(0.0, len),
            }
        } else if col == width && ones {
            Piece::Fill(1.0, 1)
        } else {
            Piece::Fill(0.0, hi - col)
        };
        let len = piece.len();
        f(col, piece);
        col += len;
    }
}

/// `dst[p·MR + i] = rows[i][p]` for `p < len`: MR rows interleaved column by column (one
/// column of a packed A panel per `p`).
fn interleave<const MR: usize>(rows: &[&[f32]], len: usize, dst: &mut [f32]) {
    let rows: [&[f32]; MR] = std::array::from_fn(|i| &rows[i][..len]);
    for (p, column) in dst[..len * MR].chunks_exact_mut(MR).enumerate() {
        for (d, row) in column.iter_mut().zip(&rows) {
            *d = row[p];
        }
    }
}

/// [`interleave`] for the kernel's `mr` (`rows.len() == mr`).
fn interleave_rows(rows: &[&[f32]], len: usize, dst: &mut [f32]) {
    match rows.len() {
        4 => interleave::<4>(rows, len, dst),
        6 => interleave::<6>(rows, len, dst),
        12 => interleave::<12>(rows, len, dst),
        mr => {
            for (p, column) in dst[..len * mr].chunks_exact_mut(mr).enumerate() {
                for (d, row) in column.iter_mut().zip(rows) {
                    *d = row[p];
                }
            }
        }
    }
}

/// The largest MR of any kernel.
const MAX_MR: usize = 12;

/// One `1.0`: the ones column of `cols⁺` as a source run.
const ONE: [f32; 1] = [1.0];

/// `pack_a` of [`gemm_packed_by`] for A = `cols⁺` rows `row0 + ic ..`: column-by-column MR-row
/// panels, one run of columns at a time (a tap's `C_in` channels, or the ones column), where each
/// of the MR rows reads a run of `x` or of `zeros` (≥ `C_in` zeros).
#[allow(clippy::too_many_arguments)]
fn pack_cols_a(
    s: &Conv1dShape,
    x: &[f32],
    zeros: &[f32],
    mr: usize,
    row0: usize,
    (mc, pc, kc): (usize, usize, usize),
    dst: &mut [f32],
) {
    let (b_n, c_in, width) = (s.batch, s.in_channels, s.col_width());
    for (r, panel) in dst.chunks_exact_mut(mr * kc).enumerate() {
        let mut col = pc;
        while col < pc + kc {
            let end = if col < width {
                (col / c_in + 1) * c_in
            } else {
                col + 1
            }
            .min(pc + kc);
            let len = end - col;
            let mut rows: [&[f32]; MAX_MR] = [&zeros[..len]; MAX_MR];
            for (i, src) in rows.iter_mut().enumerate().take(mr) {
                let row = r * mr + i;
                if row >= mc {
                    continue;
                }
                let (t, b) = ((row0 + row) / b_n, (row0 + row) % b_n);
                if col >= width {
                    *src = &ONE;
                } else if let Some(step) = s.input_step(t, col / c_in) {
                    let at = (step * b_n + b) * c_in + col % c_in;
                    *src = &x[at..at + len];
                }
            }
            interleave_rows(&rows[..mr], len, &mut panel[(col - pc) * mr..]);
            col = end;
        }
    }
}

/// `pack_b` of [`gemm_packed_by`] for B = `cols⁺` rows `row0 + pc ..`, columns `jc ..`: NR-column
/// panels, row by row (runs of `x` copied whole).
fn pack_cols_b(
    s: &Conv1dShape,
    x: &[f32],
    ones: bool,
    nr: usize,
    row0: usize,
    (pc, kc, jc, nc): (usize, usize, usize, usize),
    dst: &mut [f32],
) {
    for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
        let (lo, hi) = (jc + q * nr, jc + (q * nr + nr).min(nc));
        for (p, out) in panel.chunks_exact_mut(nr).enumerate() {
            out[hi - lo..].fill(0.0);
            row_pieces(s, x, ones, row0 + pc + p, lo, hi, |col, piece| {
                let out = &mut out[col - lo..];
                match piece {
                    Piece::Copy(src) => out[..src.len()].copy_from_slice(src),
                    Piece::Fill(v, len) => out[..len].fill(v),
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The three passes
// ---------------------------------------------------------------------------------------------

/// `y = cols⁺ · [Wᵀ; bias]` (without the bias row and ones column if `bias` is `None`).
pub(super) fn forward(
    isa: Isa,
    par: Par,
    s: &Conv1dShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let kernel = Kernel::for_isa(isa);
    let (c_out, width) = (s.out_channels, s.col_width());
    let depth = width + usize::from(bias.is_some());
    // B = [Wᵀ; bias] (depth × C_out), packed by the loop once per task (25,728 floats at the
    // audio shape, against 1024·128·201 multiply-adds per task).
    let w_t = MatRef::row_major(weight, c_out, width).t();
    let pack_b = |pc: usize, kc: usize, jc: usize, nc: usize, dst: &mut [f32]| {
        let nr = kernel.nr;
        let slab_w = kc.min(width.saturating_sub(pc));
        for (q, panel) in dst.chunks_exact_mut(kc * nr).enumerate() {
            let (col0, cols) = (jc + q * nr, nr.min(nc - q * nr));
            if slab_w > 0 {
                (kernel.pack_b)(w_t.submatrix(pc, col0, slab_w, cols), panel, kc * nr);
            }
            if slab_w < kc {
                // The bias row (the last row of B) falls in this slab.
                let row = &mut panel[slab_w * nr..(slab_w + 1) * nr];
                row.fill(0.0);
                if let Some(bias) = bias {
                    row[..cols].copy_from_slice(&bias[col0..col0 + cols]);
                }
            }
        }
    };
    let zeros = vec![0.0f32; s.in_channels];
    let run = |row0: usize, y_rows: &mut [f32]| {
        let rows = y_rows.len() / c_out;
        gemm_packed_by(
            &kernel,
            rows,
            c_out,
            depth,
            0.0,
            y_rows,
            c_out,
            |ic, mc, pc, kc, dst| {
                pack_cols_a(s, x, &zeros, kernel.mr, row0 + ic, (mc, pc, kc), dst);
            },
            BSource::Packer(&pack_b),
        );
    };
    match par {
        Par::Rayon(n) if n != 1 && y.len() > FORWARD_ROWS_PER_TASK * c_out => y
            .par_chunks_mut(FORWARD_ROWS_PER_TASK * c_out)
            .enumerate()
            .for_each(|(i, rows)| run(i * FORWARD_ROWS_PER_TASK, rows)),
        _ => run(0, y),
    }
}

/// `d_weight += (dyᵀ · cols)` and, if given, `d_bias += Σ_rows dy` (the last column of
/// `dyᵀ · cols⁺`).
pub(super) fn d_weight(
    isa: Isa,
    par: Par,
    s: &Conv1dShape,
    x: &[f32],
    d_y: &[f32],
    d_weight: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    let kernel = Kernel::for_isa(isa);
    let (c_out, width) = (s.out_channels, s.col_width());
    let ones = d_bias.is_some();
    let n = width + usize::from(ones);
    let rows = s.steps_out() * s.batch;
    let chunks = (4 * rows.div_ceil(D_WEIGHT_ROWS_PER_FOUR)).min(rows.div_ceil(D_WEIGHT_MIN_CHUNK));
    let chunk_rows = rows.div_ceil(chunks);
    let dy_t = MatRef::row_major(d_y, rows, c_out).t();
    let mut partials = vec![0.0f32; chunks * c_out * n];
    let run = |chunk: usize, partial: &mut [f32]| {
        let row0 = chunk * chunk_rows;
        let k = chunk_rows.min(rows - row0);
        gemm_packed_by(
            &kernel,
            c_out,
            n,
            k,
            0.0,
            partial,
            n,
            |ic, mc, pc, kc, dst| (kernel.pack_a)(dy_t.submatrix(ic, row0 + pc, mc, kc), dst),
            BSource::Packer(&|pc, kc, jc, nc, dst| {
                pack_cols_b(s, x, ones, kernel.nr, row0, (pc, kc, jc, nc), dst);
            }),
        );
    };
    match par {
        Par::Rayon(t) if t != 1 && chunks > 1 => partials
            .par_chunks_mut(c_out * n)
            .enumerate()
            .for_each(|(chunk, partial)| run(chunk, partial)),
        _ => partials
            .chunks_mut(c_out * n)
            .enumerate()
            .for_each(|(chunk, partial)| run(chunk, partial)),
    }
    for partial in partials.chunks_exact(c_out * n) {
        for (dw, row) in d_weight
            .chunks_exact_mut(width)
            .zip(partial.chunks_exact(n))
        {
            for (d, &g) in dw.iter_mut().zip(row) {
                *d += g;
            }
        }
    }
    if let Some(d_bias) = d_bias {
        for partial in partials.chunks_exact(c_out * n) {
            for (d, row) in d_bias.iter_mut().zip(partial.chunks_exact(n)) {
                *d += row[width];
            }
        }
    }
}

/// `d_x = col2im(dy · W)`, block by block: each block of `dy · W` (rows of `d_cols`) is computed
/// into a scratch and scattered into `d_x` at once.
pub(super) fn d_input(
    isa: Isa,
    par: Par,
    s: &Conv1dShape,
    weight: &[f32],
    d_y: &[f32],
    d_x: &mut [f32],
) {
    let (c_out, width) = (s.out_channels, s.col_width());
    let kernel = Kernel::for_isa(isa);
    let packed_w = PackedB::pack(isa, MatRef::row_major(weight, c_out, width));
    let zeros = vec![0.0f32; c_out];
    let run = |first: usize, part: &mut [f32]| {
        d_input_steps(s, &kernel, &packed_w, &zeros, d_y, first, part);
    };
    let row_len = s.batch * s.in_channels;
    match par {
        Par::Rayon(n) if n != 1 && s.steps > D_INPUT_STEPS_PER_TASK => d_x
            .par_chunks_mut(D_INPUT_STEPS_PER_TASK * row_len)
            .enumerate()
            .for_each(|(i, part)| run(i * D_INPUT_STEPS_PER_TASK, part)),
        _ => run(0, d_x),
    }
}

/// [`d_input`] for input steps `first .. first + d_x.len() / (B·C_in)` (`d_x` holds those rows):
/// the output steps that read them are computed (some also by the neighbouring task), from the
/// last to the first, and their taps added in.
/// `zeros` holds at least `C_out` zeros (the rows past a block's end in a packed A panel).
fn d_input_steps(
    s: &Conv1dShape,
    kernel: &Kernel,
    packed_w: &PackedB,
    zeros: &[f32],
    d_y: &[f32],
    first: usize,
    d_x: &mut [f32],
) {
    let (b_n, c_in, c_out, width) = (s.batch, s.in_channels, s.out_channels, s.col_width());
    let end = first + d_x.len() / (b_n * c_in);
    d_x.fill(0.0);
    // Output steps t with t·S + k·D − P in first..end for some tap k.
    let t_lo = (first + s.padding)
        .saturating_sub(s.span() - 1)
        .div_ceil(s.stride);
    let t_hi = ((end - 1 + s.padding) / s.stride + 1).min(s.steps_out());
    if t_lo >= t_hi {
        return;
    }
    let (row_lo, row_hi) = (t_lo * b_n, t_hi * b_n);
    with_buf(&BLOCK, D_INPUT_BLOCK_ROWS * width, |block| {
        let mut hi = row_hi;
        while hi > row_lo {
            let lo = hi.saturating_sub(D_INPUT_BLOCK_ROWS).max(row_lo);
            let rows = hi - lo;
            let d_cols = &mut block[..rows * width];
            // d_cols = dy[lo..hi] · W, the dy rows interleaved straight into A panels.
            let pack_dy = |ic: usize, mc: usize, pc: usize, kc: usize, dst: &mut [f32]| {
                for (r, panel) in dst.chunks_exact_mut(kernel.mr * kc).enumerate() {
                    let rows: [&[f32]; MAX_MR] = std::array::from_fn(|i| {
                        let row = r * kernel.mr + i;
                        if row < mc {
                            let at = (lo + ic + row) * c_out + pc;
                            &d_y[at..at + kc]
                        } else {
                            &zeros[..kc]
                        }
                    });
                    interleave_rows(&rows[..kernel.mr], kc, panel);
                }
            };
            gemm_packed_by(
                kernel,
                rows,
                width,
                c_out,
                0.0,
                d_cols,
                width,
                pack_dy,
                BSource::Packed(packed_w),
            );
            for (r, taps) in d_cols.chunks_exact(width).enumerate().rev() {
                let (t, b) = ((lo + r) / b_n, (lo + r) % b_n);
                for (k, tap) in taps.chunks_exact(c_in).enumerate() {
                    let Some(step) = s.input_step(t, k) else {
                        continue;
                    };
                    if !(first..end).contains(&step) {
                        continue;
                    }
                    let dst = ((step - first) * b_n + b) * c_in;
                    for (d, &g) in d_x[dst..dst + c_in].iter_mut().zip(tap) {
                        *d += g;
                    }
                }
            }
            hi = lo;
        }
    });
}
