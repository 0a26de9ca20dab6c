use super::*;

/// xorshift64*, so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// A gradient-like value: mostly uniform at a random scale, sometimes ±0 or subnormal.
    fn gradient(&mut self) -> f32 {
        match self.next() % 16 {
            0 => 0.0,
            1 => -0.0,
            2 => self.signed() * 1e-39,
            _ => self.signed() * 10f32.powi((self.next() % 9) as i32 - 6),
        }
    }
}

/// No decay, L2 (PyTorch `weight_decay`), decoupled (AdamW / Keras `weight_decay`).
const DECAYS: [Decay; 3] = [
    Decay::NONE,
    Decay {
        l2: 0.01,
        shrink: 1.0,
    },
    Decay {
        l2: 0.0,
        shrink: 1.0 - 1e-3 * 0.004,
    },
];

/// Empty, shorter than a vector, around one and two AVX2 vectors, odd, and long.
const LENGTHS: [usize; 10] = [0, 1, 7, 8, 9, 15, 16, 17, 31, 1000];

#[derive(Clone)]
struct State {
    value: Vec<f32>,
    grad: Vec<f32>,
    mean: Vec<f32>,
    mean_square: Vec<f32>,
}

impl State {
    fn random(rng: &mut Rng, n: usize) -> Self {
        State {
            value: (0..n).map(|_| 2.0 * rng.signed()).collect(),
            grad: (0..n).map(|_| rng.gradient()).collect(),
            mean: (0..n).map(|_| 0.1 * rng.gradient()).collect(),
            mean_square: (0..n).map(|_| rng.gradient().abs() * 0.01).collect(),
        }
    }

    fn buffers(&mut self) -> AdamBuffers<'_> {
        AdamBuffers {
            value: &mut self.value,
            grad: &self.grad,
            mean: &mut self.mean,
            mean_square: &mut self.mean_square,
        }
    }

    fn bits(&self) -> [Vec<u32>; 3] {
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        [bits(&self.value), bits(&self.mean), bits(&self.mean_square)]
    }
}

fn steps() -> Vec<AdamStep> {
    let mut out = Vec::new();
    for form in [AdamForm::PyTorch, AdamForm::Keras] {
        // t = 1 and t = 50 with the defaults, and unusual betas.
        for (beta1, beta2, epsilon, t) in [
            (0.9f32, 0.999f32, 1e-8f32, 1),
            (0.9, 0.999, 1e-7, 50),
            (0.5, 0.75, 1e-3, 3),
        ] {
            let c1 = 1.0 - f64::from(beta1).powi(t);
            let c2 = 1.0 - f64::from(beta2).powi(t);
            let lr = 1e-3;
            let step_size = match form {
                AdamForm::PyTorch => lr / c1,
                AdamForm::Keras => lr * c2.sqrt() / c1,
            };
            out.push(AdamStep {
                form,
                beta1,
                beta2,
                epsilon,
                step_size: step_size as f32,
                correction2_sqrt: c2.sqrt() as f32,
            });
        }
    }
    out
}

