//! SGEMM on every ISA path this CPU has, against the triple-loop reference, bit for bit.
//!
//! Inputs are small integers (|x| ≤ 4) and α, β are small dyadic numbers, so every product and
//! partial sum is exactly representable: the fast paths must match the reference exactly, whatever
//! their summation order.

use proptest::prelude::*;
use recur_kernels::gemm::{
    MatMut, MatRef, PackedB, Route, reference, sgemm, sgemm_packed_b, sgemm_route, sgemm_with_isa,
};
use recur_kernels::{Isa, Par};

/// Deterministic small integers in -4..=4 (a tiny LCG; no RNG crate needed).
fn ints(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 9) as f32 - 4.0
        })
        .collect()
}

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    /// Stored transposed (column-major), read through `.t()`.
    Transposed,
    /// Row-major with padded rows and every second column (non-unit column stride).
    Strided,
}

const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::Transposed, Layout::Strided];

/// A `rows × cols` operand in `layout`, holding `values` (row-major logical order).
struct Operand {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    layout: Layout,
}

impl Operand {
    fn new(values: &[f32], rows: usize, cols: usize, layout: Layout, fill: f32) -> Operand {
        let (len, rs, cs) = Self::strides(rows, cols, layout);
        let mut data = vec![fill; len];
        for i in 0..rows {
            for j in 0..cols {
                data[i * rs + j * cs] = values[i * cols + j];
            }
        }
        Operand {
            data,
            rows,
            cols,
            layout,
        }
    }

    fn strides(rows: usize, cols: usize, layout: Layout) -> (usize, usize, usize) {
        match layout {
            Layout::RowMajor => (rows * cols, cols, 1),
            Layout::Transposed => (rows * cols, 1, rows.max(1)),
            Layout::Strided => {
                let rs = 2 * cols + 3;
                (rows * rs + 1, rs, 2)
            }
        }
    }

    fn view(&self) -> MatRef<'_> {
        let (_, rs, cs) = Self::strides(self.rows, self.cols, self.layout);
        MatRef::new(&self.data, self.rows, self.cols, rs, cs)
    }

    fn view_mut(&mut self) -> MatMut<'_> {
        let (_, rs, cs) = Self::strides(self.rows, self.cols, self.layout);
        MatMut::new(&mut self.data, self.rows, self.cols, rs, cs)
    }
}

/// Which entry point computes the product.
#[derive(Clone, Copy, Debug)]
enum Path {
    General(Isa),
    PackedB(Isa),
    /// `sgemm` forced onto the packed five-loop GEMM (no small-M path).
    PackedRoute(Isa),
}

fn all_paths() -> Vec<Path> {
    let mut paths = Vec::new();
    for isa in Isa::ALL {
        if isa.is_available() {
            paths.push(Path::General(isa));
            paths.push(Path::PackedB(isa));
        } else {
            eprintln!("skipping the {isa} GEMM path: this CPU cannot run it");
        }
    }
    paths
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    layouts: [Layout; 3],
    seed: u64,
}

