//! The kernels against the f64 reference with the error bounds derived in the module docs.

use super::*;
use crate::activations::EXP_MAX_REL_ERROR;
use proptest::prelude::*;

const U: f64 = UNIT_ROUNDOFF;
/// 2^−149, the smallest subnormal f32.
const SUBNORMAL_STEP: f64 = 1.401_298_464_324_817e-45;

/// Deterministic test data (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal, from the sum of four uniforms.
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.next_f32()).sum::<f32>() * 1.7 - 3.4
    }
    fn below(&mut self, n: usize) -> u32 {
        ((self.next_f32() as f64 * n as f64) as usize).min(n - 1) as u32
    }
}

/// `(max, ln s)` of a row in f64, as the bounds need them.
fn row_stats(row: &[f32]) -> (f64, f64) {
    let m = row
        .iter()
        .map(|&x| f64::from(x))
        .fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = row.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    (m, s.ln())
}

/// Runs the fused cross-entropy (with and without the gradient) on `isa` and checks every output
/// against the reference with the module docs' bounds.
fn check_cross_entropy(isa: Isa, logits: &[f32], vocab: usize, targets: &[u32], scale: f32) {
    let rows = targets.len();
    let (want_loss, want_d) =
        reference::softmax_cross_entropy(logits, vocab, targets, f64::from(scale));
    let mut losses = vec![f32::NAN; rows];
    let mut d_logits = vec![f32::NAN; logits.len()];
    let grad = LogitsGrad {
        d_logits: &mut d_logits,
        scale,
    };
    softmax_cross_entropy_with_isa(isa, logits, vocab, targets, &mut losses, Some(grad));
    let mut losses_only = vec![f32::NAN; rows];
    softmax_cross_entropy_with_isa(isa, logits, vocab, targets, &mut losses_only, None);
    assert_eq!(
        losses, losses_only,
        "loss with and without the gradient differ on {isa}"
    );

    let ln_v = (vocab as f64).ln();
    let scale = f64::from(scale);
    for r in 0..rows {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let t = targets[r] as usize;
        let (m, _) = row_stats(row);
        let got = f64::from(losses[r]);
        let want = want_loss[r];
        let bound = U * ln_v + EXP_MAX_REL_ERROR + SUM_REL_ERROR + U * want.abs();
        assert!(
            (got - want).abs() <= bound,
            "{isa} V={vocab} row {r}: loss {got:e} vs {want:e}, error {:e} > bound {bound:e}",
            (got - want).abs()
        );
        for j in 0..vocab {
            let got = f64::from(d_logits[r * vocab + j]);
            let want = want_d[r * vocab + j];
            let p = want / scale + if j == t { 1.0 } else { 0.0 };
            let dist = (f64::from(row[j]) - m).abs();
            let mut bound =
                scale.abs() * p * (U * dist + EXP_MAX_REL_ERROR + SUM_REL_ERROR + 2.0 * U)
                    + (scale.abs() + 1.0) * SUBNORMAL_STEP;
            if j == t {
                bound += U * want.abs();
            }
            assert!(
                (got - want).abs() <= bound,
                "{isa} V={vocab} row {r} j={j} (target {t}): d {got:e} vs {want:e}, error {:e} > {bound:e}",
                (got - want).abs()
            );
        }
    }
}

/// Softmax and log-softmax on `isa` against the reference with the module docs' bounds.
fn check_normalised(isa: Isa, logits: &[f32], vocab: usize) {
    let mut out = vec![f32::NAN; logits.len()];
    log_softmax_with_isa(isa, logits, vocab, &mut out);
    let want = reference::log_softmax(logits, vocab);
    let ln_v = (vocab as f64).ln();
    for (r, row) in logits.chunks_exact(vocab).enumerate() {
        let (m, ln_s) = row_stats(row);
        for j in 0..vocab {
            let (got, want) = (f64::from(out[r * vocab + j]), want[r * vocab + j]);
            let dist = (f64::from(row[j]) - m).abs();
            let bound = U * (dist + ln_v + ln_s + want.abs()) + EXP_MAX_REL_ERROR + SUM_REL_ERROR;
            assert!(
                (got - want).abs() <= bound,
                "{isa} V={vocab} row {r} j={j}: log_softmax {got:e} vs {want:e} > {bound:e}"
            );
        }
    }
    softmax_with_isa(isa, logits, vocab, &mut out);
    let want = reference::softmax(logits, vocab);
    for (r, row) in logits.chunks_exact(vocab).enumerate() {
        let (m, _) = row_stats(row);
        for j in 0..vocab {
            let (got, p) = (f64::from(out[r * vocab + j]), want[r * vocab + j]);
            let dist = (f64::from(row[j]) - m).abs();
            let bound =
                p * (U * dist + EXP_MAX_REL_ERROR + SUM_REL_ERROR + 2.0 * U) + 2.0 * SUBNORMAL_STEP;
            assert!(
                (got - p).abs() <= bound,
                "{isa} V={vocab} row {r} j={j}: softmax {got:e} vs {p:e} > {bound:e}"
            );
        }
    }
}

