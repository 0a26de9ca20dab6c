//! Fused, numerically stable softmax + cross-entropy over rows of logits, and (log-)softmax.
//!
//! # Contract
//!
//! `logits` is row-major `(rows, V)`; row `r` is `x = logits[r·V .. (r+1)·V]` with target
//! `t = targets[r]`. With `m = max_j x_j` and `s = Σ_j e^{x_j − m}`:
//!
//! ```text
//! loss[r]        = log Σ_j e^{x_j} − x_t            = (m − x_t) + ln s
//! d_logits[r, j] = scale · (softmax(x)_j − [j = t]) = scale · (e^{x_j − m}/s − [j = t])
//! log_softmax_j  = x_j − log Σ e^{x}                = (x_j − m) − ln s
//! softmax_j      = e^{x_j − m} / s
//! ```
//!
//! `scale` is the caller's factor, typically `1/rows` for a mean loss. `d_logits` is written, not
//! accumulated. Each row takes three passes over V floats (a row of V = 100k is 400 KB and stays in
//! L2 between them): **max**, **exp-sum** (which also stores `e^{x_j − m}` into the output when one
//! is wanted) and **normalise** (scale the stored exponentials, or shift for log-softmax). Every
//! exponent `x_j − m` is ≤ 0, so nothing overflows however large the logits are.
//!
//! # Accuracy
//!
//! With `u = 2^−24` (f32 unit roundoff), `E` =
//! [`EXP_MAX_REL_ERROR`](crate::activations::EXP_MAX_REL_ERROR) and `p_j` the exact softmax:
//!
//! - the exp-sum adds 256-float blocks in 4 vector accumulators, reduces each block's lanes to one
//!   f32 and accumulates the blocks in f64, so each exponential passes through at most 14 f32
//!   additions (with 8 lanes: ≤ 9 within an accumulator of a ragged last block, 2 combining the
//!   four, 3 across lanes; with 16 lanes: 5 + 2 + 4): `s` has relative error
//!   `γ ≤ `[`SUM_REL_ERROR`]` = 16u`, independent of V (a plain running f32 sum would have `V·u`);
//! - rounding `x_j − m` to f32 perturbs each exponential by at most `u·|x_j − m|` (relative), and
//!   `Σ_j p_j |x_j − m| ≤ ln V`, so `ln s` is off by at most `u·ln V + E + γ`;
//! - hence `|loss − exact| ≤ u·ln V + E + γ + u·|loss|`,
//!   `|d_j − exact| ≤ |scale|·p_j·(u·|x_j − m| + E + γ + 2u) + u·|d_t|·[j = t] + (|scale| + 1)·2^−149`
//!   (the last term covers exponentials in the subnormal range), and
//!   `|log_softmax_j − exact| ≤ u·(|x_j − m| + ln V + ln s + |log_softmax_j|) + E + γ`.
//!
//! The tests check every output against the f64 [`reference`](mod@reference) with exactly these
//! bounds.
//!
//! # Non-finite logits
//!
//! - A NaN anywhere in a row makes that row's loss and every output of the row NaN.
//! - `−inf` logits are ordinary: they get probability 0 (and `loss = +inf` if the target's logit is
//!   `−inf`), as long as some logit of the row is finite.
//! - `+inf` anywhere in a row, or a row of only `−inf`, makes the row NaN (`∞ − ∞`); such logits
//!   mean training has diverged, and NaN is the signal the engine checks for.
//!
//! # Panics
//!
//! Shape misuse is a bug in the caller (the engine validates user input first): `V = 0`,
//! `logits.len() != rows·V`, output lengths that differ, or a target `≥ V` panic with a message
//! from a `#[cold]` shape-check function before any unsafe code runs.

use crate::Isa;
use crate::activations::{exp_v, last_lanes};
use crate::simd::{Portable, Simd};

pub mod reference;

#[cfg(test)]
mod tests;

/// f32 unit roundoff, `2^−24`.
const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Bound on the relative error of the exp-sum `s` (see the module docs): 16 `u`.
pub const SUM_REL_ERROR: f64 = 16.0 * UNIT_ROUNDOFF;

