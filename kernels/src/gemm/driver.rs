//! The five BLIS loops around the macro-kernel, packing, and the split of work across threads.
//!
//! ```text
//! LOOP 5 (JC)  for jc in 0..n step NC      B block (KC × NC, packed)   → L3
//! LOOP 4 (PC)  for pc in 0..k step KC      first part applies β, the rest accumulate (β = 1)
//! LOOP 3 (IC)  for ic in 0..m step MC      A block (MC × KC, packed)   → L2
//! LOOP 2 (JR)  for jr in 0..NC step NR     B micro-panel (KC × NR)     → L1   } kernel.rs
//! LOOP 1 (IR)  for ir in 0..MC step MR     micro-kernel, MR × NR tile  → registers }
//! ```
//!
//! Threads split LOOP 3 and LOOP 2 together: units of (one IC block × up to 16 JR panels, fewer
//! for a block with few IC blocks); the k reduction (LOOP 4) is never split, and the units depend
//! on the shape, not on the thread count. Every
//! element of C is computed by the same sequence of FMAs for any [`Par`], so results are
//! bit-identical across thread counts.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::kernel::{Kernel, MacroArgs};
use super::pack::AlignedBuf;
use super::{MatMut, MatRef, PackedB};
use crate::Par;

/// B micro-panels per work unit when threads split LOOP 2 (JR): at most 16·NR columns (256 on
/// AVX2), fewer when the block would otherwise give under [`MIN_UNITS`] units.
const JR_PANELS_PER_CHUNK: usize = 16;

/// Work units a threaded (JC, PC) step aims for at least: a product with one IC block and a
/// narrow B (the decoder's `dx = dy·W`: m = 32, n = 150, k = 8,639) would otherwise be one unit,
/// run by one thread while the others wait.
const MIN_UNITS: usize = 16;

/// B micro-panels per work unit for a block of `ic_blocks` IC blocks and `panels` B panels.
/// Depends on the shape only, never on the thread count; and no element of C depends on the
/// split anyway (each tile is computed by the same FMAs whichever unit runs it).
fn jr_panels_per_chunk(ic_blocks: usize, panels: usize) -> usize {
    if ic_blocks >= MIN_UNITS {
        return JR_PANELS_PER_CHUNK;
    }
    panels
        .div_ceil(MIN_UNITS.div_ceil(ic_blocks))
        .clamp(1, JR_PANELS_PER_CHUNK)
}

/// The B operand: a strided view packed block by block, or panels packed once ahead of time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BOperand<'a> {
    View(MatRef<'a>),
    Packed(&'a PackedB),
}

/// A raw pointer that may cross threads; each task touches a disjoint part of the pointee.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendPtr<T>(pub *mut T);

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper, not the raw field).
    pub fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: used only to hand disjoint blocks of one buffer to tasks of a scope that outlives them.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied, never used to create overlapping writes.
unsafe impl<T> Sync for SendPtr<T> {}

/// Runs `work(0..chunks)`, on up to `par.threads()` rayon tasks that pull chunk indices in turn.
/// The chunks are fixed by the caller, so the result never depends on the thread count.
pub(crate) fn run_chunks(par: Par, chunks: usize, work: impl Fn(usize) + Sync) {
    let threads = par.threads().min(chunks);
    if threads <= 1 {
        (0..chunks).for_each(work);
        return;
    }
    let next = AtomicUsize::new(0);
    rayon::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| {
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        break;
                    }
                    work(chunk);
                }
            });
        }
    });
}

thread_local! {
    /// This thread's packed-A block, reused across calls (no allocation per time step).
    static A_SCRATCH: RefCell<AlignedBuf> = RefCell::default();
    /// The packed-B block of a GEMM started on this thread.
    static B_SCRATCH: RefCell<AlignedBuf> = RefCell::default();
}

/// Runs `f` with a scratch buffer of at least `len` floats: this thread's cached one, or a fresh
/// one if the cache is already in use further up the stack (a GEMM nested in a rayon task).
pub(crate) fn with_scratch<R>(
    cache: &'static std::thread::LocalKey<RefCell<AlignedBuf>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    cache.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.ensure_len(len);
            f(buf.as_mut_slice())
        }
        Err(_) => f(AlignedBuf::with_len(len).as_mut_slice()),
    })
}