/// Logits of several shapes of distribution: `(name, offset, spread)`.
const DISTRIBUTIONS: [(&str, f32, f32); 6] = [
    ("unit", 0.0, 1.0),
    ("peaky", 0.0, 30.0),
    ("huge positive", 1.0e4, 3.0),
    ("huge negative", -1.0e4, 3.0),
    ("tiny", 0.0, 1e-30),
    ("enormous spread", 0.0, 1e30),
];

#[test]
fn cross_entropy_and_normalisation_match_reference_on_every_isa() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocabs = [
        1, 2, 7, 15, 16, 17, 42, 63, 64, 65, 255, 256, 257, 1000, 8639,
    ];
    for isa in Isa::ALL {
        if !isa.is_available() {
            eprintln!("skipping softmax on {isa}: this CPU lacks it");
            continue;
        }
        for &vocab in &vocabs {
            for (name, offset, spread) in DISTRIBUTIONS {
                let rows = 3;
                let logits: Vec<f32> = (0..rows * vocab)
                    .map(|_| offset + spread * rng.normal())
                    .collect();
                let targets: Vec<u32> = (0..rows).map(|_| rng.below(vocab)).collect();
                eprintln!("{isa} V={vocab} {name}");
                check_cross_entropy(isa, &logits, vocab, &targets, 1.0 / rows as f32);
                check_cross_entropy(isa, &logits, vocab, &targets, -2.5);
                check_normalised(isa, &logits, vocab);
            }
        }
    }
}

/// The largest vocabulary the engine meets: the sum's error must not grow with V.
#[test]
fn vocabulary_of_100k_on_every_isa() {
    let mut rng = Rng(42);
    let vocab = 100_000;
    let logits: Vec<f32> = (0..2 * vocab).map(|_| 2.0 * rng.normal()).collect();
    for isa in Isa::available() {
        check_cross_entropy(isa, &logits, vocab, &[17, 99_999], 0.5);
        check_normalised(isa, &logits, vocab);
    }
}

#[test]
fn vocabulary_of_one_gives_zero_loss_and_gradient() {
    for isa in Isa::available() {
        let mut losses = [f32::NAN; 2];
        let mut d = [f32::NAN; 2];
        let grad = LogitsGrad {
            d_logits: &mut d,
            scale: 0.5,
        };
        softmax_cross_entropy_with_isa(isa, &[3.0, -1e30], 1, &[0, 0], &mut losses, Some(grad));
        assert_eq!(losses, [0.0, 0.0]);
        assert_eq!(d, [0.0, 0.0]);
        let mut out = [f32::NAN; 2];
        log_softmax_with_isa(isa, &[3.0, -1e30], 1, &mut out);
        assert_eq!(out, [0.0, 0.0]);
        softmax_with_isa(isa, &[3.0, -1e30], 1, &mut out);
        assert_eq!(out, [1.0, 1.0]);
    }
}

