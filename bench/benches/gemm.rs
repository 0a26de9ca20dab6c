//! SGEMM throughput: recur (active ISA path, 1 and 2 threads) against matrixmultiply, same group.
//!
//! Throughput is counted in floating-point operations (2·m·n·k), so criterion's "elem/s" reads as
//! FLOP/s (Gelem/s = GFLOP/s). matrixmultiply reads its thread count once per process from
//! `MATMUL_NUM_THREADS`; run the bench once with `MATMUL_NUM_THREADS=1` and once with `=2` to
//! compare at each thread count (its entries are labelled with the count they ran with).
//!
//! ```sh
//! MATMUL_NUM_THREADS=1 cargo bench -p recur-bench --bench gemm
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recur_bench::{gemm_flops, thread_pool, uniform_data};
use recur_kernels::gemm::{self, MatMut, MatRef, PackedB};
use recur_kernels::{Isa, Par};

/// (label, m, n, k, B pre-packed)
const SHAPES: [(&str, usize, usize, usize, bool); 3] = [
    ("1024x1024x1024", 1024, 1024, 1024, false),
    ("input-projection 3200x2048x512", 3200, 2048, 512, false),
    ("recurrent-step 64x2048x512 packed-B", 64, 2048, 512, true),
];

fn matmul_threads() -> usize {
    std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn sgemm_shapes(c: &mut Criterion) {
    let isa = Isa::active();
    eprintln!(
        "gemm bench: ISA path {isa}, matrixmultiply threads {}",
        matmul_threads()
    );
    for (label, m, n, k, packed_b) in SHAPES {
        let a = uniform_data(m * k, 1);
        let b = uniform_data(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let (a_view, b_view) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
        let packed = PackedB::pack(isa, b_view);
        let mut group = c.benchmark_group(format!("sgemm {label}"));
        group.throughput(Throughput::Elements(gemm_flops(m, n, k) as u64));
        group.sample_size(10);
        for threads in [1, 2] {
            let pool = thread_pool(threads);
            let par = if threads == 1 {
                Par::Seq
            } else {
                Par::Rayon(threads)
            };
            let id = BenchmarkId::new(format!("recur {isa}"), format!("{threads} thread(s)"));
            group.bench_function(id, |bencher| {
                pool.install(|| {
                    bencher.iter(|| {
                        let c = MatMut::row_major(&mut out, m, n);
                        if packed_b {
                            gemm::sgemm_packed_b(par, 1.0, a_view, &packed, 0.0, c);
                        } else {
                            gemm::sgemm_with_isa(isa, par, 1.0, a_view, b_view, 0.0, c);
                        }
                    })
                })
            });
        }
        let id = BenchmarkId::new(
            "matrixmultiply",
            format!("MATMUL_NUM_THREADS={}", matmul_threads()),
        );
        group.bench_function(id, |bencher| {
            bencher.iter(|| {
                let c = MatMut::row_major(&mut out, m, n);
                gemm::baseline::matrixmultiply_sgemm(1.0, a_view, b_view, 0.0, c);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, sgemm_shapes);
criterion_main!(benches);
