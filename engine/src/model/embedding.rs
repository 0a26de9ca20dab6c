//! Embedding: a lookup table `weight (V, D)`, PyTorch `nn.Embedding` layout.
//!
//! A one-hot input multiplied by a matrix is the same row gather, so character models with
//! one-hot inputs use this too instead of multiplying by zeros.

/// `weight` (vocab, dim).
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    pub vocab: usize,
    pub dim: usize,
    /// (vocab, dim)
    pub weight: Vec<f32>,
}

impl Embedding {
    /// PyTorch's initialisation: N(0, 1) entries.
    pub fn init<R: rand::Rng + ?Sized>(vocab: usize, dim: usize, rng: &mut R) -> Self {
        let weight = (0..vocab * dim)
            .map(|_| super::init::standard_normal(rng) as f32)
            .collect();
        Embedding { vocab, dim, weight }
    }

    /// `out (n, dim)` = rows of `weight` for `ids (n)`. Panics on an id ≥ vocab (the data
    /// pipeline validates ids before they get here).
    pub fn forward(&self, ids: &[u32], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            ids.len() * self.dim,
            "embedding output is (n, dim)"
        );
        for (row, &id) in out.chunks_exact_mut(self.dim).zip(ids) {
            row.copy_from_slice(self.row(id));
        }
    }

    /// Backward: `d_weight[id] += dy[row]` for each looked-up row — only the rows used are
    /// touched, in input order (deterministic).
    pub fn backward(&self, ids: &[u32], dy: &[f32], d_weight: &mut [f32]) {
        assert_eq!(
            dy.len(),
            ids.len() * self.dim,
            "embedding d_output is (n, dim)"
        );
        assert_eq!(
            d_weight.len(),
            self.weight.len(),
            "d_weight is (vocab, dim)"
        );
        for (row, &id) in dy.chunks_exact(self.dim).zip(ids) {
            let start = self.check(id) * self.dim;
            for (d, &g) in d_weight[start..start + self.dim].iter_mut().zip(row) {
                *d += g;
            }
        }
    }

    /// The embedding of `id`.
    pub fn row(&self, id: u32) -> &[f32] {
        let start = self.check(id) * self.dim;
        &self.weight[start..start + self.dim]
    }

    fn check(&self, id: u32) -> usize {
        let id = id as usize;
        assert!(
            id < self.vocab,
            "token id {id} out of range for a vocabulary of {}",
            self.vocab
        );
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn gathers_and_scatters_only_used_rows() {
        let e = Embedding {
            vocab: 4,
            dim: 2,
            weight: vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0],
        };
        let ids = [2u32, 0, 2];
        let mut out = vec![0.0; 6];
        e.forward(&ids, &mut out);
        assert_eq!(out, vec![20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
        let dy = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dw = vec![0.0; 8];
        e.backward(&ids, &dy, &mut dw);
        assert_eq!(dw, vec![3.0, 4.0, 0.0, 0.0, 6.0, 8.0, 0.0, 0.0]);
    }

    #[test]
    fn init_is_roughly_standard_normal_and_seeded() {
        let a = Embedding::init(100, 50, &mut ChaCha8Rng::seed_from_u64(9));
        let b = Embedding::init(100, 50, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a, b);
        let n = a.weight.len() as f64;
        let mean = a.weight.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a
            .weight
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.08,
            "mean {mean}, var {var}"
        );
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_id_is_an_invariant_violation() {
        let e = Embedding::init(3, 2, &mut ChaCha8Rng::seed_from_u64(1));
        e.forward(&[3], &mut [0.0; 2]);
    }
}
