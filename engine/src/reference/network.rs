//! A stack of recurrent layers, optionally bidirectional, with PyTorch's `nn.RNN/LSTM/GRU`
//! semantics:
//!
//! - layer 0 reads `x` (T, B, I); layer `k > 0` reads layer `k − 1`'s output (T, B, D·H), where
//!   the output is the concatenation `[forward, reverse]` along the feature axis;
//! - with dropout, layer `k > 0` reads that output multiplied element-wise by a caller-supplied
//!   mask (already scaled by `1/(1 − p)`, so the mask holds `0` or `1/(1 − p)`); PyTorch applies
//!   dropout to every layer's output except the last;
//! - initial and final states are ordered `(layer, direction)`, like PyTorch's `h_n`/`c_n` rows
//!   `layer·D + direction`;
//! - parameters are named as in PyTorch's `state_dict` (`weight_ih_l{k}[_reverse]`, …).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use recur_kernels::CellKind;

use super::cell::{RefCell, RefState, add_acc};
use super::real::Real;
use super::sequence::{
    Direction, RefGrads, RefSequence, check_lengths, sequence_backward, sequence_forward,
};

/// A stacked, optionally bidirectional recurrent network.
#[derive(Clone, Debug, PartialEq)]
pub struct RefNetwork<T> {
    /// `[layer][direction]`: direction 0 is forward, 1 (if present) is reverse. Layer 0 cells
    /// have `input = I`, later ones `input = D·H`.
    pub layers: Vec<Vec<RefCell<T>>>,
}

/// The result of [`RefNetwork::forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RefNetworkForward<T> {
    /// (T, B, D·H): the last layer's output, `[forward, reverse]` along the last axis
    pub y: Vec<T>,
    /// L·D states, ordered `(layer, direction)`; each h (B, H), c (B, H) for LSTM
    pub final_states: Vec<RefState<T>>,
    /// `[layer]`: what each layer read, (T, B, I) for layer 0, (T, B, D·H) after dropout above
    pub layer_inputs: Vec<Vec<T>>,
    /// `[layer][direction]`: each direction's forward pass
    pub sequences: Vec<Vec<RefSequence<T>>>,
    /// L − 1 masks, each (T, B, D·H), or none
    pub dropout_masks: Option<Vec<Vec<T>>>,
}

/// The result of [`RefNetwork::backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RefNetworkGrads<T> {
    /// `[layer][direction]`: the weight gradients (and that direction's share of `d_x`/`d_init`)
    pub layers: Vec<Vec<RefGrads<T>>>,
    /// (T, B, I): gradient w.r.t. the network's input
    pub d_x: Vec<T>,
    /// L·D states ordered `(layer, direction)`: gradient w.r.t. the initial states
    pub d_init: Vec<RefState<T>>,
}

/// PyTorch's name suffix for layer `layer`, direction `direction`: `_l0`, `_l1_reverse`, ….
fn suffix(layer: usize, direction: usize) -> String {
    if direction == 0 {
        format!("_l{layer}")
    } else {
        format!("_l{layer}_reverse")
    }
}

fn direction_of(index: usize) -> Direction {
    if index == 0 {
        Direction::Forward
    } else {
        Direction::Reverse
    }
}

impl<T: Real> RefNetwork<T> {
    /// A network with PyTorch's default initialisation (see [`RefCell::random`]), cells drawn in
    /// `(layer, direction)` order from one `ChaCha8Rng` seeded with `seed`. `bidirectional` is
    /// PyTorch's constructor flag of the same name.
    ///
    /// # Panics
    /// If `num_layers` is 0.
    pub fn seeded(
        kind: CellKind,
        input: usize,
        hidden: usize,
        num_layers: usize,
        bidirectional: bool,
        seed: u64,
    ) -> Self {
        assert!(num_layers > 0, "a network needs at least one layer");
        let directions = if bidirectional { 2 } else { 1 };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = (0..num_layers)
            .map(|layer| {
                let layer_input = if layer == 0 {
                    input
                } else {
                    directions * hidden
                };
                (0..directions)
                    .map(|_| RefCell::random(kind, layer_input, hidden, &mut rng))
                    .collect()
            })
            .collect();
        RefNetwork { layers }
    }

    /// The same network in another precision.
    pub fn cast<U: Real>(&self) -> RefNetwork<U> {
        RefNetwork {
            layers: self
                .layers
                .iter()
                .map(|cells| cells.iter().map(RefCell::cast).collect())
                .collect(),
        }
    }

