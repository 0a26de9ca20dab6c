//! Vectorised exp, sigmoid and tanh (to be written: see issue 2).
