//! Optimiser steps against values computed by hand (in f64 from the formulas in the module
//! docs, so each expected value reads as its derivation), state round trips, and errors.

use super::*;

/// Runs `steps` steps on one scalar parameter `theta0` with the given gradients (fixed, not
/// functions of θ) and returns θ after each step.
fn run_scalar(config: OptimizerConfig, theta0: f32, grads: &[f32]) -> Vec<f32> {
    let mut opt = Optimizer::new(config).expect("valid config");
    let mut theta = vec![theta0];
    grads
        .iter()
        .map(|&g| {
            opt.step(&mut [Param::new("w", &mut theta, &[g])])
                .expect("step");
            theta[0]
        })
        .collect()
}

/// f32 arithmetic against an f64 hand value: a few f32 roundings of O(1) numbers.
fn assert_near(what: &str, got: &[f32], expected: &[f64]) {
    assert_eq!(got.len(), expected.len());
    for (k, (&g, &e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (f64::from(g) - e).abs() <= 2e-7 * (1.0 + e.abs()),
            "{what} step {}: got {g}, expected {e}",
            k + 1
        );
    }
}

fn sgd(momentum: SgdMomentum, convention: Convention) -> OptimizerConfig {
    OptimizerConfig {
        algorithm: Algorithm::Sgd { momentum },
        learning_rate: 0.1,
        weight_decay: WeightDecay::None,
        schedule: LrSchedule::Constant,
        convention,
    }
}

#[test]
fn plain_sgd_steps_against_the_gradient() {
    let mut opt = Optimizer::new(sgd(SgdMomentum::None, Convention::PyTorch)).unwrap();
    let mut w = vec![1.0f32, -2.0];
    opt.step(&mut [Param::new("w", &mut w, &[0.5, 1.0])])
        .unwrap();
    assert_near("sgd", &w, &[1.0 - 0.05, -2.0 - 0.1]);
    assert_eq!(opt.steps(), 1);
}

/// PyTorch, μ = 0.9, τ = 0.1, lr = 0.1, g = (1, 2):
/// b₁ = g₁ = 1 (first step: no dampening), θ₁ = 1 − 0.1 = 0.9;
/// b₂ = 0.9·1 + 0.9·2 = 2.7, θ₂ = 0.9 − 0.27 = 0.63.
#[test]
fn pytorch_momentum_with_dampening() {
    let momentum = SgdMomentum::Classical {
        momentum: 0.9,
        dampening: 0.1,
    };
    let got = run_scalar(sgd(momentum, Convention::PyTorch), 1.0, &[1.0, 2.0]);
    assert_near("momentum", &got, &[0.9, 0.63]);
}

/// Nesterov, μ = 0.9, lr = 0.1, g = (1, 2). PyTorch: b₁ = 1, θ₁ = 1 − 0.1·(1 + 0.9) = 0.81;
/// b₂ = 0.9 + 2 = 2.9, θ₂ = 0.81 − 0.1·(2 + 2.61) = 0.349. Keras: v₁ = −0.1,
/// θ₁ = 1 + 0.9·(−0.1) − 0.1 = 0.81; v₂ = −0.09 − 0.2 = −0.29, θ₂ = 0.81 − 0.261 − 0.2 = 0.349.
#[test]
fn nesterov_agrees_between_conventions_at_constant_rate() {
    let nesterov = SgdMomentum::Nesterov { momentum: 0.9 };
    for convention in [Convention::PyTorch, Convention::Keras] {
        let got = run_scalar(sgd(nesterov, convention), 1.0, &[1.0, 2.0]);
        assert_near(&format!("{convention:?}"), &got, &[0.81, 0.349]);
    }
}

