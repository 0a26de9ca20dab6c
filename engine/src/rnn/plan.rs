//! How a batch of (possibly ragged) sequences is laid out inside a pass.
//!
//! Rows are sorted by length, longest first (stable), so the rows still running at step `t` are
//! a prefix; the sorted rows are split into chunks whose size depends only on B (never on the
//! thread count); each chunk runs its whole time loop as one task with no barrier per step.
//!
//! Internal buffers are chunk-major: the element of sorted row `start + r` of chunk
//! `(start, rows)` at step `t` is row `T·start + t·rows + r` of a `(T·B, width)` matrix, so one
//! chunk owns one contiguous block and one step of a chunk is contiguous rows. The reverse
//! direction reads its input reversed *within each row's length* (PyTorch packed-sequence
//! semantics: it starts at the row's own last step), so both directions run the same forward
//! time loop.

use super::RnnError;

/// Rows per chunk at most: bounds the per-chunk working set (h rows stay in L2).
const MAX_CHUNK_ROWS: usize = 32;
/// Batches of more than this many rows are split into at least two chunks, so two cores have
/// work even at B = 16.
const MIN_ROWS_TO_SPLIT: usize = 8;

/// One task's share of the batch.
#[derive(Clone, Debug)]
pub(crate) struct Chunk {
    /// First sorted row.
    pub start: usize,
    /// Rows in the chunk.
    pub rows: usize,
    /// Rows still running at each step (a prefix of the chunk). (T)
    pub active: Vec<usize>,
}

/// The layout of one forward pass.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub steps: usize,
    pub batch: usize,
    /// `order[sorted] = user row`.
    pub order: Vec<usize>,
    /// Lengths in sorted order (non-increasing).
    pub lengths: Vec<usize>,
    pub chunks: Vec<Chunk>,
}

/// Chunks for a batch of `batch` rows: `ceil(B/32)` chunks, but 2 once `B > 8`.
pub(crate) fn chunk_count(batch: usize) -> usize {
    let by_size = batch.div_ceil(MAX_CHUNK_ROWS);
    if batch > MIN_ROWS_TO_SPLIT {
        by_size.max(2)
    } else {
        by_size.max(1)
    }
}

impl Plan {
    /// Validates `lengths` (each in `1..=T`, one per row; `None` = all `T`) and lays out the batch.
    pub fn new(steps: usize, batch: usize, lengths: Option<&[usize]>) -> Result<Self, RnnError> {
        if steps == 0 || batch == 0 {
            return Err(RnnError::EmptyBatch { steps, batch });
        }
        let lengths: Vec<usize> = match lengths {
            None => vec![steps; batch],
            Some(l) => {
                if l.len() != batch {
                    return Err(RnnError::Shape {
                        what: "lengths",
                        shape: format!("(B={batch})"),
                        expected: batch,
                        found: l.len(),
                    });
                }
                if let Some((row, &found)) =
                    l.iter().enumerate().find(|(_, n)| **n == 0 || **n > steps)
                {
                    return Err(RnnError::Length { row, steps, found });
                }
                l.to_vec()
            }
        };
        let mut order: Vec<usize> = (0..batch).collect();
        order.sort_by_key(|&row| std::cmp::Reverse(lengths[row]));
        let sorted: Vec<usize> = order.iter().map(|&row| lengths[row]).collect();
        let count = chunk_count(batch);
        let per = batch.div_ceil(count);
        let chunks = (0..count)
            .map(|c| c * per)
            .take_while(|&start| start < batch)
            .map(|start| {
                let rows = per.min(batch - start);
                let active = (0..steps)
                    .map(|t| {
                        sorted[start..start + rows]
                            .iter()
                            .filter(|&&n| n > t)
                            .count()
                    })
                    .collect();
                Chunk {
                    start,
                    rows,
                    active,
                }
            })
            .collect();
        Ok(Plan {
            steps,
            batch,
            order,
            lengths: sorted,
            chunks,
        })
    }

    /// The chunk holding sorted row `s`, and its index inside the chunk.
    fn locate(&self, s: usize) -> (&Chunk, usize) {
        let per = self.chunks[0].rows;
        let chunk = &self.chunks[s / per];
        (chunk, s - chunk.start)
    }

    /// Internal row of sorted row `s` at step `t`.
    pub fn row(&self, t: usize, s: usize) -> usize {
        let (chunk, r) = self.locate(s);
        self.steps * chunk.start + t * chunk.rows + r
    }

