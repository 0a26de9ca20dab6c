//! Choosing the next token from a row of logits: greedy, temperature, top-k, top-p (nucleus).

use rand::Rng;

/// How to pick the next token from logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Always the most likely token (the seeds' greedy continuation).
    Greedy,
    /// Draw from `softmax(logits / temperature)`, optionally restricted to the `top_k` most likely
    /// tokens and then to the smallest set whose probability reaches `top_p`.
    Random {
        /// > 0. Below 1 sharpens the distribution, above 1 flattens it.
        temperature: f32,
        /// Keep only the k most likely tokens (`None` = all).
        top_k: Option<usize>,
        /// Keep the most likely tokens until their total probability reaches p, in (0, 1]
        /// (`None` = all).
        top_p: Option<f32>,
    },
}

/// A reusable sampler: owns its scratch so picking a token allocates nothing after the first call.
#[derive(Debug, Default)]
pub struct Sampler {
    /// (V) candidate ids, most likely first.
    order: Vec<u32>,
    /// (V) probabilities aligned with `order`.
    probs: Vec<f32>,
}

impl Sampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of the chosen token in `logits` (V ≥ 1). NaN logits are never chosen unless
    /// every logit is NaN (then index 0).
    pub fn pick<R: Rng + ?Sized>(&mut self, logits: &[f32], mode: Sampling, rng: &mut R) -> usize {
        assert!(!logits.is_empty(), "cannot sample from an empty vocabulary");
        match mode {
            Sampling::Greedy => argmax(logits),
            Sampling::Random {
                temperature,
                top_k,
                top_p,
            } => self.pick_random(logits, temperature, top_k, top_p, rng),
        }
    }

    fn pick_random<R: Rng + ?Sized>(
        &mut self,
        logits: &[f32],
        temperature: f32,
        top_k: Option<usize>,
        top_p: Option<f32>,
        rng: &mut R,
    ) -> usize {
        assert!(
            temperature > 0.0,
            "temperature must be > 0, got {temperature}"
        );
        self.order.clear();
        self.order
            .extend((0..logits.len() as u32).filter(|&i| !logits[i as usize].is_nan()));
        if self.order.is_empty() {
            return 0;
        }
        // Most likely first; ties by id, so the order (and the draw) is deterministic.
        self.order.sort_unstable_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        if let Some(k) = top_k {
            self.order.truncate(k.max(1));
        }
        // Softmax over the kept candidates, in f64 for the normalising sum.
        let max = logits[self.order[0] as usize];
        self.probs.clear();
        self.probs.extend(
            self.order
                .iter()
                .map(|&i| ((logits[i as usize] - max) / temperature).exp()),
        );
        let total: f64 = self.probs.iter().map(|&p| p as f64).sum();
        let mut keep = self.probs.len();
        if let Some(p) = top_p {
            let mut cumulative = 0.0f64;
            for (n, &q) in self.probs.iter().enumerate() {
                cumulative += q as f64 / total;
                if cumulative >= p as f64 {
                    keep = n + 1;
                    break;
                }
            }
        }
        let kept_total: f64 = self.probs[..keep].iter().map(|&p| p as f64).sum();
        let mut u = rng.random::<f64>() * kept_total;
        for n in 0..keep {
            u -= self.probs[n] as f64;
            if u < 0.0 {
                return self.order[n] as usize;
            }
        }
        self.order[keep - 1] as usize
    }
}

/// Index of the largest logit (the first on ties; NaN never wins unless all are NaN).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in logits.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if !found || v > best_value {
            best = i;
            best_value = v;
            found = true;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn greedy_is_argmax_and_skips_nan() {
        assert_eq!(argmax(&[0.1, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0, -6.0]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        let mut s = Sampler::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(s.pick(&[0.0, 1.0, 0.5], Sampling::Greedy, &mut rng), 1);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits = [0.3, 2.0, 1.9, -4.0];
        let mut s = Sampler::new();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let k1 = Sampling::Random {
                temperature: 1.0,
                top_k: Some(1),
                top_p: None,
            };
            assert_eq!(s.pick(&logits, k1, &mut rng), 1);
            let p = Sampling::Random {
                temperature: 1.0,
                top_k: None,
                top_p: Some(1e-6),
            };
            assert_eq!(s.pick(&logits, p, &mut rng), 1);
        }
    }

    #[test]
    fn frequencies_follow_the_tempered_softmax() {
        // logits ln(1), ln(2), ln(3) at T = 1 → probabilities 1/6, 2/6, 3/6.
        let logits = [0.0f32, 2f32.ln(), 3f32.ln()];
        let mut s = Sampler::new();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut counts = [0usize; 3];
        let n = 60_000;
        let mode = Sampling::Random {
            temperature: 1.0,
            top_k: None,
            top_p: None,
        };
        for _ in 0..n {
            counts[s.pick(&logits, mode, &mut rng)] += 1;
        }
        for (i, want) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0].iter().enumerate() {
            let got = counts[i] as f64 / n as f64;
            // 5 standard deviations of a binomial proportion.
            let sd = (want * (1.0 - want) / n as f64).sqrt();
            assert!((got - want).abs() < 5.0 * sd, "token {i}: {got} vs {want}");
        }
        // top-k = 2 drops the least likely token entirely.
        let mode = Sampling::Random {
            temperature: 1.0,
            top_k: Some(2),
            top_p: None,
        };
        for _ in 0..2000 {
            assert_ne!(s.pick(&logits, mode, &mut rng), 0);
        }
    }
}
