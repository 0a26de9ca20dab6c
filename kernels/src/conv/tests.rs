//! Conv1D, ReLU and max pooling against the f64 oracle on every ISA path, adjointness of
//! im2col/col2im, central-difference gradient checks, thread-count determinism, and shape misuse.

use super::*;
use proptest::prelude::*;

/// f32 unit roundoff.
const U: f64 = 1.0 / 16_777_216.0;

/// Deterministic values in [-1, 1).
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// `|a − e| ≤ depth·u·bound + 1e-30` element-wise: the error bound of a sum of `depth` rounded
/// products and additions (Higham, Accuracy and Stability, §3.1: `|ŝ − s| ≤ γ_n Σ|a_i b_i|`),
/// where `bound` is the same sum over absolute values.
#[track_caller]
fn assert_within(what: &str, actual: &[f32], expected: &[f64], bound: &[f64], depth: usize) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, ((&a, &e), &m)) in actual.iter().zip(expected).zip(bound).enumerate() {
        let tol = (depth as f64 + 2.0) * U * m + 1e-30;
        assert!(
            (f64::from(a) - e).abs() <= tol,
            "{what}[{i}]: {a} vs {e} (tolerance {tol:e}, depth {depth})"
        );
    }
}

fn shape(
    steps: usize,
    batch: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Conv1dShape {
    Conv1dShape {
        steps,
        batch,
        in_channels: c_in,
        out_channels: c_out,
        kernel_width: k,
        stride,
        padding,
        dilation,
    }
}

/// Shapes around the GEMM's edges (MR = 6, NR = 16 on AVX2) and every geometry option.
fn shapes() -> Vec<Conv1dShape> {
    vec![
        shape(1, 1, 1, 1, 1, 1, 0, 1),
        shape(7, 3, 5, 4, 3, 1, 1, 1),
        shape(20, 2, 40, 17, 5, 1, 2, 1),
        shape(19, 5, 3, 33, 4, 2, 0, 1),
        shape(25, 4, 6, 16, 3, 3, 4, 2),
        shape(30, 1, 8, 9, 5, 2, 3, 3),
        shape(3, 2, 2, 3, 5, 1, 1, 1),
        shape(12, 7, 13, 1, 2, 5, 0, 4),
        // Padding wider than the kernel: the first and last outputs read only zeros.
        shape(5, 2, 3, 5, 2, 1, 4, 1),
        // K·C_in = 512 = KC (AVX2): the bias row of the forward B and the ones column of the
        // d_weight B fall into a KC slab of their own.
        shape(12, 3, 128, 20, 4, 1, 1, 1),
        // 630 output rows: several MC blocks, two d_weight chunks, odd channel counts.
        shape(70, 9, 7, 37, 3, 1, 1, 1),
    ]
}

/// Forward and backward of the fast path against the oracle, with error bounds.
fn check_against_reference(isa: Isa, par: Par, s: &Conv1dShape, seed: u64) {
    let x = data(s.input_len(), seed);
    let w = data(s.weight_len(), seed + 1);
    let bias = data(s.out_channels, seed + 2);
    let d_y = data(s.output_len(), seed + 3);
    let mut y = vec![f32::NAN; s.output_len()];
    conv1d_forward(isa, par, s, &x, &w, Some(&bias), &mut y);
    let expected = reference::conv1d_forward(s, &x, &w, Some(&bias));
    let bound = reference::conv1d_forward(s, &abs(&x), &abs(&w), Some(&abs(&bias)));
    assert_within(
        &format!("{isa} {s:?} y"),
        &y,
        &expected,
        &bound,
        s.col_width() + 1,
    );

    let mut d_w = vec![0.0f32; s.weight_len()];
    let mut d_b = vec![0.0f32; s.out_channels];
    let mut d_x = vec![f32::NAN; s.input_len()];
    conv1d_backward(
        isa,
        par,
        s,
        &x,
        &w,
        &d_y,
        Conv1dGrads {
            d_weight: &mut d_w,
            d_bias: Some(&mut d_b),
            d_input: Some(&mut d_x),
        },
    );
    let (e_dx, e_dw, e_db) = reference::conv1d_backward(s, &x, &w, &d_y);
    let (m_dx, m_dw, m_db) = reference::conv1d_backward(s, &abs(&x), &abs(&w), &abs(&d_y));
    let rows = s.steps_out() * s.batch;
    assert_within(&format!("{isa} {s:?} d_weight"), &d_w, &e_dw, &m_dw, rows);
    assert_within(&format!("{isa} {s:?} d_bias"), &d_b, &e_db, &m_db, rows);
    let depth = s.out_channels + s.kernel_width;
    assert_within(&format!("{isa} {s:?} d_input"), &d_x, &e_dx, &m_dx, depth);
}

#[test]
fn forward_and_backward_match_the_oracle_on_every_isa() {
    for isa in Isa::ALL {
        if !isa.is_available() {
            println!("skipping {isa}: not available on this CPU");
            continue;
        }
        for (i, s) in shapes().iter().enumerate() {
            check_against_reference(isa, Par::Seq, s, 10 * i as u64);
        }
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    // 2,400 output rows: several forward tasks, d_weight chunks and d_input step ranges; the
    // second shape strides and dilates.
    for s in [
        shape(300, 8, 12, 20, 5, 1, 2, 1),
        shape(400, 6, 5, 9, 3, 2, 3, 2),
    ] {
        check_thread_counts(&s);
    }
}

fn check_thread_counts(s: &Conv1dShape) {
    let s = *s;
    let x = data(s.input_len(), 1);
    let w = data(s.weight_len(), 2);
    let d_y = data(s.output_len(), 3);
    let bias = data(s.out_channels, 4);
    let run = |par: Par, with_bias: bool| {
        let bias = with_bias.then_some(&bias[..]);
        let mut y = vec![0.0; s.output_len()];
        conv1d_forward(Isa::active(), par, &s, &x, &w, bias, &mut y);
        let mut d_w = vec![0.0; s.weight_len()];
        let mut d_b = vec![0.0; s.out_channels];
        let mut d_x = vec![0.0; s.input_len()];
        conv1d_backward(
            Isa::active(),
            par,
            &s,
            &x,
            &w,
            &d_y,
            Conv1dGrads {
                d_weight: &mut d_w,
                d_bias: with_bias.then_some(&mut d_b[..]),
                d_input: Some(&mut d_x),
            },
        );
        (y, d_w, d_b, d_x)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for with_bias in [false, true] {
        let seq = run(Par::Seq, with_bias);
        let two = pool.install(|| run(Par::Rayon(2), with_bias));
        assert!(
            seq == two,
            "Par::Seq and Par::Rayon(2) differ (bias: {with_bias})"
        );
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    // <im2col(x), c> = <x, col2im(c)> for every geometry: the gather and the scatter agree.
    for s in shapes() {
        let x = data(s.input_len(), 5);
        let c = data(s.cols_len(), 6);
        let mut cols = vec![0.0; s.cols_len()];
        im2col(Par::Seq, &s, &x, &mut cols);
        let mut back = vec![f32::NAN; s.input_len()];
        col2im(Par::Seq, &s, &c, &mut back);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| f64::from(a * b)).sum();
        let rhs: f64 = x
            .iter()
            .zip(&back)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        assert!(
            (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
            "{s:?}: {lhs} vs {rhs}"
        );
    }
}

#[test]
fn gradients_match_central_differences() {
    // L = Σ r ⊙ y with a fixed r; central differences of the f64 oracle's L against the fast
    // backward (f32) for every input, weight and bias element.
    let s = shape(9, 2, 3, 4, 3, 2, 2, 2);
    let x = data(s.input_len(), 21);
    let w = data(s.weight_len(), 22);
    let bias = data(s.out_channels, 23);
    let r = data(s.output_len(), 24);
    let loss = |x: &[f32], w: &[f32], bias: &[f32]| -> f64 {
        let y = reference::conv1d_forward(&s, x, w, Some(bias));
        y.iter().zip(&r).map(|(y, &r)| y * f64::from(r)).sum()
    };
    let mut y = vec![0.0; s.output_len()];
    conv1d_forward(Isa::active(), Par::Seq, &s, &x, &w, Some(&bias), &mut y);
    let (mut d_w, mut d_b) = (vec![0.0; w.len()], vec![0.0; bias.len()]);
    let mut d_x = vec![0.0; x.len()];
    conv1d_backward(
        Isa::active(),
        Par::Seq,
        &s,
        &x,
        &w,
        &r,
        Conv1dGrads {
            d_weight: &mut d_w,
            d_bias: Some(&mut d_b),
            d_input: Some(&mut d_x),
        },
    );
    // h = 2^-6 keeps x ± h exact in f32 for |x| < 1, so the differences see exactly ±h.
    let h = 1.0f32 / 64.0;
    let check = |what: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
        for (i, &g) in analytic.iter().enumerate() {
            let numeric = (perturb(i, h) - perturb(i, -h)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(g)).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "{what}[{i}]: analytic {g} vs numeric {numeric}"
            );
        }
    };
    check("d_input", &d_x, &|i, h| {
        let mut x = x.clone();
        x[i] += h;
        loss(&x, &w, &bias)
    });
    check("d_weight", &d_w, &|i, h| {
        let mut w = w.clone();
        w[i] += h;
        loss(&x, &w, &bias)
    });
    check("d_bias", &d_b, &|i, h| {
        let mut b = bias.clone();
        b[i] += h;
        loss(&x, &w, &b)
    });
}

#[test]
fn weight_layout_conversions_round_trip() {
    let (c_out, c_in, k) = (3, 4, 5);
    let torch: Vec<f32> = (0..c_out * c_in * k).map(|i| i as f32).collect();
    let mut taps = vec![0.0; torch.len()];
    taps_from_pytorch(&torch, c_out, c_in, k, &mut taps);
    // W[o=1, c=2, k=3] (PyTorch) sits at taps[1, 3, 2].
    assert_eq!(taps[(k + 3) * c_in + 2], torch[(c_in + 2) * k + 3]);
    let mut back = vec![1.0; torch.len()];
    add_pytorch_from_taps(&taps, c_out, c_in, k, &mut back);
    let expected: Vec<f32> = torch.iter().map(|v| v + 1.0).collect();
    assert_eq!(back, expected);
}

#[test]
fn relu_forward_and_backward() {
    let mut x = vec![-2.0, -0.0, 0.0, 3.0, f32::NAN];
    relu_forward(&mut x);
    assert_eq!(&x[..4], &[0.0, -0.0, 0.0, 3.0]);
    assert!(x[4].is_nan());
    let mut d = vec![1.0; 5];
    relu_backward(&x, &mut d);
    assert_eq!(d, vec![0.0, 0.0, 0.0, 1.0, 1.0]);
}

fn pool_shape(
    steps: usize,
    batch: usize,
    channels: usize,
    k: usize,
    stride: usize,
) -> MaxPool1dShape {
    MaxPool1dShape {
        steps,
        batch,
        channels,
        kernel_width: k,
        stride,
    }
}

#[test]
fn max_pool_matches_the_oracle() {
    for s in [
        pool_shape(1, 1, 1, 1, 1),
        pool_shape(10, 3, 7, 2, 2),
        pool_shape(11, 2, 5, 3, 2),
        pool_shape(9, 4, 3, 4, 1),
        pool_shape(13, 1, 2, 3, 5),
    ] {
        let mut x = data(s.input_len(), 7);
        // Ties: the first maximum must win.
        x[0] = 0.5;
        if s.kernel_width > 1 {
            x[s.batch * s.channels] = 0.5;
        }
        let d_y = data(s.output_len(), 8);
        let mut y = vec![f32::NAN; s.output_len()];
        let mut argmax = vec![u32::MAX; s.output_len()];
        max_pool1d_forward(&s, &x, &mut y, &mut argmax);
        let (e_y, e_arg) = reference::max_pool1d_forward(&s, &x);
        assert_eq!(y, e_y, "{s:?}");
        assert_eq!(argmax, e_arg, "{s:?}");
        let mut d_x = vec![f32::NAN; s.input_len()];
        max_pool1d_backward(&s, &argmax, &d_y, &mut d_x);
        let e_dx = reference::max_pool1d_backward(&s, &x, &d_y);
        // Overlapping windows add at most K values: exact to a few ulps.
        assert_within(
            &format!("{s:?} d_x"),
            &d_x,
            &e_dx,
            &abs_f64(&e_dx),
            s.kernel_width,
        );
    }
}

fn abs_f64(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

#[test]
fn max_pool_propagates_nan() {
    let s = pool_shape(4, 1, 2, 2, 2);
    let x = [1.0, f32::NAN, f32::NAN, 0.0, 2.0, 3.0, 5.0, 4.0];
    let mut y = [0.0; 4];
    let mut argmax = [0; 4];
    max_pool1d_forward(&s, &x, &mut y, &mut argmax);
    assert!(y[0].is_nan() && y[1].is_nan());
    assert_eq!(&y[2..], &[5.0, 4.0]);
    assert_eq!(argmax, [1, 0, 3, 3]);
}

#[test]
fn max_pool_gradient_matches_central_differences() {
    let s = pool_shape(12, 2, 3, 3, 2);
    // Distinct values at least 0.01 apart, so a perturbation of 1e-3 never changes an argmax.
    let n = s.input_len();
    let x: Vec<f32> = (0..n).map(|i| ((i * 37) % n) as f32 * 0.01).collect();
    let r = data(s.output_len(), 9);
    let loss = |x: &[f32]| -> f64 {
        let (y, _) = reference::max_pool1d_forward(&s, x);
        y.iter()
            .zip(&r)
            .map(|(y, &r)| f64::from(*y) * f64::from(r))
            .sum()
    };
    let mut y = vec![0.0; s.output_len()];
    let mut argmax = vec![0; s.output_len()];
    max_pool1d_forward(&s, &x, &mut y, &mut argmax);
    let mut d_x = vec![0.0; n];
    max_pool1d_backward(&s, &argmax, &r, &mut d_x);
    let h = 1.0f32 / 1024.0;
    for i in 0..n {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[i] += h;
        minus[i] -= h;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(h));
        assert!(
            (numeric - f64::from(d_x[i])).abs() <= 1e-4,
            "d_x[{i}]: analytic {} vs numeric {numeric}",
            d_x[i]
        );
    }
}

#[test]
#[should_panic(expected = "span")]
fn kernel_wider_than_padded_input_panics() {
    let s = shape(3, 1, 1, 1, 4, 1, 0, 1);
    let _ = s.steps_out();
}

#[test]
#[should_panic(expected = "conv1d y")]
fn wrong_output_length_panics() {
    let s = shape(5, 1, 2, 2, 3, 1, 0, 1);
    let mut y = vec![0.0; s.output_len() + 1];
    conv1d_forward(
        Isa::Scalar,
        Par::Seq,
        &s,
        &[0.0; 10],
        &[0.0; 12],
        None,
        &mut y,
    );
}

#[test]
#[should_panic(expected = "outside its window")]
fn corrupt_argmax_panics() {
    let s = pool_shape(4, 1, 1, 2, 2);
    let mut d_x = [0.0; 4];
    max_pool1d_backward(&s, &[3, 3], &[1.0, 1.0], &mut d_x);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv_matches_the_oracle_for_random_shapes(
        steps in 1usize..24,
        batch in 1usize..5,
        c_in in 1usize..20,
        c_out in 1usize..24,
        k in 1usize..6,
        stride in 1usize..4,
        padding in 0usize..4,
        dilation in 1usize..4,
        seed in 0u64..1000,
    ) {
        let s = shape(steps, batch, c_in, c_out, k, stride, padding, dilation);
        prop_assume!(s.is_valid());
        for isa in Isa::available() {
            check_against_reference(isa, Par::Seq, &s, seed);
        }
    }

    #[test]
    fn max_pool_matches_the_oracle_for_random_shapes(
        steps in 1usize..30,
        batch in 1usize..4,
        channels in 1usize..10,
        k in 1usize..5,
        stride in 1usize..5,
        seed in 0u64..1000,
    ) {
        let s = pool_shape(steps, batch, channels, k, stride);
        prop_assume!(s.is_valid());
        let x = data(s.input_len(), seed);
        let mut y = vec![0.0; s.output_len()];
        let mut argmax = vec![0; s.output_len()];
        max_pool1d_forward(&s, &x, &mut y, &mut argmax);
        let (e_y, e_arg) = reference::max_pool1d_forward(&s, &x);
        prop_assert_eq!(y, e_y);
        prop_assert_eq!(argmax, e_arg);
    }
}
