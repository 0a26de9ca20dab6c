//! Parallelism is a parameter, not a global.

/// How a kernel may use threads.
///
/// Work is always split into chunks whose size does not depend on the thread count, and no
/// reduction is ever split across threads, so results are bit-identical for every `Par` value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Par {
    /// Run on the calling thread.
    #[default]
    Seq,
    /// Run on the current rayon pool, using at most `n` tasks in flight (`0` = the pool's size).
    Rayon(usize),
}

impl Par {
    /// The number of threads this setting can keep busy.
    pub fn threads(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Rayon(0) => rayon::current_num_threads(),
            Par::Rayon(n) => n,
        }
    }
}
