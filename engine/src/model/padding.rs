//! The shared padding prefix of front-padded many-to-one batches.
//!
//! The seed's word task pads every line prefix at the front with the padding id up to `T` steps,
//! and Keras runs the LSTM over the padding (no masking). Every row starts from the zero state and
//! sees the same input at each padding step, so after `k` padding steps every row is in the same
//! state `P[k]`: the padding trajectory depends only on the weights. [`PadChain`] computes it once,
//! for one row, and a batch whose row `r` has `p_r` padding steps then runs only its real tokens,
//! left-aligned as a ragged batch, from the initial state `P[p_r]`.
//!
//! Backward is exact by linearity: `∂L/∂P[k]` is the sum of the initial-state gradients of the
//! rows that started at offset `k`, plus what flows back from `P[k+1]`. So the per-row gradients
//! are summed per offset first and backpropagated through the one-row chain once. The parameter
//! gradients of the padding steps, and the gradient of the padding input (the embedding row of
//! the padding id), come out of that one chain instead of from `Σ_r p_r` row-steps.
//!
//! Only the summation order differs from running the padded batch (tested against it in
//! `lm.rs`).

use recur_kernels::cells::{
    BackwardStep, ForwardStep, PackFor, PackedRecurrent, backward_step, forward_step,
};
use recur_kernels::gemm::{MatMut, MatRef, sgemm_with_isa};
use recur_kernels::{CellKind, Isa, Par};

use crate::rnn::{DirectionParams, Rnn, RnnGrads, RnnState};

/// The state trajectory of a stacked unidirectional network through `steps` steps of one
/// constant input, from the zero state: one row, every layer.
#[derive(Debug)]
pub(crate) struct PadChain {
    /// m: padding steps computed.
    steps: usize,
    layers: Vec<ChainLayer>,
}

/// One layer's chain. Row `k` of `h`/`c` is the state after `k` steps (row 0 is the zero state).
#[derive(Debug)]
struct ChainLayer {
    /// (m, I_l): the layer's input at each step.
    input: Vec<f32>,
    /// After forward the activated gates; after backward `δ_u`. (m, G·H)
    gates: Vec<f32>,
    /// (m + 1, H)
    h: Vec<f32>,
    /// LSTM only. (m + 1, H)
    c: Vec<f32>,
    /// GRU only: `u_n`, then `δ_a` of gate n. (m, H)
    hn: Vec<f32>,
    packed: PackedRecurrent,
}

impl PadChain {
    /// Runs `rnn` for `steps` steps of the layer-0 input `x0` (I) from the zero state.
    ///
    /// Panics if `rnn` is bidirectional or `x0` is not (I) (invariants of the caller).
    pub(crate) fn forward(rnn: &Rnn, x0: &[f32], steps: usize, purpose: PackFor) -> PadChain {
        let cfg = rnn.config();
        assert!(!cfg.bidirectional, "the padding chain is unidirectional");
        assert_eq!(x0.len(), cfg.input_size, "padding input is (I)");
        let (cell, h) = (cfg.cell, cfg.hidden_size);
        let (gh, lstm, gru) = (
            cell.gates() * h,
            cell == CellKind::Lstm,
            cell == CellKind::Gru,
        );
        let isa = cfg.isa.clamp_to_host();
        let mut layers: Vec<ChainLayer> = Vec::with_capacity(cfg.num_layers);
        for (layer, params) in rnn.params().directions.iter().enumerate() {
            let input: Vec<f32> = match layers.last() {
                None => x0.repeat(steps),
                Some(below) => below.h[h..].to_vec(),
            };
            let width = if layer == 0 { cfg.input_size } else { h };
            // gates = x·W_ihᵀ + b_ih + b_hh (GRU's b_hn stays out: the step kernel adds it).
            let bias: Vec<f32> = (0..gh)
                .map(|m| {
                    let recurrent = if gru && m >= 2 * h {
                        0.0
                    } else {
                        params.bias_hh[m]
                    };
                    params.bias_ih[m] + recurrent
                })
                .collect();
            let mut gates = bias.repeat(steps);
            sgemm_with_isa(
                isa,
                Par::Seq,
                1.0,
                MatRef::row_major(&input, steps, width),
                MatRef::row_major(&params.weight_ih, gh, width).t(),
                1.0,
                MatMut::row_major(&mut gates, steps, gh),
            );
            let packed = PackedRecurrent::with_isa(
                isa,
                cell,
                h,
                &params.weight_hh,
                &params.bias_hh,
                purpose,
            );
            let mut hs = vec![0.0f32; (steps + 1) * h];
            let mut cs = vec![0.0f32; if lstm { (steps + 1) * h } else { 0 }];
            let mut hn = vec![0.0f32; if gru { steps * h } else { 0 }];
            for k in 0..steps {
                let (h_prev, h_next) = hs[k * h..(k + 2) * h].split_at_mut(h);
                let (c_prev, c_next) = if lstm {
                    let (p, n) = cs[k * h..(k + 2) * h].split_at_mut(h);
                    (Some(&*p), Some(n))
                } else {
                    (None, None)
                };
                forward_step(
                    &packed,
                    ForwardStep {
                        rows: 1,
                        h_prev,
                        c_prev,
                        gates: &mut gates[k * gh..(k + 1) * gh],
                        h: h_next,
                        c: c_next,
                        hn: if gru {
                            Some(&mut hn[k * h..(k + 1) * h])
                        } else {
                            None
                        },
                    },
                    Par::Seq,
                );
            }
            layers.push(ChainLayer {
                input,
                gates,
                h: hs,
                c: cs,
                hn,
                packed,
            });
        }
        PadChain { steps, layers }
    }

