//! `rnnbench`: recur's benchmark binary. Each subcommand prints one JSON object per line, so results
//! can be compared and tracked by scripts.
//!
//! ```text
//! rnnbench peak [--threads N]
//! rnnbench gemm --m M --n N --k K [--threads N] [--reps R] [--packed-b] [--at] [--bt]
//! rnnbench layer --cell lstm|gru|rnn --mode train|infer --batch B --steps T --input I --hidden H [--threads N] [--reps R]
//! rnnbench conv [--batch 32 --steps 400 --input 40 --output 128 --kernel 5 --padding 2] [--threads N]
//! ```

use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use recur_bench::{
    Record, busiest_thread, ensure_matmul_threads, gemm_flops, gflops, interleaved, median,
    sample_once, summarise, thread_cpu_seconds, thread_pool, uniform_data,
};
use recur_kernels::gemm::{self, MatMut, MatRef, PackedB, peak};
use recur_kernels::{Isa, Par};

#[derive(Parser, Debug)]
#[command(
    name = "rnnbench",
    about = "recur benchmarks: one JSON line per measurement"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The f32 FMA peak of this machine: a register-only FMA loop on the active ISA path.
    Peak(PeakArgs),
    /// recur's SGEMM and matrixmultiply's side by side (interleaved), C = A·B, row-major.
    Gemm(GemmArgs),
    /// One recurrent layer over a sequence batch: forward (infer) or forward + BPTT (train).
    Layer(recur_bench::layer::LayerArgs),
    /// Conv1D forward + backward (im2col + SGEMM, and K shifted GEMMs) beside the FMA peak.
    Conv(recur_bench::conv::ConvArgs),
}

#[derive(Args, Debug)]
struct PeakArgs {
    /// Threads, each running the loop on its own (the figure is their sum).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds each of the repeated measurements should take, roughly.
    #[arg(long, default_value_t = 0.2)]
    seconds: f64,
    /// Measurements; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
}

#[derive(Args, Debug)]
struct GemmArgs {
    #[arg(long)]
    m: usize,
    #[arg(long)]
    n: usize,
    #[arg(long)]
    k: usize,
    /// Threads for both recur (rayon pool) and matrixmultiply (MATMUL_NUM_THREADS).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed repetitions of each contender (interleaved); medians are reported.
    #[arg(long, default_value_t = 15)]
    reps: usize,
    /// Pack B once before timing and time `sgemm_packed_b` (the recurrent-step case).
    #[arg(long)]
    packed_b: bool,
    /// Time only recur's GEMM (no matrixmultiply, no peak): for profilers such as `perf stat`.
    #[arg(long)]
    recur_only: bool,
    /// With `--recur-only`: time the packed five-loop GEMM instead of what `sgemm` chooses.
    #[arg(long)]
    packed_route: bool,
    /// A is stored transposed, (k, m) row-major, and used as `Aᵀ` (a `dyᵀ` operand).
    #[arg(long)]
    at: bool,
    /// B is stored transposed, (n, k) row-major, and used as `Bᵀ` (the decoder's `x·Wᵀ`).
    #[arg(long)]
    bt: bool,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Peak(args) => peak_command(&args),
        Command::Gemm(args) => gemm_command(&args),
        Command::Layer(args) => recur_bench::layer::layer_command(&args),
        Command::Conv(args) => recur_bench::conv::conv_command(&args),
    }
}

/// Iterations of [`peak::fma_loop`] that take about `seconds` on this thread.
fn calibrate_fma_loop(isa: Isa, seconds: f64) -> u64 {
    let mut iterations = 1u64 << 10;
    loop {
        let start = Instant::now();
        std::hint::black_box(peak::fma_loop(isa, iterations));
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed > seconds / 4.0 {
            return ((seconds / elapsed) * iterations as f64).max(1.0) as u64;
        }
        iterations *= 2;
    }
}

fn peak_command(args: &PeakArgs) {
    let isa = Isa::active();
    let threads = args.threads.max(1);
    let iterations = calibrate_fma_loop(isa, args.seconds);
    let pool = thread_pool(threads);
    let mut samples = Vec::with_capacity(args.reps);
    for _ in 0..args.reps.max(1) {
        let seconds = sample_once(&mut || {
            pool.broadcast(|_| std::hint::black_box(peak::fma_loop(isa, iterations)));
        })
        .wall;
        let flops = (peak::flops_per_iteration(isa) as u64 * iterations * threads as u64) as f64;
        samples.push(gflops(flops, seconds));
    }
    Record::new("peak")
        .field("threads", threads)
        .field("isa", isa.name())
        .float("gflops", median(&samples), 2)
        .emit();
}

