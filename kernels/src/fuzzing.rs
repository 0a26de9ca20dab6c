//! Fuzz harness bodies for the kernels: differential checks of every fast path against its
//! reference, driven by arbitrary bytes.
//!
//! Each `fuzz_*` function takes the raw input of one fuzz target (`fuzz/fuzz_targets/*.rs` are
//! one-line wrappers around them) and **panics** when a kernel breaks its contract; any input that
//! merely does not describe a valid case is turned into one (sizes are reduced modulo a limit,
//! values that would overflow are replaced). The same functions replay the committed corpora in
//! `cargo test` (`tests/fuzz_replay.rs`), so CI runs every seed and every crash reproducer.
//!
//! The shapes and values come from [`FuzzInput`], a cursor that never fails: past the end of the
//! input it yields zeros, so every prefix of an input is a valid (smaller) case and libFuzzer's
//! mutations stay meaningful.
//!
//! What is checked:
//!
//! - [`fuzz_gemm`]: [`gemm::sgemm_with_isa`] on every ISA the host runs, any shape up to
//!   ~100 × 100 × 530 (crossing `MR`, `NR`, `MC` and `KC`), row-major, transposed or padded
//!   operands, `α`, `β` including 0 (with C pre-filled with NaN, which `β = 0` must not read).
//!   Small integer inputs must match [`gemm::reference::sgemm`] bit for bit; arbitrary finite
//!   inputs must be within the classical bound `|Ĉ − C| ≤ γ_{k+4}·(|α|·|A|·|B| + |β|·|C|)`
//!   (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.5; four roundings
//!   besides the k of the dot product) of an f64 product;
//!   `Par::Seq` and `Par::Rayon(2)` must agree bit for bit.
//! - [`fuzz_softmax`]: [`softmax::softmax_cross_entropy_with_isa`], `log_softmax` and `softmax`
//!   on finite logits against [`softmax::reference`] with the error bounds derived in the softmax
//!   module docs.
//! - [`fuzz_activations`]: `exp`, `sigmoid`, `tanh` (in place and `_to`) on arbitrary f32 bit
//!   patterns (NaN and ±inf included) against [`activations::reference`] with the documented
//!   bounds and special-value rules.

use crate::activations::{
    self, EXP_MAX_REL_ERROR, SIGMOID_MAX_ABS_ERROR, SIGMOID_MAX_REL_ERROR, TANH_MAX_ABS_ERROR,
    TANH_MAX_REL_ERROR,
};
use crate::gemm::{self, MatMut, MatRef};
use crate::softmax::{self, LogitsGrad};
use crate::{Isa, Par};

/// f32 unit roundoff, `2^−24`.
const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
/// The smallest positive subnormal f32, `2^−149`, as f64.
const SUBNORMAL_STEP: f64 = 1.401_298_464_324_817e-45;

/// A cursor over fuzz bytes that never fails: past the end it yields zeros.
#[derive(Clone, Debug)]
pub struct FuzzInput<'a> {
    bytes: &'a [u8],
}

impl<'a> FuzzInput<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        FuzzInput { bytes }
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A value in `0..=max` (two bytes reduced modulo `max + 1`).
    pub fn below_or_eq(&mut self, max: usize) -> usize {
        usize::from(self.u16()) % (max + 1)
    }

    /// The next byte is odd.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// An f32 from the next four bytes taken as a bit pattern (NaN and ±inf included).
    pub fn f32_bits(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }

    /// A finite f32 of magnitude at most `limit`: the next bit pattern if it qualifies, else its
    /// low 16 bits as a signed integer over 256 (so no input is wasted).
    pub fn finite_f32(&mut self, limit: f32) -> f32 {
        let bits = self.u32();
        let x = f32::from_bits(bits);
        if x.is_finite() && x.abs() <= limit {
            x
        } else {
            f32::from(bits as u16 as i16) / 256.0
        }
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row stride = cols, column stride 1.
    RowMajor,
    /// Stored transposed: row stride 1, column stride = rows.
    ColMajor,
    /// Row-major with `pad` unused floats after each row.
    Padded(usize),
}

impl Layout {
    fn pick(input: &mut FuzzInput) -> Layout {
        match input.u8() % 3 {
            0 => Layout::RowMajor,
            1 => Layout::ColMajor,
            _ => Layout::Padded(1 + input.below_or_eq(7)),
        }
    }