    /// The initial state (L, B, H) of rows that start after `pads[r]` padding steps.
    ///
    /// Panics if a pad count exceeds the chain's steps (an invariant of the caller).
    pub(crate) fn states(&self, pads: &[usize]) -> RnnState {
        let batch = pads.len();
        let h = self.hidden();
        let lstm = !self.layers[0].c.is_empty();
        let n = self.layers.len() * batch * h;
        let mut state = RnnState {
            h: vec![0.0; n],
            c: lstm.then(|| vec![0.0; n]),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            for (r, &p) in pads.iter().enumerate() {
                assert!(p <= self.steps, "pad {p} beyond the chain's {}", self.steps);
                let at = (l * batch + r) * h;
                state.h[at..at + h].copy_from_slice(&layer.h[p * h..(p + 1) * h]);
                if let Some(c) = state.c.as_mut() {
                    c[at..at + h].copy_from_slice(&layer.c[p * h..(p + 1) * h]);
                }
            }
        }
        state
    }

    fn hidden(&self) -> usize {
        self.layers[0].h.len() / (self.steps + 1)
    }

    /// Backpropagates the initial-state gradients `d_state` (L, B, H) of rows that started at
    /// offsets `pads` through the chain. Parameter gradients are accumulated (`+=`) into
    /// `grads`; returns `∂L/∂x0` summed over the chain's steps (I).
    ///
    /// Panics if the chain was packed for inference, or shapes disagree (caller invariants).
    pub(crate) fn backward(
        mut self,
        rnn: &Rnn,
        pads: &[usize],
        d_state: &RnnState,
        grads: &mut RnnGrads,
    ) -> Vec<f32> {
        let cfg = rnn.config();
        let (cell, h, m, batch) = (cfg.cell, cfg.hidden_size, self.steps, pads.len());
        let (gh, lstm, gru) = (
            cell.gates() * h,
            cell == CellKind::Lstm,
            cell == CellKind::Gru,
        );
        let isa = cfg.isa.clamp_to_host();
        // What arrives at h of each layer above (from the layer above's input gradient).
        let mut d_above: Option<Vec<f32>> = None;
        for l in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[l];
            let params = &rnn.params().directions[l];
            let width = if l == 0 { cfg.input_size } else { h };
            // dy[k] = ∂L/∂(h after step k): from above, plus the rows that started at k + 1.
            let mut dy = d_above.take().unwrap_or_else(|| vec![0.0f32; m * h]);
            let mut dc_in = vec![0.0f32; if lstm { m * h } else { 0 }];
            for (r, &p) in pads.iter().enumerate() {
                if p == 0 {
                    continue; // the zero state is a constant
                }
                let at = (l * batch + r) * h;
                add(&mut dy[(p - 1) * h..p * h], &d_state.h[at..at + h]);
                if let Some(c) = &d_state.c {
                    add(&mut dc_in[(p - 1) * h..p * h], &c[at..at + h]);
                }
            }
            let mut dh = vec![0.0f32; h];
            let mut dc = vec![0.0f32; if lstm { h } else { 0 }];
            for k in (0..m).rev() {
                if lstm {
                    add(&mut dc, &dc_in[k * h..(k + 1) * h]);
                }
                backward_step(
                    &layer.packed,
                    BackwardStep {
                        rows: 1,
                        dy: &dy[k * h..(k + 1) * h],
                        dh: &mut dh,
                        dc: if lstm { Some(&mut dc) } else { None },
                        gates: &mut layer.gates[k * gh..(k + 1) * gh],
                        h_prev: &layer.h[k * h..(k + 1) * h],
                        h: &layer.h[(k + 1) * h..(k + 2) * h],
                        c_prev: lstm.then(|| &layer.c[k * h..(k + 1) * h]),
                        c: lstm.then(|| &layer.c[(k + 1) * h..(k + 2) * h]),
                        hn: if gru {
                            Some(&mut layer.hn[k * h..(k + 1) * h])
                        } else {
                            None
                        },
                    },
                    Par::Seq,
                );
            }
            let dx = weight_grads(
                isa,
                cell,
                h,
                m,
                width,
                layer,
                params,
                &mut grads.directions[l],
            );
            d_above = Some(dx);
        }
        // Layer 0's input gradient, summed over the steps (they all read the same x0).
        let dx = d_above.expect("at least one layer");
        let mut dx0 = vec![0.0f32; cfg.input_size];
        for row in dx.chunks_exact(cfg.input_size) {
            add(&mut dx0, row);
        }
        dx0
    }
}