/// `C ← β·C` (zero-filling, not reading, when `β = 0`): the whole GEMM when `α = 0` or `k = 0`.
fn scale_c(beta: f32, c: &mut MatMut) {
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            let value = if beta == 0.0 { 0.0 } else { beta * c.get(i, j) };
            c.set(i, j, value);
        }
    }
}

/// `C ← α·A·B + β·C` over shape-checked views with `kernel` (whose ISA this CPU runs). When `b` is
/// packed, it was packed for `kernel.nr`.
pub(crate) fn gemm(
    kernel: &Kernel,
    par: Par,
    alpha: f32,
    a: MatRef,
    b: BOperand,
    beta: f32,
    mut c: MatMut,
) {
    let (m, n) = (c.rows(), c.cols());
    let k = a.cols();
    if m == 0 || n == 0 {
        return;
    }
    if alpha == 0.0 || k == 0 {
        scale_c(beta, &mut c);
        return;
    }
    let Kernel { mr, nr, .. } = *kernel;
    let (rs_c, cs_c) = (c.row_stride(), c.col_stride());
    let c_ptr = SendPtr(c.as_mut_ptr());
    let kc_max = kernel.kc.min(k);
    let nc_max = kernel.nc.min(n.next_multiple_of(nr));
    let b_block_len = match b {
        BOperand::View(_) => kc_max * nc_max,
        BOperand::Packed(_) => 0,
    };
    with_scratch(&B_SCRATCH, b_block_len, |b_scratch| {
        // LOOP 5 (JC): NC-wide column blocks of B and C.
        for jc in (0..n).step_by(kernel.nc) {
            let nc = kernel.nc.min(n - jc);
            // LOOP 4 (PC): KC-deep parts of the k reduction, in order; β applies to the first.
            for pc in (0..k).step_by(kernel.kc) {
                let kc = kernel.kc.min(k - pc);
                let beta_part = if pc == 0 { beta } else { 1.0 };
                let threaded = par.threads() > 1;
                // B block of this (JC, PC) step: packed now (one thread), packed together with
                // the A blocks below (threads), or a slice of the pre-packed panels.
                let mut b_to_pack = None;
                let (b_block, b_panel_stride): (*const f32, usize) = match b {
                    BOperand::View(b) => {
                        let b_view = b.submatrix(pc, jc, kc, nc);
                        let b_scratch = &mut b_scratch[..nc.div_ceil(nr) * kc * nr];
                        if threaded {
                            b_to_pack = Some(b_view);
                        } else {
                            (kernel.pack_b)(b_view, b_scratch, kc * nr);
                        }
                        (b_scratch.as_mut_ptr().cast_const(), kc * nr)
                    }
                    BOperand::Packed(packed) => {
                        let start = (jc / nr) * packed.panel_stride() + pc * nr;
                        (packed.data()[start..].as_ptr(), packed.panel_stride())
                    }
                };
                let b_block = SendPtr(b_block.cast_mut());
                let block_args = |mc: usize, a_block: *const f32, ic: usize| MacroArgs {
                    mc,
                    nc,
                    kc,
                    alpha,
                    beta: beta_part,
                    a: a_block,
                    b: b_block.get(),
                    b_panel_stride,
                    a_panel_stride: mr * kc,
                    // SAFETY: (ic, jc) is inside C (ic < m, jc < n).
                    c: unsafe { c_ptr.get().add(ic * rs_c + jc * cs_c) },
                    rs_c,
                    cs_c,
                };
                let ic_blocks = m.div_ceil(kernel.mc);
                if !threaded {
                    // LOOP 3 (IC), in order: each A block is packed just before its use, so it is
                    // still in L2 while LOOP 2 sweeps the B block past it.
                    with_scratch(
                        &A_SCRATCH,
                        kernel.mc.min(m).next_multiple_of(mr) * kc,
                        |a_packed| {
                            for block in 0..ic_blocks {
                                let ic = block * kernel.mc;
                                let mc = kernel.mc.min(m - ic);
                                (kernel.pack_a)(a.submatrix(ic, pc, mc, kc), a_packed);
                                let args = block_args(mc, a_packed.as_ptr(), ic);
                                // SAFETY: A and B blocks packed for this kernel above; the C block is
                                // inside C.
                                unsafe { kernel.run_macro(&args) };
                            }
                        },
                    );
                } else {
                    // Threads: pack the B block (chunks of panels) and every A block of this KC
                    // slab in one parallel phase, then share out fixed (IC block × JR chunk)
                    // units, IC-major, so tasks running at the same time mostly share one A block
                    // and the units balance for any thread count.
                    let a_block_len = kernel.mc * kc;
                    let chunk_panels = jr_panels_per_chunk(ic_blocks, nc.div_ceil(nr));
                    let chunk_cols = chunk_panels * nr;
                    let b_chunks = b_to_pack.map_or(0, |_| nc.div_ceil(chunk_cols));
                    with_scratch(&A_SCRATCH, ic_blocks * a_block_len, |a_packed| {
                        let a_packed = SendPtr(a_packed.as_mut_ptr());
                        run_chunks(par, b_chunks + ic_blocks, |item| {
                            if let Some(b_view) = b_to_pack.filter(|_| item < b_chunks) {
                                // SAFETY: `b_block` is the B scratch (packing target) here, and
                                // chunk `item` covers its own panels.
                                unsafe {
                                    pack_b_chunk(kernel, b_view, item, chunk_panels, b_block.get())
                                };
                                return;
                            }
                            let block = item - b_chunks;
                            let ic = block * kernel.mc;
                            let mc = kernel.mc.min(m - ic);
                            // SAFETY: block `block` owns floats [block·a_block_len, +a_block_len)
                            // of the scratch (MC is a multiple of MR), disjoint from other blocks.
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(
                                    a_packed.get().add(block * a_block_len),
                                    a_block_len,
                                )
                            };
                            (kernel.pack_a)(a.submatrix(ic, pc, mc, kc), dst);
                        });
                        let jr_chunks = nc.div_ceil(chunk_cols);
                        run_chunks(par, ic_blocks * jr_chunks, |unit| {
                            let (block, chunk) = (unit / jr_chunks, unit % jr_chunks);
                            let (ic, jr) = (block * kernel.mc, chunk * chunk_cols);
                            // SAFETY: the offset is inside the packed A scratch (block < ic_blocks).
                            let a_block = unsafe { a_packed.get().add(block * a_block_len) };
                            let mut args = block_args(kernel.mc.min(m - ic), a_block, ic);
                            args.nc = chunk_cols.min(nc - jr);
                            // SAFETY: jr < nc, so these offsets stay inside the B and C blocks.
                            unsafe {
                                args.b = args.b.add((jr / nr) * b_panel_stride);
                                args.c = args.c.add(jr * cs_c);
                            }
                            // SAFETY: packed blocks as above; the C block (rows ic.., columns
                            // jc+jr..) of this unit is disjoint from every other unit's.
                            unsafe { kernel.run_macro(&args) };
                        });
                    });
                }
            }
        }
    });
}