    /// `(T, B, width)` user tensor → `(T·B, width)` internal, reversed within each row's length
    /// if `reverse`; steps past a row's length become zeros.
    pub fn gather<T: Copy + Default>(
        &self,
        user: &[T],
        width: usize,
        reverse: bool,
        out: &mut [T],
    ) {
        for s in 0..self.batch {
            let (user_row, len) = (self.order[s], self.lengths[s]);
            for t in 0..self.steps {
                let dst = self.row(t, s) * width;
                if t < len {
                    let src_t = if reverse { len - 1 - t } else { t };
                    let src = (src_t * self.batch + user_row) * width;
                    out[dst..dst + width].copy_from_slice(&user[src..src + width]);
                } else {
                    out[dst..dst + width].fill(T::default());
                }
            }
        }
    }

    /// Internal `(T·B, width)` → columns `col0..col0+width` of a user `(T, B, ld)` tensor, undoing
    /// the reversal if `reverse`; steps past a row's length are set to zero.
    pub fn scatter(
        &self,
        internal: &[f32],
        width: usize,
        reverse: bool,
        user: &mut [f32],
        ld: usize,
        col0: usize,
    ) {
        for s in 0..self.batch {
            let (user_row, len) = (self.order[s], self.lengths[s]);
            for t in 0..self.steps {
                let dst = (t * self.batch + user_row) * ld + col0;
                if t < len {
                    let src_t = if reverse { len - 1 - t } else { t };
                    let src = self.row(src_t, s) * width;
                    user[dst..dst + width].copy_from_slice(&internal[src..src + width]);
                } else {
                    user[dst..dst + width].fill(0.0);
                }
            }
        }
    }

    /// Copies columns `col0..col0+width` of an internal `(T·B, ld)` buffer into an internal
    /// `(T·B, width)` one, reversed within each row's length if `reverse` (`add`: accumulate).
    pub fn internal_columns(
        &self,
        src: &[f32],
        ld: usize,
        col0: usize,
        width: usize,
        reverse: bool,
        dst: &mut [f32],
        dst_ld: usize,
        dst_col0: usize,
        add: bool,
    ) {
        for s in 0..self.batch {
            let len = self.lengths[s];
            for t in 0..self.steps {
                let d = self.row(t, s) * dst_ld + dst_col0;
                let out = &mut dst[d..d + width];
                if t < len {
                    let src_t = if reverse { len - 1 - t } else { t };
                    let a = self.row(src_t, s) * ld + col0;
                    let input = &src[a..a + width];
                    if add {
                        out.iter_mut().zip(input).for_each(|(o, i)| *o += i);
                    } else {
                        out.copy_from_slice(input);
                    }
                } else if !add {
                    out.fill(0.0);
                }
            }
        }
    }

    /// `(B, H)` state rows, user order → sorted order.
    pub fn gather_state(&self, user: &[f32], hidden: usize, out: &mut [f32]) {
        for (s, &row) in self.order.iter().enumerate() {
            out[s * hidden..(s + 1) * hidden]
                .copy_from_slice(&user[row * hidden..(row + 1) * hidden]);
        }
    }

    /// `(B, H)` state rows, sorted order → user order.
    pub fn scatter_state(&self, sorted: &[f32], hidden: usize, out: &mut [f32]) {
        for (s, &row) in self.order.iter().enumerate() {
            out[row * hidden..(row + 1) * hidden]
                .copy_from_slice(&sorted[s * hidden..(s + 1) * hidden]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_do_not_depend_on_threads_and_cover_the_batch() {
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(8), 1);
        assert_eq!(chunk_count(9), 2);
        assert_eq!(chunk_count(64), 2);
        assert_eq!(chunk_count(65), 3);
        let plan = Plan::new(4, 13, Some(&[1, 4, 2, 3, 4, 4, 1, 2, 3, 3, 1, 2, 4])).unwrap();
        let covered: usize = plan.chunks.iter().map(|c| c.rows).sum();
        assert_eq!(covered, 13);
        assert!(plan.lengths.windows(2).all(|w| w[0] >= w[1]));
        let mut seen = [false; 4 * 13];
        for t in 0..4 {
            for s in 0..13 {
                seen[plan.row(t, s)] = true;
            }
        }
        assert!(seen.iter().all(|&x| x));
    }

    #[test]
    fn gather_then_scatter_round_trips_valid_steps() {
        let (t, b, w) = (3, 4, 2);
        let lengths = [2, 3, 1, 3];
        let plan = Plan::new(t, b, Some(&lengths)).unwrap();
        let user: Vec<f32> = (0..t * b * w).map(|v| v as f32 + 1.0).collect();
        for reverse in [false, true] {
            let mut internal = vec![f32::NAN; t * b * w];
            plan.gather(&user, w, reverse, &mut internal);
            let mut back = vec![f32::NAN; t * b * w];
            plan.scatter(&internal, w, reverse, &mut back, w, 0);
            for step in 0..t {
                for row in 0..b {
                    for k in 0..w {
                        let at = (step * b + row) * w + k;
                        let want = if step < lengths[row] { user[at] } else { 0.0 };
                        assert_eq!(back[at], want);
                    }
                }
            }
        }
    }
}
