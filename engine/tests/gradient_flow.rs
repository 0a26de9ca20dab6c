//! Gradient-flow diagnostics: the per-step norms ‖∂L/∂h_t‖ against a plain chain-rule reference
//! (SimpleRNN, f64), the adding task, training, and the typed errors.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur_engine::diagnostics::{
    ADDING_INPUTS, AddingBatch, DiagnosticsError, GradientFlowConfig, GradientFlowModel,
    TrainSettings,
};
use recur_engine::kernels::{CellKind, RnnActivation};
use recur_engine::optim::GradClip;

fn config(cell: CellKind, steps: usize) -> GradientFlowConfig {
    GradientFlowConfig {
        hidden: 8,
        steps,
        batch: 3,
        ..GradientFlowConfig::new(cell)
    }
}

/// `∂L/∂h_t` by the chain rule in f64 for a tanh SimpleRNN:
/// `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`, so
/// `∂L/∂h_{t−1} = W_hhᵀ ((1 − h_t²) ⊙ ∂L/∂h_t)`, starting from `∂L/∂h_T = (y − target)/B · w`.
fn reference_norms(model: &GradientFlowModel, batch: &AddingBatch, d_h_last: &[f64]) -> Vec<f64> {
    let p = &model.rnn().params().directions[0];
    let (h, steps, b) = (model.config().hidden, batch.steps, batch.batch);
    let mut states = vec![vec![0.0f64; b * h]; steps + 1];
    for t in 0..steps {
        for r in 0..b {
            for j in 0..h {
                let mut a = f64::from(p.bias_ih[j]) + f64::from(p.bias_hh[j]);
                for i in 0..ADDING_INPUTS {
                    a += f64::from(p.weight_ih[j * ADDING_INPUTS + i])
                        * f64::from(batch.inputs[(t * b + r) * ADDING_INPUTS + i]);
                }
                for k in 0..h {
                    a += f64::from(p.weight_hh[j * h + k]) * states[t][r * h + k];
                }
                states[t + 1][r * h + j] = a.tanh();
            }
        }
    }
    let mut norms = vec![0.0; steps];
    let mut d = d_h_last.to_vec();
    norms[steps - 1] = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    for t in (1..steps).rev() {
        // d currently holds ∂L/∂h_{t+1} (1-based t+1 = index t+1 of states).
        let mut prev = vec![0.0f64; b * h];
        for r in 0..b {
            for j in 0..h {
                let hj = states[t + 1][r * h + j];
                let g = (1.0 - hj * hj) * d[r * h + j];
                for k in 0..h {
                    prev[r * h + k] += f64::from(p.weight_hh[j * h + k]) * g;
                }
            }
        }
        d = prev;
        norms[t - 1] = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    norms
}

#[test]
fn simple_rnn_profile_matches_the_chain_rule() {
    let cell = CellKind::Rnn(RnnActivation::Tanh);
    let steps = 12;
    let model = GradientFlowModel::new(GradientFlowConfig {
        recurrent_gain: 1.3,
        ..config(cell, steps)
    })
    .unwrap();
    let batch = AddingBatch::generate(&mut ChaCha8Rng::seed_from_u64(3), steps, 3);
    let profile = model.gradient_profile(&batch).unwrap();
    assert_eq!(profile.norms.len(), steps);
    let last = profile.norms[steps - 1];
    assert!(last > 0.0);
    let d_last: Vec<f64> = model
        .last_step_gradient(&batch)
        .unwrap()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let expected = reference_norms(&model, &batch, &d_last);
    for (t, (&got, &want)) in profile.norms.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() <= 1e-4 * want.max(1e-12) + 1e-9,
            "t = {}: {got} vs reference {want}",
            t + 1
        );
    }
    assert!((last - expected[steps - 1]).abs() <= 1e-6 * last);
}