/// Packs chunk `chunk` (`chunk_panels` panels) of the `kc × nc` B block `b` into its place in the
/// block's panel buffer at `dst` (panels of stride `kc·NR`).
///
/// # Safety
/// `dst` holds `ceil(nc/NR)·kc·NR` writable floats, and no other thread writes this chunk's panels
/// (`chunk < ceil(nc / (chunk_panels·NR))`) meanwhile.
unsafe fn pack_b_chunk(
    kernel: &Kernel,
    b: MatRef,
    chunk: usize,
    chunk_panels: usize,
    dst: *mut f32,
) {
    let (kc, nc) = (b.rows(), b.cols());
    let nr = kernel.nr;
    let panel_len = kc * nr;
    let chunk_cols = chunk_panels * nr;
    let col0 = chunk * chunk_cols;
    let cols = chunk_cols.min(nc - col0);
    let start = (col0 / nr) * panel_len;
    // SAFETY: [start, start + len) lies inside `dst` (caller) and is this chunk's alone.
    let part =
        unsafe { std::slice::from_raw_parts_mut(dst.add(start), cols.div_ceil(nr) * panel_len) };
    (kernel.pack_b)(b.submatrix(0, col0, kc, cols), part, panel_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder's `dx = dy·W` (one IC block, 10 panels) is split into one-panel units, not
    /// run as one; blocks with many IC blocks keep full chunks.
    #[test]
    fn narrow_blocks_are_split_into_several_units() {
        assert_eq!(jr_panels_per_chunk(1, 10), 1);
        assert_eq!(jr_panels_per_chunk(1, 128), 8);
        assert_eq!(jr_panels_per_chunk(4, 128), 16);
        assert_eq!(jr_panels_per_chunk(3, 40), 7);
        assert_eq!(jr_panels_per_chunk(90, 10), JR_PANELS_PER_CHUNK);
    }
}
