//! Recurrent layers: SimpleRNN, LSTM and GRU with PyTorch's semantics and weight layout,
//! stacked and bidirectional, over ragged sequence batches, with BPTT.
//!
//! Built on the fused step kernels of [`recur_kernels::cells`]: per pass, the input projection of
//! all T steps is one GEMM, `W_hh` is packed once into gate-interleaved panels, each time step is
//! one fused kernel call per batch chunk, and the weight gradients are single GEMMs over all T·B
//! rows after the time loop. Chunks of the batch (sizes fixed by B alone) run their whole time
//! loops in parallel, so results are bit-identical for any thread count.
//!
//! ```
//! use recur_engine::rnn::{Mode, RnnConfig, SeqBatch};
//! use recur_engine::kernels::CellKind;
//!
//! let (steps, batch, input, hidden) = (5, 3, 4, 8);
//! let lstm = RnnConfig::new(CellKind::Lstm, input, hidden).init(42).unwrap();
//! let x = vec![0.5f32; steps * batch * input]; // (T, B, I)
//! let lengths = [5, 2, 4];
//! let (out, cache) = lstm
//!     .forward(SeqBatch::new(&x, steps, batch).with_lengths(&lengths), None, Mode::Training { dropout_seed: 0 })
//!     .unwrap();
//! assert_eq!(out.output.len(), steps * batch * hidden); // (T, B, H)
//! let mut grads = lstm.zero_grads();
//! let dy = vec![1.0f32; out.output.len()]; // L = Σ y
//! let back = lstm.backward(cache, &dy, None, &mut grads).unwrap();
//! assert_eq!(back.d_input.len(), x.len());
//! assert!(grads.get("d_weight_hh_l0").unwrap().iter().any(|&g| g != 0.0));
//! ```

mod config;
mod direction;
mod error;
mod gemm;
mod network;
mod params;
mod plan;
mod stream;
mod workspace;

pub use config::RnnConfig;
pub use error::RnnError;
pub use network::{
    Mode, Outputs, Rnn, RnnCache, RnnForward, RnnInputGrads, RnnState, SeqBatch, TokenBatch,
};
pub use params::{DirectionParams, RnnGrads, RnnParams};
pub use stream::RnnStream;

#[cfg(test)]
mod tests;
