//! The errors a user can cause when building or querying an n-gram model.

/// Bad n-gram options or data. Each message says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NgramError {
    /// `n < 1`.
    #[error("n-gram order: expected n ≥ 1, found {found}")]
    OrderTooSmall { found: usize },

    /// The packed key of an n-gram (n symbols of `bits` bits each) would not fit in 128 bits.
    #[error(
        "n-gram order: expected n ≤ {max} for a vocabulary of {vocab} ids ({bits} bits per id \
         in a 128-bit key), found {found}"
    )]
    OrderTooLarge {
        found: usize,
        max: usize,
        vocab: usize,
        bits: u32,
    },

    /// No id can be predicted (the vocabulary is empty, or holds only the reserved id).
    #[error("n-gram vocabulary: expected at least one id that can be predicted, found {found}")]
    EmptyVocabulary { found: String },

    /// Add-k smoothing with `k ≤ 0` or a non-finite `k`.
    #[error("add-k smoothing: expected a finite k > 0, found {found}")]
    InvalidAddK { found: f64 },

    /// A fixed Kneser–Ney discount outside `[0, r]` for counts `r = 1, 2, 3+`.
    #[error("Kneser–Ney discount D{count}: expected a finite value in [0, {count}], found {found}")]
    InvalidDiscount { count: usize, found: f64 },

    /// A token id outside the vocabulary, or the reserved (padding) id, in training text or a
    /// context.
    #[error(
        "n-gram {what}: token id {id} is not a predictable id (vocabulary 0..{size}{reserved})"
    )]
    TokenOutOfVocabulary {
        what: &'static str,
        id: u32,
        size: usize,
        reserved: String,
    },

    /// Fitting saw no token at all.
    #[error("n-gram training text: expected at least one token, found none")]
    NoTrainingData,
}