/// With the rate halved after the first step (lr 0.1 then 0.05), μ = 0.9, g = (1, 2):
/// PyTorch b₂ = 2.9, θ₂ = 0.9 − 0.05·2.9 = 0.755; Keras v₂ = 0.9·(−0.1) − 0.05·2 = −0.19,
/// θ₂ = 0.9 − 0.19 = 0.71 — Keras's velocity remembers the old rate.
#[test]
fn momentum_conventions_differ_when_the_rate_changes() {
    let momentum = SgdMomentum::Classical {
        momentum: 0.9,
        dampening: 0.0,
    };
    let halve = LrSchedule::Step {
        every: 1,
        gamma: 0.5,
        delay: 0,
    };
    let torch = sgd(momentum, Convention::PyTorch).with_schedule(halve);
    let keras = sgd(momentum, Convention::Keras).with_schedule(halve);
    assert_near(
        "pytorch",
        &run_scalar(torch, 1.0, &[1.0, 2.0]),
        &[0.9, 0.755],
    );
    assert_near("keras", &run_scalar(keras, 1.0, &[1.0, 2.0]), &[0.9, 0.71]);
}

/// Keras's documented example (`keras.optimizers.RMSprop` docstring): lr 0.1, w = 10,
/// loss w²/2 so g = w: v = 0.1·100 = 10, w = 10 − 0.1·10/√(10 + 1e-7) = 9.683772.
/// A second step with g = w₁: v₂ = 0.9·10 + 0.1·w₁², w₂ = w₁ − 0.1·w₁/√(v₂ + 1e-7).
#[test]
fn keras_rmsprop_doc_example() {
    let mut opt = Optimizer::new(OptimizerConfig::keras_rmsprop().with_learning_rate(0.1)).unwrap();
    let mut w = vec![10.0f32];
    let g = w.clone();
    opt.step(&mut [Param::new("w", &mut w, &g)]).unwrap();
    let w1 = 10.0 - 0.1 * 10.0 / (10.0f64 + 1e-7).sqrt();
    assert_near("step 1", &w, &[w1]);
    assert!((w[0] - 9.683772).abs() < 1e-6);
    let g = w.clone();
    opt.step(&mut [Param::new("w", &mut w, &g)]).unwrap();
    let v2 = 0.9 * 10.0 + 0.1 * w1 * w1;
    assert_near("step 2", &w, &[w1 - 0.1 * w1 / (v2 + 1e-7).sqrt()]);
}

fn rmsprop(convention: Convention, momentum: f32, centered: bool) -> OptimizerConfig {
    OptimizerConfig {
        algorithm: Algorithm::RmsProp {
            rho: 0.75,
            epsilon: 0.01,
            momentum,
            centered,
        },
        learning_rate: 1.0,
        weight_decay: WeightDecay::None,
        schedule: LrSchedule::Constant,
        convention,
    }
}

/// ρ = 0.75, ε = 0.01, lr = 1, g = 0.2: v = 0.25·0.04 = 0.01.
/// PyTorch: θ = 1 − 0.2/(√0.01 + 0.01) = 1 − 0.2/0.11; Keras: θ = 1 − 0.2/√(0.01 + 0.01).
/// Centred (PyTorch): ḡ = 0.25·0.2 = 0.05, v' = 0.01 − 0.0025, θ = 1 − 0.2/(√0.0075 + 0.01).
#[test]
fn rmsprop_epsilon_placement() {
    let torch = run_scalar(rmsprop(Convention::PyTorch, 0.0, false), 1.0, &[0.2]);
    assert_near("pytorch", &torch, &[1.0 - 0.2 / 0.11]);
    let keras = run_scalar(rmsprop(Convention::Keras, 0.0, false), 1.0, &[0.2]);
    assert_near("keras", &keras, &[1.0 - 0.2 / 0.02f64.sqrt()]);
    let centered = run_scalar(rmsprop(Convention::PyTorch, 0.0, true), 1.0, &[0.2]);
    assert_near(
        "centred",
        &centered,
        &[1.0 - 0.2 / (0.0075f64.sqrt() + 0.01)],
    );
    let keras_centered = run_scalar(rmsprop(Convention::Keras, 0.0, true), 1.0, &[0.2]);
    assert_near(
        "keras centred",
        &keras_centered,
        &[1.0 - 0.2 / 0.0175f64.sqrt()],
    );
}

