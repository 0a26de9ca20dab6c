//! Strided matrix views: the operands of every GEMM entry point.
//!
//! A view is `rows × cols` floats of a slice, element `(i, j)` at `i·row_stride + j·col_stride`.
//! Transposition is free ([`MatRef::t`] swaps the dimensions and the strides), so `op(A)` of BLAS is
//! just a view. Constructors check that every element lies inside the slice, which is the invariant
//! the unsafe GEMM cores rely on; [`MatMut`] additionally refuses strides under which two elements
//! would share one float.

/// A read-only `rows × cols` view of f32s with arbitrary (non-negative) strides.
///
/// Invariant (checked by [`MatRef::new`]): if the view is not empty, the offset
/// `(rows−1)·row_stride + (cols−1)·col_stride` is inside `data`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A mutable `rows × cols` view of f32s; the output `C` of a GEMM.
///
/// Invariants (checked by [`MatMut::new`]): every element is inside `data`, and no two elements
/// share an offset (a dimension longer than one has a non-zero stride, and the larger stride steps
/// over the whole extent of the smaller one).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// Offset of the last element of a non-empty view, or `None` on overflow.
fn last_offset(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)
}

fn check_in_bounds(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    match last_offset(rows, cols, row_stride, col_stride) {
        Some(last) if last < len => {}
        _ => view_out_of_bounds(len, rows, cols, row_stride, col_stride),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn view_out_of_bounds(
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> ! {
    panic!(
        "matrix view out of bounds: {rows}×{cols} with strides ({row_stride}, {col_stride}) needs \
         {} floats, but the slice holds {len}",
        last_offset(rows, cols, row_stride, col_stride)
            .and_then(|last| last.checked_add(1))
            .map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
    )
}

/// Whether two different `(i, j)` of the view could map to the same offset. Sufficient test: each
/// dimension longer than one needs a non-zero stride, and the larger stride must exceed the extent
/// `(d−1)·s` of the smaller one, so the smaller dimension's run never reaches the next step.
fn strides_overlap(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows <= 1 || cols <= 1 {
        return (rows > 1 && row_stride == 0) || (cols > 1 && col_stride == 0);
    }
    let ((small_stride, small_dim), big_stride) = if row_stride <= col_stride {
        ((row_stride, rows), col_stride)
    } else {
        ((col_stride, cols), row_stride)
    };
    small_stride == 0
        || (small_dim - 1)
            .checked_mul(small_stride)
            .is_none_or(|extent| big_stride <= extent)
}

#[cold]
#[inline(never)]
#[track_caller]
fn self_overlapping(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> ! {
    panic!(
        "output matrix view would overlap itself: {rows}×{cols} with strides \
         ({row_stride}, {col_stride}); expected distinct offsets for distinct elements \
         (non-zero strides, the larger stride > (dimension−1)·the smaller one)"
    )
}

impl<'a> MatRef<'a> {
    /// A `rows × cols` view of `data`, element `(i, j)` at `data[i·row_stride + j·col_stride]`.
    ///
    /// # Panics
    /// If the view is not empty and its last element lies outside `data`.
    #[track_caller]
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        check_in_bounds(data.len(), rows, cols, row_stride, col_stride);
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A dense row-major `rows × cols` view (row stride `cols`, column stride 1).
    ///
    /// # Panics
    /// If `data` holds fewer than `rows·cols` floats.
    #[track_caller]
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (`cols × rows`); no data moves.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i ≥ rows` or `j ≥ cols`.
    #[track_caller]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) outside a {}×{} matrix",
            self.rows,
            self.cols
        );
        self.data[i * self.row_stride + j * self.col_stride]
    }

    /// The `rows × cols` sub-view starting at `(row0, col0)`.
    ///
    /// # Panics
    /// If the block does not fit inside the view.
    #[track_caller]
    pub fn submatrix(self, row0: usize, col0: usize, rows: usize, cols: usize) -> MatRef<'a> {
        assert!(
            row0 + rows <= self.rows && col0 + cols <= self.cols,
            "block {rows}×{cols} at ({row0}, {col0}) outside a {}×{} matrix",
            self.rows,
            self.cols
        );
        if rows == 0 || cols == 0 {
            return MatRef::new(&[], rows, cols, self.row_stride, self.col_stride);
        }
        let start = row0 * self.row_stride + col0 * self.col_stride;
        MatRef::new(
            &self.data[start..],
            rows,
            cols,
            self.row_stride,
            self.col_stride,
        )
    }

    /// Pointer to element `(0, 0)`. Every `(i, j)` with `i < rows`, `j < cols` is readable at
    /// `ptr + i·row_stride + j·col_stride` (the constructor checked it).
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.data.as_ptr()
    }
}

impl<'a> MatMut<'a> {
    /// A mutable `rows × cols` view of `data`, element `(i, j)` at `data[i·row_stride + j·col_stride]`.
    ///
    /// # Panics
    /// If the view is not empty and its last element lies outside `data`, or if two elements would
    /// share one float (a zero stride on a dimension longer than one, or interleaved strides).
    #[track_caller]
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        check_in_bounds(data.len(), rows, cols, row_stride, col_stride);
        if rows > 0 && cols > 0 && strides_overlap(rows, cols, row_stride, col_stride) {
            self_overlapping(rows, cols, row_stride, col_stride);
        }
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A dense row-major `rows × cols` view (row stride `cols`, column stride 1).
    ///
    /// # Panics
    /// If `data` holds fewer than `rows·cols` floats.
    #[track_caller]
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Reborrows the view for a shorter lifetime (to pass it to a GEMM and keep using it after).
    pub fn rb(&mut self) -> MatMut<'_> {
        MatMut {
            data: &mut *self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef {
            data: &*self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// The transposed view (`cols × rows`); no data moves.
    pub fn t(self) -> Self {
        MatMut {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    /// If `i ≥ rows` or `j ≥ cols`.
    #[track_caller]
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.as_ref().get(i, j)
    }

    /// Sets element `(i, j)`.
    ///
    /// # Panics
    /// If `i ≥ rows` or `j ≥ cols`.
    #[track_caller]
    pub fn set(&mut self, i: usize, j: usize, value: f32) {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) outside a {}×{} matrix",
            self.rows,
            self.cols
        );
        self.data[i * self.row_stride + j * self.col_stride] = value;
    }

    /// Pointer to element `(0, 0)`. Every `(i, j)` with `i < rows`, `j < cols` is writable at
    /// `ptr + i·row_stride + j·col_stride`, and distinct elements have distinct offsets.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.data.as_mut_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_rule() {
        assert!(!strides_overlap(3, 4, 4, 1));
        assert!(!strides_overlap(3, 4, 1, 3));
        assert!(!strides_overlap(3, 4, 5, 1));
        assert!(strides_overlap(3, 4, 3, 1));
        assert!(strides_overlap(3, 4, 0, 1));
        assert!(strides_overlap(3, 4, 2, 2));
        assert!(!strides_overlap(1, 4, 0, 1));
        assert!(!strides_overlap(4, 1, 1, 0));
        assert!(strides_overlap(4, 1, 0, 7));
    }

    #[test]
    fn transpose_and_submatrix() {
        let data: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let a = MatRef::row_major(&data, 3, 4);
        assert_eq!(a.get(2, 1), 9.0);
        assert_eq!(a.t().get(1, 2), 9.0);
        let s = a.submatrix(1, 1, 2, 3);
        assert_eq!(s.get(0, 0), 5.0);
        assert_eq!(s.get(1, 2), 11.0);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn view_too_large_panics() {
        let data = [0.0f32; 11];
        let _ = MatRef::row_major(&data, 3, 4);
    }

    #[test]
    #[should_panic(expected = "overlap itself")]
    fn overlapping_output_panics() {
        let mut data = [0.0f32; 16];
        let _ = MatMut::new(&mut data, 3, 4, 2, 1);
    }

    #[test]
    fn empty_views_need_no_data() {
        let a = MatRef::new(&[], 0, 5, 5, 1);
        assert_eq!((a.rows(), a.cols()), (0, 5));
        let c = MatMut::new(&mut [], 7, 0, 0, 0);
        assert_eq!((c.rows(), c.cols()), (7, 0));
    }
}
