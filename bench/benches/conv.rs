//! Conv1D throughput (im2col + SGEMM, active ISA path, 1 and 2 threads): forward alone and
//! forward + backward (d_weight, d_bias, d_input) on an audio-frame shape — 32 clips × 400 frames
//! × 40 mel bands → 128 channels, K = 5, "same" padding — plus ReLU + max pooling (window 2).
//!
//! Throughput is counted in FLOPs (2·T_out·B·C_out·K·C_in per product: ×1 forward, ×3 forward +
//! backward), so criterion's "elem/s" reads as FLOP/s. `rnnbench conv` prints the same pass as a
//! fraction of the FMA peak, measured side by side.
//!
//! ```sh
//! cargo bench -p recur-bench --bench conv
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recur_bench::{thread_pool, uniform_data};
use recur_kernels::conv::{self, Conv1dGrads, Conv1dShape, MaxPool1dShape};
use recur_kernels::{Isa, Par};

const SHAPE: Conv1dShape = Conv1dShape {
    steps: 400,
    batch: 32,
    in_channels: 40,
    out_channels: 128,
    kernel_width: 5,
    stride: 1,
    padding: 2,
    dilation: 1,
};

fn conv1d(c: &mut Criterion) {
    let isa = Isa::active();
    let s = SHAPE;
    eprintln!("conv bench: ISA path {isa}, shape {s:?}");
    let x = uniform_data(s.input_len(), 1);
    let taps = uniform_data(s.weight_len(), 2);
    let bias = uniform_data(s.out_channels, 3);
    let d_y = uniform_data(s.output_len(), 4);
    let mut y = vec![0.0f32; s.output_len()];
    let mut d_taps = vec![0.0f32; s.weight_len()];
    let mut d_bias = vec![0.0f32; s.out_channels];
    let mut d_x = vec![0.0f32; s.input_len()];
    for (pass, factor) in [("forward", 1.0), ("forward+backward", 3.0)] {
        let mut group = c.benchmark_group(format!("conv1d {pass} B32 T400 40->128 K5"));
        group.throughput(Throughput::Elements((factor * s.forward_flops()) as u64));
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
                        conv::conv1d_forward(isa, par, &s, &x, &taps, Some(&bias), &mut y);
                        if factor > 1.0 {
                            conv::conv1d_backward(
                                isa,
                                par,
                                &s,
                                &x,
                                &taps,
                                &d_y,
                                Conv1dGrads {
                                    d_weight: &mut d_taps,
                                    d_bias: Some(&mut d_bias),
                                    d_input: Some(&mut d_x),
                                },
                            );
                        }
                    })
                })
            });
        }
        group.finish();
    }
}

fn relu_and_pool(c: &mut Criterion) {
    let s = MaxPool1dShape {
        steps: 400,
        batch: 32,
        channels: 128,
        kernel_width: 2,
        stride: 2,
    };
    let x = uniform_data(s.input_len(), 5);
    let mut h = x.clone();
    let mut y = vec![0.0f32; s.output_len()];
    let mut argmax = vec![0u32; s.output_len()];
    let d_y = uniform_data(s.output_len(), 6);
    let mut d_x = vec![0.0f32; s.input_len()];
    let mut group = c.benchmark_group("relu + max_pool1d(2) B32 T400 C128");
    // Bytes of the input read by the forward pass.
    group.throughput(Throughput::Bytes((4 * s.input_len()) as u64));
    group.sample_size(20);
    group.bench_function("forward", |bencher| {
        bencher.iter(|| {
            h.copy_from_slice(&x);
            conv::relu_forward(&mut h);
            conv::max_pool1d_forward(&s, &h, &mut y, &mut argmax);
        })
    });
    group.bench_function("backward", |bencher| {
        bencher.iter(|| {
            conv::max_pool1d_backward(&s, &argmax, &d_y, &mut d_x);
            conv::relu_backward(&h, &mut d_x);
        })
    });
    group.finish();
}

criterion_group!(benches, conv1d, relu_and_pool);
criterion_main!(benches);