/// Runs one case on `path` with `par` and returns C's data, after checking it bit for bit against
/// the reference (and that padding between C's elements was not touched).
fn check_case(case: &Case, path: Path, par: Par) -> Vec<f32> {
    let Case {
        m,
        n,
        k,
        alpha,
        beta,
        layouts: [la, lb, lc],
        seed,
    } = *case;
    let a = Operand::new(&ints(m * k, seed), m, k, la, f32::NAN);
    let b = Operand::new(&ints(k * n, seed + 1), k, n, lb, f32::NAN);
    // C starts as NaN when β = 0 (it must not be read); padding is a sentinel it must not touch.
    let c_init = if beta == 0.0 {
        vec![f32::NAN; m * n]
    } else {
        ints(m * n, seed + 2)
    };
    let sentinel = 12345.0;
    let mut expected = Operand::new(&c_init, m, n, lc, sentinel);
    reference::sgemm(alpha, a.view(), b.view(), beta, expected.view_mut());
    let mut got = Operand::new(&c_init, m, n, lc, sentinel);
    match path {
        Path::General(isa) => {
            sgemm_with_isa(isa, par, alpha, a.view(), b.view(), beta, got.view_mut())
        }
        Path::PackedRoute(isa) => sgemm_route(
            isa,
            Route::Packed,
            par,
            alpha,
            a.view(),
            b.view(),
            beta,
            got.view_mut(),
        ),
        Path::PackedB(isa) => {
            let packed = PackedB::pack(isa, b.view());
            assert_eq!((packed.k(), packed.n(), packed.isa()), (k, n, isa));
            sgemm_packed_b(par, alpha, a.view(), &packed, beta, got.view_mut());
        }
    }
    let same = expected
        .data
        .iter()
        .zip(&got.data)
        .all(|(e, g)| e.to_bits() == g.to_bits());
    if !same {
        let first = expected
            .data
            .iter()
            .zip(&got.data)
            .position(|(e, g)| e.to_bits() != g.to_bits())
            .unwrap();
        panic!(
            "{path:?} {par:?}: C differs from the reference for m={m} n={n} k={k} α={alpha} \
             β={beta} layouts A {la:?} B {lb:?} C {lc:?}: first at storage offset {first}: \
             expected {}, got {}",
            expected.data[first], got.data[first]
        );
    }
    got.data
}

/// Sizes around every blocking edge: register tiles (MR ∈ {4, 6, 12}, NR ∈ {16, 32}) and KC.
const AWKWARD_MN: [usize; 14] = [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 15, 16, 17];
const AWKWARD_N: [usize; 8] = [0, 1, 15, 16, 17, 31, 32, 33];

#[test]
fn awkward_shapes_match_reference_on_every_path() {
    for path in all_paths() {
        for &m in &AWKWARD_MN {
            for &n in &AWKWARD_N {
                for &k in &[0, 1, 7, 16] {
                    let case = Case {
                        m,
                        n,
                        k,
                        alpha: 1.0,
                        beta: 0.0,
                        layouts: [Layout::RowMajor; 3],
                        seed: (m * 1000 + n * 10 + k) as u64,
                    };
                    check_case(&case, path, Par::Seq);
                }
            }
        }
    }
}

#[test]
fn alpha_beta_and_layouts_match_reference_on_every_path() {
    for path in all_paths() {
        for (seed, &alpha) in [0.0f32, 1.0, -1.5].iter().enumerate() {
            for &beta in &[0.0f32, 1.0, 0.5] {
                for &la in &LAYOUTS {
                    for &lb in &LAYOUTS {
                        for &lc in &LAYOUTS {
                            let case = Case {
                                m: 13,
                                n: 35,
                                k: 9,
                                alpha,
                                beta,
                                layouts: [la, lb, lc],
                                seed: seed as u64,
                            };
                            check_case(&case, path, Par::Seq);
                        }
                    }
                }
            }
        }
    }
}

/// Shapes that cross the KC (192, 256), MC (128, 144, 480) and several-panel boundaries.
#[test]
fn cache_block_edges_match_reference_on_every_path() {
    let shapes = [
        (7, 40, 257),
        (5, 33, 193),
        (145, 20, 30),
        (97, 35, 520),
        (1, 133, 300),
        (1, 64, 513),
        (129, 17, 3),
        (481, 33, 5),
        (150, 150, 260),
        (2, 300, 513),
    ];
    for path in all_paths() {
        for (index, &(m, n, k)) in shapes.iter().enumerate() {
            let case = Case {
                m,
                n,
                k,
                alpha: 1.0,
                beta: 1.0,
                layouts: [
                    LAYOUTS[index % 3],
                    LAYOUTS[(index + 1) % 3],
                    Layout::RowMajor,
                ],
                seed: index as u64,
            };
            check_case(&case, path, Par::Seq);
        }
    }
}

