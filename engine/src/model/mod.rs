//! Model pieces around the recurrent layers: dense and embedding layers, sampling, plots.

pub mod plot;
pub mod sampling;
