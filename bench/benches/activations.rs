use criterion::{Criterion, criterion_group, criterion_main};

fn activations(_c: &mut Criterion) {}

criterion_group!(benches, activations);
criterion_main!(benches);
