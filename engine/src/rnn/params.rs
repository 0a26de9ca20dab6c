//! Parameters and their gradients, named and laid out as PyTorch's `state_dict`.

use super::{RnnConfig, RnnError};

/// The weights of one layer in one direction, PyTorch layout (gate blocks LSTM `i,f,g,o`, GRU
/// `r,z,n`).
#[derive(Clone, Debug, PartialEq)]
pub struct DirectionParams {
    /// `weight_ih_l{k}[_reverse]`. (G·H, I_k)
    pub weight_ih: Vec<f32>,
    /// `weight_hh_l{k}[_reverse]`. (G·H, H)
    pub weight_hh: Vec<f32>,
    /// `bias_ih_l{k}[_reverse]`. (G·H)
    pub bias_ih: Vec<f32>,
    /// `bias_hh_l{k}[_reverse]`. (G·H)
    pub bias_hh: Vec<f32>,
}

/// All parameters of a network, `directions[layer·D + direction]` (PyTorch's order).
///
/// The same type holds gradients (see [`RnnGrads`]): backward accumulates (`+=`) into it, and
/// [`RnnParams::zero`] clears it.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnParams {
    /// `[layer·D + direction]`.
    pub directions: Vec<DirectionParams>,
    pub(crate) bidirectional: bool,
}

/// Gradients of an [`RnnParams`], one buffer per parameter, named `d_` + the parameter's name
/// (`d_weight_ih_l0`, …) by [`RnnParams::named`] with prefix `"d_"`.
pub type RnnGrads = RnnParams;

impl RnnParams {
    /// All-zero parameters (or gradients) for `config`.
    pub fn zeros(config: &RnnConfig) -> Self {
        let (g, h) = (config.cell.gates(), config.hidden_size);
        let d = config.directions();
        let directions = (0..config.num_layers * d)
            .map(|index| {
                let input = if index < d { config.input_size } else { d * h };
                DirectionParams {
                    weight_ih: vec![0.0; g * h * input],
                    weight_hh: vec![0.0; g * h * h],
                    bias_ih: vec![0.0; g * h],
                    bias_hh: vec![0.0; g * h],
                }
            })
            .collect();
        RnnParams {
            directions,
            bidirectional: config.bidirectional,
        }
    }

    /// Sets every value to 0 (backward accumulates, so gradients are cleared between steps).
    pub fn zero(&mut self) {
        for p in &mut self.directions {
            for buffer in [
                &mut p.weight_ih,
                &mut p.weight_hh,
                &mut p.bias_ih,
                &mut p.bias_hh,
            ] {
                buffer.fill(0.0);
            }
        }
    }

    fn suffix(&self, index: usize) -> String {
        let d = if self.bidirectional { 2 } else { 1 };
        let (layer, direction) = (index / d, index % d);
        if direction == 0 {
            format!("_l{layer}")
        } else {
            format!("_l{layer}_reverse")
        }
    }

    /// `(name, values)` of every parameter in PyTorch's `state_dict` order, each name prefixed
    /// with `prefix` (`""` for parameters, `"d_"` for gradients).
    pub fn named(&self, prefix: &str) -> Vec<(String, &[f32])> {
        let mut out = Vec::with_capacity(4 * self.directions.len());
        for (index, p) in self.directions.iter().enumerate() {
            let s = self.suffix(index);
            out.push((format!("{prefix}weight_ih{s}"), &p.weight_ih[..]));
            out.push((format!("{prefix}weight_hh{s}"), &p.weight_hh[..]));
            out.push((format!("{prefix}bias_ih{s}"), &p.bias_ih[..]));
            out.push((format!("{prefix}bias_hh{s}"), &p.bias_hh[..]));
        }
        out
    }

    /// The parameter called `name` (PyTorch's name, or with a `d_` prefix for gradients).
    pub fn get(&self, name: &str) -> Result<&[f32], RnnError> {
        let index = self.index_of(name)?;
        let p = &self.directions[index.0];
        Ok(match index.1 {
            0 => &p.weight_ih,
            1 => &p.weight_hh,
            2 => &p.bias_ih,
            _ => &p.bias_hh,
        })
    }

    /// The parameter called `name`, mutable.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut [f32], RnnError> {
        let index = self.index_of(name)?;
        let p = &mut self.directions[index.0];
        Ok(match index.1 {
            0 => &mut p.weight_ih,
            1 => &mut p.weight_hh,
            2 => &mut p.bias_ih,
            _ => &mut p.bias_hh,
        })
    }

    fn index_of(&self, name: &str) -> Result<(usize, usize), RnnError> {
        let bare = name.strip_prefix("d_").unwrap_or(name);
        for index in 0..self.directions.len() {
            let s = self.suffix(index);
            for (k, base) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
                .iter()
                .enumerate()
            {
                if bare.len() == base.len() + s.len()
                    && bare.starts_with(base)
                    && bare.ends_with(&s)
                {
                    return Ok((index, k));
                }
            }
        }
        Err(RnnError::UnknownParameter {
            expected: self
                .named("")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", "),
            found: name.to_string(),
        })
    }
}