/// The weight and bias gradients of one layer's chain after its time loop (as
/// `rnn::direction` does for a whole batch); returns `∂L/∂input` (m, I_l).
fn weight_grads(
    isa: Isa,
    cell: CellKind,
    h: usize,
    m: usize,
    width: usize,
    layer: &ChainLayer,
    params: &DirectionParams,
    grads: &mut DirectionParams,
) -> Vec<f32> {
    let gh = cell.gates() * h;
    let gru = cell == CellKind::Gru;
    let gemm = |a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>| {
        sgemm_with_isa(isa, Par::Seq, 1.0, a, b, beta, c);
    };
    let x = MatRef::row_major(&layer.input, m, width);
    let mut dx = vec![0.0f32; m * width];
    if gru {
        // δ_x is δ_u except gate n, whose input-side gradient is kept in `hn`.
        let (w_rz, w_n) = params.weight_ih.split_at(2 * h * width);
        let (d_rz, d_n) = grads.weight_ih.split_at_mut(2 * h * width);
        let delta_rz = MatRef::new(&layer.gates, m, 2 * h, gh, 1);
        let delta_n = MatRef::row_major(&layer.hn, m, h);
        gemm(delta_rz.t(), x, 1.0, MatMut::row_major(d_rz, 2 * h, width));
        gemm(delta_n.t(), x, 1.0, MatMut::row_major(d_n, h, width));
        gemm(
            delta_rz,
            MatRef::row_major(w_rz, 2 * h, width),
            0.0,
            MatMut::row_major(&mut dx, m, width),
        );
        gemm(
            delta_n,
            MatRef::row_major(w_n, h, width),
            1.0,
            MatMut::row_major(&mut dx, m, width),
        );
    } else {
        let delta = MatRef::row_major(&layer.gates, m, gh);
        gemm(
            delta.t(),
            x,
            1.0,
            MatMut::row_major(&mut grads.weight_ih, gh, width),
        );
        gemm(
            delta,
            MatRef::row_major(&params.weight_ih, gh, width),
            0.0,
            MatMut::row_major(&mut dx, m, width),
        );
    }
    // dW_hh += Σ_k δ_kᵀ·h_{k-1}: rows 0..m of h are the states each step started from.
    gemm(
        MatRef::row_major(&layer.gates, m, gh).t(),
        MatRef::row_major(&layer.h[..m * h], m, h),
        1.0,
        MatMut::row_major(&mut grads.weight_hh, gh, h),
    );
    for row in layer.gates.chunks_exact(gh) {
        add(&mut grads.bias_hh, row);
        add(
            &mut grads.bias_ih[..if gru { 2 * h } else { gh }],
            &row[..if gru { 2 * h } else { gh }],
        );
    }
    if gru {
        for row in layer.hn.chunks_exact(h) {
            add(&mut grads.bias_ih[2 * h..], row);
        }
    }
    dx
}