/// Momentum 0.5, two steps of g = 0.2 (ρ 0.75, ε 0.01, lr 1): v₁ = 0.01,
/// v₂ = 0.75·0.01 + 0.25·0.04 = 0.0175. PyTorch: b₁ = 0.2/0.11, b₂ = 0.5·b₁ + 0.2/(√0.0175 + 0.01),
/// θ₂ = 1 − b₁ − b₂. Keras: m₁ = 0.2/√0.02, m₂ = 0.5·m₁ + 0.2/√0.0275, θ₂ = 1 − m₁ − m₂.
#[test]
fn rmsprop_momentum_two_steps() {
    let b1 = 0.2 / 0.11;
    let b2 = 0.5 * b1 + 0.2 / (0.0175f64.sqrt() + 0.01);
    let torch = run_scalar(rmsprop(Convention::PyTorch, 0.5, false), 1.0, &[0.2, 0.2]);
    assert_near("pytorch", &torch, &[1.0 - b1, 1.0 - b1 - b2]);
    let m1 = 0.2 / 0.02f64.sqrt();
    let m2 = 0.5 * m1 + 0.2 / 0.0275f64.sqrt();
    let keras = run_scalar(rmsprop(Convention::Keras, 0.5, false), 1.0, &[0.2, 0.2]);
    assert_near("keras", &keras, &[1.0 - m1, 1.0 - m1 - m2]);
}

fn adam(convention: Convention, epsilon: f32, decay: WeightDecay) -> OptimizerConfig {
    OptimizerConfig {
        algorithm: Algorithm::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon,
        },
        learning_rate: 0.1,
        weight_decay: decay,
        schedule: LrSchedule::Constant,
        convention,
    }
}

/// lr 0.1, β (0.9, 0.999), ε = 0.1 (large, so the placement shows), g = (0.5, −1), θ₀ = 1.
/// Step 1: m = 0.05, v = 0.00025, 1 − β₁ = 0.1, 1 − β₂ = 0.001.
/// - PyTorch: θ₁ = 1 − (0.1/0.1)·0.05/(√0.00025/√0.001 + 0.1) = 1 − 0.05/0.6.
/// - Keras: α = 0.1·√0.001/0.1 = √0.001, θ₁ = 1 − √0.001·0.05/(√0.00025 + 0.1).
///
/// Step 2 (PyTorch): m = 0.045 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001 = 0.00124975,
/// 1 − β₁² = 0.19, 1 − β₂² = 0.001999: θ₂ = θ₁ + (0.1/0.19)·0.055/(√0.00124975/√0.001999 + 0.1).
#[test]
fn adam_steps_and_epsilon_placement() {
    let torch = run_scalar(
        adam(Convention::PyTorch, 0.1, WeightDecay::None),
        1.0,
        &[0.5, -1.0],
    );
    let t1 = 1.0 - 0.05 / 0.6;
    let t2 = t1 + (0.1 / 0.19) * 0.055 / ((0.00124975f64 / 0.001999).sqrt() + 0.1);
    assert_near("pytorch", &torch, &[t1, t2]);

    let keras = run_scalar(adam(Convention::Keras, 0.1, WeightDecay::None), 1.0, &[0.5]);
    let k1 = 1.0 - 0.001f64.sqrt() * 0.05 / (0.00025f64.sqrt() + 0.1);
    assert_near("keras", &keras, &[k1]);
}

/// With the default ε both conventions take the textbook first step `lr·sign(g)`:
/// θ₁ = 1 − 0.1·0.5/(0.5 + ε·…) ≈ 0.9.
#[test]
fn adam_first_step_is_about_the_learning_rate() {
    for config in [
        OptimizerConfig::pytorch_adam(),
        OptimizerConfig::keras_adam(),
    ] {
        let got = run_scalar(config.with_learning_rate(0.1), 1.0, &[0.5]);
        assert!((got[0] - 0.9).abs() < 1e-5, "{config:?}: {got:?}");
    }
}

/// L2 vs decoupled weight decay under Adam (PyTorch convention, lr 0.1, ε 0.1, λ = 1, θ₀ = 1,
/// g = 0.5):
/// - L2: g' = 0.5 + 1 = 1.5, m = 0.15, v = 0.00225, θ₁ = 1 − 0.15/(√2.25 + 0.1) = 1 − 0.15/1.6;
/// - decoupled (AdamW): θ ← 1·(1 − 0.1·1) = 0.9, then θ₁ = 0.9 − 0.05/0.6.
#[test]
fn l2_and_decoupled_weight_decay_differ_under_adam() {
    let l2 = run_scalar(
        adam(Convention::PyTorch, 0.1, WeightDecay::L2(1.0)),
        1.0,
        &[0.5],
    );
    assert_near("L2", &l2, &[1.0 - 0.15 / 1.6]);
    let decoupled = adam(Convention::PyTorch, 0.1, WeightDecay::Decoupled(1.0));
    assert_near(
        "AdamW",
        &run_scalar(decoupled, 1.0, &[0.5]),
        &[0.9 - 0.05 / 0.6],
    );
}