/// The documented behaviour for NaN and infinite logits; other rows are unaffected.
#[test]
fn non_finite_logits_on_every_isa() {
    let vocab = 20;
    let clean: Vec<f32> = (0..vocab).map(|j| j as f32 * 0.1).collect();
    let with = |j: usize, v: f32| {
        let mut row = clean.clone();
        row[j] = v;
        row
    };
    let mut neg_inf_row = clean.clone();
    neg_inf_row[3] = f32::NEG_INFINITY;
    neg_inf_row[4] = f32::NEG_INFINITY;
    for isa in Isa::available() {
        let run = |rows: &[Vec<f32>], targets: &[u32]| {
            let logits: Vec<f32> = rows.concat();
            let mut losses = vec![0.0; rows.len()];
            let mut d = vec![0.0; logits.len()];
            let grad = LogitsGrad {
                d_logits: &mut d,
                scale: 1.0,
            };
            softmax_cross_entropy_with_isa(isa, &logits, vocab, targets, &mut losses, Some(grad));
            let mut log_p = vec![0.0; logits.len()];
            log_softmax_with_isa(isa, &logits, vocab, &mut log_p);
            (losses, d, log_p)
        };
        // NaN in row 0 (at a tail position and a body position): row 0 all NaN, row 1 clean.
        for j in [0, 17, 19] {
            let (losses, d, log_p) = run(&[with(j, f32::NAN), clean.clone()], &[1, 1]);
            assert!(losses[0].is_nan(), "{isa}: NaN at {j} must give a NaN loss");
            assert!(d[..vocab].iter().all(|v| v.is_nan()));
            assert!(log_p[..vocab].iter().all(|v| v.is_nan()));
            assert!(losses[1].is_finite() && d[vocab..].iter().all(|v| v.is_finite()));
        }
        // +inf anywhere, or a row of only −inf: the row is NaN.
        let (losses, d, _) = run(&[with(5, f32::INFINITY)], &[5]);
        assert!(
            losses[0].is_nan() && d.iter().all(|v| v.is_nan()),
            "{isa}: +inf"
        );
        let (losses, _, _) = run(&[vec![f32::NEG_INFINITY; vocab]], &[0]);
        assert!(losses[0].is_nan(), "{isa}: all −inf");
        // −inf logits get probability 0; the loss is +inf if the target is one of them.
        let (losses, d, log_p) = run(&[neg_inf_row.clone(), neg_inf_row.clone()], &[7, 3]);
        let (want_loss, want_d) = reference::softmax_cross_entropy(&neg_inf_row, vocab, &[7], 1.0);
        assert!(
            (f64::from(losses[0]) - want_loss[0]).abs() < 1e-6,
            "{isa}: {}",
            losses[0]
        );
        assert_eq!(losses[1], f32::INFINITY);
        assert_eq!((d[3], d[4]), (0.0, 0.0));
        assert_eq!(d[vocab + 3], -1.0);
        assert!((f64::from(d[7]) - want_d[7]).abs() < 1e-7);
        assert_eq!(log_p[3], f32::NEG_INFINITY);
    }
}

#[test]
#[should_panic(expected = "target 5 of row 1 is out of range for V = 5")]
fn out_of_range_target_panics() {
    let mut losses = [0.0; 2];
    softmax_cross_entropy(&[0.0; 10], 5, &[0, 5], &mut losses, None);
}

#[test]
#[should_panic(expected = "logits must be (rows, V) = (2, 5) but has 9 elements")]
fn wrong_logits_length_panics() {
    let mut losses = [0.0; 2];
    softmax_cross_entropy(&[0.0; 9], 5, &[0, 1], &mut losses, None);
}

#[test]
#[should_panic(expected = "d_logits must be (rows, V)")]
fn wrong_gradient_length_panics() {
    let mut losses = [0.0; 2];
    let mut d = [0.0; 9];
    let grad = LogitsGrad {
        d_logits: &mut d,
        scale: 1.0,
    };
    softmax_cross_entropy(&[0.0; 10], 5, &[0, 1], &mut losses, Some(grad));
}

#[test]
#[should_panic(expected = "V must be at least 1")]
fn empty_vocabulary_panics() {
    log_softmax(&[], 0, &mut []);
}

#[test]
#[should_panic(expected = "not a whole number of rows of V = 4")]
fn ragged_logits_panic() {
    softmax(&[0.0; 7], 4, &mut [0.0; 7]);
}

#[test]
fn zero_rows_is_fine() {
    softmax_cross_entropy(&[], 7, &[], &mut [], None);
    log_softmax(&[], 7, &mut []);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arbitrary_rows_match_reference(
        vocab in 1usize..300,
        rows in 1usize..4,
        seed in any::<u64>(),
        spread in prop_oneof![Just(1.0f32), Just(20.0), Just(1e4)],
    ) {
        let mut rng = Rng(seed | 1);
        let logits: Vec<f32> = (0..rows * vocab).map(|_| spread * rng.normal()).collect();
        let targets: Vec<u32> = (0..rows).map(|_| rng.below(vocab)).collect();
        for isa in Isa::available() {
            check_cross_entropy(isa, &logits, vocab, &targets, 1.0 / rows as f32);
            check_normalised(isa, &logits, vocab);
        }
    }
}
