//! Embedding and output dropout of the language model (`LmConfig::{embed_dropout,
//! output_dropout}`): the masks are applied in the forward pass and in the backward pass (the
//! gradients are those of the dropped-out loss, checked against central differences with the same
//! masks), they depend only on the seed, and evaluation has no dropout.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_engine::data::dataset::{Minibatch, Targets};
use recur_engine::model::init::InitScheme;
use recur_engine::model::lm::{
    LanguageModel, LmConfig, LmError, LmGrads, LmWorkspace, PaddingMode,
};
use recur_kernels::Par;

const VOCAB: usize = 11;

fn config(cell: &str, embed_dropout: f32, output_dropout: f32) -> LmConfig {
    LmConfig {
        vocab: VOCAB,
        embedding_dim: Some(6),
        cell: cell.into(),
        hidden: 5,
        num_layers: 1,
        dropout: 0.0,
        embed_dropout,
        output_dropout,
        init: InitScheme::Keras,
    }
}

/// A model with every parameter moved off its initial value (biases included), so every path
/// carries gradient; the same parameters for any dropout setting.
fn model(cell: &str, embed_dropout: f32, output_dropout: f32) -> LanguageModel {
    let mut m =
        LanguageModel::new(config(cell, embed_dropout, output_dropout), Par::Seq, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for (_, p) in m.params_mut() {
        p.iter_mut()
            .for_each(|v| *v += rng.random_range(-0.4f32..0.4));
    }
    m
}

/// A truncated-BPTT chunk: a target at every step.
fn stream_batch(steps: usize, rows: usize) -> Minibatch {
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let mut b = Minibatch::new();
    b.steps = steps;
    b.batch = rows;
    b.targets_kind = Targets::EveryStep;
    b.inputs = (0..steps * rows)
        .map(|_| rng.random_range(1..VOCAB as u32))
        .collect();
    b.targets = (0..steps * rows)
        .map(|_| rng.random_range(1..VOCAB as u32))
        .collect();
    b
}

/// Windows with one target each, after the last step (the seeds' many-to-one task).
fn last_step_batch(steps: usize, rows: usize) -> Minibatch {
    let mut b = stream_batch(steps, rows);
    b.targets_kind = Targets::LastStep;
    b.targets.truncate(rows);
    b
}

/// Mean training loss (dropout drawn from `seed`) and its gradients.
fn train(m: &LanguageModel, batch: &Minibatch, seed: u64) -> (f64, LmGrads) {
    let mut grads = m.zero_grads();
    let mut ws = LmWorkspace::new(PaddingMode::Padded);
    let (stats, _) = m
        .train_step(batch, None, seed, &mut grads, &mut ws)
        .unwrap();
    (stats.mean_loss(), grads)
}

fn eval(m: &LanguageModel, batch: &Minibatch) -> f64 {
    let mut ws = LmWorkspace::new(PaddingMode::Padded);
    m.evaluate(batch, None, &mut ws).unwrap().0.mean_loss()
}

/// Every gradient by parameter name.
fn named_grads(g: &LmGrads) -> Vec<(String, Vec<f32>)> {
    let mut out = vec![(
        "embedding.weight".to_string(),
        g.d_embedding.clone().unwrap(),
    )];
    for (name, v) in g.rnn.named("rnn.") {
        out.push((name, v.to_vec()));
    }
    out.push(("decoder.weight".into(), g.decoder.d_weight.clone()));
    out.push(("decoder.bias".into(), g.decoder.d_bias.clone()));
    out
}

/// The worst `|analytic − numeric| / (1e-3 + |numeric|)` over a sample of entries of every
/// parameter, numeric by central differences of the training loss with the masks of `seed`.
fn worst_relative_error(
    m: &LanguageModel,
    batch: &Minibatch,
    seed: u64,
    analytic: &[(String, Vec<f32>)],
) -> (f64, String) {
    let eps = 4e-3f32;
    let mut worst = (0.0f64, String::new());
    let mut probe = m.clone();
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    for (pi, name) in names.iter().enumerate() {
        let grad = &analytic
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no gradient for {name}"))
            .1;
        let len = grad.len();
        // Up to 12 entries spread over the tensor.
        for k in (0..len).step_by(len.div_ceil(12)) {
            let original = m.named_params()[pi].1[k];
            let mut at = |value: f32| {
                probe.params_mut()[pi].1[k] = value;
                train(&probe, batch, seed).0
            };
            let numeric = (at(original + eps) - at(original - eps)) / (2.0 * f64::from(eps));
            probe.params_mut()[pi].1[k] = original;
            let error = (f64::from(grad[k]) - numeric).abs() / (1e-3 + numeric.abs());
            if error > worst.0 {
                worst = (
                    error,
                    format!("{name}[{k}]: analytic {} numeric {numeric}", grad[k]),
                );
            }
        }
    }
    worst
}

#[test]
fn gradients_are_those_of_the_dropped_out_loss() {
    for (kind, batch) in [
        ("every step", stream_batch(4, 3)),
        ("last step", last_step_batch(4, 3)),
    ] {
        for cell in ["lstm", "gru", "rnn_tanh"] {
            for (pe, po) in [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)] {
                let m = model(cell, pe, po);
                let (_, grads) = train(&m, &batch, 7);
                let (error, at) = worst_relative_error(&m, &batch, 7, &named_grads(&grads));
                assert!(
                    error < 2e-2,
                    "{kind}, {cell}, embed {pe}, output {po}: gradient off by {error:.3e} at {at}"
                );
            }
        }
    }
}