/// A tensor exempt from weight decay takes the plain step while its neighbour decays:
/// SGD lr 0.1, decoupled λ = 1, g = 0: the decayed θ = 1 becomes 0.9, the exempt one stays 1.
#[test]
fn weight_decay_can_be_switched_off_per_tensor() {
    let config = OptimizerConfig::pytorch_sgd()
        .with_learning_rate(0.1)
        .with_weight_decay(WeightDecay::Decoupled(1.0));
    let mut opt = Optimizer::new(config).unwrap();
    let (mut weight, mut bias) = (vec![1.0f32], vec![1.0f32]);
    opt.step(&mut [
        Param::new("weight", &mut weight, &[0.0]),
        Param::new("bias", &mut bias, &[0.0]).without_weight_decay(),
    ])
    .unwrap();
    assert_eq!((weight[0], bias[0]), (0.9, 1.0));
}

#[test]
fn schedules_by_hand() {
    let lr = |schedule: LrSchedule, step: u64| f64::from(schedule.learning_rate(0.8, step));
    let step = LrSchedule::Step {
        every: 10,
        gamma: 0.5,
        delay: 0,
    };
    assert_eq!(
        (lr(step, 0), lr(step, 9), lr(step, 10)),
        (0.8f32.into(), 0.8f32.into(), 0.4f32.into())
    );
    assert_eq!(lr(step, 25), f64::from(0.2f32));
    // char-rnn: 100 steps per epoch, decay 0.97 from the end of epoch 10 on
    let char_rnn = LrSchedule::Step {
        every: 100,
        gamma: 0.97,
        delay: 900,
    };
    assert_eq!(lr(char_rnn, 999), f64::from(0.8f32));
    // the schedule works in f64 on the f32 inputs widened, and rounds once
    let (base, gamma) = (f64::from(0.8f32), f64::from(0.97f32));
    assert_eq!(lr(char_rnn, 1000), f64::from((base * gamma) as f32));
    assert_eq!(lr(char_rnn, 1100), f64::from((base * gamma * gamma) as f32));
    let exponential = LrSchedule::Exponential {
        decay_steps: 100,
        decay_rate: 0.5,
    };
    assert_eq!(lr(exponential, 200), f64::from(0.2f32));
    assert_eq!(
        lr(exponential, 50),
        f64::from((base * 0.5f64.sqrt()) as f32)
    );
    let inverse = LrSchedule::InverseTime {
        decay_steps: 1,
        decay_rate: 0.5,
    };
    assert_eq!(lr(inverse, 2), f64::from(0.4f32));
}

#[test]
fn the_optimizer_follows_its_schedule() {
    let schedule = LrSchedule::Step {
        every: 2,
        gamma: 0.1,
        delay: 0,
    };
    let config = OptimizerConfig::pytorch_sgd()
        .with_learning_rate(1.0)
        .with_schedule(schedule);
    // θ drops by lr·g = 1, 1, 0.1, 0.1
    let got = run_scalar(config, 0.0, &[1.0; 4]);
    assert_near("scheduled", &got, &[-1.0, -2.0, -2.1, -2.2]);
}