    pub fn kind(&self) -> CellKind {
        self.layers[0][0].kind
    }
    /// I: input width of layer 0.
    pub fn input(&self) -> usize {
        self.layers[0][0].input
    }
    /// H
    pub fn hidden(&self) -> usize {
        self.layers[0][0].hidden
    }
    /// L
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
    /// D: 1, or 2 if bidirectional.
    pub fn num_directions(&self) -> usize {
        self.layers[0].len()
    }

    /// All parameters in PyTorch's `state_dict` order and names (`weight_ih_l0`, `weight_hh_l0`,
    /// `bias_ih_l0`, `bias_hh_l0`, `weight_ih_l0_reverse`, …).
    pub fn named_parameters(&self) -> Vec<(String, &Vec<T>)> {
        let mut named = Vec::new();
        for (layer, cells) in self.layers.iter().enumerate() {
            for (direction, cell) in cells.iter().enumerate() {
                for (name, values) in cell.named_parameters() {
                    named.push((format!("{name}{}", suffix(layer, direction)), values));
                }
            }
        }
        named
    }

    /// [`RefNetwork::named_parameters`], mutable.
    pub fn named_parameters_mut(&mut self) -> Vec<(String, &mut Vec<T>)> {
        let mut named = Vec::new();
        for (layer, cells) in self.layers.iter_mut().enumerate() {
            for (direction, cell) in cells.iter_mut().enumerate() {
                for (name, values) in cell.named_parameters_mut() {
                    named.push((format!("{name}{}", suffix(layer, direction)), values));
                }
            }
        }
        named
    }

    /// L·D zero states, ordered `(layer, direction)`.
    pub fn zero_states(&self, batch: usize) -> Vec<RefState<T>> {
        let count = self.num_layers() * self.num_directions();
        vec![RefState::zeros(self.kind(), batch, self.hidden()); count]
    }

    /// Runs the network over `x` (T, B, I) with per-row `lengths` (B) in `1..=T`.
    ///
    /// `init`: L·D initial states ordered `(layer, direction)`, or `None` for zeros.
    /// `dropout_masks`: L − 1 masks, each (T, B, D·H), mask `k` multiplying layer `k`'s output
    /// before layer `k + 1` reads it; or `None` for no dropout (evaluation mode).
    ///
    /// # Panics
    /// On any shape disagreement, or if the layers do not chain (layer `k > 0` must have
    /// `input = D·H`).
    pub fn forward(
        &self,
        x: &[T],
        steps: usize,
        batch: usize,
        lengths: &[usize],
        init: Option<&[RefState<T>]>,
        dropout_masks: Option<&[Vec<T>]>,
    ) -> RefNetworkForward<T> {
        let (hid, dirs, num_layers) = (self.hidden(), self.num_directions(), self.num_layers());
        check_lengths(lengths, steps, batch);
        let zeros;
        let init = match init {
            Some(states) => states,
            None => {
                zeros = self.zero_states(batch);
                &zeros[..]
            }
        };
        assert_eq!(
            init.len(),
            num_layers * dirs,
            "init must hold L·D = {} states",
            num_layers * dirs
        );
        if let Some(masks) = dropout_masks {
            assert_eq!(masks.len(), num_layers - 1, "need L − 1 dropout masks");
            for mask in masks {
                assert_eq!(
                    mask.len(),
                    steps * batch * dirs * hid,
                    "masks are (T, B, D·H)"
                );
            }
        }
        let mut layer_inputs = vec![x.to_vec()];
        let mut sequences = Vec::with_capacity(num_layers);
        let mut final_states = Vec::with_capacity(num_layers * dirs);
        let mut y = Vec::new();
        for (layer, cells) in self.layers.iter().enumerate() {
            assert_eq!(cells.len(), dirs, "every layer has D cells");
            let input = &layer_inputs[layer];
            let mut per_direction = Vec::with_capacity(dirs);
            // (T, B, D·H): this layer's output, directions side by side
            y = vec![T::ZERO; steps * batch * dirs * hid];
            for (d, cell) in cells.iter().enumerate() {
                assert_eq!(cell.hidden, hid, "every cell has the same H");
                let seq = sequence_forward(
                    cell,
                    input,
                    steps,
                    batch,
                    lengths,
                    &init[layer * dirs + d],
                    direction_of(d),
                );
                for tb in 0..steps * batch {
                    let dst = tb * dirs * hid + d * hid;
                    y[dst..dst + hid].copy_from_slice(&seq.y[tb * hid..(tb + 1) * hid]);
                }
                final_states.push(seq.final_state.clone());
                per_direction.push(seq);
            }
            sequences.push(per_direction);
            if layer + 1 < num_layers {
                let mut next = y.clone();
                if let Some(masks) = dropout_masks {
                    for (v, &m) in next.iter_mut().zip(&masks[layer]) {
                        *v *= m;
                    }
                }
                layer_inputs.push(next);
            }
        }
        RefNetworkForward {
            y,
            final_states,
            layer_inputs,
            sequences,
            dropout_masks: dropout_masks.map(<[Vec<T>]>::to_vec),
        }
    }

