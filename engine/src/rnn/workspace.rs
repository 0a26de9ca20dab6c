//! What an [`super::Rnn`] keeps between passes: a pool of f32 buffers (outputs, caches, gradients)
//! and its recurrent weights packed for the step kernels.
//!
//! Both live behind a `Mutex` inside the network, so `forward`/`backward` keep taking `&self` and
//! every caller gets them without changing how it holds the network.
//!
//! - **Buffers.** A pass takes its buffers from the pool and `backward` (or `infer`) gives them
//!   back, so a training loop stops allocating — and the kernel stops faulting in and clearing
//!   fresh pages — after its first step. A buffer taken with [`Workspace::take`] holds values left
//!   by an earlier pass: it is only for buffers the pass overwrites whole (every use says why);
//!   [`Workspace::take_zeroed`] is for the others. Results never depend on what a pooled buffer held
//!   (tested by poisoning the pool with NaN).
//! - **Packed weights.** `W_hh` is packed once per parameter version instead of once per pass. The
//!   packs are dropped by [`super::Rnn::params_mut`] — the only way to change the parameters of a
//!   built network — so a stale pack cannot be used.

use std::sync::{Arc, Mutex, PoisonError};

use recur_kernels::cells::{PackFor, PackedRecurrent};

/// At most this many idle buffers are kept (a pass holds a few per layer and direction).
const MAX_POOLED: usize = 64;

/// A pool of f32 buffers reused across passes.
#[derive(Default)]
pub(crate) struct Workspace {
    free: Mutex<Vec<Vec<f32>>>,
}

impl Workspace {
    /// A buffer of `len` values with **unspecified contents** (left from an earlier pass): only for
    /// buffers the caller overwrites whole before reading.
    pub fn take(&self, len: usize) -> Vec<f32> {
        if len == 0 {
            return Vec::new();
        }
        let reused = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            // The shortest buffer at least `len` long (no values to write); failing that, the
            // longest (it grows once).
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= len)
                .min_by_key(|(_, b)| b.len())
                .or_else(|| free.iter().enumerate().max_by_key(|(_, b)| b.len()))
                .map(|(i, _)| i);
            fit.map(|i| free.swap_remove(i))
        };
        let mut buffer = reused.unwrap_or_default();
        buffer.truncate(len);
        buffer.resize(len, 0.0);
        buffer
    }

    /// A buffer of `len` zeros.
    pub fn take_zeroed(&self, len: usize) -> Vec<f32> {
        let mut buffer = self.take(len);
        buffer.fill(0.0);
        buffer
    }

    /// Returns a buffer to the pool.
    pub fn give(&self, buffer: Vec<f32>) {
        if buffer.is_empty() {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.push(buffer);
        if free.len() > MAX_POOLED {
            let smallest = free
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i)
                .expect("pool is not empty");
            free.swap_remove(smallest);
        }
    }

    /// Overwrites every idle buffer with NaN (tests: results must not depend on pooled contents).
    pub fn poison(&self) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        for buffer in free.iter_mut() {
            buffer.fill(f32::NAN);
        }
    }

    /// Idle buffers held.
    pub fn pooled(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A clone starts with an empty pool (buffers are scratch, not state).
impl Clone for Workspace {
    fn clone(&self) -> Self {
        Workspace::default()
    }
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("pooled", &self.pooled())
            .finish()
    }
}

/// `W_hh` of every layer and direction packed for the step kernels, built on first use after a
/// parameter change.
#[derive(Default)]
pub(crate) struct PackCache {
    /// `[layer·D + direction]`; `None` until packed.
    packs: Mutex<Vec<Option<Arc<PackedRecurrent>>>>,
}

impl PackCache {
    /// The pack of direction `index` good for `purpose` (a training pack also serves inference),
    /// built by `make` if missing or packed for inference only.
    pub fn get(
        &self,
        index: usize,
        purpose: PackFor,
        make: impl FnOnce() -> PackedRecurrent,
    ) -> Arc<PackedRecurrent> {
        let usable = |p: &PackedRecurrent| purpose == PackFor::Inference || p.has_backward();
        {
            let packs = self.packs.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(Some(p)) = packs.get(index)
                && usable(p)
            {
                return Arc::clone(p);
            }
        }
        // Packed outside the lock, so the two directions of a layer pack in parallel.
        let packed = Arc::new(make());
        let mut packs = self.packs.lock().unwrap_or_else(PoisonError::into_inner);
        if packs.len() <= index {
            packs.resize(index + 1, None);
        }
        packs[index] = Some(Arc::clone(&packed));
        packed
    }

    /// Drops every pack (the parameters are about to change).
    pub fn clear(&mut self) {
        self.packs
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Directions packed now.
    pub fn packed(&self) -> usize {
        self.packs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flatten()
            .count()
    }
}

/// A clone packs again on first use.
impl Clone for PackCache {
    fn clone(&self) -> Self {
        PackCache::default()
    }
}

impl std::fmt::Debug for PackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackCache")
            .field("packed", &self.packed())
            .finish()
    }
}
