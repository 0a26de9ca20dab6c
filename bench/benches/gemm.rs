use criterion::{Criterion, criterion_group, criterion_main};

fn gemm(_c: &mut Criterion) {}

criterion_group!(benches, gemm);
criterion_main!(benches);
