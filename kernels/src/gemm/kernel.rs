//! The register micro-kernel, the two innermost loops around it (JR, IR), and each ISA's geometry.
//!
//! Micro-kernel contract (BLIS): `C11 ← α·A1·B1 + β·C11`, where `A1` is one packed `MR × kc` panel
//! of A, `B1` one packed `kc × NR` panel of B, and `C11` the `m_eff × n_eff` (≤ `MR × NR`) corner
//! of C it covers. If `β = 0`, C is never read. The `MR × NR` accumulator lives in registers for
//! the whole `kc` loop: `MR` rows of `NV` vectors each (`NR = NV·LANES`).
//!
//! The body is written once, generic over [`Simd`], and instantiated per ISA by one-line
//! `#[target_feature]` shims, so the AVX-512 kernel runs the same logic that the AVX2 tests check.

use super::MatRef;
use super::pack;
use crate::Isa;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use crate::simd::{Portable, Simd};

/// Largest `MR·NR` of any kernel (bounds the stack scratch tile of strided stores).
const MAX_TILE: usize = 16 * 32;

/// Arguments of one macro-kernel call: the JR and IR loops over one packed `mc × kc` block of A
/// and one packed `kc × nc` block of B, updating the `mc × nc` block of C at `c`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MacroArgs {
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
    pub alpha: f32,
    pub beta: f32,
    /// Packed A: `ceil(mc/MR)` panels, panel `r` at `a + r·a_panel_stride`, element `(i, p)` of a
    /// panel at `p·MR + i`.
    pub a: *const f32,
    /// Floats between consecutive A panels (`MR·kc` for a block packed per KC slab; `MR·k` for a
    /// whole-depth packing sliced at `pc·MR`).
    pub a_panel_stride: usize,
    /// Packed B: `ceil(nc/NR)` panels, panel `q` at `b + q·b_panel_stride`, element `(p, j)` at `p·NR + j`.
    pub b: *const f32,
    pub b_panel_stride: usize,
    /// C block, element `(i, j)` at `c + i·rs_c + j·cs_c`.
    pub c: *mut f32,
    pub rs_c: usize,
    pub cs_c: usize,
}

/// One ISA's GEMM geometry (register tile) and cache blocking, and its compiled macro-kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel {
    /// Rows of the register tile (LOOP 1, IR, steps by MR).
    pub mr: usize,
    /// Columns of the register tile (LOOP 2, JR, steps by NR); the panel width of packed B.
    pub nr: usize,
    /// LOOP 4 (PC) splits k into KC parts: a `kc × NR` B micro-panel must stay in L1d while the IR
    /// loop sweeps every A micro-panel past it.
    pub kc: usize,
    /// LOOP 3 (IC) splits m into MC parts: the packed `MC × KC` block of A stays in L2.
    pub mc: usize,
    /// LOOP 5 (JC) splits n into NC parts: the packed `KC × NC` block of B stays in L3.
    pub nc: usize,
    /// Packs an `mc × kc` block of A into MR-row panels ([`pack::pack_a`]).
    pub pack_a: fn(MatRef, &mut [f32]),
    /// Packs a `kc × nc` block of B into NR-column panels of a given stride ([`pack::pack_b`], or
    /// `pack::pack_b_x86` with AVX register transposes of column-major sources).
    pub pack_b: fn(MatRef, &mut [f32], usize),
    macro_kernel: unsafe fn(&MacroArgs),
}

