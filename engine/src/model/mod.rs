//! Model pieces around the recurrent layers: dense, embedding, conv/pool layers, sampling, plots.

pub mod conv;
pub mod crnn;
pub mod dense;
pub mod embedding;
pub mod init;
pub mod lm;
pub mod loss;
mod padding;
pub mod plot;
pub mod pool;
pub mod sampling;