/// Floats per exp-sum block: each block is summed in f32 vector accumulators, the block sums in
/// f64. A multiple of `4·LANES` for every ISA (4 accumulators of at most 16 lanes).
const SUM_BLOCK: usize = 256;

/// The gradient output of [`softmax_cross_entropy`].
#[derive(Debug)]
pub struct LogitsGrad<'a> {
    /// `d(loss)/d(logits)` scaled by `scale`, `(rows, V)`; written, not accumulated.
    pub d_logits: &'a mut [f32],
    /// Factor applied to every gradient, e.g. `1/rows` for a mean loss over the rows.
    pub scale: f32,
}

// ---------------------------------------------------------------------------------------------
// Row passes (generic over the ISA)
// ---------------------------------------------------------------------------------------------

/// Loads the `n < LANES` floats at `p` into a register whose other lanes hold `fill` (through a
/// stack buffer), for rows shorter than one register, where the padding must be neutral (`−inf`
/// for a max or an exp-sum).
///
/// # Safety
/// S's ISA is available; `p` is readable for `n` floats.
#[inline(always)]
unsafe fn load_tail<S: Simd>(p: *const f32, n: usize, fill: f32) -> S::V {
    debug_assert!(n < S::LANES && S::LANES <= 16);
    let mut buf = [fill; 16];
    // SAFETY: `p` has `n ≤ 16` readable floats (caller) and `buf` room for 16; the load reads
    // LANES ≤ 16 floats of `buf`; the ISA is the caller's.
    unsafe {
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
        S::load(buf.as_ptr())
    }
}

/// `max_j x[j]` over `n ≥ 1` floats. A NaN may or may not win; the exp-sum pass turns it into a
/// NaN row either way.
///
/// # Safety
/// S's ISA is available; `x` is readable for `n` floats.
#[inline(always)]
unsafe fn row_max<S: Simd>(x: *const f32, n: usize) -> f32 {
    let lanes = S::LANES;
    // SAFETY: every load below stays within `[0, n)` (loop bounds, the window `[n − LANES, n)`
    // only when `n ≥ LANES`, `load_tail` of `n` floats); ISA: caller.
    unsafe {
        let mut acc = [S::splat(f32::NEG_INFINITY); 4];
        let mut i = 0;
        while i + 4 * lanes <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = S::max(*a, S::load(x.add(i + k * lanes)));
            }
            i += 4 * lanes;
        }
        while i + lanes <= n {
            acc[0] = S::max(acc[0], S::load(x.add(i)));
            i += lanes;
        }
        if i < n {
            // Rows of at least one register: the window ending at `n` (max is idempotent, so the
            // lanes seen twice do no harm) — plain loads, no masked ones (slow on Zen 3).
            let tail = if n >= lanes {
                S::load(x.add(n - lanes))
            } else {
                load_tail::<S>(x, n, f32::NEG_INFINITY)
            };
            acc[1] = S::max(acc[1], tail);
        }
        S::reduce_max(S::max(S::max(acc[0], acc[1]), S::max(acc[2], acc[3])))
    }
}