impl Kernel {
    /// The kernel of `isa`.
    ///
    /// # Panics
    /// If this CPU cannot run `isa` (running it would be undefined behaviour).
    #[track_caller]
    pub fn for_isa(isa: Isa) -> Kernel {
        if !isa.is_available() {
            isa_unavailable(isa);
        }
        match isa {
            // Portable: 4×16 of plain arrays; a correctness fallback with textbook blocking.
            Isa::Scalar => Kernel {
                mr: 4,
                nr: 16,
                kc: 256,
                mc: 128,
                nc: 4096,
                pack_a: pack::pack_a::<4>,
                pack_b: pack::pack_b::<16>,
                macro_kernel: macro_kernel_portable,
            },
            // AVX2+FMA on this host (Zen 3: 2 FMA pipes of 8 lanes, 16 ymm, L1d 32 KiB, L2 512 KiB,
            // L3 32 MiB shared). 6×16 uses 12 accumulators + 2 B vectors + 1 broadcast = 15 ymm;
            // measured against 5×16, 8×8, 4×24 and 3×32, it was the fastest (README.md).
            // KC = 512: B micro-panel 512·16·4 B = 32 KiB. It does not stay in L1d with the A
            // panels streaming past, but L2 feeds the 15 B/cycle the kernel needs; the longer k
            // loop halves the C updates and epilogues. Measured best of KC ∈ {192 … 512}.
            // MC = 96: A block 96·512·4 B = 192 KiB, in L2 (512 KiB) with room for B traffic.
            // NC = 2048: B block 512·2048·4 B = 4 MiB of the 32 MiB L3.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                mr: 6,
                nr: 16,
                kc: 512,
                mc: 96,
                nc: 2048,
                pack_a: pack::pack_a::<6>,
                pack_b: pack::pack_b_x86::<16>,
                macro_kernel: macro_kernel_avx2,
            },
            // AVX-512 (not present on this host; blocked for a Xeon-class core, L1d 48 KiB, L2
            // 2 MiB): 12×32 uses 24 accumulators + 1 broadcast of the 32 zmm, the B vectors
            // being memory operands of the FMAs (disassembly: no spills in the k loop). KC = 192: B micro-panel 192·32·4 B = 24 KiB, half of L1d.
            // MC = 480: A block 480·192·4 B = 360 KiB. NC = 4096: B block 3 MiB.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                mr: 12,
                nr: 32,
                kc: 192,
                mc: 480,
                nc: 4096,
                pack_a: pack::pack_a::<12>,
                pack_b: pack::pack_b_x86::<32>,
                macro_kernel: macro_kernel_avx512,
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable path exists off x86-64"),
        }
    }

    /// Runs LOOP 2 (JR) and LOOP 1 (IR) over one packed block.
    ///
    /// # Safety
    /// `args.a` holds `ceil(mc/MR)` panels of `kc·MR` packed floats at stride `a_panel_stride`,
    /// `args.b` holds `ceil(nc/NR)` panels of `kc·NR` floats at stride `b_panel_stride`, and every element `(i, j)` of the `mc × nc` C
    /// block is writable (and readable if `β ≠ 0`) at `c + i·rs_c + j·cs_c`, with no other thread
    /// touching it. The kernel's ISA is available (guaranteed by [`Kernel::for_isa`]).
    pub unsafe fn run_macro(&self, args: &MacroArgs) {
        // SAFETY: forwarded from the caller; the ISA was checked when `self` was built.
        unsafe { (self.macro_kernel)(args) }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn isa_unavailable(isa: Isa) -> ! {
    panic!(
        "GEMM asked for the {isa} path, which this CPU cannot run (available: {:?})",
        Isa::available()
    )
}

/// The micro-kernel: `C[..m_eff, ..n_eff] ← α·A1·B1 + β·C` for one `MR × NR` register tile.
///
/// `A_STEP` is the row count the A panel was packed with (column `p` of A1 at `a + p·A_STEP`);
/// it equals `MR` except for the short tail kernel, which runs the first `MR < A_STEP` rows of a
/// full-height panel.
///
/// # Safety
/// `a` holds `kc·A_STEP` floats (`MR ≤ A_STEP`) and `b` holds `kc·NR` floats (`NR = NV·S::LANES`);
/// the `m_eff × n_eff` corner of C at `c` (strides `rs_c`, `cs_c`) is writable, and readable if
/// `beta ≠ 0`; `m_eff ≤ MR`, `n_eff ≤ NR`; the CPU runs `S`.
#[inline(always)]
pub(crate) unsafe fn micro_kernel<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const A_STEP: usize,
>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m_eff: usize,
    n_eff: usize,
) {
    let nr = NV * S::LANES;
    // SAFETY: the caller guarantees the CPU runs `S` and the panel extents used below.
    unsafe {
        // Start fetching the C tile now, so its cache misses overlap the k loop instead of
        // stalling the stores at the end (C rows are often 4 KiB apart and cold).
        if cs_c == 1 {
            for i in 0..MR {
                if i < m_eff {
                    prefetch_write(c.add(i * rs_c));
                    prefetch_write(c.add(i * rs_c + n_eff - 1));
                }
            }
        }
        let mut acc = [[S::zero(); NV]; MR];
        // Unrolled by 4 (fewer loop-counter instructions between the FMAs).
        let (mut a, mut b) = (a, b);
        for _ in 0..kc / 4 {
            for u in 0..4 {
                rank1_update::<S, MR, NV>(&mut acc, a.add(u * A_STEP), b.add(u * nr));
            }
            a = a.add(4 * A_STEP);
            b = b.add(4 * nr);
        }
        for _ in 0..kc % 4 {
            rank1_update::<S, MR, NV>(&mut acc, a, b);
            a = a.add(A_STEP);
            b = b.add(nr);
        }
        store_tile::<S, MR, NV>(&acc, alpha, beta, c, rs_c, cs_c, m_eff, n_eff);
    }
}

