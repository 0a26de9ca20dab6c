//! Activations (exp, sigmoid, tanh) and fused softmax + cross-entropy, in elements per second.
//!
//! Every kernel is measured on the active ISA path (printed first; `RECUR_ISA` overrides it), on
//! the portable path, and beside the plain scalar loop a user would otherwise write (`f32::exp`,
//! `1/(1+exp(−x))`, `f32::tanh`, and a three-pass scalar softmax-CE). Single thread throughout.
//!
//! Before criterion runs, `interleaved ratios` lines print the speed-up over the plain loop as the
//! median of 21 rounds that time the two side by side, which is what to trust on a busy machine.
//!
//! `cargo bench -p recur-bench --bench activations`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recur_kernels::Isa;
use recur_kernels::activations::{exp_to_with_isa, sigmoid_to_with_isa, tanh_to_with_isa};
use recur_kernels::softmax::{LogitsGrad, softmax_cross_entropy_with_isa};
use std::hint::black_box;
use std::time::Duration;

type Kernel = fn(Isa, &[f32], &mut [f32]);
type ScalarFn = fn(f32) -> f32;

/// `(name, recur kernel, plain scalar loop body)`.
const ACTIVATIONS: [(&str, Kernel, ScalarFn); 3] = [
    ("exp", exp_to_with_isa, f32::exp),
    ("sigmoid", sigmoid_to_with_isa, |x| 1.0 / (1.0 + (-x).exp())),
    ("tanh", tanh_to_with_isa, f32::tanh),
];

/// Slice lengths: one element (latency-bound call overhead), L1-resident, and large.
const LENGTHS: [usize; 3] = [1, 4096, 1 << 20];

/// Softmax-CE shapes: the char model (V = 42), the word model (V = 8,639), a large vocabulary.
const VOCABS: [usize; 3] = [42, 8639, 100_000];
const ROWS: [usize; 2] = [32, 128];

/// Inputs spread over the range RNN gates see, deterministic.
fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as u64 * 2_654_435_761) % 20_000) as f32 / 1000.0 - 10.0)
        .collect()
}

fn plain_loop(f: ScalarFn, src: &[f32], dst: &mut [f32]) {
    for (y, &x) in dst.iter_mut().zip(src) {
        *y = f(x);
    }
}

/// The softmax-CE a user would write without SIMD: max, exp-sum, normalise, per row.
fn plain_softmax_cross_entropy(
    logits: &[f32],
    vocab: usize,
    targets: &[u32],
    losses: &mut [f32],
    d_logits: &mut [f32],
    scale: f32,
) {
    for (r, (&t, loss)) in targets.iter().zip(losses.iter_mut()).enumerate() {
        let x = &logits[r * vocab..(r + 1) * vocab];
        let d = &mut d_logits[r * vocab..(r + 1) * vocab];
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0f32;
        for (dj, &xj) in d.iter_mut().zip(x) {
            *dj = (xj - m).exp();
            s += *dj;
        }
        let k = scale / s;
        for dj in d.iter_mut() {
            *dj *= k;
        }
        d[t as usize] -= scale;
        *loss = m + s.ln() - x[t as usize];
    }
}