/// Three parameters, five steps of pseudo-random gradients: stopping after three, saving the
/// state (JSON, and as named buffers), and resuming gives the same bits as running through.
#[test]
fn resumed_state_continues_bit_identically() {
    let names = ["weight_ih_l0", "weight_hh_l0", "bias"];
    let sizes = [7usize, 5, 3];
    let gradient =
        |step: usize, p: usize, i: usize| ((step * 31 + p * 7 + i * 3) % 11) as f32 * 0.1 - 0.5;
    let configs = [
        OptimizerConfig::keras_adam(),
        OptimizerConfig::pytorch_adamw(),
        OptimizerConfig::keras_rmsprop(),
        OptimizerConfig {
            algorithm: Algorithm::RmsProp {
                rho: 0.9,
                epsilon: 1e-8,
                momentum: 0.5,
                centered: true,
            },
            ..OptimizerConfig::pytorch_rmsprop()
        },
        sgd(SgdMomentum::Nesterov { momentum: 0.9 }, Convention::PyTorch),
    ];
    for config in configs {
        let run =
            |opt: &mut Optimizer, values: &mut Vec<Vec<f32>>, steps: std::ops::Range<usize>| {
                for step in steps {
                    let grads: Vec<Vec<f32>> = (0..3)
                        .map(|p| (0..sizes[p]).map(|i| gradient(step, p, i)).collect())
                        .collect();
                    let mut params: Vec<Param<'_>> = values
                        .iter_mut()
                        .zip(&grads)
                        .zip(names)
                        .map(|((v, g), n)| Param::new(n, v, g))
                        .collect();
                    opt.step(&mut params).unwrap();
                }
            };
        let initial: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.25; n]).collect();
        let mut straight = Optimizer::new(config).unwrap();
        let mut straight_values = initial.clone();
        run(&mut straight, &mut straight_values, 0..5);

        let mut first = Optimizer::new(config).unwrap();
        let mut values = initial.clone();
        run(&mut first, &mut values, 0..3);
        let json = serde_json::to_string(first.state()).unwrap();
        let config_json = serde_json::to_string(first.config()).unwrap();

        let mut from_json = Optimizer::new(serde_json::from_str(&config_json).unwrap()).unwrap();
        from_json.load_state(serde_json::from_str(&json).unwrap());
        let mut json_values = values.clone();
        run(&mut from_json, &mut json_values, 3..5);
        assert_eq!(json_values, straight_values, "{config:?} via JSON");

        let named = first.state().named_buffers();
        let rebuilt = OptimizerState::from_named_buffers(
            first.steps(),
            named.iter().map(|(n, v)| (n.as_str(), *v)),
        )
        .unwrap();
        assert_eq!(&rebuilt, first.state());
        let mut from_buffers = Optimizer::new(config).unwrap();
        from_buffers.load_state(rebuilt);
        run(&mut from_buffers, &mut values, 3..5);
        assert_eq!(values, straight_values, "{config:?} via named buffers");
    }
}

#[test]
fn bad_steps_are_typed_errors_and_change_nothing() {
    let mut opt = Optimizer::new(OptimizerConfig::pytorch_adam()).unwrap();
    let mut w = vec![1.0f32, 2.0];
    let err = opt
        .step(&mut [Param::new("w", &mut w, &[0.1])])
        .unwrap_err();
    assert_eq!(
        err,
        OptimError::GradientLength {
            name: "w".into(),
            value: 2,
            grad: 1
        }
    );
    assert!(err.to_string().contains("expected 2"));
    let (mut a, mut b) = (vec![1.0f32], vec![1.0f32]);
    let err = opt
        .step(&mut [
            Param::new("w", &mut a, &[0.1]),
            Param::new("w", &mut b, &[0.1]),
        ])
        .unwrap_err();
    assert_eq!(err, OptimError::DuplicateParameter { name: "w".into() });
    assert_eq!(opt.steps(), 0);
    assert_eq!((w, a, b), (vec![1.0, 2.0], vec![1.0], vec![1.0]));

    // state of the wrong size (a checkpoint of another model)
    let mut w = vec![1.0f32, 2.0];
    opt.step(&mut [Param::new("w", &mut w, &[0.1, 0.1])])
        .unwrap();
    let mut longer = vec![1.0f32; 3];
    let err = opt
        .step(&mut [Param::new("w", &mut longer, &[0.1; 3])])
        .unwrap_err();
    assert!(matches!(
        err,
        OptimError::StateLength {
            expected: 3,
            found: 2,
            ..
        }
    ));
}