/// One step of the k loop: the tile += column of A1 (at `a`, MR floats) × row of B1 (at `b`, NR
/// floats). A function, not a closure, so it inlines into the `#[target_feature]` shim.
///
/// # Safety
/// `a` has MR and `b` has `NV·LANES` readable floats; the CPU runs `S`.
#[inline(always)]
unsafe fn rank1_update<S: Simd, const MR: usize, const NV: usize>(
    acc: &mut [[S::V; NV]; MR],
    a: *const f32,
    b: *const f32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let mut b_row = [S::zero(); NV];
        for v in 0..NV {
            b_row[v] = S::load(b.add(v * S::LANES));
        }
        for i in 0..MR {
            let a_i = S::splat(*a.add(i));
            for v in 0..NV {
                acc[i][v] = S::fma(a_i, b_row[v], acc[i][v]);
            }
        }
    }
}

/// Hints the cache line holding `p` into L1 (a hint: it never faults, whatever `p` is).
#[inline(always)]
fn prefetch_write(p: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is SSE (x86-64 baseline) and never faults, even on an invalid address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            p.cast::<i8>().cast_const(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Writes `α·acc + β·C` (one rounding for the `β·C` add: `fma(β, C, α·acc)`) to the corner of C,
/// never reading C when `β = 0`.
///
/// # Safety
/// As [`micro_kernel`].
#[inline(always)]
pub(crate) unsafe fn store_tile<S: Simd, const MR: usize, const NV: usize>(
    acc: &[[S::V; NV]; MR],
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rs_c: usize,
    cs_c: usize,
    m_eff: usize,
    n_eff: usize,
) {
    // SAFETY: the caller guarantees the C corner and the ISA.
    unsafe {
        if cs_c == 1 {
            let alpha_v = S::splat(alpha);
            let beta_v = S::splat(beta);
            for i in 0..MR {
                if i >= m_eff {
                    break;
                }
                let row = c.add(i * rs_c);
                for v in 0..NV {
                    let col0 = v * S::LANES;
                    if col0 >= n_eff {
                        break;
                    }
                    let cols = n_eff - col0;
                    let p = row.add(col0);
                    let ab = S::mul(alpha_v, acc[i][v]);
                    let full = cols >= S::LANES;
                    let value = if beta == 0.0 {
                        ab
                    } else if full {
                        S::fma(beta_v, S::load(p), ab)
                    } else {
                        S::fma(beta_v, S::load_partial(p, cols), ab)
                    };
                    if full {
                        S::store(p, value);
                    } else {
                        S::store_partial(p, value, cols);
                    }
                }
            }
        } else {
            // Strided C (e.g. a transposed output): spill the tile, then scalar updates that round
            // exactly like the vector path above.
            let nr = NV * S::LANES;
            let mut tile = [0.0f32; MAX_TILE];
            for i in 0..MR {
                for v in 0..NV {
                    S::store(tile.as_mut_ptr().add(i * nr + v * S::LANES), acc[i][v]);
                }
            }
            for i in 0..m_eff {
                for j in 0..n_eff {
                    let p = c.add(i * rs_c + j * cs_c);
                    let ab = alpha * tile[i * nr + j];
                    *p = if beta == 0.0 {
                        ab
                    } else {
                        beta.mul_add(*p, ab)
                    };
                }
            }
        }
    }
}

/// Rows of the tail micro-kernel used for a last A panel with at most this many real rows.
const TAIL_MR: usize = 4;

/// B panels the single-row kernel streams at once (`ROW_PANELS·NV` independent accumulators, enough
/// to cover the FMA latency, and as many concurrent streams for the prefetchers).
const ROW_PANELS: usize = 4;

/// `c[..n_eff] ← α·a·B + β·c` for one row `a` (a packed A panel whose row 0 is used: element `p` at
/// `a + p·MR`) and `ROW_PANELS` consecutive B panels. Each element sees the same FMA sequence as in
/// [`micro_kernel`], so results do not depend on which kernel computed them.
///
/// # Safety
/// `a` holds `kc·MR` floats; `b` holds `ROW_PANELS` panels of `kc·NR` floats at stride
/// `b_panel_stride`; `c[j·cs_c]` for `j < n_eff ≤ ROW_PANELS·NR` is writable (readable if
/// `beta ≠ 0`); the CPU runs `S`.
#[inline(always)]
unsafe fn row_kernel<S: Simd, const MR: usize, const NV: usize>(
    kc: usize,
    alpha: f32,
    a: *const f32,
    b: *const f32,
    b_panel_stride: usize,
    beta: f32,
    c: *mut f32,
    cs_c: usize,
    n_eff: usize,
) {
    let nr = NV * S::LANES;
    // SAFETY: forwarded from the caller.
    unsafe {
        let mut acc = [[S::zero(); NV]; ROW_PANELS];
        for p in 0..kc {
            let a_p = S::splat(*a.add(p * MR));
            for (q, acc_q) in acc.iter_mut().enumerate() {
                let b_row = b.add(q * b_panel_stride + p * nr);
                for v in 0..NV {
                    acc_q[v] = S::fma(a_p, S::load(b_row.add(v * S::LANES)), acc_q[v]);
                }
            }
        }
        for (q, acc_q) in acc.iter().enumerate() {
            let col0 = q * nr;
            if col0 < n_eff {
                let tile = [*acc_q];
                store_tile::<S, 1, NV>(
                    &tile,
                    alpha,
                    beta,
                    c.add(col0 * cs_c),
                    0,
                    cs_c,
                    1,
                    (n_eff - col0).min(nr),
                );
            }
        }
    }
}

/// LOOP 2 (JR) and LOOP 1 (IR): every B micro-panel is loaded into L1 once and reused by all the
/// A micro-panels of the block (which stream from L2).
///
/// # Safety
/// As [`Kernel::run_macro`], with `S`, `MR`, `NV` those of the kernel that packed the panels.
#[inline(always)]
unsafe fn macro_kernel<S: Simd, const MR: usize, const NV: usize>(args: &MacroArgs) {
    let nr = NV * S::LANES;
    debug_assert!(MR * nr <= MAX_TILE);
    let MacroArgs {
        mc,
        nc,
        kc,
        alpha,
        beta,
        a,
        b,
        b_panel_stride,
        a_panel_stride,
        c,
        rs_c,
        cs_c,
    } = *args;
    // SAFETY: the offsets below stay inside the packed blocks and the C block (caller).
    unsafe {
        let panels = nc.div_ceil(nr);
        // A single row (batch-1 streaming) is bound by streaming B, not by FMAs: the MR-row
        // micro-kernel would waste MR−1 rows, so run ROW_PANELS panels side by side instead.
        let row_groups = if mc == 1 { panels / ROW_PANELS } else { 0 };
        for group in 0..row_groups {
            let q0 = group * ROW_PANELS;
            row_kernel::<S, MR, NV>(
                kc,
                alpha,
                a,
                b.add(q0 * b_panel_stride),
                b_panel_stride,
                beta,
                c.add(q0 * nr * cs_c),
                cs_c,
                (nc - q0 * nr).min(ROW_PANELS * nr),
            );
        }
        // LOOP 2 (JR): NR-wide micro-panels of the B block.
        for (q, jr) in (0..nc)
            .step_by(nr)
            .enumerate()
            .skip(row_groups * ROW_PANELS)
        {
            let n_eff = nr.min(nc - jr);
            let b_panel = b.add(q * b_panel_stride);
            // LOOP 1 (IR): MR-tall micro-panels of the A block.
            for ir in (0..mc).step_by(MR) {
                let m_eff = MR.min(mc - ir);
                let (a_panel, c_tile) = (
                    a.add((ir / MR) * a_panel_stride),
                    c.add(ir * rs_c + jr * cs_c),
                );
                if m_eff <= TAIL_MR && TAIL_MR < MR {
                    // A short last panel (e.g. rows 60..64 of a batch of 64 with MR = 6): run
                    // only TAIL_MR rows instead of MR, most of them zero padding.
                    micro_kernel::<S, TAIL_MR, NV, MR>(
                        kc, alpha, a_panel, b_panel, beta, c_tile, rs_c, cs_c, m_eff, n_eff,
                    );
                } else {
                    micro_kernel::<S, MR, NV, MR>(
                        kc, alpha, a_panel, b_panel, beta, c_tile, rs_c, cs_c, m_eff, n_eff,
                    );
                }
            }
        }
    }
}

/// # Safety
/// As [`Kernel::run_macro`].
unsafe fn macro_kernel_portable(args: &MacroArgs) {
    // SAFETY: forwarded; the portable kernel needs no CPU feature.
    unsafe { macro_kernel::<Portable, 4, 2>(args) }
}

/// # Safety
/// As [`Kernel::run_macro`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn macro_kernel_avx2(args: &MacroArgs) {
    // SAFETY: forwarded; AVX2+FMA checked by `Kernel::for_isa`.
    unsafe { macro_kernel::<Avx2, 6, 2>(args) }
}

/// # Safety
/// As [`Kernel::run_macro`], on a CPU with AVX-512F/BW/VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn macro_kernel_avx512(args: &MacroArgs) {
    // SAFETY: forwarded; AVX-512 checked by `Kernel::for_isa`.
    unsafe { macro_kernel::<Avx512, 12, 2>(args) }
}