/// CPU time consumed by the calling thread, in seconds. Unlike wall time it does not advance while
/// the thread is preempted, which on a machine shared with compilers is most of the noise.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Thread-CPU seconds per call of `f`: the fastest of 5 batches of `reps` calls (the fastest
/// batch is the one least disturbed by cache pollution from other processes).
fn best_time(f: &mut dyn FnMut(), reps: u32) -> f64 {
    (0..5)
        .map(|_| {
            let start = thread_cpu_seconds();
            for _ in 0..reps {
                f();
            }
            (thread_cpu_seconds() - start) / f64::from(reps)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Calls per batch so that a batch of `f` lasts at least 200 µs (doubling until it does), long
/// enough that the clock's own cost does not count.
fn calibrate(f: &mut dyn FnMut()) -> u32 {
    let mut reps = 1u32;
    loop {
        let start = thread_cpu_seconds();
        for _ in 0..reps {
            f();
        }
        if thread_cpu_seconds() - start >= 200e-6 || reps >= 1 << 24 {
            return reps;
        }
        reps *= 2;
    }
}

/// Side-by-side timing of `fast` against `slow` over `rounds` rounds, each timing the two back to
/// back (fastest of 5 batches of ≥ 200 µs of thread CPU time each), so that machine load affects
/// both sides alike. Returns the medians of `time(slow) / time(fast)` and of `time(fast)`.
fn interleaved_ratio(rounds: usize, mut fast: impl FnMut(), mut slow: impl FnMut()) -> (f64, f64) {
    let (reps_fast, reps_slow) = (calibrate(&mut fast), calibrate(&mut slow));
    let (mut ratios, mut fast_times): (Vec<f64>, Vec<f64>) = (0..rounds)
        .map(|_| {
            let t_fast = best_time(&mut fast, reps_fast);
            let t_slow = best_time(&mut slow, reps_slow);
            (t_slow / t_fast, t_fast)
        })
        .unzip();
    ratios.sort_by(f64::total_cmp);
    fast_times.sort_by(f64::total_cmp);
    (ratios[rounds / 2], fast_times[rounds / 2])
}

fn print_interleaved_ratios(isa: Isa) {
    for (name, kernel, scalar) in ACTIVATIONS {
        for n in LENGTHS {
            let src = inputs(n);
            let mut dst = vec![0.0f32; n];
            let mut dst2 = vec![0.0f32; n];
            let (ratio, seconds) = interleaved_ratio(
                21,
                || kernel(isa, black_box(&src), black_box(&mut dst)),
                || plain_loop(scalar, black_box(&src), black_box(&mut dst2)),
            );
            let melems = n as f64 / seconds / 1e6;
            println!(
                "interleaved ratios: {name} n={n} {isa}: {melems:.1} Melem/s (thread CPU time), \
                 {ratio:.2}x the plain scalar loop"
            );
        }
    }
    for vocab in VOCABS {
        for rows in ROWS {
            let logits = inputs(rows * vocab);
            let targets: Vec<u32> = (0..rows as u32)
                .map(|r| (r * 7919) % vocab as u32)
                .collect();
            let (mut losses, mut d) = (vec![0.0; rows], vec![0.0; rows * vocab]);
            let (mut losses2, mut d2) = (vec![0.0; rows], vec![0.0; rows * vocab]);
            let scale = 1.0 / rows as f32;
            let (ratio, seconds) = interleaved_ratio(
                11,
                || {
                    let grad = LogitsGrad {
                        d_logits: &mut d,
                        scale,
                    };
                    softmax_cross_entropy_with_isa(
                        isa,
                        &logits,
                        vocab,
                        &targets,
                        &mut losses,
                        Some(grad),
                    )
                },
                || {
                    plain_softmax_cross_entropy(
                        &logits,
                        vocab,
                        &targets,
                        &mut losses2,
                        &mut d2,
                        scale,
                    )
                },
            );
            let melems = (rows * vocab) as f64 / seconds / 1e6;
            println!(
                "interleaved ratios: softmax_ce V={vocab} rows={rows} {isa}: {melems:.1} Melem/s \
                 (thread CPU time), {ratio:.2}x the plain scalar loop"
            );
        }
    }
}

fn activations(c: &mut Criterion) {
    let isa = Isa::active();
    println!(
        "recur activations bench: ISA path {isa} (detected {}), 1 thread",
        Isa::detected()
    );
    print_interleaved_ratios(isa);
    for (name, kernel, scalar) in ACTIVATIONS {
        let mut group = c.benchmark_group(format!("activations/{name}"));
        for n in LENGTHS {
            let src = inputs(n);
            let mut dst = vec![0.0f32; n];
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(isa.name(), n), &n, |b, _| {
                b.iter(|| kernel(isa, black_box(&src), black_box(&mut dst)))
            });
            if isa != Isa::Scalar {
                group.bench_with_input(BenchmarkId::new("scalar", n), &n, |b, _| {
                    b.iter(|| kernel(Isa::Scalar, black_box(&src), black_box(&mut dst)))
                });
            }
            group.bench_with_input(BenchmarkId::new("plain_loop", n), &n, |b, _| {
                b.iter(|| plain_loop(scalar, black_box(&src), black_box(&mut dst)))
            });
        }
        group.finish();
    }
}

fn softmax_cross_entropy(c: &mut Criterion) {
    let isa = Isa::active();
    println!("recur softmax-CE bench: ISA path {isa}, 1 thread, loss + d(logits)");
    let mut group = c.benchmark_group("softmax_ce");
    group.sample_size(20);
    for vocab in VOCABS {
        for rows in ROWS {
            let logits = inputs(rows * vocab);
            let targets: Vec<u32> = (0..rows as u32)
                .map(|r| (r * 7919) % vocab as u32)
                .collect();
            let mut losses = vec![0.0f32; rows];
            let mut d = vec![0.0f32; rows * vocab];
            let scale = 1.0 / rows as f32;
            let shape = format!("V{vocab}_rows{rows}");
            group.throughput(Throughput::Elements((rows * vocab) as u64));
            group.bench_function(BenchmarkId::new(isa.name(), &shape), |b| {
                b.iter(|| {
                    let grad = LogitsGrad {
                        d_logits: &mut d,
                        scale,
                    };
                    softmax_cross_entropy_with_isa(
                        isa,
                        &logits,
                        vocab,
                        &targets,
                        &mut losses,
                        Some(grad),
                    )
                })
            });
            group.bench_function(BenchmarkId::new("plain_loop", &shape), |b| {
                b.iter(|| {
                    plain_softmax_cross_entropy(
                        &logits,
                        vocab,
                        &targets,
                        &mut losses,
                        &mut d,
                        scale,
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = activations, softmax_cross_entropy
}
criterion_main!(benches);
