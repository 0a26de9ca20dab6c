//! Accuracy of the activations against the f64 references, on every ISA path the host runs.

use super::*;
use proptest::prelude::*;

type SliceFn = fn(Isa, &[f32], &mut [f32]);

/// One activation under test: the fast slice kernel, its f64 reference and its documented bounds.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    fast: SliceFn,
    reference: fn(f64) -> f64,
    /// Bound on the absolute error over finite inputs (`None`: not bounded, exp grows unboundedly).
    max_abs: Option<f64>,
    /// Bound on the relative error where the exact result is a normal f32.
    max_rel: f64,
}

const CASES: [Case; 3] = [
    Case {
        name: "exp",
        fast: exp_to_with_isa,
        reference: reference::exp,
        max_abs: None,
        max_rel: EXP_MAX_REL_ERROR,
    },
    Case {
        name: "sigmoid",
        fast: sigmoid_to_with_isa,
        reference: reference::sigmoid,
        max_abs: Some(SIGMOID_MAX_ABS_ERROR),
        max_rel: SIGMOID_MAX_REL_ERROR,
    },
    Case {
        name: "tanh",
        fast: tanh_to_with_isa,
        reference: reference::tanh,
        max_abs: Some(TANH_MAX_ABS_ERROR),
        max_rel: TANH_MAX_REL_ERROR,
    },
];

/// The smallest positive subnormal f32, as f64.
const SUBNORMAL_STEP: f64 = 1.401_298_464_324_817e-45;

/// The worst errors seen, with the inputs that produced them.
#[derive(Clone, Copy, Debug, Default)]
struct ErrorStats {
    max_abs: f64,
    max_abs_at: f32,
    max_rel: f64,
    max_rel_at: f32,
}

impl ErrorStats {
    fn merge(mut self, other: ErrorStats) -> ErrorStats {
        if other.max_abs > self.max_abs {
            self.max_abs = other.max_abs;
            self.max_abs_at = other.max_abs_at;
        }
        if other.max_rel > self.max_rel {
            self.max_rel = other.max_rel;
            self.max_rel_at = other.max_rel_at;
        }
        self
    }
}

/// Checks one output against the reference and folds its error into `stats`. Panics with the
/// input on a violated contract (NaN handling, overflow, sign, bound).
fn check_one(case: &Case, isa: Isa, x: f32, got: f32, stats: &mut ErrorStats) {
    let want = (case.reference)(f64::from(x));
    let context = || format!("{}({x:e} = {:#010x}) on {isa}", case.name, x.to_bits());
    if x.is_nan() {
        assert!(
            got.is_nan(),
            "{}: NaN in must give NaN, got {got:e}",
            context()
        );
        return;
    }
    assert!(!got.is_nan(), "{}: gave NaN", context());
    if want.is_infinite() || want > f64::from(f32::MAX) {
        // Only exp overflows. Past f32::MAX·(1 + bound) the result must be +inf.
        let must_overflow = want > f64::from(f32::MAX) * (1.0 + case.max_rel);
        assert!(
            got == f32::INFINITY || (!must_overflow && f64::from(got) <= f64::from(f32::MAX)),
            "{}: want {want:e} (overflow), got {got:e}",
            context()
        );
        return;
    }
    let got = f64::from(got);
    if got.is_infinite() {
        assert!(
            want * (1.0 + case.max_rel) >= f64::from(f32::MAX),
            "{}: overflowed to {got:e}, want {want:e}",
            context()
        );
        return;
    }
    let abs = (got - want).abs();
    if x.is_finite() && abs > stats.max_abs {
        stats.max_abs = abs;
        stats.max_abs_at = x;
    }
    if let Some(bound) = case.max_abs {
        assert!(
            abs <= bound,
            "{}: absolute error {abs:e} > {bound:e} (got {got:e}, want {want:e})",
            context()
        );
    }
    if want.abs() >= f64::from(f32::MIN_POSITIVE) {
        let rel = abs / want.abs();
        if rel > stats.max_rel {
            stats.max_rel = rel;
            stats.max_rel_at = x;
        }
        assert!(
            rel <= case.max_rel,
            "{}: relative error {rel:e} > {:e} (got {got:e}, want {want:e})",
            context(),
            case.max_rel
        );
    } else {
        // Subnormal range: one subnormal step of rounding plus the relative bound.
        let bound = SUBNORMAL_STEP + case.max_rel * want.abs();
        assert!(
            abs <= bound,
            "{}: subnormal-range error {abs:e} > {bound:e} (got {got:e}, want {want:e})",
            context()
        );
    }
}