/// `s = Σ_j e^{x[j] − m}` over `n` floats, summed in 256-float blocks (f32 vector accumulators)
/// whose sums are accumulated in f64. With `STORE`, also writes `e^{x[j] − m}` to `out[j]`.
///
/// # Safety
/// S's ISA is available; `x` is readable for `n` floats; with `STORE`, `out` is writable for `n`
/// floats and does not overlap `x`.
#[inline(always)]
unsafe fn row_exp_sum<S: Simd, const STORE: bool>(
    x: *const f32,
    out: *mut f32,
    n: usize,
    m: f32,
) -> f64 {
    let lanes = S::LANES;
    let mut total = 0.0f64;
    // SAFETY: every access below stays within `[0, n)` (block and loop bounds, the window
    // `[n − LANES, n)` only when `n ≥ LANES`, else `load_tail`/`store_partial` of `n` floats);
    // ISA: caller.
    unsafe {
        let max = S::splat(m);
        let mut block = 0;
        while block < n {
            let end = n.min(block + SUM_BLOCK);
            let mut acc = [S::zero(); 4];
            let mut i = block;
            while i + 4 * lanes <= end {
                for (k, a) in acc.iter_mut().enumerate() {
                    let e = exp_v::<S>(S::sub(S::load(x.add(i + k * lanes)), max));
                    if STORE {
                        S::store(out.add(i + k * lanes), e);
                    }
                    *a = S::add(*a, e);
                }
                i += 4 * lanes;
            }
            while i + lanes <= end {
                let e = exp_v::<S>(S::sub(S::load(x.add(i)), max));
                if STORE {
                    S::store(out.add(i), e);
                }
                acc[0] = S::add(acc[0], e);
                i += lanes;
            }
            if i < end && n >= lanes {
                // Only the last block has a tail (blocks are multiples of 4·LANES), so `end = n`.
                // Take the window ending at `n`; the lanes already summed are masked to 0, and
                // storing them again writes the same values.
                let start = end - lanes;
                let e = exp_v::<S>(S::sub(S::load(x.add(start)), max));
                if STORE {
                    S::store(out.add(start), e);
                }
                acc[1] = S::add(acc[1], S::select(last_lanes::<S>(end - i), e, S::zero()));
            } else if i < end {
                // A row shorter than one register: padding lanes hold −inf, whose exponential is 0.
                let e = exp_v::<S>(S::sub(load_tail::<S>(x, n, f32::NEG_INFINITY), max));
                if STORE {
                    S::store_partial(out, e, n);
                }
                acc[1] = S::add(acc[1], e);
            }
            let sum = S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3]));
            total += f64::from(S::reduce_add(sum));
            block = end;
        }
    }
    total
}

/// `p[j] ← k·p[j]` over `n` floats.
///
/// # Safety
/// S's ISA is available; `p` is readable and writable for `n` floats.
#[inline(always)]
unsafe fn row_scale<S: Simd>(p: *mut f32, n: usize, k: f32) {
    let lanes = S::LANES;
    // SAFETY: every access stays within `[0, n)`; ISA: caller.
    unsafe {
        let k = S::splat(k);
        let mut i = 0;
        while i + lanes <= n {
            S::store(p.add(i), S::mul(S::load(p.add(i)), k));
            i += lanes;
        }
        if i < n && n >= lanes {
            // The window ending at `n`; its first lanes are already scaled and are kept.
            let start = n - lanes;
            let v = S::load(p.add(start));
            let scaled = S::select(last_lanes::<S>(n - i), S::mul(v, k), v);
            S::store(p.add(start), scaled);
        } else if i < n {
            S::store_partial(p.add(i), S::mul(S::load_partial(p.add(i), n - i), k), n - i);
        }
    }
}

