//! Weight initialisation schemes: PyTorch's defaults and Keras's.
//!
//! | tensor | PyTorch (`nn.RNN`/`LSTM`/`GRU`, `nn.Linear`, `nn.Embedding`) | Keras 3 (`SimpleRNN`/`LSTM`/`GRU`, `Dense`, `Embedding`) |
//! |---|---|---|
//! | `weight_ih` | U(±1/√H) | `glorot_uniform`: U(±√(6/(I + G·H))) |
//! | `weight_hh` | U(±1/√H) | `orthogonal`: the (H, G·H) kernel has orthonormal rows |
//! | biases | U(±1/√H) | zeros; LSTM forget gate 1 (`unit_forget_bias=True`) |
//! | dense weight | U(±1/√in) (Kaiming-uniform, a = √5) | `glorot_uniform` |
//! | dense bias | U(±1/√in) | zeros |
//! | embedding | N(0, 1) | U(±0.05) |
//!
//! Sources: the PyTorch docs of `torch.nn.LSTM` ("Variables") and `torch.nn.Linear`; Keras 3
//! `keras/src/layers/rnn/lstm.py` (`LSTMCell.__init__` defaults and `unit_forget_bias`),
//! `keras/src/initializers/random_initializers.py` (`GlorotUniform`, `OrthogonalInitializer`,
//! which QR-decomposes a normal matrix of the kernel's 2-D shape).

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which library's default initialisation to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitScheme {
    #[default]
    PyTorch,
    Keras,
}

/// U(±limit) values.
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, n: usize, limit: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-limit..=limit)).collect()
}

/// Glorot (Xavier) uniform for a matrix with `fan_in` inputs and `fan_out` outputs.
pub fn glorot_uniform<R: Rng + ?Sized>(rng: &mut R, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
    uniform(rng, fan_in * fan_out, limit)
}

/// A (rows, cols) row-major matrix with orthonormal columns when rows ≥ cols (orthonormal rows
/// otherwise): Gram–Schmidt (twice, for stability) on a standard normal matrix, in f64.
///
/// For a recurrent weight in PyTorch layout (G·H, H), this is the transpose of Keras's
/// orthogonal (H, G·H) recurrent kernel.
pub fn orthogonal<R: Rng + ?Sized>(rng: &mut R, rows: usize, cols: usize) -> Vec<f32> {
    let tall = rows >= cols;
    // Work on vectors of length `long`, `short` of them, orthonormalised.
    let (long, short) = if tall { (rows, cols) } else { (cols, rows) };
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(short);
    for _ in 0..short {
        let mut v: Vec<f64> = (0..long).map(|_| standard_normal(rng)).collect();
        for _ in 0..2 {
            for b in &basis {
                let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                for (x, y) in v.iter_mut().zip(b) {
                    *x -= dot * y;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        v.iter_mut().for_each(|x| *x /= norm);
        basis.push(v);
    }
    let mut out = vec![0.0f32; rows * cols];
    for (j, b) in basis.iter().enumerate() {
        for (i, &x) in b.iter().enumerate() {
            // tall: basis j is column j; wide: basis j is row j.
            let index = if tall { i * cols + j } else { j * cols + i };
            out[index] = x as f32;
        }
    }
    out
}

/// A standard normal draw (Box–Muller).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn orthogonal_columns_and_rows() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for &(rows, cols) in &[(12, 3), (3, 12), (7, 7)] {
            let m = orthogonal(&mut rng, rows, cols);
            let (outer, inner) = if rows >= cols {
                (cols, rows)
            } else {
                (rows, cols)
            };
            let at = |a: usize, k: usize| {
                if rows >= cols {
                    m[k * cols + a] as f64
                } else {
                    m[a * cols + k] as f64
                }
            };
            for a in 0..outer {
                for b in 0..outer {
                    let dot: f64 = (0..inner).map(|k| at(a, k) * at(b, k)).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!(
                        (dot - want).abs() < 1e-5,
                        "{rows}x{cols}: <{a},{b}> = {dot}"
                    );
                }
            }
        }
    }

    #[test]
    fn glorot_limit() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let w = glorot_uniform(&mut rng, 40, 110);
        let limit = (6.0f32 / 150.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= limit));
        assert!(w.iter().any(|v| v.abs() > 0.9 * limit));
    }
}
