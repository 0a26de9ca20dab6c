use criterion::{Criterion, criterion_group, criterion_main};

fn cells(_c: &mut Criterion) {}

criterion_group!(benches, cells);
criterion_main!(benches);
