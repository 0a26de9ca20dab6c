//! Criterion benches of the recurrent layers, per cell and mode (`rnnbench layer` is the JSON
//! counterpart used for RESULTS.md). Throughput is reported in elements = floating-point
//! operations (2·G·H·(I+H)·B·T, ×3 for training), so criterion's "elem/s" reads as FLOP/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recur_engine::kernels::{CellKind, Isa, Par, RnnActivation};
use recur_engine::rnn::{Mode, RnnConfig, SeqBatch};

fn cells(c: &mut Criterion) {
    let isa = Isa::active();
    for (cell, name) in [
        (CellKind::Lstm, "lstm"),
        (CellKind::Gru, "gru"),
        (CellKind::Rnn(RnnActivation::Tanh), "rnn"),
    ] {
        for (batch, steps, input, hidden) in [(32, 25, 256, 256), (1, 100, 256, 256)] {
            let rnn = RnnConfig::new(cell, input, hidden)
                .with_par(Par::Seq)
                .init(1)
                .unwrap();
            let x: Vec<f32> = (0..steps * batch * input)
                .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                .collect();
            let flops = 2 * cell.gates() * hidden * (input + hidden) * batch * steps;
            let mut group = c.benchmark_group(format!(
                "layer/{name}/B{batch}_T{steps}_I{input}_H{hidden}/{isa}/1t"
            ));
            group.sample_size(10);
            group.throughput(Throughput::Elements(flops as u64));
            group.bench_function("infer", |bench| {
                bench.iter(|| rnn.infer(SeqBatch::new(&x, steps, batch), None).unwrap())
            });
            if batch > 1 {
                group.throughput(Throughput::Elements(3 * flops as u64));
                let mut grads = rnn.zero_grads();
                group.bench_function("train", |bench| {
                    bench.iter(|| {
                        let (out, cache) = rnn
                            .forward(
                                SeqBatch::new(&x, steps, batch),
                                None,
                                Mode::Training { dropout_seed: 0 },
                            )
                            .unwrap();
                        let dy = vec![1.0f32; out.output.len()];
                        grads.zero();
                        rnn.backward(cache, &dy, None, &mut grads).unwrap()
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, cells);
criterion_main!(benches);