/// Runs `case` on `isa` over `inputs`, checks every output, and returns the worst errors.
fn sweep(case: &Case, isa: Isa, inputs: &[f32]) -> ErrorStats {
    let mut out = vec![0.0f32; inputs.len()];
    (case.fast)(isa, inputs, &mut out);
    let mut stats = ErrorStats::default();
    for (&x, &got) in inputs.iter().zip(&out) {
        check_one(case, isa, x, got, &mut stats);
    }
    stats
}

/// Every `step`-th f32 bit pattern over the whole 32-bit space (both signs, NaNs, infinities,
/// subnormals), plus a fine uniform sweep of [−20, 20] and the neighbourhood of the thresholds.
fn dense_inputs(step: u32) -> Vec<f32> {
    let mut inputs: Vec<f32> = (0..=u32::MAX / step)
        .map(|i| f32::from_bits(i * step))
        .collect();
    inputs.extend((-20 * 8192..=20 * 8192).map(|i| i as f32 / 8192.0));
    for t in [
        TANH_POLY_LIMIT,
        0.5 * TANH_POLY_LIMIT,
        88.72,
        -87.33,
        -103.97,
        9.0,
        -9.0,
        17.0,
    ] {
        let bits = t.to_bits();
        inputs.extend((bits - 2000..bits + 2000).map(f32::from_bits));
        inputs.extend((bits - 2000..bits + 2000).map(|b| -f32::from_bits(b)));
    }
    inputs
}

/// Dense sweep, against the reference, on every ISA path the host runs. Every path must also give
/// bit-identical results to the portable one: they run the same operations (FMA, IEEE division,
/// round-to-even), so a difference means an ISA-specific method is wrong.
#[test]
fn dense_sweep_against_reference_on_every_isa() {
    // An odd step visits varied mantissas and every exponent.
    let inputs = dense_inputs(4099);
    for case in &CASES {
        let mut portable = vec![0.0f32; inputs.len()];
        (case.fast)(Isa::Scalar, &inputs, &mut portable);
        for isa in Isa::ALL {
            if !isa.is_available() {
                eprintln!("skipping {} on {isa}: this CPU lacks it", case.name);
                continue;
            }
            let stats = sweep(case, isa, &inputs);
            eprintln!("{} on {isa}: {stats:?}", case.name);
            let mut out = vec![0.0f32; inputs.len()];
            (case.fast)(isa, &inputs, &mut out);
            for ((x, a), b) in inputs.iter().zip(&out).zip(&portable) {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{}({x:e}): {isa} gave {a:e}, portable {b:e}",
                    case.name
                );
            }
        }
    }
}

