//! Language-model metrics from the mean cross-entropy: perplexity, bits per token, accuracy.
//!
//! Losses are natural-log cross-entropies (nats per predicted token), as the softmax–cross-
//! entropy kernel computes them. Sums are kept in `f64` and added in a fixed order by the caller,
//! so a metric is reproducible whatever the thread count.

use std::f64::consts::LN_2;

/// `exp(mean loss)`: the effective number of equally likely choices per token.
pub fn perplexity(mean_loss_nats: f64) -> f64 {
    mean_loss_nats.exp()
}

/// `mean loss / ln 2`: bits per token — bits per character (BPC) for a character model.
pub fn bits_per_token(mean_loss_nats: f64) -> f64 {
    mean_loss_nats / LN_2
}

/// Accumulates summed losses and top-1 hits over a pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricsAccumulator {
    /// Σ loss over predicted tokens, in nats.
    pub loss_sum: f64,
    /// Predicted tokens counted.
    pub tokens: u64,
    /// Predictions whose arg-max equals the target.
    pub correct: u64,
}

impl MetricsAccumulator {
    /// Adds a minibatch: its summed loss, how many tokens it predicted and how many were right.
    pub fn add(&mut self, loss_sum: f64, tokens: u64, correct: u64) {
        self.loss_sum += loss_sum;
        self.tokens += tokens;
        self.correct += correct;
    }

    /// Counts top-1 hits of `logits` (`(N, V)` row-major) against `targets` (`N`) and adds them
    /// with `loss_sum`. The arg-max takes the first maximum; a NaN row counts as wrong.
    ///
    /// # Panics
    ///
    /// If `logits.len() != targets.len() * vocab`.
    pub fn add_logits(&mut self, loss_sum: f64, logits: &[f32], targets: &[u32], vocab: usize) {
        assert_eq!(
            logits.len(),
            targets.len() * vocab,
            "logits must be (N, V) for N targets"
        );
        let correct = logits
            .chunks_exact(vocab)
            .zip(targets)
            .filter(|&(row, &t)| argmax(row) == Some(t as usize))
            .count() as u64;
        self.add(loss_sum, targets.len() as u64, correct);
    }

    /// The metrics so far (`None` before any token).
    pub fn finish(&self) -> Option<EvalMetrics> {
        if self.tokens == 0 {
            return None;
        }
        let loss = self.loss_sum / self.tokens as f64;
        Some(EvalMetrics {
            loss,
            perplexity: perplexity(loss),
            bits_per_token: bits_per_token(loss),
            accuracy: self.correct as f64 / self.tokens as f64,
            tokens: self.tokens,
        })
    }
}

/// The index of the first maximum of `row`, or `None` if it is empty or holds a NaN.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return None;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Evaluation results over a set of predicted tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalMetrics {
    /// Mean cross-entropy, nats per token.
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// `loss / ln 2` (bits per character for a character model).
    pub bits_per_token: f64,
    /// Fraction of top-1 hits.
    pub accuracy: f64,
    /// Tokens predicted.
    pub tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_predictions_give_the_vocabulary_size() {
        // A uniform distribution over V symbols has loss ln V: perplexity V, log2 V bits.
        let v = 42.0f64;
        assert!((perplexity(v.ln()) - 42.0).abs() < 1e-9);
        assert!((bits_per_token(v.ln()) - v.log2()).abs() < 1e-12);
        assert_eq!(bits_per_token(LN_2), 1.0);
    }

    #[test]
    fn accumulates_loss_and_accuracy() {
        let mut m = MetricsAccumulator::default();
        assert!(m.finish().is_none());
        // Rows: argmax 1 (target 1, hit), argmax 0 (target 2, miss), tie → first (0, hit).
        let logits = [0.1, 0.9, 0.0, 3.0, 1.0, 2.0, 5.0, 5.0, 1.0];
        m.add_logits(3.0, &logits, &[1, 2, 0], 3);
        m.add(1.0, 1, 0);
        let r = m.finish().unwrap();
        assert_eq!(r.tokens, 4);
        assert_eq!(r.loss, 1.0);
        assert_eq!(r.accuracy, 0.5);
        assert!((r.perplexity - std::f64::consts::E).abs() < 1e-12);
        assert_eq!(argmax(&[1.0, f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
    }
}
