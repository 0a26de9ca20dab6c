//! N-gram language models — the baselines the recurrent models are measured against.
//!
//! `p(x)` (unigram), `p(x | previous id)` (bigram) and `p(x | previous n − 1 ids)`, counted over
//! the same tokenisers and token cache as the recurrent models ([`crate::data`]) and smoothed by
//! interpolated modified Kneser–Ney or, for contrast, add-k. Held-out perplexity and bits per
//! character are computed on exactly the validation targets `recur train --val-frac` uses
//! ([`eval`]), so the numbers sit beside the recurrent models'.
//!
//! ```
//! use recur_engine::ngram::{NgramConfig, NgramModel, Smoothing, Vocabulary};
//!
//! // Ids 0..3 of a tiny vocabulary; two "lines".
//! let config = NgramConfig { order: 2, smoothing: Smoothing::KNESER_NEY };
//! let vocab = Vocabulary::new(3, None).unwrap();
//! let model = NgramModel::fit(config, vocab, [vec![0, 1, 2], vec![0, 1, 1]]).unwrap();
//! let mut p = Vec::new();
//! model.distribution(&[0], &mut p).unwrap(); // p(· | 0)
//! assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
//! assert!(p[1] > p[2] && p[2] > 0.0);         // seen after 0 > unseen after 0 > 0
//! ```
//!
//! The formulas, the begin symbol and the discount estimates are documented in [`model`].

pub mod error;
pub mod eval;
pub mod model;

pub use error::NgramError;
pub use eval::{NgramScore, fit_ranges, score_dataset, training_ranges, vocabulary_of};
pub use model::{Discounts, NgramConfig, NgramCounter, NgramModel, Smoothing, Vocabulary};