fn add(acc: &mut [f32], values: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use recur_kernels::Par;

    use crate::data::dataset::{Minibatch, PADDING_ID, Targets};
    use crate::model::init::InitScheme;
    use crate::model::lm::{LanguageModel, LmConfig, LmGrads, LmWorkspace, PaddingMode};

    const VOCAB: usize = 9;

    fn model(cell: &str, layers: usize, embedding: Option<usize>, dropout: f32) -> LanguageModel {
        let config = LmConfig {
            vocab: VOCAB,
            embedding_dim: embedding,
            cell: cell.into(),
            hidden: 7,
            num_layers: layers,
            dropout,
            embed_dropout: 0.0,
            output_dropout: 0.0,
            init: InitScheme::Keras,
        };
        let mut m = LanguageModel::new(config, Par::Seq, 5).unwrap();
        // Non-zero biases everywhere so every gradient path carries signal.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (_, p) in m.params_mut() {
            p.iter_mut()
                .for_each(|v| *v += rng.random_range(-0.3f32..0.3));
        }
        m
    }

    /// Front-padded rows of random real lengths `1..=steps` (one row of only padding, one
    /// without any), real ids in `1..VOCAB`.
    fn batch(steps: usize, rows: usize, seed: u64) -> Minibatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut b = Minibatch::new();
        b.steps = steps;
        b.batch = rows;
        b.targets_kind = Targets::LastStep;
        b.inputs = vec![PADDING_ID; steps * rows];
        for r in 0..rows {
            let real = match r {
                0 => steps,
                1 => 0,
                _ => rng.random_range(1..=steps / 2),
            };
            for t in steps - real..steps {
                b.inputs[t * rows + r] = rng.random_range(1..VOCAB as u32);
            }
        }
        b.targets = (0..rows)
            .map(|_| rng.random_range(0..VOCAB as u32))
            .collect();
        b
    }

    fn flat(g: &LmGrads) -> Vec<(String, Vec<f32>)> {
        let mut out = vec![
            ("decoder.weight".to_string(), g.decoder.d_weight.clone()),
            ("decoder.bias".to_string(), g.decoder.d_bias.clone()),
        ];
        if let Some(d) = &g.d_embedding {
            out.push(("embedding.weight".into(), d.clone()));
        }
        for (name, v) in g.rnn.named("rnn.") {
            out.push((name, v.to_vec()));
        }
        out
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let tol = 2e-6 + 2e-5 * scale;
            assert!(
                (x - y).abs() <= tol,
                "{what}[{k}]: shared {x} vs padded {y} (scale {scale})"
            );
        }
    }

    /// The shared-prefix path against the padded one: loss, accuracy, final state and every
    /// gradient, for each cell, one and two layers, embedding and one-hot input.
    #[test]
    fn shared_padding_matches_the_padded_batch() {
        let mut checked = 0;
        for cell in ["lstm", "gru", "rnn_tanh"] {
            for layers in [1, 2] {
                for embedding in [Some(5), None] {
                    let m = model(cell, layers, embedding, 0.0);
                    let b = batch(8, 6, checked);
                    let run = |padding| {
                        let mut ws = LmWorkspace::new(padding);
                        let mut grads = m.zero_grads();
                        let (stats, state) =
                            m.train_step(&b, None, 1, &mut grads, &mut ws).unwrap();
                        let (eval, _) = m.evaluate(&b, None, &mut ws).unwrap();
                        (stats, eval, state, grads, ws.shared_padding_batches())
                    };
                    let (s_stats, s_eval, s_state, s_grads, s_count) = run(PaddingMode::Shared);
                    let (p_stats, p_eval, p_state, p_grads, p_count) = run(PaddingMode::Padded);
                    let tag = format!("{cell} × {layers}, embedding {embedding:?}");
                    assert_eq!((s_count, p_count), (2, 0), "{tag}: paths taken");
                    for (s, p) in [(&s_stats, &p_stats), (&s_eval, &p_eval)] {
                        let rel = (s.loss_sum - p.loss_sum).abs() / p.loss_sum;
                        assert!(rel < 1e-6, "{tag}: loss {} vs {}", s.loss_sum, p.loss_sum);
                        assert_eq!((s.correct, s.count), (p.correct, p.count), "{tag}");
                    }
                    assert_close(&format!("{tag}: h_n"), &s_state.h, &p_state.h);
                    if let (Some(a), Some(b)) = (&s_state.c, &p_state.c) {
                        assert_close(&format!("{tag}: c_n"), a, b);
                    }
                    for ((name, s), (_, p)) in flat(&s_grads).iter().zip(flat(&p_grads)) {
                        assert!(p.iter().any(|&v| v != 0.0), "{tag}: {name} has no signal");
                        assert_close(&format!("{tag}: {name}"), s, &p);
                    }
                    checked += 1;
                }
            }
        }
    }

    /// Where sharing would not be exact or would not pay, the padded path runs, bit for bit.
    #[test]
    fn falls_back_to_the_padded_batch() {
        let cases = [
            // dropout between stacked layers draws a mask per row and step
            (model("lstm", 2, Some(4), 0.5), batch(8, 6, 1), true),
            // one layer: dropout has nothing to act on, sharing applies
            (model("lstm", 1, Some(4), 0.5), batch(8, 6, 1), false),
            // the reset-before GRU's chain is not implemented
            (
                model("gru_reset_before", 1, Some(4), 0.0),
                batch(8, 6, 1),
                true,
            ),
        ];
        for (m, b, fallback) in cases {
            let mut shared = LmWorkspace::new(PaddingMode::Shared);
            let mut padded = LmWorkspace::new(PaddingMode::Padded);
            let (mut gs, mut gp) = (m.zero_grads(), m.zero_grads());
            let (s, _) = m.train_step(&b, None, 3, &mut gs, &mut shared).unwrap();
            let (p, _) = m.train_step(&b, None, 3, &mut gp, &mut padded).unwrap();
            assert_eq!(shared.shared_padding_batches() == 0, fallback);
            if fallback {
                assert_eq!(s, p);
                assert_eq!(flat(&gs), flat(&gp));
            }
        }
        // A batch with little padding (under a quarter of its steps) is run padded too.
        let m = model("gru", 1, Some(4), 0.0);
        let mut b = batch(8, 6, 2);
        for r in 0..6 {
            for t in 0..8 {
                b.inputs[t * 6 + r] = 1 + ((t + r) % 3) as u32;
            }
        }
        b.inputs[0] = PADDING_ID;
        let mut ws = LmWorkspace::new(PaddingMode::Shared);
        m.evaluate(&b, None, &mut ws).unwrap();
        assert_eq!(ws.shared_padding_batches(), 0);
    }

    /// `zero_written` leaves all-zero gradients after either path, and `written_all_finite`
    /// sees a non-finite value in a row the step wrote.
    #[test]
    fn zero_written_clears_what_train_step_wrote() {
        let m = model("lstm", 1, Some(4), 0.0);
        let b = batch(8, 6, 4);
        let mut grads = m.zero_grads();
        for padding in [PaddingMode::Shared, PaddingMode::Padded] {
            let mut ws = LmWorkspace::new(padding);
            m.train_step(&b, None, 1, &mut grads, &mut ws).unwrap();
            assert!(grads.written_all_finite());
            grads.zero_written();
            for (name, g) in flat(&grads) {
                assert!(
                    g.iter().all(|&v| v == 0.0),
                    "{padding:?}: {name} not cleared"
                );
            }
        }
        let mut ws = LmWorkspace::default();
        m.train_step(&b, None, 1, &mut grads, &mut ws).unwrap();
        // `reset_written` leaves the decoder's gradient to be overwritten by the next step:
        // that step's gradients equal those after `zero_written`.
        let next = batch(8, 6, 5);
        let mut reset = grads.clone();
        reset.reset_written();
        m.train_step(&next, None, 1, &mut reset, &mut ws).unwrap();
        let mut zeroed = grads.clone();
        zeroed.zero_written();
        m.train_step(&next, None, 1, &mut zeroed, &mut ws).unwrap();
        assert_ne!(
            flat(&grads),
            flat(&zeroed),
            "the two batches' gradients differ"
        );
        assert_eq!(flat(&reset), flat(&zeroed));
        let written = b.inputs[b.inputs.len() - 1] as usize;
        assert!(grads.written_all_finite_par(Par::Rayon(2)));
        let last = grads.decoder.d_weight.len() - 1;
        grads.decoder.d_weight[last] = f32::NAN;
        assert!(!grads.written_all_finite());
        assert!(!grads.written_all_finite_par(Par::Rayon(2)));
        grads.decoder.d_weight[last] = 0.0;
        grads.d_embedding.as_mut().unwrap()[written * 4 + 1] = f32::INFINITY;
        assert!(!grads.written_all_finite());
    }
}