    /// `(storage length, row stride, column stride)` of a `rows × cols` matrix.
    fn strides(self, rows: usize, cols: usize) -> (usize, usize, usize) {
        match self {
            Layout::RowMajor => (rows * cols, cols.max(1), 1),
            Layout::ColMajor => (rows * cols, 1, rows.max(1)),
            Layout::Padded(pad) => ((cols + pad) * rows, cols + pad, 1),
        }
    }
}

/// Where the values of a GEMM case come from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum GemmValues {
    /// Integers in `[−8, 8]`: every partial sum is exact in f32, so all paths agree bit for bit.
    SmallIntegers,
    /// Arbitrary finite floats of magnitude ≤ 2^40 (no product of a case can overflow).
    Finite,
}

/// Scalars that exercise the BLAS special cases (0, ±1) and plain scaling.
fn pick_scalar(input: &mut FuzzInput, values: GemmValues) -> f32 {
    match input.u8() % 6 {
        0 => 0.0,
        1 => 1.0,
        2 => -1.0,
        3 => 0.5,
        4 => 2.0,
        _ => match values {
            GemmValues::SmallIntegers => f32::from(input.u8() % 9) - 4.0,
            GemmValues::Finite => input.finite_f32(1e3),
        },
    }
}

/// One GEMM case: shapes, layouts, scalars and values from `data`; every available ISA against
/// the reference (see the module docs for what must hold).
pub fn fuzz_gemm(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let values = if input.bool() {
        GemmValues::SmallIntegers
    } else {
        GemmValues::Finite
    };
    // Mostly small shapes; one case in four crosses MC (96) or KC (512) with the other sides
    // kept small so the reference stays fast.
    let (m, n, k) = match input.u8() % 4 {
        0 => (
            1 + input.below_or_eq(7),
            input.below_or_eq(40),
            500 + input.below_or_eq(30),
        ),
        1 => (
            90 + input.below_or_eq(12),
            input.below_or_eq(20),
            input.below_or_eq(20),
        ),
        _ => (
            input.below_or_eq(40),
            input.below_or_eq(70),
            input.below_or_eq(40),
        ),
    };
    let (layout_a, layout_b, layout_c) = (
        Layout::pick(&mut input),
        Layout::pick(&mut input),
        Layout::pick(&mut input),
    );
    let alpha = pick_scalar(&mut input, values);
    let beta = pick_scalar(&mut input, values);
    let value = |input: &mut FuzzInput| match values {
        GemmValues::SmallIntegers => f32::from(input.u8() % 17) - 8.0,
        GemmValues::Finite => input.finite_f32(1.1e12),
    };
    let (len_a, rs_a, cs_a) = layout_a.strides(m, k);
    let (len_b, rs_b, cs_b) = layout_b.strides(k, n);
    let (len_c, rs_c, cs_c) = layout_c.strides(m, n);
    let a: Vec<f32> = (0..len_a).map(|_| value(&mut input)).collect();
    let b: Vec<f32> = (0..len_b).map(|_| value(&mut input)).collect();
    let c0: Vec<f32> = if beta == 0.0 {
        vec![f32::NAN; len_c]
    } else {
        (0..len_c).map(|_| value(&mut input)).collect()
    };
    let view_a = || MatRef::new(&a, m, k, rs_a, cs_a);
    let view_b = || MatRef::new(&b, k, n, rs_b, cs_b);

    let mut want = c0.clone();
    gemm::reference::sgemm(
        alpha,
        view_a(),
        view_b(),
        beta,
        MatMut::new(&mut want, m, n, rs_c, cs_c),
    );
    // For finite values: the exact product in f64 and the magnitude the error bound scales with.
    let (exact, magnitude, underflow) =
        exact_product(alpha, &view_a(), &view_b(), beta, &c0, rs_c, cs_c);

    // Rounding errors on one element: k in the dot product, α·(AB), β·C (or α folded into a
    // packed operand) and the final sum; γ_r = r·u / (1 − r·u) (Higham, Lemma 3.1).
    let roundings = k as f64 + 4.0;
    let gamma = roundings * UNIT_ROUNDOFF / (1.0 - roundings * UNIT_ROUNDOFF);
    for isa in Isa::available() {
        let mut got = c0.clone();
        gemm::sgemm_with_isa(
            isa,
            Par::Seq,
            alpha,
            view_a(),
            view_b(),
            beta,
            MatMut::new(&mut got, m, n, rs_c, cs_c),
        );
        let mut got_par = c0.clone();
        gemm::sgemm_with_isa(
            isa,
            Par::Rayon(2),
            alpha,
            view_a(),
            view_b(),
            beta,
            MatMut::new(&mut got_par, m, n, rs_c, cs_c),
        );
        assert!(
            bit_equal(&got, &got_par),
            "{isa} {m}×{n}×{k}: Par::Seq and Par::Rayon(2) differ"
        );
        for i in 0..m {
            for j in 0..n {
                let at = i * rs_c + j * cs_c;
                let (g, w) = (got[at], want[at]);
                let case = || {
                    format!(
                        "{isa} {m}×{n}×{k} {layout_a:?}/{layout_b:?}/{layout_c:?} α={alpha} \
                         β={beta} C[{i},{j}]"
                    )
                };
                match values {
                    GemmValues::SmallIntegers => assert!(
                        g.to_bits() == w.to_bits(),
                        "{}: {g} vs reference {w} (exact inputs must give exact results)",
                        case()
                    ),
                    GemmValues::Finite => {
                        let e = exact[i * n + j];
                        let bound = gamma * magnitude[i * n + j] + underflow[i * n + j];
                        assert!(
                            g.is_finite() && (f64::from(g) - e).abs() <= bound,
                            "{}: {g:e} vs exact {e:e}, error {:e} > bound {bound:e}",
                            case(),
                            (f64::from(g) - e).abs()
                        );
                    }
                }
            }
        }
        // Elements outside the view (padding) are untouched.
        for (at, (g, c)) in got.iter().zip(&c0).enumerate() {
            let (i, j) = (at / rs_c.max(1), at % rs_c.max(1));
            let inside = match layout_c {
                Layout::Padded(_) => j < n && i < m,
                _ => true,
            };
            if !inside {
                assert!(
                    g.to_bits() == c.to_bits(),
                    "{isa}: padding element {at} of C was written"
                );
            }
        }
    }
}

