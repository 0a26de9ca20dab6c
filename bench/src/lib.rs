//! Shared helpers of recur's benchmarks (timing, JSON lines).