#[test]
fn invalid_hyperparameters_are_rejected() {
    let bad = [
        OptimizerConfig::keras_adam().with_learning_rate(-1.0),
        OptimizerConfig::keras_adam().with_learning_rate(f32::NAN),
        OptimizerConfig {
            algorithm: Algorithm::Adam {
                beta1: 1.0,
                beta2: 0.999,
                epsilon: 1e-7,
            },
            ..OptimizerConfig::keras_adam()
        },
        OptimizerConfig::keras_rmsprop().with_weight_decay(WeightDecay::L2(-0.1)),
        sgd(SgdMomentum::Nesterov { momentum: 0.0 }, Convention::PyTorch),
        sgd(
            SgdMomentum::Classical {
                momentum: 0.9,
                dampening: 0.5,
            },
            Convention::Keras,
        ),
        OptimizerConfig::pytorch_sgd().with_schedule(LrSchedule::Exponential {
            decay_steps: 0,
            decay_rate: 0.5,
        }),
    ];
    for config in bad {
        let err = Optimizer::new(config).unwrap_err();
        assert!(
            matches!(err, OptimError::InvalidHyperparameter { .. }),
            "{config:?}"
        );
    }
    let message = Optimizer::new(OptimizerConfig::keras_adam().with_learning_rate(-1.0))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "invalid learning rate: expected a finite value ≥ 0, found -1"
    );
}

#[test]
fn presets_carry_each_librarys_defaults() {
    let rms = OptimizerConfig::keras_rmsprop();
    assert_eq!(rms.learning_rate, 1e-3);
    assert_eq!(
        rms.algorithm,
        Algorithm::RmsProp {
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.0,
            centered: false
        }
    );
    assert_eq!(OptimizerConfig::pytorch_rmsprop().learning_rate, 1e-2);
    assert_eq!(
        OptimizerConfig::keras_adamw().weight_decay,
        WeightDecay::Decoupled(0.004)
    );
    assert_eq!(
        OptimizerConfig::pytorch_adamw().weight_decay,
        WeightDecay::Decoupled(0.01)
    );
    for preset in [
        OptimizerConfig::pytorch_sgd(),
        OptimizerConfig::keras_sgd(),
        OptimizerConfig::pytorch_rmsprop(),
        OptimizerConfig::keras_rmsprop(),
        OptimizerConfig::pytorch_adam(),
        OptimizerConfig::keras_adam(),
        OptimizerConfig::pytorch_adamw(),
        OptimizerConfig::keras_adamw(),
    ] {
        assert_eq!(preset.validate(), Ok(()));
    }
}

/// Chunked parallel updates give the same bits as the sequential ones, for every algorithm,
/// on tensors that span several chunks and one that is smaller than a chunk.
#[test]
fn parallel_steps_are_bit_identical_to_sequential() {
    let sizes = [2 * UPDATE_CHUNK + 123, 17];
    let configs = [
        OptimizerConfig::keras_adam(),
        OptimizerConfig::pytorch_adamw(),
        OptimizerConfig::pytorch_rmsprop(),
        OptimizerConfig {
            algorithm: Algorithm::RmsProp {
                rho: 0.9,
                epsilon: 1e-7,
                momentum: 0.9,
                centered: true,
            },
            ..OptimizerConfig::keras_rmsprop()
        },
        sgd(
            SgdMomentum::Classical {
                momentum: 0.9,
                dampening: 0.1,
            },
            Convention::PyTorch,
        ),
    ];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for config in configs {
        let mut results = Vec::new();
        for par in [Par::Seq, Par::Rayon(2)] {
            let mut opt = Optimizer::new(config).unwrap();
            let mut values: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.5; n]).collect();
            for step in 0..3 {
                let grads: Vec<Vec<f32>> = sizes
                    .iter()
                    .map(|&n| {
                        (0..n)
                            .map(|i| ((i * 7 + step) % 19) as f32 * 0.01 - 0.09)
                            .collect()
                    })
                    .collect();
                let mut params: Vec<Param<'_>> = values
                    .iter_mut()
                    .zip(&grads)
                    .zip(["a", "b"])
                    .map(|((v, g), n)| Param::new(n, v, g))
                    .collect();
                pool.install(|| opt.step_par(&mut params, par)).unwrap();
            }
            results.push((values, opt.state().clone()));
        }
        assert!(results[0] == results[1], "{config:?}");
    }
}