fn gemm_command(args: &GemmArgs) {
    let threads = args.threads.max(1);
    ensure_matmul_threads(threads);
    let isa = Isa::active();
    let GemmArgs { m, n, k, .. } = *args;
    let a = uniform_data(m * k, 1);
    let b = uniform_data(k * n, 2);
    let mut c_recur = vec![0.0f32; m * n];
    let mut c_mm = vec![0.0f32; m * n];
    let a_view = if args.at {
        MatRef::row_major(&a, k, m).t()
    } else {
        MatRef::row_major(&a, m, k)
    };
    let b_view = if args.bt {
        MatRef::row_major(&b, n, k).t()
    } else {
        MatRef::row_major(&b, k, n)
    };
    let packed = args.packed_b.then(|| PackedB::pack(isa, b_view));
    let par = if threads == 1 {
        Par::Seq
    } else {
        Par::Rayon(threads)
    };
    let pool = thread_pool(threads);
    // `route` Auto is what `sgemm` runs (a small-M path where one applies); Packed forces the
    // packed five-loop GEMM, timed beside it as the "packed_*" figures.
    let run_route = |c: &mut [f32], route: gemm::Route| {
        let c = MatMut::row_major(c, m, n);
        match &packed {
            Some(packed) => gemm::sgemm_packed_b(par, 1.0, a_view, packed, 0.0, c),
            None => gemm::sgemm_route(isa, route, par, 1.0, a_view, b_view, 0.0, c),
        }
    };
    let run_recur = |c: &mut [f32]| run_route(c, gemm::Route::Auto);
    let mut c_packed = vec![0.0f32; m * n];
    // The FMA peak is measured interleaved with the GEMMs too, each peak run about as long as one
    // recur GEMM, so "fraction of peak" compares figures taken under the same machine load.
    if args.recur_only {
        let route = if args.packed_route {
            gemm::Route::Packed
        } else {
            gemm::Route::Auto
        };
        let samples = pool.install(|| {
            interleaved(
                args.reps.max(1),
                &mut [&mut || run_route(&mut c_recur, route)],
            )
        });
        let recur_t = summarise(&samples[0]);
        Record::new("gemm")
            .field("m", m)
            .field("n", n)
            .field("k", k)
            .field("threads", threads)
            .field("isa", isa.name())
            .field("packed_b", args.packed_b)
            .field("at", args.at)
            .field("bt", args.bt)
            .field("packed_route", args.packed_route)
            .float("ms_median", recur_t.wall * 1e3, 4)
            .float("gflops", gflops(gemm_flops(m, n, k), recur_t.wall), 2)
            .emit();
        return;
    }
    let gemm_seconds = pool.install(|| sample_once(&mut || run_recur(&mut c_recur)).wall);
    let peak_iterations = calibrate_fma_loop(isa, gemm_seconds.max(1e-3));
    // With several threads, also record the busiest pool thread's on-CPU time per run (the run's
    // duration had every thread had a core to itself; an estimate, see RESULTS.md).
    let mut recur_busiest = Vec::new();
    let mut packed_busiest = Vec::new();
    let mut peak_busiest = Vec::new();
    let timed = |c: &mut [f32], route: gemm::Route, busiest: &mut Vec<f64>| {
        let before = (threads > 1).then(|| rayon::broadcast(|_| thread_cpu_seconds()));
        run_route(c, route);
        if let Some(before) = before {
            busiest.push(busiest_thread(
                &before,
                &rayon::broadcast(|_| thread_cpu_seconds()),
            ));
        }
    };
    let samples = pool.install(|| {
        let mut recur = || timed(&mut c_recur, gemm::Route::Auto, &mut recur_busiest);
        let mut packed_route = || timed(&mut c_packed, gemm::Route::Packed, &mut packed_busiest);
        let mut baseline = || {
            let c = MatMut::row_major(&mut c_mm, m, n);
            gemm::baseline::matrixmultiply_sgemm(1.0, a_view, b_view, 0.0, c);
        };
        let mut fma_peak = || {
            let cpu = rayon::broadcast(|_| {
                let start = thread_cpu_seconds();
                std::hint::black_box(peak::fma_loop(isa, peak_iterations));
                start.zip(thread_cpu_seconds()).map(|(s, e)| e - s)
            });
            if threads > 1 {
                peak_busiest.push(cpu.into_iter().flatten().fold(0.0, f64::max));
            }
        };
        interleaved(
            args.reps.max(1),
            &mut [&mut recur, &mut baseline, &mut fma_peak, &mut packed_route],
        )
    });
    for (route, c) in [("auto", &c_recur), ("packed", &c_packed)] {
        let max_diff = c
            .iter()
            .zip(&c_mm)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff <= 1e-3 * (k as f32).sqrt().max(1.0),
            "recur ({route}) and matrixmultiply disagree by {max_diff}"
        );
    }
    let flops = gemm_flops(m, n, k);
    let peak_flops =
        (peak::flops_per_iteration(isa) as u64 * peak_iterations * threads as u64) as f64;
    let [recur_t, mm_t, peak_t, packed_t] = [0, 1, 2, 3].map(|i| summarise(&samples[i]));
    let mut record = Record::new("gemm")
        .field("m", m)
        .field("n", n)
        .field("k", k)
        .field("threads", threads)
        .field("isa", isa.name())
        .field("packed_b", args.packed_b)
        .field("at", args.at)
        .field("bt", args.bt)
        .float("ms_median", recur_t.wall * 1e3, 4)
        .float("gflops", gflops(flops, recur_t.wall), 2)
        .float("packed_ms_median", packed_t.wall * 1e3, 4)
        .float("packed_gflops", gflops(flops, packed_t.wall), 2)
        .float("matrixmultiply_ms_median", mm_t.wall * 1e3, 4)
        .float("matrixmultiply_gflops", gflops(flops, mm_t.wall), 2)
        .float("peak_gflops", gflops(peak_flops, peak_t.wall), 2)
        .float(
            "fraction_of_peak",
            peak_t.wall / recur_t.wall * flops / peak_flops,
            3,
        )
        .float("speedup_vs_matrixmultiply", mm_t.wall / recur_t.wall, 3);
    // Best-of-reps figures: on a loaded machine the fastest run of a call shorter than a
    // scheduler time slice is the one nobody interrupted.
    let [recur_best, mm_best, peak_best, packed_best] = [0, 1, 2, 3].map(|i| {
        samples[i]
            .iter()
            .map(|s| s.wall)
            .fold(f64::INFINITY, f64::min)
    });
    record = record
        .float("best_gflops", gflops(flops, recur_best), 2)
        .float("best_packed_gflops", gflops(flops, packed_best), 2)
        .float("best_matrixmultiply_gflops", gflops(flops, mm_best), 2)
        .float("best_peak_gflops", gflops(peak_flops, peak_best), 2)
        .float(
            "best_fraction_of_peak",
            peak_best / recur_best * flops / peak_flops,
            3,
        );
    // With one thread, the on-CPU time of that thread excludes the time it was descheduled by
    // other load on the machine: the same three figures, by on-CPU time.
    if threads == 1
        && let (Some(recur_cpu), Some(mm_cpu), Some(peak_cpu), Some(packed_cpu)) =
            (recur_t.cpu, mm_t.cpu, peak_t.cpu, packed_t.cpu)
    {
        record = record
            .float("oncpu_gflops", gflops(flops, recur_cpu), 2)
            .float("oncpu_packed_gflops", gflops(flops, packed_cpu), 2)
            .float("oncpu_matrixmultiply_gflops", gflops(flops, mm_cpu), 2)
            .float("oncpu_peak_gflops", gflops(peak_flops, peak_cpu), 2)
            .float(
                "oncpu_fraction_of_peak",
                peak_cpu / recur_cpu * flops / peak_flops,
                3,
            );
    }
    if threads > 1 && !recur_busiest.is_empty() && !peak_busiest.is_empty() {
        // Skip the warm-up run recorded first.
        let recur_cpu = mean(&recur_busiest[1..]);
        let packed_cpu = mean(&packed_busiest[1..]);
        let peak_cpu = mean(&peak_busiest[1..]);
        record = record
            .float("oncpu_busiest_thread_gflops", gflops(flops, recur_cpu), 2)
            .float(
                "oncpu_busiest_thread_packed_gflops",
                gflops(flops, packed_cpu),
                2,
            )
            .float(
                "oncpu_busiest_thread_peak_gflops",
                gflops(peak_flops, peak_cpu),
                2,
            );
    }
    record.emit();
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}
