//! The plain f64 oracle of [`Seq2Seq::loss`]: one example at a time, the recurrent layers from
//! [`crate::reference`], the embeddings, bridge and output layer as scalar loops. Slow by design;
//! the tests take central differences of [`RefSeq2Seq::loss`] to check the fast gradients.

use recur_kernels::CellKind;

use super::model::{Bridge, Seq2Seq};
use crate::reference::{RefCell, RefNetwork, RefState, cast_slice};
use crate::rnn::Rnn;

/// A copy of a [`Seq2Seq`]'s parameters in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeq2Seq {
    pub bridge: Bridge,
    /// E
    pub embed: usize,
    /// V + 1
    pub classes: usize,
    /// (S, E)
    pub source_embedding: Vec<f64>,
    pub encoder: RefNetwork<f64>,
    /// (H_dec, D·H_enc) and (H_dec)
    pub bridge_h: Option<(Vec<f64>, Vec<f64>)>,
    /// (H_dec, D·H_enc) and (H_dec)
    pub bridge_c: Option<(Vec<f64>, Vec<f64>)>,
    /// (V+1, E)
    pub target_embedding: Vec<f64>,
    pub decoder: RefNetwork<f64>,
    /// (V+1, H_dec)
    pub output_weight: Vec<f64>,
    /// (V+1)
    pub output_bias: Vec<f64>,
}

fn ref_network(rnn: &Rnn) -> RefNetwork<f64> {
    let cfg = rnn.config();
    let d = cfg.directions();
    let layers = (0..cfg.num_layers)
        .map(|layer| {
            (0..d)
                .map(|dir| {
                    let p = &rnn.params().directions[layer * d + dir];
                    RefCell {
                        kind: cfg.cell,
                        input: if layer == 0 {
                            cfg.input_size
                        } else {
                            d * cfg.hidden_size
                        },
                        hidden: cfg.hidden_size,
                        w_ih: cast_slice(&p.weight_ih),
                        w_hh: cast_slice(&p.weight_hh),
                        b_ih: cast_slice(&p.bias_ih),
                        b_hh: cast_slice(&p.bias_hh),
                    }
                })
                .collect()
        })
        .collect();
    RefNetwork { layers }
}

/// `y (out) = W (out, in) · x (in) + b`.
fn affine(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    b.iter()
        .enumerate()
        .map(|(o, &bias)| bias + (0..n).map(|i| w[o * n + i] * x[i]).sum::<f64>())
        .collect()
}

impl RefSeq2Seq {
    /// The parameters of `model`, widened to f64.
    pub fn from_model(model: &Seq2Seq) -> Self {
        let dense = |d: &Option<crate::model::dense::Dense>| {
            d.as_ref()
                .map(|d| (cast_slice(&d.weight), cast_slice(&d.bias)))
        };
        RefSeq2Seq {
            bridge: model.config().bridge,
            embed: model.config().embed_dim,
            classes: model.config().classes(),
            source_embedding: cast_slice(&model.source_embedding.weight),
            encoder: ref_network(&model.encoder),
            bridge_h: dense(&model.bridge_h),
            bridge_c: dense(&model.bridge_c),
            target_embedding: cast_slice(&model.target_embedding.weight),
            decoder: ref_network(&model.decoder),
            output_weight: cast_slice(&model.output.weight),
            output_bias: cast_slice(&model.output.bias),
        }
    }

    /// Every parameter, mutable, in [`Seq2Seq::named_params`] order.
    pub fn params_mut(&mut self) -> Vec<&mut Vec<f64>> {
        let mut out = vec![&mut self.source_embedding];
        for cell in self.encoder.layers.iter_mut().flatten() {
            out.extend([
                &mut cell.w_ih,
                &mut cell.w_hh,
                &mut cell.b_ih,
                &mut cell.b_hh,
            ]);
        }
        for (w, b) in [&mut self.bridge_h, &mut self.bridge_c]
            .into_iter()
            .flatten()
        {
            out.extend([w, b]);
        }
        out.push(&mut self.target_embedding);
        for cell in self.decoder.layers.iter_mut().flatten() {
            out.extend([
                &mut cell.w_ih,
                &mut cell.w_hh,
                &mut cell.b_ih,
                &mut cell.b_hh,
            ]);
        }
        out.push(&mut self.output_weight);
        out.push(&mut self.output_bias);
        out
    }