/// Saturation, infinities, zeros and NaN, exactly.
#[test]
fn special_values_on_every_isa() {
    #[rustfmt::skip]
    let table: [(&str, f32, f32); 28] = [
        ("exp", f32::INFINITY, f32::INFINITY),
        ("exp", f32::NEG_INFINITY, 0.0),
        ("exp", 0.0, 1.0),
        ("exp", -0.0, 1.0),
        ("exp", 89.0, f32::INFINITY),
        ("exp", 1e30, f32::INFINITY),
        ("exp", f32::MAX, f32::INFINITY),
        ("exp", -104.0, 0.0),
        ("exp", f32::MIN, 0.0),
        ("sigmoid", f32::INFINITY, 1.0),
        ("sigmoid", f32::NEG_INFINITY, 0.0),
        ("sigmoid", 0.0, 0.5),
        ("sigmoid", -0.0, 0.5),
        ("sigmoid", 20.0, 1.0),
        ("sigmoid", f32::MAX, 1.0),
        ("sigmoid", -104.0, 0.0),
        ("sigmoid", f32::MIN, 0.0),
        ("tanh", f32::INFINITY, 1.0),
        ("tanh", f32::NEG_INFINITY, -1.0),
        ("tanh", 0.0, 0.0),
        ("tanh", -0.0, -0.0),
        ("tanh", 10.0, 1.0),
        ("tanh", -10.0, -1.0),
        ("tanh", f32::MAX, 1.0),
        ("tanh", f32::MIN, -1.0),
        ("tanh", 1e-30, 1e-30),
        ("tanh", -1e-40, -1e-40),
        ("tanh", f32::MIN_POSITIVE, f32::MIN_POSITIVE),
    ];
    for isa in Isa::available() {
        for (name, x, want) in table {
            let case = CASES.iter().find(|c| c.name == name).unwrap();
            let mut got = [0.0f32];
            (case.fast)(isa, &[x], &mut got);
            assert_eq!(
                got[0].to_bits(),
                want.to_bits(),
                "{name}({x:e}) on {isa}: got {:e}, want {want:e}",
                got[0]
            );
        }
        for case in &CASES {
            for nan in [
                f32::NAN,
                -f32::NAN,
                f32::from_bits(0x7f80_0001),
                f32::from_bits(0xffc0_1234),
            ] {
                let mut got = [0.0f32];
                (case.fast)(isa, &[nan], &mut got);
                assert!(
                    got[0].is_nan(),
                    "{}(NaN) on {isa} gave {:e}",
                    case.name,
                    got[0]
                );
            }
        }
        // exp's subnormal range is produced, not flushed.
        let mut got = [0.0f32];
        exp_to_with_isa(isa, &[-100.0], &mut got);
        assert!(
            got[0] > 0.0 && got[0] < f32::MIN_POSITIVE,
            "exp(-100) on {isa} = {:e}",
            got[0]
        );
    }
}

/// tanh is odd bit for bit; sigmoid(−x) = 1 − sigmoid(x) within the absolute bound.
#[test]
fn symmetries_on_every_isa() {
    let xs: Vec<f32> = (0..200_000).map(|i| i as f32 * 1e-4).collect();
    let neg: Vec<f32> = xs.iter().map(|x| -x).collect();
    for isa in Isa::available() {
        let (mut a, mut b) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        tanh_to_with_isa(isa, &xs, &mut a);
        tanh_to_with_isa(isa, &neg, &mut b);
        for ((x, p), m) in xs.iter().zip(&a).zip(&b) {
            assert_eq!(
                (-p).to_bits(),
                m.to_bits(),
                "tanh not odd at {x:e} on {isa}"
            );
        }
        sigmoid_to_with_isa(isa, &xs, &mut a);
        sigmoid_to_with_isa(isa, &neg, &mut b);
        for ((x, p), m) in xs.iter().zip(&a).zip(&b) {
            let gap = (f64::from(*p) + f64::from(*m) - 1.0).abs();
            assert!(
                gap <= 2.0 * SIGMOID_MAX_ABS_ERROR,
                "sigmoid({x:e}) + sigmoid(-x) - 1 = {gap:e} on {isa}"
            );
        }
    }
}