/// Par::Seq and Par::Rayon(2) on a 2-thread pool give bit-identical C, even when the values are
/// not integers (so summation order would show).
#[test]
fn two_threads_are_bit_identical_to_one() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let shapes = [
        (300, 200, 300),
        (64, 520, 300),
        (1, 700, 40),
        (150, 40, 600),
    ];
    for isa in Isa::available() {
        for &(m, n, k) in &shapes {
            let a: Vec<f32> = ints(m * k, 1).iter().map(|x| x.sin() * 0.37).collect();
            let b: Vec<f32> = ints(k * n, 2).iter().map(|x| x.cos() / 3.0).collect();
            let (a, b) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
            let packed = PackedB::pack(isa, b);
            let c0 = ints(m * n, 3);
            let run = |par: Par, use_packed: bool| {
                let mut c = c0.clone();
                let c_view = MatMut::row_major(&mut c, m, n);
                if use_packed {
                    sgemm_packed_b(par, 0.7, a, &packed, 0.3, c_view);
                } else {
                    sgemm_with_isa(isa, par, 0.7, a, b, 0.3, c_view);
                }
                c
            };
            for use_packed in [false, true] {
                let seq = run(Par::Seq, use_packed);
                let two = pool.install(|| run(Par::Rayon(2), use_packed));
                assert!(
                    seq.iter()
                        .zip(&two)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa} packed={use_packed} {m}×{n}×{k}: threads changed the result"
                );
            }
        }
    }
}

/// The small-M paths (`gemm/small.rs`): the swapped path (B k-contiguous, `x·Wᵀ`) and the direct
/// path (B n-contiguous, k ≥ 1,024, `dy·W`), at odd m, n, k, every layout of A and C, β = 0 and
/// 1, one and two threads; the decoder's shapes among them. The packed route runs the same cases.
#[test]
fn small_m_paths_match_reference() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // (m, n, k, layout of B): Transposed B takes the swapped path, RowMajor B the direct one.
    let shapes = [
        (32, 301, 150, Layout::Transposed),
        (16, 9, 8, Layout::Transposed),
        (16, 4, 17, Layout::Transposed),
        (32, 130, 33, Layout::Transposed),
        (16, 131, 1024, Layout::Transposed),
        (32, 1, 3, Layout::Transposed),
        (32, 150, 2071, Layout::RowMajor),
        (7, 33, 1025, Layout::RowMajor),
        (1, 16, 1500, Layout::RowMajor),
        (64, 48, 3333, Layout::RowMajor),
        (11, 512, 1030, Layout::RowMajor),
    ];
    let mut paths = Vec::new();
    for isa in Isa::available() {
        paths.push(Path::General(isa));
        paths.push(Path::PackedRoute(isa));
    }
    for path in paths {
        for (index, &(m, n, k, lb)) in shapes.iter().enumerate() {
            for beta in [0.0, 1.0] {
                let case = Case {
                    m,
                    n,
                    k,
                    alpha: if beta == 0.0 { 1.0 } else { -0.5 },
                    beta,
                    layouts: [LAYOUTS[index % 3], lb, LAYOUTS[(index + 1) % 3]],
                    seed: index as u64,
                };
                check_case(&case, path, Par::Seq);
                pool.install(|| check_case(&case, path, Par::Rayon(2)));
            }
        }
    }
}

/// The decoder's products (`x·Wᵀ` and `dy·W` of a 32-row batch) on the small-M paths give the
/// same bits for one and two threads, with values whose summation order would show.
#[test]
fn small_m_paths_are_bit_identical_across_threads() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for isa in Isa::available() {
        for &(m, n, k, transposed) in &[(32, 1003, 150, true), (32, 150, 4099, false)] {
            let a: Vec<f32> = ints(m * k, 1).iter().map(|x| x.sin() * 0.37).collect();
            let w: Vec<f32> = ints(k * n, 2).iter().map(|x| x.cos() / 3.0).collect();
            let a = MatRef::row_major(&a, m, k);
            let b = if transposed {
                MatRef::row_major(&w, n, k).t()
            } else {
                MatRef::row_major(&w, k, n)
            };
            let c0 = ints(m * n, 3);
            let run = |par: Par| {
                let mut c = c0.clone();
                sgemm_with_isa(isa, par, 0.7, a, b, 0.3, MatMut::row_major(&mut c, m, n));
                c
            };
            let seq = run(Par::Seq);
            let two = pool.install(|| run(Par::Rayon(2)));
            assert!(
                seq.iter()
                    .zip(&two)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{isa} {m}×{n}×{k}: threads changed the result"
            );
        }
    }
}