    /// Backpropagation through time and through the stack.
    ///
    /// `dy` (T, B, D·H) is the gradient w.r.t. `fwd.y`; `d_final` the L·D gradients w.r.t. the
    /// final states (ordered `(layer, direction)`), or `None` for zeros.
    ///
    /// # Panics
    /// On any shape disagreement with `fwd`.
    pub fn backward(
        &self,
        fwd: &RefNetworkForward<T>,
        dy: &[T],
        d_final: Option<&[RefState<T>]>,
    ) -> RefNetworkGrads<T> {
        let (hid, dirs, num_layers) = (self.hidden(), self.num_directions(), self.num_layers());
        let (steps, batch) = (fwd.sequences[0][0].steps, fwd.sequences[0][0].batch);
        assert_eq!(
            dy.len(),
            steps * batch * dirs * hid,
            "dy must be (T, B, D·H)"
        );
        let zeros;
        let d_final = match d_final {
            Some(states) => states,
            None => {
                zeros = self.zero_states(batch);
                &zeros[..]
            }
        };
        assert_eq!(
            d_final.len(),
            num_layers * dirs,
            "d_final must hold L·D states"
        );

        let mut layers: Vec<Vec<RefGrads<T>>> = Vec::with_capacity(num_layers);
        // (T, B, D·H): gradient w.r.t. the output of the layer being undone
        let mut d_out = dy.to_vec();
        let mut d_x = Vec::new();
        for layer in (0..num_layers).rev() {
            let input = &fwd.layer_inputs[layer];
            // (T, B, input width of this layer): sum over directions
            let mut d_input = vec![T::ZERO; input.len()];
            let mut per_direction = Vec::with_capacity(dirs);
            for (d, cell) in self.layers[layer].iter().enumerate() {
                // (T, B, H): this direction's slice of d_out
                let mut dy_d = vec![T::ZERO; steps * batch * hid];
                for tb in 0..steps * batch {
                    let src = tb * dirs * hid + d * hid;
                    dy_d[tb * hid..(tb + 1) * hid].copy_from_slice(&d_out[src..src + hid]);
                }
                let grads = sequence_backward(
                    cell,
                    input,
                    &fwd.sequences[layer][d],
                    &dy_d,
                    &d_final[layer * dirs + d],
                );
                add_acc(&mut d_input, &grads.d_x);
                per_direction.push(grads);
            }
            layers.push(per_direction);
            if layer > 0 {
                // through the dropout mask (if any) to the layer below's output
                if let Some(masks) = &fwd.dropout_masks {
                    for (g, &m) in d_input.iter_mut().zip(&masks[layer - 1]) {
                        *g *= m;
                    }
                }
                d_out = d_input;
            } else {
                d_x = d_input;
            }
        }
        layers.reverse();
        let d_init = layers
            .iter()
            .flat_map(|cells| cells.iter().map(|g| g.d_init.clone()))
            .collect();
        RefNetworkGrads {
            layers,
            d_x,
            d_init,
        }
    }
}

impl<T: Real> RefNetworkGrads<T> {
    /// The weight gradients in the order and with the names of
    /// [`RefNetwork::named_parameters`].
    pub fn named_parameters(&self) -> Vec<(String, &Vec<T>)> {
        let mut named = Vec::new();
        for (layer, cells) in self.layers.iter().enumerate() {
            for (direction, grads) in cells.iter().enumerate() {
                for (name, values) in grads.named_parameters() {
                    named.push((format!("{name}{}", suffix(layer, direction)), values));
                }
            }
        }
        named
    }
}