#[test]
fn the_gradient_check_sees_a_missing_mask() {
    // The gradients of the same parameters without dropout are not those of the dropped-out
    // loss: the check above would fail if backward ignored a mask.
    for (pe, po, batch) in [
        (0.3, 0.0, stream_batch(4, 3)),
        (0.0, 0.4, stream_batch(4, 3)),
        (0.3, 0.0, last_step_batch(4, 3)),
        (0.0, 0.4, last_step_batch(4, 3)),
    ] {
        let (_, undropped) = train(&model("lstm", 0.0, 0.0), &batch, 7);
        let (error, _) =
            worst_relative_error(&model("lstm", pe, po), &batch, 7, &named_grads(&undropped));
        assert!(
            error > 0.1,
            "embed {pe}, output {po}: error only {error:.3e}"
        );
    }
}

#[test]
fn masks_depend_on_the_seed_only() {
    let batch = stream_batch(5, 4);
    let m = model("gru", 0.3, 0.4);
    let (loss_a, grads_a) = train(&m, &batch, 11);
    let (loss_b, grads_b) = train(&m, &batch, 11);
    assert_eq!(loss_a.to_bits(), loss_b.to_bits());
    assert_eq!(named_grads(&grads_a), named_grads(&grads_b));
    let (loss_c, _) = train(&m, &batch, 12);
    assert_ne!(loss_a, loss_c, "another seed should draw other masks");
}

#[test]
fn dropout_acts_in_training_only() {
    let batch = stream_batch(5, 4);
    let plain = model("lstm", 0.0, 0.0);
    for (pe, po) in [(0.5, 0.0), (0.0, 0.5), (0.3, 0.3)] {
        let dropped = model("lstm", pe, po);
        // Evaluation: no dropout, bit for bit the model without it.
        assert_eq!(
            eval(&dropped, &batch).to_bits(),
            eval(&plain, &batch).to_bits()
        );
        // Training: the loss of the masked activations, not the plain one.
        let (loss_plain, _) = train(&plain, &batch, 3);
        let (loss_dropped, _) = train(&dropped, &batch, 3);
        assert_eq!(loss_plain.to_bits(), eval(&plain, &batch).to_bits());
        assert_ne!(loss_dropped, loss_plain, "embed {pe}, output {po}");
    }
}

#[test]
fn bad_dropout_settings_are_typed_errors() {
    let one_hot = LmConfig {
        embedding_dim: None,
        ..config("lstm", 0.2, 0.0)
    };
    assert!(matches!(
        LanguageModel::new(one_hot, Par::Seq, 1),
        Err(LmError::EmbedDropoutWithoutEmbedding(_))
    ));
    for (pe, po) in [(1.0, 0.0), (0.0, -0.1), (f32::NAN, 0.0)] {
        let err = LanguageModel::new(config("gru", pe, po), Par::Seq, 1).unwrap_err();
        assert!(matches!(err, LmError::Dropout { .. }), "{err}");
        assert!(err.to_string().contains("[0, 1)"), "{err}");
    }
    // One-hot input with output dropout only is fine.
    let one_hot_output = LmConfig {
        embedding_dim: None,
        ..config("lstm", 0.0, 0.5)
    };
    assert!(LanguageModel::new(one_hot_output, Par::Seq, 1).is_ok());
}
