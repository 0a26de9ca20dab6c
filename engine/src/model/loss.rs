//! Losses other than softmax–cross-entropy (which is the fused kernel
//! [`recur_kernels::softmax::softmax_cross_entropy`]).

/// Mean squared error over `rows` rows of width `width`, PyTorch `nn.MSELoss(reduction="mean")`
/// and Keras `MeanSquaredError` semantics: `L = Σ (p − t)² / (rows · width)`.
///
/// Writes `dL/dp = 2 (p − t) / (rows · width)` into `d_pred` when given (overwritten) and returns
/// `L`, accumulated in f64.
///
/// # Panics
/// If `pred`, `target` (and `d_pred`) differ in length — a caller's broken invariant.
pub fn mse(pred: &[f32], target: &[f32], d_pred: Option<&mut [f32]>) -> f64 {
    assert_eq!(
        pred.len(),
        target.len(),
        "mse: prediction and target lengths differ"
    );
    let n = pred.len().max(1) as f64;
    let loss = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let e = p as f64 - t as f64;
            e * e
        })
        .sum::<f64>()
        / n;
    if let Some(d) = d_pred {
        assert_eq!(d.len(), pred.len(), "mse: gradient length differs");
        let scale = (2.0 / n) as f32;
        for ((g, &p), &t) in d.iter_mut().zip(pred).zip(target) {
            *g = scale * (p - t);
        }
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_value_and_gradient() {
        // errors 1, −2, 0.5 → (1 + 4 + 0.25) / 3 = 1.75; gradient 2e/3.
        let pred = [2.0, 0.0, 1.5];
        let target = [1.0, 2.0, 1.0];
        let mut d = [f32::NAN; 3];
        let loss = mse(&pred, &target, Some(&mut d));
        assert!((loss - 1.75).abs() < 1e-12);
        assert_eq!(d, [2.0 / 3.0, -4.0 / 3.0, 1.0 / 3.0]);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let pred = [0.3f32, -1.2, 2.5, 0.0];
        let target = [0.1f32, -1.0, 2.0, 0.4];
        let mut d = [0.0; 4];
        mse(&pred, &target, Some(&mut d));
        let h = 1e-3f32;
        for i in 0..4 {
            let (mut up, mut down) = (pred, pred);
            up[i] += h;
            down[i] -= h;
            let numeric = (mse(&up, &target, None) - mse(&down, &target, None)) / (2.0 * h as f64);
            assert!(
                (numeric - d[i] as f64).abs() < 1e-4,
                "{i}: {numeric} vs {}",
                d[i]
            );
        }
    }
}