#[test]
fn small_recurrent_gain_vanishes() {
    let cell = CellKind::Rnn(RnnActivation::Tanh);
    let model = GradientFlowModel::new(GradientFlowConfig {
        recurrent_gain: 0.5,
        ..config(cell, 40)
    })
    .unwrap();
    let batch = AddingBatch::generate(&mut ChaCha8Rng::seed_from_u64(4), 40, 3);
    let profile = model.gradient_profile(&batch).unwrap();
    // ‖W_hh‖ = 0.5 (orthogonal × 0.5) and |tanh'| ≤ 1: each step back at least halves it.
    assert!(
        profile.first_to_last_ratio() < 0.5f64.powi(39) * 1.01,
        "{}",
        profile.first_to_last_ratio()
    );
}

#[test]
fn every_cell_profiles_and_training_lowers_the_loss() {
    for cell in [
        CellKind::Rnn(RnnActivation::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        let mut model = GradientFlowModel::new(GradientFlowConfig {
            batch: 16,
            ..config(cell, 10)
        })
        .unwrap();
        let batch = AddingBatch::generate(&mut ChaCha8Rng::seed_from_u64(9), 10, 16);
        let before = model.gradient_profile(&batch).unwrap();
        assert!(before.norms.iter().all(|n| n.is_finite() && *n > 0.0));
        let losses = model
            .train(TrainSettings {
                steps: 60,
                learning_rate: 0.01,
                clip: GradClip::GlobalNorm(1.0),
                seed: 5,
            })
            .unwrap();
        let early: f64 = losses[..10].iter().sum::<f64>() / 10.0;
        let late: f64 = losses[50..].iter().sum::<f64>() / 10.0;
        assert!(late < 0.7 * early, "{cell:?}: {early} → {late}");
        let after = model.gradient_profile(&batch).unwrap();
        assert!(after.loss < before.loss, "{cell:?}");
    }
}

#[test]
fn adding_batches_have_one_marker_per_half() {
    let batch = AddingBatch::generate(&mut ChaCha8Rng::seed_from_u64(1), 9, 5);
    for r in 0..5 {
        let marked: Vec<usize> = (0..9)
            .filter(|&t| batch.inputs[(t * 5 + r) * ADDING_INPUTS + 1] == 1.0)
            .collect();
        assert_eq!(marked.len(), 2);
        assert!(marked[0] < 4 && marked[1] >= 4);
        let sum: f32 = marked
            .iter()
            .map(|&t| batch.inputs[(t * 5 + r) * ADDING_INPUTS])
            .sum();
        assert_eq!(sum, batch.targets[r]);
    }
}

#[test]
fn bad_options_are_typed_errors() {
    let rnn = CellKind::Rnn(RnnActivation::Tanh);
    for (cfg, what) in [
        (config(rnn, 1), "T ≥ 2"),
        (
            GradientFlowConfig {
                hidden: 0,
                ..config(rnn, 5)
            },
            "found 0",
        ),
        (
            GradientFlowConfig {
                recurrent_gain: f32::NAN,
                ..config(rnn, 5)
            },
            "finite number > 0",
        ),
    ] {
        let err = GradientFlowModel::new(cfg).unwrap_err();
        assert!(matches!(err, DiagnosticsError::InvalidOption { .. }));
        assert!(err.to_string().contains(what), "{err}");
    }
    let model = GradientFlowModel::new(config(rnn, 5)).unwrap();
    let mut batch = AddingBatch::generate(&mut ChaCha8Rng::seed_from_u64(1), 5, 3);
    batch.targets.pop();
    assert!(model.gradient_profile(&batch).is_err());
    let mut model = model;
    let err = model
        .train(TrainSettings {
            steps: 1,
            learning_rate: 0.01,
            clip: GradClip::GlobalNorm(-1.0),
            seed: 1,
        })
        .unwrap_err();
    assert!(matches!(err, DiagnosticsError::Optim(_)), "{err}");
}
