//! Model pieces around the recurrent layers: dense and embedding layers, sampling, plots.

pub mod dense;
pub mod embedding;
pub mod init;
pub mod lm;
pub mod loss;
mod padding;
pub mod plot;
pub mod sampling;
