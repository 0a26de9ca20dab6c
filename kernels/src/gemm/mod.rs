//! SGEMM: `C ← α·op(A)·op(B) + β·C` (to be written: see issue 2).