/// Per element of the `m × n` result (row-major): `α·A·B + β·C₀` in f64, the magnitude
/// `|α|·|A|·|B| + |β|·|C₀|` the relative rounding errors scale with, and the bound on the absolute
/// error of underflow. In the standard model with gradual underflow (Higham §2.1) a product adds
/// an absolute error of at most half a subnormal step on top of its relative one (sums of
/// subnormals are exact); that error is then multiplied by whatever multiplies the rounded value
/// later — α, or an entry of A or B when α is folded into the other operand while packing. So
/// each of the `k + 4` roundings contributes at most `2^−149·(1 + |α|)·(1 + max|a| + max|b|)`.
/// With `β = 0`, C₀ is not read.
fn exact_product(
    alpha: f32,
    a: &MatRef,
    b: &MatRef,
    beta: f32,
    c0: &[f32],
    rs_c: usize,
    cs_c: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let mut exact = vec![0.0; m * n];
    let mut magnitude = vec![0.0; m * n];
    let mut underflow = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut abs) = (0.0f64, 0.0f64);
            let (mut max_a, mut max_b) = (0.0f64, 0.0f64);
            for p in 0..k {
                let (x, y) = (f64::from(a.get(i, p)), f64::from(b.get(p, j)));
                let prod = x * y;
                sum += prod;
                abs += prod.abs();
                max_a = max_a.max(x.abs());
                max_b = max_b.max(y.abs());
            }
            underflow[i * n + j] = (k as f64 + 4.0)
                * SUBNORMAL_STEP
                * (1.0 + f64::from(alpha).abs())
                * (1.0 + max_a + max_b);
            let (alpha, beta) = (f64::from(alpha), f64::from(beta));
            let (mut e, mut mag) = (alpha * sum, alpha.abs() * abs);
            if beta != 0.0 {
                let c = f64::from(c0[i * rs_c + j * cs_c]);
                e += beta * c;
                mag += (beta * c).abs();
            }
            exact[i * n + j] = e;
            magnitude[i * n + j] = mag;
        }
    }
    (exact, magnitude, underflow)
}

fn bit_equal(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
}

// ---------------------------------------------------------------------------------------------
// Softmax + cross-entropy
// ---------------------------------------------------------------------------------------------

/// `(max, ln Σ e^{x − max})` of a row in f64.
fn row_stats(row: &[f32]) -> (f64, f64) {
    let m = row
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = row.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    (m, s.ln())
}