#[test]
fn adam_matches_the_scalar_loop_bit_for_bit_on_every_isa() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for isa in Isa::ALL {
        if !isa.is_available() {
            eprintln!("skipping adam_update on {isa}: this CPU lacks it");
            continue;
        }
        for n in LENGTHS {
            for p in steps() {
                for decay in DECAYS {
                    let mut fast = State::random(&mut rng, n);
                    let mut slow = fast.clone();
                    // three steps, so the moments the later steps read are the kernel's own
                    for _ in 0..3 {
                        adam_update_with_isa(isa, &p, decay, fast.buffers());
                        adam_update_reference(&p, decay, slow.buffers());
                    }
                    assert_eq!(
                        fast.bits(),
                        slow.bits(),
                        "{isa} n={n} {p:?} {decay:?}: θ, m, v differ from the scalar loop"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn adam_moves_parameters_against_the_gradient() {
    // A sanity anchor for the reference itself: one Keras step from zero moments moves every
    // parameter by ≈ lr against the sign of its gradient.
    let p = steps()[3];
    assert_eq!(p.form, AdamForm::Keras);
    let mut s = State {
        value: vec![1.0; 9],
        grad: (0..9).map(|i| i as f32 - 4.0).collect(),
        mean: vec![0.0; 9],
        mean_square: vec![0.0; 9],
    };
    adam_update(&p, Decay::NONE, s.buffers());
    for (theta, g) in s.value.iter().zip(&s.grad) {
        let moved = 1.0 - theta;
        if *g == 0.0 {
            assert_eq!(moved, 0.0);
        } else {
            assert!(
                (moved - 1e-3 * g.signum()).abs() < 1e-5,
                "{moved} for g = {g}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "equal lengths")]
fn adam_refuses_buffers_of_different_lengths() {
    let mut s = State {
        value: vec![0.0; 4],
        grad: vec![0.0; 4],
        mean: vec![0.0; 3],
        mean_square: vec![0.0; 4],
    };
    adam_update(&steps()[0], Decay::NONE, s.buffers());
}

#[test]
fn rmsprop_matches_the_scalar_loop_bit_for_bit_on_every_isa() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut checked = 0;
    for isa in Isa::ALL {
        if !isa.is_available() {
            eprintln!("skipping rmsprop_update on {isa}: this CPU lacks it");
            continue;
        }
        for n in LENGTHS {
            for keras in [false, true] {
                for (centered, momentum) in [(false, 0.0), (true, 0.0), (false, 0.9), (true, 0.5)] {
                    let p = RmsPropStep {
                        keras,
                        rho: if keras { 0.9 } else { 0.99 },
                        epsilon: if keras { 1e-7 } else { 1e-8 },
                        momentum,
                        centered,
                        lr: 1e-3,
                    };
                    for decay in DECAYS {
                        let start = State::random(&mut rng, n);
                        // mean and momentum start small; v ≥ ḡ² keeps the centred root real
                        let mean: Vec<f32> = start.mean.iter().map(|m| 0.01 * m).collect();
                        let momentum: Vec<f32> = (0..n).map(|_| 1e-3 * rng.signed()).collect();
                        let run = |with: Option<Isa>| {
                            let mut value = start.value.clone();
                            let mut v = start.mean_square.clone();
                            let mut mean = if centered { mean.clone() } else { Vec::new() };
                            let mut b = if p.momentum == 0.0 {
                                Vec::new()
                            } else {
                                momentum.clone()
                            };
                            for _ in 0..3 {
                                let buffers = RmsPropBuffers {
                                    value: &mut value,
                                    grad: &start.grad,
                                    mean_square: &mut v,
                                    mean: &mut mean,
                                    momentum: &mut b,
                                };
                                match with {
                                    Some(isa) => rmsprop_update_with_isa(isa, &p, decay, buffers),
                                    None => rmsprop_update_reference(&p, decay, buffers),
                                }
                            }
                            [value, v, mean, b]
                                .map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
                        };
                        assert_eq!(
                            run(Some(isa)),
                            run(None),
                            "{isa} n={n} {p:?} {decay:?}: θ, v, ḡ, b differ from the scalar loop"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
#[should_panic(expected = "equal lengths")]
fn rmsprop_refuses_a_missing_momentum_buffer() {
    let p = RmsPropStep {
        keras: true,
        rho: 0.9,
        epsilon: 1e-7,
        momentum: 0.9,
        centered: false,
        lr: 1e-3,
    };
    let (mut value, mut v) = (vec![0.0; 4], vec![0.0; 4]);
    let buffers = RmsPropBuffers {
        value: &mut value,
        grad: &[0.0; 4],
        mean_square: &mut v,
        mean: &mut [],
        momentum: &mut [],
    };
    rmsprop_update(&p, Decay::NONE, buffers);
}
