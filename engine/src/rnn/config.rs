//! [`RnnConfig`]: what a recurrent network is, with defaults and `init`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recur_kernels::{CellKind, Isa, Par};

use super::RnnError;
use super::network::Rnn;
use super::params::{DirectionParams, RnnParams};

/// The configuration of a (stacked, optionally bidirectional) SimpleRNN, LSTM or GRU network,
/// with PyTorch's `nn.RNN/LSTM/GRU` semantics and defaults.
///
/// ```
/// use recur_engine::rnn::RnnConfig;
/// use recur_engine::kernels::CellKind;
///
/// let rnn = RnnConfig::new(CellKind::Lstm, 16, 32)
///     .with_num_layers(2)
///     .with_bidirectional(true)
///     .with_dropout(0.1)
///     .init(7)
///     .unwrap();
/// assert_eq!(rnn.params().get("weight_ih_l1_reverse").unwrap().len(), 4 * 32 * 64);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RnnConfig {
    /// The cell (and, for SimpleRNN, its nonlinearity).
    pub cell: CellKind,
    /// I: features of an input row.
    pub input_size: usize,
    /// H: features of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers (default 1); layer `k > 0` reads layer `k − 1`'s output.
    pub num_layers: usize,
    /// Run a reverse direction beside the forward one and concatenate their outputs (default false).
    pub bidirectional: bool,
    /// Dropout probability on every layer's output except the last, in training (default 0).
    pub dropout: f32,
    /// LSTM only: initialise the forget-gate slice of `bias_ih` to 1 and of `bias_hh` to 0
    /// (Jozefowicz et al. 2015; Keras' `unit_forget_bias`) instead of PyTorch's uniform draw.
    pub unit_forget_bias: bool,
    /// How the layer may use threads (default: the current rayon pool).
    pub par: Par,
    /// The SIMD path of the step kernels (default [`Isa::active`]; clamped to the host).
    pub isa: Isa,
}

impl RnnConfig {
    /// One unidirectional layer, no dropout, PyTorch initialisation.
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            unit_forget_bias: false,
            par: Par::Rayon(0),
            isa: Isa::active(),
        }
    }

    /// Sets [`RnnConfig::num_layers`].
    pub fn with_num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets [`RnnConfig::bidirectional`].
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Sets [`RnnConfig::dropout`].
    pub fn with_dropout(mut self, dropout: f32) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets [`RnnConfig::unit_forget_bias`].
    pub fn with_unit_forget_bias(mut self, unit_forget_bias: bool) -> Self {
        self.unit_forget_bias = unit_forget_bias;
        self
    }

    /// Sets [`RnnConfig::par`].
    pub fn with_par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    /// Sets [`RnnConfig::isa`].
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    /// D: 2 if bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Checks the sizes and the dropout probability.
    pub fn validate(&self) -> Result<(), RnnError> {
        for (what, size) in [
            ("input_size", self.input_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
        ] {
            if size == 0 {
                return Err(RnnError::ZeroSize { what });
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(RnnError::Dropout {
                found: self.dropout,
            });
        }
        Ok(())
    }

    /// A network with PyTorch's default initialisation: every weight and bias drawn from
    /// `U(−k, k)`, `k = 1/√H` (`torch.nn.LSTM` docs, "Variables"), from a `ChaCha8Rng` seeded with
    /// `seed`, in the order `(layer, direction)` then `weight_ih, weight_hh, bias_ih, bias_hh`,
    /// row-major — the same draw as `recur_engine::reference::RefNetwork::seeded`.
    pub fn init(&self, seed: u64) -> Result<Rnn, RnnError> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (self.hidden_size as f64).sqrt();
        let mut params = RnnParams::zeros(self);
        for layer in params.directions.iter_mut() {
            for buffer in [
                &mut layer.weight_ih,
                &mut layer.weight_hh,
                &mut layer.bias_ih,
                &mut layer.bias_hh,
            ] {
                for value in buffer.iter_mut() {
                    *value = rng.random_range(-bound..=bound) as f32;
                }
            }
            if self.unit_forget_bias && self.cell == CellKind::Lstm {
                set_unit_forget_bias(layer, self.hidden_size);
            }
        }
        Ok(Rnn::from_params(self.clone(), params))
    }
}

fn set_unit_forget_bias(layer: &mut DirectionParams, hidden: usize) {
    // Gate order i, f, g, o: the forget gate is the second block.
    layer.bias_ih[hidden..2 * hidden].fill(1.0);
    layer.bias_hh[hidden..2 * hidden].fill(0.0);
}