    fn embed(table: &[f64], e: usize, ids: &[u32]) -> Vec<f64> {
        ids.iter()
            .flat_map(|&id| {
                table[id as usize * e..(id as usize + 1) * e]
                    .iter()
                    .copied()
            })
            .collect()
    }

    /// The decoder's initial states (L states of one row) for one source.
    pub fn initial_states(&self, source: &[u32]) -> Vec<RefState<f64>> {
        let x = Self::embed(&self.source_embedding, self.embed, source); // (Ts, 1, E)
        let fwd = self
            .encoder
            .forward(&x, source.len(), 1, &[source.len()], None, None);
        let (l, d) = (self.encoder.num_layers(), self.encoder.num_directions());
        let kind = self.encoder.kind();
        (0..l)
            .map(|layer| {
                let states = &fwd.final_states[layer * d..(layer + 1) * d];
                let concat = |pick: &dyn Fn(&RefState<f64>) -> Vec<f64>| -> Vec<f64> {
                    states.iter().flat_map(pick).collect()
                };
                let sum = |pick: &dyn Fn(&RefState<f64>) -> Vec<f64>| -> Vec<f64> {
                    let parts: Vec<Vec<f64>> = states.iter().map(pick).collect();
                    (0..parts[0].len())
                        .map(|j| parts.iter().map(|p| p[j]).sum())
                        .collect()
                };
                let h_of = |s: &RefState<f64>| s.h.clone();
                let c_of = |s: &RefState<f64>| s.c.clone().expect("LSTM state has c");
                let lstm = kind == CellKind::Lstm;
                match self.bridge {
                    Bridge::Identity => states[0].clone(),
                    Bridge::Sum => RefState {
                        h: sum(&h_of),
                        c: lstm.then(|| sum(&c_of)),
                    },
                    Bridge::Dense => {
                        let (w, b) = self.bridge_h.as_ref().expect("dense bridge");
                        let h = affine(w, b, &concat(&h_of))
                            .into_iter()
                            .map(f64::tanh)
                            .collect();
                        let c = lstm.then(|| {
                            let (w, b) = self.bridge_c.as_ref().expect("LSTM dense bridge");
                            affine(w, b, &concat(&c_of))
                        });
                        RefState { h, c }
                    }
                }
            })
            .collect()
    }

    /// Σ over the examples of `−log p(labels | source, inputs)`, and the number of labels: the
    /// decoder reads `inputs[b]` (start token first) and is scored against `labels[b]` (the same
    /// length: the target tokens, then EOS).
    pub fn loss_sum(
        &self,
        sources: &[Vec<u32>],
        inputs: &[Vec<u32>],
        labels: &[Vec<u32>],
    ) -> (f64, usize) {
        let mut total = 0.0;
        let mut count = 0;
        for ((source, input), label) in sources.iter().zip(inputs).zip(labels) {
            assert_eq!(input.len(), label.len(), "one label per decoder input");
            let init = self.initial_states(source);
            let x = Self::embed(&self.target_embedding, self.embed, input);
            let fwd = self
                .decoder
                .forward(&x, input.len(), 1, &[input.len()], Some(&init), None);
            let hd = self.decoder.hidden();
            for (t, &y) in label.iter().enumerate() {
                let logits = affine(
                    &self.output_weight,
                    &self.output_bias,
                    &fwd.y[t * hd..(t + 1) * hd],
                );
                let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + logits.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
                total += lse - logits[y as usize];
                count += 1;
            }
        }
        (total, count)
    }

    /// The teacher-forced mean loss of [`Seq2Seq::loss`] with [`super::Feeding::Teacher`].
    pub fn loss(&self, sources: &[Vec<u32>], targets: &[Vec<u32>]) -> f64 {
        let eos = (self.classes - 1) as u32;
        let inputs: Vec<Vec<u32>> = targets
            .iter()
            .map(|t| std::iter::once(eos).chain(t.iter().copied()).collect())
            .collect();
        let labels: Vec<Vec<u32>> = targets
            .iter()
            .map(|t| t.iter().copied().chain(std::iter::once(eos)).collect())
            .collect();
        let (sum, count) = self.loss_sum(sources, &inputs, &labels);
        sum / count as f64
    }
}
