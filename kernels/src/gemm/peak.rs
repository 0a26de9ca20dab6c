//! A register-only FMA loop: the machine's f32 FMA peak, the roof every GEMM figure is read against.
//!
//! `ACCUMULATORS` independent chains `acc ← acc·x + y` hide the FMA latency (4 cycles on Zen 3 and
//! on Skylake-class cores, at 2 FMAs per cycle, so at least 8 chains are needed); nothing touches
//! memory inside the loop.

use crate::Isa;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use crate::simd::{Portable, Simd};

/// Independent accumulator chains in the loop.
pub const ACCUMULATORS: usize = 12;

/// Floating-point operations one iteration of [`fma_loop`] performs on `isa`
/// (`ACCUMULATORS` FMAs of `LANES` lanes, 2 flops each).
pub fn flops_per_iteration(isa: Isa) -> usize {
    2 * ACCUMULATORS * lanes(isa)
}

fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => Portable::LANES,
        Isa::Avx2 => 8,
        Isa::Avx512 => 16,
    }
}

/// Runs `iterations` rounds of `ACCUMULATORS` independent vector FMAs on `isa` and returns a value
/// depending on all of them (so the loop cannot be optimised away).
///
/// # Panics
/// If this CPU cannot run `isa`.
pub fn fma_loop(isa: Isa, iterations: u64) -> f32 {
    assert!(
        isa.is_available(),
        "the {isa} path is not available on this CPU"
    );
    match isa {
        Isa::Scalar => fma_loop_portable(iterations),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2+FMA checked above.
        Isa::Avx2 => unsafe { fma_loop_avx2(iterations) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512 checked above.
        Isa::Avx512 => unsafe { fma_loop_avx512(iterations) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// # Safety
/// The CPU runs `S`.
#[inline(always)]
unsafe fn fma_chains<S: Simd>(iterations: u64) -> f32 {
    // SAFETY: the caller guarantees the ISA; register-only operations.
    unsafe {
        // acc → acc·x + y converges to y / (1 − x) = 1: no overflow, no subnormals.
        // (`black_box` keeps the constants opaque, so the chains cannot be folded.)
        let x = S::splat(std::hint::black_box(0.999));
        let y = S::splat(std::hint::black_box(0.001));
        let mut acc = [S::zero(); ACCUMULATORS];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = S::splat(i as f32 * 0.01);
        }
        for _ in 0..iterations {
            for a in acc.iter_mut() {
                *a = S::fma(*a, x, y);
            }
        }
        let mut sum = S::zero();
        for a in acc {
            sum = S::add(sum, a);
        }
        S::reduce_add(sum)
    }
}

fn fma_loop_portable(iterations: u64) -> f32 {
    // SAFETY: the portable implementation needs no CPU feature.
    unsafe { fma_chains::<Portable>(iterations) }
}

/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iterations: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { fma_chains::<Avx2>(iterations) }
}

/// # Safety
/// The CPU has AVX-512F/BW/VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn fma_loop_avx512(iterations: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { fma_chains::<Avx512>(iterations) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fma_loop_converges_on_every_path() {
        for isa in Isa::ALL {
            if !isa.is_available() {
                eprintln!("skipping fma_loop on {isa}: not available");
                continue;
            }
            let lanes = lanes(isa) as f32;
            let total = fma_loop(isa, 20_000);
            // Every lane of every chain tends to 1.
            let expected = ACCUMULATORS as f32 * lanes;
            assert!((total - expected).abs() < 1e-2 * expected, "{isa}: {total}");
        }
    }
}