/// One softmax case: rows × V finite logits (V up to 600, crossing the 256-float sum block),
/// targets and a scale from `data`; cross-entropy (loss and gradient), log-softmax and softmax on
/// every available ISA against the f64 reference with the module docs' bounds.
pub fn fuzz_softmax(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let rows = 1 + input.below_or_eq(5);
    let vocab = 1 + input.below_or_eq(599);
    let scale = match input.u8() % 3 {
        0 => 1.0 / rows as f32,
        1 => 1.0,
        _ => input.finite_f32(1e3),
    };
    // Logits up to 1e30: the loss `max − x_t + ln s` stays far from f32 overflow.
    let spread = match input.u8() % 3 {
        0 => 1.0,
        1 => 100.0,
        _ => 1e30,
    };
    let logits: Vec<f32> = (0..rows * vocab)
        .map(|_| {
            let x = input.finite_f32(1e30);
            if spread < 1e30 {
                x.clamp(-spread, spread)
            } else {
                x
            }
        })
        .collect();
    let targets: Vec<u32> = (0..rows)
        .map(|_| (input.u16() as usize % vocab) as u32)
        .collect();

    let (want_loss, want_d) =
        softmax::reference::softmax_cross_entropy(&logits, vocab, &targets, f64::from(scale));
    let want_log = softmax::reference::log_softmax(&logits, vocab);
    let want_p = softmax::reference::softmax(&logits, vocab);
    let u = UNIT_ROUNDOFF;
    let ln_v = (vocab as f64).ln();
    let common = EXP_MAX_REL_ERROR + softmax::SUM_REL_ERROR;
    for isa in Isa::available() {
        let mut losses = vec![f32::NAN; rows];
        let mut d_logits = vec![f32::NAN; logits.len()];
        softmax::softmax_cross_entropy_with_isa(
            isa,
            &logits,
            vocab,
            &targets,
            &mut losses,
            Some(LogitsGrad {
                d_logits: &mut d_logits,
                scale,
            }),
        );
        let mut losses_only = vec![f32::NAN; rows];
        softmax::softmax_cross_entropy_with_isa(
            isa,
            &logits,
            vocab,
            &targets,
            &mut losses_only,
            None,
        );
        assert!(
            bit_equal(&losses, &losses_only),
            "{isa} V={vocab}: the loss differs with and without the gradient"
        );
        let mut log_p = vec![f32::NAN; logits.len()];
        softmax::log_softmax_with_isa(isa, &logits, vocab, &mut log_p);
        let mut p = vec![f32::NAN; logits.len()];
        softmax::softmax_with_isa(isa, &logits, vocab, &mut p);

        let scale = f64::from(scale);
        for (r, row) in logits.chunks_exact(vocab).enumerate() {
            let t = targets[r] as usize;
            let (m, ln_s) = row_stats(row);
            let (got, want) = (f64::from(losses[r]), want_loss[r]);
            let bound = u * ln_v + common + u * want.abs();
            assert!(
                (got - want).abs() <= bound,
                "{isa} V={vocab} row {r}: loss {got:e} vs {want:e} > bound {bound:e}"
            );
            for j in 0..vocab {
                let at = r * vocab + j;
                let dist = (f64::from(row[j]) - m).abs();
                let onehot = if j == t { 1.0 } else { 0.0 };

                let (got, want) = (f64::from(d_logits[at]), want_d[at]);
                let prob = want_p[at];
                let mut bound = scale.abs() * prob * (u * dist + common + 2.0 * u)
                    + (scale.abs() + 1.0) * SUBNORMAL_STEP;
                if j == t {
                    bound += u * want.abs();
                }
                assert!(
                    (got - want).abs() <= bound,
                    "{isa} V={vocab} row {r} j={j} (target {t}): d {got:e} vs {want:e} > {bound:e} \
                     (scale {scale}, onehot {onehot})"
                );

                let (got, want) = (f64::from(log_p[at]), want_log[at]);
                let bound = u * (dist + ln_v + ln_s + want.abs()) + common;
                assert!(
                    (got - want).abs() <= bound,
                    "{isa} V={vocab} row {r} j={j}: log_softmax {got:e} vs {want:e} > {bound:e}"
                );

                let got = f64::from(p[at]);
                let bound = prob * (u * dist + common + 2.0 * u) + 2.0 * SUBNORMAL_STEP;
                assert!(
                    (got - prob).abs() <= bound,
                    "{isa} V={vocab} row {r} j={j}: softmax {got:e} vs {prob:e} > {bound:e}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

/// One activation: its slice kernels, f64 reference and documented bounds.
struct Activation {
    name: &'static str,
    in_place: fn(Isa, &mut [f32]),
    to: fn(Isa, &[f32], &mut [f32]),
    reference: fn(f64) -> f64,
    max_abs: Option<f64>,
    max_rel: f64,
}

const ACTIVATIONS: [Activation; 3] = [
    Activation {
        name: "exp",
        in_place: activations::exp_with_isa,
        to: activations::exp_to_with_isa,
        reference: activations::reference::exp,
        max_abs: None,
        max_rel: EXP_MAX_REL_ERROR,
    },
    Activation {
        name: "sigmoid",
        in_place: activations::sigmoid_with_isa,
        to: activations::sigmoid_to_with_isa,
        reference: activations::reference::sigmoid,
        max_abs: Some(SIGMOID_MAX_ABS_ERROR),
        max_rel: SIGMOID_MAX_REL_ERROR,
    },
    Activation {
        name: "tanh",
        in_place: activations::tanh_with_isa,
        to: activations::tanh_to_with_isa,
        reference: activations::reference::tanh,
        max_abs: Some(TANH_MAX_ABS_ERROR),
        max_rel: TANH_MAX_REL_ERROR,
    },
];

/// Checks `got = f(x)` against the contract of the activations module.
fn check_activation(f: &Activation, isa: Isa, x: f32, got: f32) {
    let want = (f.reference)(f64::from(x));
    let context = || format!("{}({x:e} = {:#010x}) on {isa}", f.name, x.to_bits());
    if x.is_nan() {
        assert!(
            got.is_nan(),
            "{}: NaN in must give NaN, got {got:e}",
            context()
        );
        return;
    }
    assert!(!got.is_nan(), "{}: gave NaN", context());
    if want > f64::from(f32::MAX) {
        // Only exp overflows; past f32::MAX·(1 + bound) the result must be +inf.
        let must_overflow = want > f64::from(f32::MAX) * (1.0 + f.max_rel);
        assert!(
            got == f32::INFINITY || (!must_overflow && got.is_finite()),
            "{}: want {want:e} (overflow), got {got:e}",
            context()
        );
        return;
    }
    let got = f64::from(got);
    if got.is_infinite() {
        assert!(
            want * (1.0 + f.max_rel) >= f64::from(f32::MAX),
            "{}: overflowed to {got:e}, want {want:e}",
            context()
        );
        return;
    }
    let abs = (got - want).abs();
    if let Some(bound) = f.max_abs {
        assert!(
            abs <= bound,
            "{}: absolute error {abs:e} > {bound:e}",
            context()
        );
    }
    let bound = if want.abs() >= f64::from(f32::MIN_POSITIVE) {
        f.max_rel * want.abs()
    } else {
        SUBNORMAL_STEP + f.max_rel * want.abs()
    };
    assert!(
        abs <= bound,
        "{}: error {abs:e} > {bound:e} (got {got:e}, want {want:e})",
        context()
    );
}

/// One activation case: a slice of arbitrary f32 bit patterns (any length up to 100, so every
/// tail length is hit) through exp, sigmoid and tanh, in place and `_to`, on every available ISA.
pub fn fuzz_activations(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let len = input.below_or_eq(100);
    let xs: Vec<f32> = (0..len).map(|_| input.f32_bits()).collect();
    for f in &ACTIVATIONS {
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; len];
            (f.to)(isa, &xs, &mut out);
            let mut in_place = xs.clone();
            (f.in_place)(isa, &mut in_place);
            assert!(
                out.iter()
                    .zip(&in_place)
                    .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
                "{} on {isa}: in-place and _to results differ",
                f.name
            );
            for (&x, &y) in xs.iter().zip(&out) {
                check_activation(f, isa, x, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_input_is_total() {
        let mut input = FuzzInput::new(&[1, 2, 3]);
        assert_eq!(input.u16(), 0x0201);
        assert_eq!(input.u32(), 3);
        assert_eq!(input.u8(), 0);
        assert!(input.rest().is_empty());
        assert_eq!(FuzzInput::new(&[]).below_or_eq(5), 0);
        let x = FuzzInput::new(&0x7fc0_0000u32.to_le_bytes()).finite_f32(1.0);
        assert!(x.is_finite());
    }

    #[test]
    fn harnesses_accept_empty_and_short_inputs() {
        for data in [&[][..], &[0xff; 3], &[1, 7, 0, 2, 9, 9, 9, 9]] {
            fuzz_gemm(data);
            fuzz_softmax(data);
            fuzz_activations(data);
        }
    }
}