/// `out[j] ← (x[j] − m) − log_s` over `n` floats.
///
/// # Safety
/// S's ISA is available; `x` readable and `out` writable for `n` floats, not overlapping.
#[inline(always)]
unsafe fn row_shift<S: Simd>(x: *const f32, out: *mut f32, n: usize, m: f32, log_s: f32) {
    let lanes = S::LANES;
    // SAFETY: every access stays within `[0, n)`; ISA: caller.
    unsafe {
        let (m, log_s) = (S::splat(m), S::splat(log_s));
        let mut i = 0;
        while i + lanes <= n {
            S::store(out.add(i), S::sub(S::sub(S::load(x.add(i)), m), log_s));
            i += lanes;
        }
        if i < n && n >= lanes {
            // The window ending at `n`, recomputing (identically) the lanes already written.
            let start = n - lanes;
            S::store(
                out.add(start),
                S::sub(S::sub(S::load(x.add(start)), m), log_s),
            );
        } else if i < n {
            let v = S::sub(S::sub(S::load_partial(x.add(i), n - i), m), log_s);
            S::store_partial(out.add(i), v, n - i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Whole-matrix bodies (generic over the ISA)
// ---------------------------------------------------------------------------------------------

/// The fused cross-entropy over `rows = losses.len()` rows.
///
/// # Safety
/// S's ISA is available; shapes checked by [`check_cross_entropy`]: `logits` is `(rows, vocab)`
/// with `vocab ≥ 1`, every target `< vocab`, `d_logits` (if any) is `(rows, vocab)`.
#[inline(always)]
unsafe fn cross_entropy_body<S: Simd>(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    grad: Option<LogitsGrad<'_>>,
) {
    match grad {
        None => {
            for (row, (loss, &target)) in losses.iter_mut().zip(targets).enumerate() {
                let x = &logits[row * vocab..(row + 1) * vocab];
                // SAFETY: `x` holds `vocab ≥ 1` floats; nothing is stored; ISA: caller.
                let (m, s) = unsafe {
                    let m = row_max::<S>(x.as_ptr(), vocab);
                    (
                        m,
                        row_exp_sum::<S, false>(x.as_ptr(), std::ptr::null_mut(), vocab, m),
                    )
                };
                *loss = (f64::from(m) - f64::from(x[target as usize]) + s.ln()) as f32;
            }
        }
        Some(LogitsGrad { d_logits, scale }) => {
            for (row, (loss, &target)) in losses.iter_mut().zip(targets).enumerate() {
                let x = &logits[row * vocab..(row + 1) * vocab];
                let d = &mut d_logits[row * vocab..(row + 1) * vocab];
                // SAFETY: `x` and `d` hold `vocab ≥ 1` floats each and are distinct borrows;
                // ISA: caller.
                let (m, s) = unsafe {
                    let m = row_max::<S>(x.as_ptr(), vocab);
                    let s = row_exp_sum::<S, true>(x.as_ptr(), d.as_mut_ptr(), vocab, m);
                    row_scale::<S>(d.as_mut_ptr(), vocab, (f64::from(scale) / s) as f32);
                    (m, s)
                };
                d[target as usize] -= scale;
                *loss = (f64::from(m) - f64::from(x[target as usize]) + s.ln()) as f32;
            }
        }
    }
}

/// Which normalisation [`normalise_body`] writes.
#[derive(Clone, Copy)]
enum Normalised {
    Softmax,
    LogSoftmax,
}

/// Softmax or log-softmax of every row of `logits` into `out`.
///
/// # Safety
/// S's ISA is available; `vocab ≥ 1`, `logits.len() == out.len()`, a multiple of `vocab`.
#[inline(always)]
unsafe fn normalise_body<S: Simd>(kind: Normalised, logits: &[f32], vocab: usize, out: &mut [f32]) {
    for (x, y) in logits.chunks_exact(vocab).zip(out.chunks_exact_mut(vocab)) {
        // SAFETY: `x` and `y` hold `vocab ≥ 1` floats each and are distinct borrows; ISA: caller.
        unsafe {
            let m = row_max::<S>(x.as_ptr(), vocab);
            match kind {
                Normalised::Softmax => {
                    let s = row_exp_sum::<S, true>(x.as_ptr(), y.as_mut_ptr(), vocab, m);
                    row_scale::<S>(y.as_mut_ptr(), vocab, (1.0 / s) as f32);
                }
                Normalised::LogSoftmax => {
                    let s = row_exp_sum::<S, false>(x.as_ptr(), std::ptr::null_mut(), vocab, m);
                    row_shift::<S>(x.as_ptr(), y.as_mut_ptr(), vocab, m, s.ln() as f32);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `#[target_feature]` shims
// ---------------------------------------------------------------------------------------------

/// # Safety
/// The CPU has AVX2 and FMA; shapes as [`cross_entropy_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cross_entropy_avx2(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    grad: Option<LogitsGrad<'_>>,
) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { cross_entropy_body::<crate::simd::Avx2>(logits, vocab, targets, losses, grad) }
}

/// # Safety
/// The CPU has AVX-512F/BW/VL; shapes as [`cross_entropy_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn cross_entropy_avx512(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    grad: Option<LogitsGrad<'_>>,
) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { cross_entropy_body::<crate::simd::Avx512>(logits, vocab, targets, losses, grad) }
}

/// # Safety
/// The CPU has AVX2 and FMA; shapes as [`normalise_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn normalise_avx2(kind: Normalised, logits: &[f32], vocab: usize, out: &mut [f32]) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { normalise_body::<crate::simd::Avx2>(kind, logits, vocab, out) }
}

/// # Safety
/// The CPU has AVX-512F/BW/VL; shapes as [`normalise_body`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn normalise_avx512(kind: Normalised, logits: &[f32], vocab: usize, out: &mut [f32]) {
    // SAFETY: forwarded contract; the features are enabled on this function.
    unsafe { normalise_body::<crate::simd::Avx512>(kind, logits, vocab, out) }
}

// ---------------------------------------------------------------------------------------------
// Shape checks
// ---------------------------------------------------------------------------------------------

#[cold]
#[inline(never)]
fn shape_error(what: &str, message: String) -> ! {
    panic!("{what}: {message}")
}

fn check_isa(what: &str, isa: Isa) {
    if !isa.is_available() {
        shape_error(
            what,
            format!(
                "ISA path {isa} is not available on this CPU (detected: {})",
                Isa::detected()
            ),
        );
    }
}

fn check_cross_entropy(
    what: &str,
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &[f32],
    d_logits: Option<&[f32]>,
) {
    let rows = targets.len();
    if vocab == 0 {
        shape_error(what, "the vocabulary size V must be at least 1".into());
    }
    if Some(logits.len()) != rows.checked_mul(vocab) {
        shape_error(
            what,
            format!(
                "logits must be (rows, V) = ({rows}, {vocab}) but has {} elements",
                logits.len()
            ),
        );
    }
    if losses.len() != rows {
        shape_error(
            what,
            format!(
                "losses must have one element per row ({rows}) but has {}",
                losses.len()
            ),
        );
    }
    if let Some(d) = d_logits
        && d.len() != logits.len()
    {
        shape_error(
            what,
            format!(
                "d_logits must be (rows, V) = ({rows}, {vocab}) like logits but has {} elements",
                d.len()
            ),
        );
    }
    if let Some((row, &t)) = targets
        .iter()
        .enumerate()
        .find(|&(_, &t)| t as usize >= vocab)
    {
        shape_error(
            what,
            format!("target {t} of row {row} is out of range for V = {vocab}"),
        );
    }
}

fn check_normalise(what: &str, logits: &[f32], vocab: usize, out: &[f32]) {
    if vocab == 0 {
        shape_error(what, "the vocabulary size V must be at least 1".into());
    }
    if !logits.len().is_multiple_of(vocab) {
        shape_error(
            what,
            format!(
                "logits has {} elements, not a whole number of rows of V = {vocab}",
                logits.len()
            ),
        );
    }
    if out.len() != logits.len() {
        shape_error(
            what,
            format!(
                "out must be the same shape as logits ({} elements) but has {}",
                logits.len(),
                out.len()
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Public API and dispatch
// ---------------------------------------------------------------------------------------------

/// Fused softmax + cross-entropy over the rows of `logits` (row-major `(rows, V)`,
/// `rows = targets.len()`), on the [`Isa::active`] path: `losses[r] = logsumexp(x_r) − x_r[t_r]`
/// and, with `grad`, `grad.d_logits[r, j] = grad.scale · (softmax(x_r)_j − [j = t_r])`.
///
/// ```
/// use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy};
/// let logits = [0.0, 0.0, 0.0, 0.0, /* row 1: */ 10.0, 0.0, 0.0, 0.0];
/// let mut losses = [0.0; 2];
/// let mut d_logits = [0.0; 8];
/// let grad = LogitsGrad { d_logits: &mut d_logits, scale: 0.5 };
/// softmax_cross_entropy(&logits, 4, &[2, 0], &mut losses, Some(grad));
/// assert!((losses[0] - 4f32.ln()).abs() < 1e-6); // uniform over 4
/// assert!((d_logits[2] - 0.5 * (0.25 - 1.0)).abs() < 1e-7);
/// ```
///
/// # Panics
/// On shape misuse (see the module docs): `V = 0`, `logits.len() != rows·V`,
/// `losses.len() != rows`, `d_logits.len() != logits.len()`, a target `≥ V`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    grad: Option<LogitsGrad<'_>>,
) {
    softmax_cross_entropy_with_isa(Isa::active(), logits, vocab, targets, losses, grad)
}

/// [`softmax_cross_entropy`] on an explicit ISA path.
///
/// # Panics
/// As [`softmax_cross_entropy`], and if the CPU cannot run `isa`.
pub fn softmax_cross_entropy_with_isa(
    isa: Isa,
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    grad: Option<LogitsGrad<'_>>,
) {
    const WHAT: &str = "softmax_cross_entropy";
    check_isa(WHAT, isa);
    let d_logits = grad.as_ref().map(|g| &*g.d_logits);
    check_cross_entropy(WHAT, logits, vocab, targets, losses, d_logits);
    // SAFETY: the shapes and the ISA were checked just above.
    unsafe {
        match isa {
            Isa::Scalar => cross_entropy_body::<Portable>(logits, vocab, targets, losses, grad),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => cross_entropy_avx2(logits, vocab, targets, losses, grad),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => cross_entropy_avx512(logits, vocab, targets, losses, grad),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar path is available off x86-64"),
        }
    }
}

fn normalise_with_isa(
    what: &str,
    kind: Normalised,
    isa: Isa,
    logits: &[f32],
    vocab: usize,
    out: &mut [f32],
) {
    check_isa(what, isa);
    check_normalise(what, logits, vocab, out);
    // SAFETY: the shapes and the ISA were checked just above.
    unsafe {
        match isa {
            Isa::Scalar => normalise_body::<Portable>(kind, logits, vocab, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => normalise_avx2(kind, logits, vocab, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => normalise_avx512(kind, logits, vocab, out),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar path is available off x86-64"),
        }
    }
}

/// `out[r, j] = x_r[j] − logsumexp(x_r)` for every row of `logits` (row-major `(rows, V)`), on the
/// [`Isa::active`] path: log-probabilities for evaluation (perplexity) and sampling.
///
/// # Panics
/// If `V = 0`, `logits.len()` is not a multiple of `V`, or `out.len() != logits.len()`.
pub fn log_softmax(logits: &[f32], vocab: usize, out: &mut [f32]) {
    log_softmax_with_isa(Isa::active(), logits, vocab, out)
}

/// [`log_softmax`] on an explicit ISA path.
///
/// # Panics
/// As [`log_softmax`], and if the CPU cannot run `isa`.
pub fn log_softmax_with_isa(isa: Isa, logits: &[f32], vocab: usize, out: &mut [f32]) {
    normalise_with_isa(
        "log_softmax",
        Normalised::LogSoftmax,
        isa,
        logits,
        vocab,
        out,
    )
}

/// `out[r, j] = e^{x_r[j]} / Σ_k e^{x_r[k]}` for every row of `logits` (row-major `(rows, V)`), on
/// the [`Isa::active`] path.
///
/// # Panics
/// If `V = 0`, `logits.len()` is not a multiple of `V`, or `out.len() != logits.len()`.
pub fn softmax(logits: &[f32], vocab: usize, out: &mut [f32]) {
    softmax_with_isa(Isa::active(), logits, vocab, out)
}

/// [`softmax`] on an explicit ISA path.
///
/// # Panics
/// As [`softmax`], and if the CPU cannot run `isa`.
pub fn softmax_with_isa(isa: Isa, logits: &[f32], vocab: usize, out: &mut [f32]) {
    normalise_with_isa("softmax", Normalised::Softmax, isa, logits, vocab, out)
}