#[test]
fn parallel_paths_match_reference() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for path in all_paths() {
        for &(m, n, k) in &[(300, 50, 20), (20, 300, 270), (1, 200, 10)] {
            let case = Case {
                m,
                n,
                k,
                alpha: 0.5,
                beta: 0.0,
                layouts: [Layout::Transposed, Layout::RowMajor, Layout::RowMajor],
                seed: 7,
            };
            pool.install(|| check_case(&case, path, Par::Rayon(2)));
        }
    }
}

#[test]
fn default_entry_point_uses_the_active_path() {
    let (m, n, k) = (9, 18, 5);
    let a = ints(m * k, 1);
    let b = ints(k * n, 2);
    let mut c = vec![f32::NAN; m * n];
    let mut expected = vec![f32::NAN; m * n];
    let (a, b) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    sgemm(Par::Seq, 2.0, a, b, 0.0, MatMut::row_major(&mut c, m, n));
    reference::sgemm(2.0, a, b, 0.0, MatMut::row_major(&mut expected, m, n));
    assert_eq!(c, expected);
}

#[test]
#[should_panic(expected = "GEMM shape mismatch")]
fn inner_dimension_mismatch_panics() {
    let a = [0.0f32; 6];
    let b = [0.0f32; 8];
    let mut c = [0.0f32; 8];
    sgemm(
        Par::Seq,
        1.0,
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 2, 4),
        0.0,
        MatMut::row_major(&mut c, 2, 4),
    );
}

#[test]
#[should_panic(expected = "GEMM shape mismatch")]
fn output_shape_mismatch_panics() {
    let a = [0.0f32; 6];
    let b = [0.0f32; 12];
    let mut c = [0.0f32; 8];
    sgemm(
        Par::Seq,
        1.0,
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 3, 4),
        0.0,
        MatMut::row_major(&mut c, 4, 2),
    );
}

#[test]
#[should_panic(expected = "GEMM shape mismatch")]
fn packed_b_depth_mismatch_panics() {
    let b = [0.0f32; 12];
    let packed = PackedB::pack(Isa::Scalar, MatRef::row_major(&b, 3, 4));
    let a = [0.0f32; 8];
    let mut c = [0.0f32; 8];
    sgemm_packed_b(
        Par::Seq,
        1.0,
        MatRef::row_major(&a, 2, 4),
        &packed,
        0.0,
        MatMut::row_major(&mut c, 2, 4),
    );
}

#[test]
#[should_panic(expected = "overlap itself")]
fn aliasing_output_strides_panic() {
    let mut c = [0.0f32; 8];
    let _ = MatMut::new(&mut c, 4, 4, 1, 1);
}

#[test]
fn unavailable_isa_is_refused() {
    for isa in Isa::ALL {
        if isa.is_available() {
            continue;
        }
        let b = [0.0f32; 4];
        let result = std::panic::catch_unwind(|| PackedB::pack(isa, MatRef::row_major(&b, 2, 2)));
        assert!(result.is_err(), "packing for unavailable {isa} must panic");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_shapes_match_reference(
        m in 0usize..40,
        n in 0usize..70,
        k in 0usize..40,
        la in 0usize..3,
        lb in 0usize..3,
        lc in 0usize..3,
        alpha in prop::sample::select(vec![0.0f32, 1.0, -0.5, 2.0]),
        beta in prop::sample::select(vec![0.0f32, 1.0, 0.25]),
        seed in 0u64..1000,
    ) {
        let case = Case { m, n, k, alpha, beta, layouts: [LAYOUTS[la], LAYOUTS[lb], LAYOUTS[lc]], seed };
        for path in all_paths() {
            check_case(&case, path, Par::Seq);
        }
    }
}
