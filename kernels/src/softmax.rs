//! Fused softmax + cross-entropy (to be written: see issue 2).