/// In place and src→dst agree, every length (tails of every size) gives the per-element result,
/// and nothing past the end is written.
#[test]
fn lengths_tails_and_in_place_on_every_isa() {
    let data: Vec<f32> = (0..70).map(|i| (i as f32 - 35.0) * 0.37).collect();
    for isa in Isa::available() {
        for case in &CASES {
            let mut single = vec![0.0f32; data.len()];
            for (x, y) in data.iter().zip(single.iter_mut()) {
                (case.fast)(isa, std::slice::from_ref(x), std::slice::from_mut(y));
            }
            for n in 0..=data.len() {
                let mut dst = vec![-9.0f32; data.len()];
                (case.fast)(isa, &data[..n], &mut dst[..n]);
                assert_eq!(&dst[..n], &single[..n], "{} len {n} on {isa}", case.name);
                assert!(
                    dst[n..].iter().all(|&v| v == -9.0),
                    "{} wrote past {n}",
                    case.name
                );
            }
        }
        for n in 0..=data.len() {
            let mut x = data[..n].to_vec();
            tanh_with_isa(isa, &mut x);
            let mut y = vec![0.0; n];
            tanh_to_with_isa(isa, &data[..n], &mut y);
            assert_eq!(x, y, "tanh in place, len {n} on {isa}");
        }
        let mut x = data.clone();
        exp_with_isa(isa, &mut x);
        let mut y = vec![0.0; data.len()];
        exp_to_with_isa(isa, &data, &mut y);
        assert_eq!(x, y);
        let mut x = data.clone();
        sigmoid_with_isa(isa, &mut x);
        sigmoid_to_with_isa(isa, &data, &mut y);
        assert_eq!(x, y);
        let mut x = data.clone();
        tanh_with_isa(isa, &mut x);
        tanh_to_with_isa(isa, &data, &mut y);
        assert_eq!(x, y);
    }
}

#[test]
#[should_panic(expected = "src has 3 elements but dst has 2")]
fn length_mismatch_panics() {
    tanh_to(&[1.0, 2.0, 3.0], &mut [0.0; 2]);
}

#[test]
fn default_dispatch_matches_the_active_path() {
    let data: Vec<f32> = (0..37).map(|i| i as f32 * 0.3 - 5.0).collect();
    let (mut a, mut b) = (data.clone(), data.clone());
    sigmoid(&mut a);
    sigmoid_with_isa(Isa::active(), &mut b);
    assert_eq!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary f32 bit patterns (NaN, inf, subnormals included), arbitrary lengths.
    #[test]
    fn arbitrary_inputs_meet_the_bounds(bits in prop::collection::vec(any::<u32>(), 0..80)) {
        let inputs: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
        for isa in Isa::available() {
            for case in &CASES {
                sweep(case, isa, &inputs);
            }
        }
    }

    /// Inputs in the range the RNN cells actually see.
    #[test]
    fn moderate_inputs_meet_the_bounds(inputs in prop::collection::vec(-30.0f32..30.0, 0..80)) {
        for isa in Isa::available() {
            for case in &CASES {
                sweep(case, isa, &inputs);
            }
        }
    }
}

/// All 2^32 bit patterns on every available path; prints the measured maxima that the module docs
/// state. Takes minutes: `cargo test -p recur-kernels --release exhaustive -- --ignored --nocapture`.
#[test]
#[ignore]
fn exhaustive_all_f32() {
    use rayon::prelude::*;
    const CHUNK: u64 = 1 << 20;
    for isa in Isa::available() {
        for case in &CASES {
            let stats = (0..(1u64 << 32) / CHUNK)
                .into_par_iter()
                .map(|c| {
                    let inputs: Vec<f32> = (c * CHUNK..(c + 1) * CHUNK)
                        .map(|b| f32::from_bits(b as u32))
                        .collect();
                    sweep(case, isa, &inputs)
                })
                .reduce(ErrorStats::default, ErrorStats::merge);
            println!(
                "exhaustive {} on {isa}: max abs {:.3e} at {:e}, max rel {:.3e} at {:e}",
                case.name, stats.max_abs, stats.max_abs_at, stats.max_rel, stats.max_rel_at
            );
        }
    }
}
