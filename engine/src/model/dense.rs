//! Dense (fully connected) layer with PyTorch `nn.Linear` layout: `y = x·Wᵀ + b`.

use recur_kernels::Par;
use recur_kernels::gemm::{MatMut, MatRef, sgemm};

/// `weight` (out, in), `bias` (out) — the names and shapes of PyTorch's `nn.Linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub input: usize,
    pub output: usize,
    /// (out, in)
    pub weight: Vec<f32>,
    /// (out)
    pub bias: Vec<f32>,
}

/// Gradients of a [`Dense`] layer, named after its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseGrads {
    /// (out, in)
    pub d_weight: Vec<f32>,
    /// (out)
    pub d_bias: Vec<f32>,
}

/// How a backward pass writes its parameter gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradWrite {
    /// `grad += this batch's gradient`.
    Accumulate,
    /// `grad = this batch's gradient` (the previous contents are not read).
    Overwrite,
}

impl DenseGrads {
    pub fn zeros(layer: &Dense) -> Self {
        DenseGrads {
            d_weight: vec![0.0; layer.weight.len()],
            d_bias: vec![0.0; layer.bias.len()],
        }
    }

    pub fn zero(&mut self) {
        self.d_weight.fill(0.0);
        self.d_bias.fill(0.0);
    }
}

impl Dense {
    /// A layer initialised as PyTorch does: weight and bias uniform in ±1/√in.
    pub fn init<R: rand::Rng + ?Sized>(input: usize, output: usize, rng: &mut R) -> Self {
        let bound = 1.0 / (input.max(1) as f32).sqrt();
        let mut uniform =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..=bound)).collect() };
        let weight = uniform(output * input);
        let bias = uniform(output);
        Dense {
            input,
            output,
            weight,
            bias,
        }
    }

    /// `y (rows, out) = x (rows, in) · Wᵀ + b`. `y` is overwritten.
    pub fn forward(&self, par: Par, x: &[f32], rows: usize, y: &mut [f32]) {
        assert_eq!(x.len(), rows * self.input, "dense input is (rows, in)");
        assert_eq!(y.len(), rows * self.output, "dense output is (rows, out)");
        for row in y.chunks_exact_mut(self.output) {
            row.copy_from_slice(&self.bias);
        }
        sgemm(
            par,
            1.0,
            MatRef::row_major(x, rows, self.input),
            MatRef::row_major(&self.weight, self.output, self.input).t(),
            1.0,
            MatMut::row_major(y, rows, self.output),
        );
    }

    /// Backward of [`Dense::forward`]: accumulates `d_weight += dyᵀ·x`, `d_bias += Σ_rows dy`, and
    /// writes `dx = dy·W` (overwritten) when asked for.
    pub fn backward(
        &self,
        par: Par,
        x: &[f32],
        dy: &[f32],
        rows: usize,
        grads: &mut DenseGrads,
        dx: Option<&mut [f32]>,
    ) {
        self.backward_with(par, x, dy, rows, grads, dx, GradWrite::Accumulate);
    }

    /// [`Dense::backward`], with the weight and bias gradients accumulated into `grads` or
    /// overwritten by this batch's ([`GradWrite`]). Overwriting skips a separate zeroing pass
    /// over `d_weight` (the word model's is 1.3 M floats) and gives the same values as zeroing
    /// then accumulating.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with(
        &self,
        par: Par,
        x: &[f32],
        dy: &[f32],
        rows: usize,
        grads: &mut DenseGrads,
        dx: Option<&mut [f32]>,
        write: GradWrite,
    ) {
        assert_eq!(x.len(), rows * self.input, "dense input is (rows, in)");
        assert_eq!(
            dy.len(),
            rows * self.output,
            "dense d_output is (rows, out)"
        );
        let beta = match write {
            GradWrite::Accumulate => 1.0,
            GradWrite::Overwrite => {
                grads.d_bias.fill(0.0);
                0.0
            }
        };
        let dy_view = MatRef::row_major(dy, rows, self.output);
        sgemm(
            par,
            1.0,
            dy_view.t(),
            MatRef::row_major(x, rows, self.input),
            beta,
            MatMut::row_major(&mut grads.d_weight, self.output, self.input),
        );
        for row in dy.chunks_exact(self.output) {
            for (db, &g) in grads.d_bias.iter_mut().zip(row) {
                *db += g;
            }
        }
        if let Some(dx) = dx {
            assert_eq!(dx.len(), rows * self.input, "dense d_input is (rows, in)");
            sgemm(
                par,
                1.0,
                dy_view,
                MatRef::row_major(&self.weight, self.output, self.input),
                0.0,
                MatMut::row_major(dx, rows, self.input),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Plain loops in f64: the oracle.
    fn reference(
        layer: &Dense,
        x: &[f32],
        dy: &[f32],
        rows: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let (i_n, o_n) = (layer.input, layer.output);
        let mut y = vec![0.0; rows * o_n];
        let mut dw = vec![0.0; o_n * i_n];
        let mut db = vec![0.0; o_n];
        let mut dx = vec![0.0; rows * i_n];
        for r in 0..rows {
            for o in 0..o_n {
                let mut s = layer.bias[o] as f64;
                for i in 0..i_n {
                    s += x[r * i_n + i] as f64 * layer.weight[o * i_n + i] as f64;
                    dw[o * i_n + i] += dy[r * o_n + o] as f64 * x[r * i_n + i] as f64;
                    dx[r * i_n + i] += dy[r * o_n + o] as f64 * layer.weight[o * i_n + i] as f64;
                }
                y[r * o_n + o] = s;
                db[o] += dy[r * o_n + o] as f64;
            }
        }
        (y, dw, db, dx)
    }

    #[test]
    fn matches_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for &(rows, input, output) in &[(1, 1, 1), (5, 7, 3), (33, 17, 42)] {
            let layer = Dense::init(input, output, &mut rng);
            let x: Vec<f32> = (0..rows * input)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let dy: Vec<f32> = (0..rows * output)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut y = vec![f32::NAN; rows * output];
            layer.forward(Par::Seq, &x, rows, &mut y);
            let mut grads = DenseGrads::zeros(&layer);
            let mut dx = vec![f32::NAN; rows * input];
            layer.backward(Par::Seq, &x, &dy, rows, &mut grads, Some(&mut dx));
            let (ry, rdw, rdb, rdx) = reference(&layer, &x, &dy, rows);
            let close = |a: &[f32], e: &[f64], what: &str| {
                for (k, (&a, &e)) in a.iter().zip(e).enumerate() {
                    let tol = 1e-5 + 1e-5 * e.abs();
                    assert!((a as f64 - e).abs() <= tol, "{what}[{k}]: {a} vs {e}");
                }
            };
            close(&y, &ry, "y");
            close(&grads.d_weight, &rdw, "d_weight");
            close(&grads.d_bias, &rdb, "d_bias");
            close(&dx, &rdx, "dx");
            // Overwriting stale gradients gives what zeroing and accumulating gives.
            let mut stale = DenseGrads {
                d_weight: vec![f32::NAN; grads.d_weight.len()],
                d_bias: vec![7.0; grads.d_bias.len()],
            };
            layer.backward_with(
                Par::Seq,
                &x,
                &dy,
                rows,
                &mut stale,
                None,
                GradWrite::Overwrite,
            );
            assert_eq!(stale, grads);
        }
    }
}
