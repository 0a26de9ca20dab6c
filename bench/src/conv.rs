//! `rnnbench conv`: Conv1D forward + backward (d_weight, d_bias, d_input) on a time-major batch,
//! timed interleaved with the FMA peak loop so "fraction of peak" compares figures taken under the
//! same machine load, printed as one JSON line.
//!
//! Three contenders compute the same pass:
//! - the library (`recur_kernels::conv`): im2col panels packed straight from `x` into the GEMM,
//!   the bias as a column of ones, d_input scattered block by block (no im2col matrix in memory);
//! - `materialised` (the library's path before that): copy the K taps of every output row into one
//!   `(T_out·B, K·C_in)` matrix, fill y with the bias, then three GEMMs of depth `K·C_in`,
//!   `T_out·B` and `C_out` over it, a d_bias row sum and a col2im gather;
//! - `shifted` (stride 1 only): no im2col; `K` GEMMs per product over shifted strided views of a
//!   zero-padded copy of the input (depth `C_in` each), accumulating into the output.
//!
//! FLOPs are counted as 3 × `2·T_out·B·C_out·K·C_in` (forward, d_weight, d_input); the copies,
//! bias and col2im are overhead inside the timed pass.

use std::time::Instant;

use clap::Args;
use recur_kernels::conv::{self, Conv1dGrads, Conv1dShape};
use recur_kernels::gemm::{MatMut, MatRef, peak, sgemm_with_isa};
use recur_kernels::{Isa, Par};

use crate::{
    Record, busiest_thread, gflops, interleaved, sample_once, summarise, thread_cpu_seconds,
    thread_pool, uniform_data,
};

/// `rnnbench conv` arguments. The defaults are an audio-frame shape: 32 clips of 400 frames
/// (4 s of 10 ms frames) × 40 mel bands → 128 channels, kernel 5 ("same" padding).
#[derive(Args, Clone, Debug)]
pub struct ConvArgs {
    /// B
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// T_in
    #[arg(long, default_value_t = 400)]
    pub steps: usize,
    /// C_in
    #[arg(long, default_value_t = 40)]
    pub input: usize,
    /// C_out
    #[arg(long, default_value_t = 128)]
    pub output: usize,
    /// K
    #[arg(long, default_value_t = 5)]
    pub kernel: usize,
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    #[arg(long, default_value_t = 2)]
    pub padding: usize,
    #[arg(long, default_value_t = 1)]
    pub dilation: usize,
    /// Threads of the rayon pool (1: `Par::Seq`).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed repetitions of each contender (interleaved) after one warm-up round.
    #[arg(long, default_value_t = 15)]
    pub reps: usize,
    /// Time the library pass and the FMA peak only (e.g. to profile the library path alone).
    #[arg(long)]
    pub library_only: bool,
}

/// Buffers of one forward + backward pass, allocated once.
struct Buffers {
    x: Vec<f32>,
    taps: Vec<f32>,
    bias: Vec<f32>,
    d_y: Vec<f32>,
    cols: Vec<f32>,
    y: Vec<f32>,
    d_taps: Vec<f32>,
    d_bias: Vec<f32>,
    d_x: Vec<f32>,
    d_cols: Vec<f32>,
}

impl Buffers {
    fn new(s: &Conv1dShape) -> Self {
        Buffers {
            x: uniform_data(s.input_len(), 1),
            taps: uniform_data(s.weight_len(), 2),
            bias: uniform_data(s.out_channels, 3),
            d_y: uniform_data(s.output_len(), 4),
            cols: vec![0.0; s.cols_len()],
            y: vec![0.0; s.output_len()],
            d_taps: vec![0.0; s.weight_len()],
            d_bias: vec![0.0; s.out_channels],
            d_x: vec![0.0; s.input_len()],
            d_cols: vec![0.0; s.cols_len()],
        }
    }
}

/// One forward + backward of the library.
fn library_pass(isa: Isa, par: Par, s: &Conv1dShape, b: &mut Buffers) {
    conv::conv1d_forward(isa, par, s, &b.x, &b.taps, Some(&b.bias), &mut b.y);
    conv::conv1d_backward(
        isa,
        par,
        s,
        &b.x,
        &b.taps,
        &b.d_y,
        Conv1dGrads {
            d_weight: &mut b.d_taps,
            d_bias: Some(&mut b.d_bias),
            d_input: Some(&mut b.d_x),
        },
    );
}

/// One forward + backward over a materialised im2col matrix (the library's path until
/// 2026-11-22, rebuilt from the public `im2col`, `col2im` and SGEMM).
fn materialised_pass(isa: Isa, par: Par, s: &Conv1dShape, b: &mut Buffers) {
    let (rows, width, c_out) = (s.steps_out() * s.batch, s.col_width(), s.out_channels);
    conv::im2col(par, s, &b.x, &mut b.cols);
    for y_row in b.y.chunks_exact_mut(c_out) {
        y_row.copy_from_slice(&b.bias);
    }
    let cols = MatRef::row_major(&b.cols, rows, width);
    let w = MatRef::row_major(&b.taps, c_out, width);
    sgemm_with_isa(
        isa,
        par,
        1.0,
        cols,
        w.t(),
        1.0,
        MatMut::row_major(&mut b.y, rows, c_out),
    );
    let dy = MatRef::row_major(&b.d_y, rows, c_out);
    sgemm_with_isa(
        isa,
        par,
        1.0,
        dy.t(),
        cols,
        1.0,
        MatMut::row_major(&mut b.d_taps, c_out, width),
    );
    for row in b.d_y.chunks_exact(c_out) {
        for (db, &g) in b.d_bias.iter_mut().zip(row) {
            *db += g;
        }
    }
    sgemm_with_isa(
        isa,
        par,
        1.0,
        dy,
        w,
        0.0,
        MatMut::row_major(&mut b.d_cols, rows, width),
    );
    conv::col2im(par, s, &b.d_cols, &mut b.d_x);
}

/// One forward + backward by `K` shifted GEMMs (stride 1). `pad` and `d_pad` hold
/// `(T_in + 2P, B, C_in)`.
fn shifted_pass(
    isa: Isa,
    par: Par,
    s: &Conv1dShape,
    b: &mut Buffers,
    pad: &mut [f32],
    d_pad: &mut [f32],
) {
    let (rows, c_in, c_out, k_n) = (
        s.steps_out() * s.batch,
        s.in_channels,
        s.out_channels,
        s.kernel_width,
    );
    let row = s.batch * c_in;
    let inner = s.padding * row..(s.padding + s.steps) * row;
    pad[inner.clone()].copy_from_slice(&b.x);
    for y_row in b.y.chunks_exact_mut(c_out) {
        y_row.copy_from_slice(&b.bias);
    }
    let width = k_n * c_in;
    for k in 0..k_n {
        let shift = k * s.dilation * row;
        let x_k = MatRef::new(&pad[shift..], rows, c_in, c_in, 1);
        let w_k = MatRef::new(&b.taps[k * c_in..], c_out, c_in, width, 1);
        sgemm_with_isa(
            isa,
            par,
            1.0,
            x_k,
            w_k.t(),
            1.0,
            MatMut::row_major(&mut b.y, rows, c_out),
        );
    }
    let dy = MatRef::row_major(&b.d_y, rows, c_out);
    for k in 0..k_n {
        let shift = k * s.dilation * row;
        let x_k = MatRef::new(&pad[shift..], rows, c_in, c_in, 1);
        let d_w_k = MatMut::new(&mut b.d_taps[k * c_in..], c_out, c_in, width, 1);
        sgemm_with_isa(isa, par, 1.0, dy.t(), x_k, 1.0, d_w_k);
    }
    for (db, g) in b.d_bias.iter_mut().zip(b.d_y.chunks_exact(c_out).fold(
        vec![0.0f32; c_out],
        |mut acc, r| {
            acc.iter_mut().zip(r).for_each(|(a, v)| *a += v);
            acc
        },
    )) {
        *db += g;
    }
    d_pad.fill(0.0);
    for k in 0..k_n {
        let shift = k * s.dilation * row;
        let w_k = MatRef::new(&b.taps[k * c_in..], c_out, c_in, width, 1);
        let d_x_k = MatMut::new(&mut d_pad[shift..], rows, c_in, c_in, 1);
        sgemm_with_isa(isa, par, 1.0, dy, w_k, 1.0, d_x_k);
    }
    b.d_x.copy_from_slice(&d_pad[inner]);
}

/// Iterations of the FMA loop that take about `seconds` on this thread.
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

/// `rnnbench conv`: prints the JSON line, or a message and exit code 2 on an invalid shape.
pub fn conv_command(args: &ConvArgs) {
    let shape = Conv1dShape {
        steps: args.steps,
        batch: args.batch,
        in_channels: args.input,
        out_channels: args.output,
        kernel_width: args.kernel,
        stride: args.stride,
        padding: args.padding,
        dilation: args.dilation,
    };
    if !shape.is_valid() {
        eprintln!(
            "rnnbench conv: expected sizes ≥ 1 and a kernel span no wider than T + 2·padding, \
             found {shape:?}"
        );
        std::process::exit(2);
    }
    let isa = Isa::active();
    let threads = args.threads.max(1);
    let par = if threads == 1 {
        Par::Seq
    } else {
        Par::Rayon(threads)
    };
    let pool = thread_pool(threads);
    let flops = 3.0 * shape.forward_flops();
    let mut lib_bufs = Buffers::new(&shape);
    let with_others = !args.library_only;
    let with_shifted = shape.stride == 1 && with_others;
    let mut mat_bufs = Buffers::new(&shape);
    let mut shifted_bufs = Buffers::new(&shape);
    let pad_len = shape.padded_steps() * shape.batch * shape.in_channels;
    let (mut pad, mut d_pad) = (vec![0.0f32; pad_len], vec![0.0f32; pad_len]);
    let pass_seconds =
        pool.install(|| sample_once(&mut || library_pass(isa, par, &shape, &mut lib_bufs)).wall);
    let peak_iterations = calibrate_fma_loop(isa, pass_seconds.max(1e-3));
    let peak_flops =
        (peak::flops_per_iteration(isa) as u64 * peak_iterations * threads as u64) as f64;
    // With several threads, also the busiest pool thread's on-CPU seconds per run.
    let (mut lib_busiest, mut mat_busiest, mut peak_busiest) = (Vec::new(), Vec::new(), Vec::new());
    let busiest = |record: &mut Vec<f64>, f: &mut dyn FnMut()| {
        if threads == 1 {
            f();
            return;
        }
        let before = rayon::broadcast(|_| thread_cpu_seconds());
        f();
        record.push(busiest_thread(
            &before,
            &rayon::broadcast(|_| thread_cpu_seconds()),
        ));
    };
    let samples = pool.install(|| {
        let mut library = || {
            busiest(&mut lib_busiest, &mut || {
                library_pass(isa, par, &shape, &mut lib_bufs)
            })
        };
        let mut materialised = || {
            if with_others {
                busiest(&mut mat_busiest, &mut || {
                    materialised_pass(isa, par, &shape, &mut mat_bufs)
                });
            }
        };
        let mut shifted = || {
            if with_shifted {
                shifted_pass(isa, par, &shape, &mut shifted_bufs, &mut pad, &mut d_pad);
            }
        };
        let mut fma_peak = || {
            busiest(&mut peak_busiest, &mut || {
                rayon::broadcast(|_| std::hint::black_box(peak::fma_loop(isa, peak_iterations)));
            })
        };
        interleaved(
            args.reps.max(1),
            &mut [&mut library, &mut materialised, &mut shifted, &mut fma_peak],
        )
    });
    // One more untimed pass each from zeroed accumulators, to compare the results.
    pool.install(|| {
        for bufs in [&mut lib_bufs, &mut mat_bufs, &mut shifted_bufs] {
            bufs.d_taps.fill(0.0);
            bufs.d_bias.fill(0.0);
        }
        library_pass(isa, par, &shape, &mut lib_bufs);
        if with_others {
            materialised_pass(isa, par, &shape, &mut mat_bufs);
        }
        if with_shifted {
            shifted_pass(isa, par, &shape, &mut shifted_bufs, &mut pad, &mut d_pad);
        }
    });
    let disagreement = |other: &Buffers| {
        lib_bufs
            .y
            .iter()
            .zip(&other.y)
            .chain(lib_bufs.d_x.iter().zip(&other.d_x))
            .chain(lib_bufs.d_taps.iter().zip(&other.d_taps))
            .chain(lib_bufs.d_bias.iter().zip(&other.d_bias))
            .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
            .fold(0.0f32, f32::max)
    };
    for (name, other, compare) in [
        ("materialised", &mat_bufs, with_others),
        ("shifted", &shifted_bufs, with_shifted),
    ] {
        let diff = if compare { disagreement(other) } else { 0.0 };
        assert!(
            diff <= 1e-3,
            "library and {name} passes disagree by {diff} (relative)"
        );
    }
    let [lib_t, mat_t, shifted_t, peak_t] = [0, 1, 2, 3].map(|i| summarise(&samples[i]));
    let best = |i: usize| {
        samples[i]
            .iter()
            .map(|s| s.wall)
            .fold(f64::INFINITY, f64::min)
    };
    let mut record = Record::new("conv")
        .field("batch", shape.batch)
        .field("steps", shape.steps)
        .field("input", shape.in_channels)
        .field("output", shape.out_channels)
        .field("kernel", shape.kernel_width)
        .field("stride", shape.stride)
        .field("padding", shape.padding)
        .field("dilation", shape.dilation)
        .field("threads", threads)
        .field("isa", isa.name())
        .field("pass", "forward+backward")
        .float("ms_median", lib_t.wall * 1e3, 3)
        .float("gflops", gflops(flops, lib_t.wall), 2)
        .float("peak_gflops", gflops(peak_flops, peak_t.wall), 2)
        .float(
            "fraction_of_peak",
            peak_t.wall / lib_t.wall * flops / peak_flops,
            3,
        )
        .float("best_gflops", gflops(flops, best(0)), 2)
        .float("best_peak_gflops", gflops(peak_flops, best(3)), 2)
        .float(
            "best_fraction_of_peak",
            best(3) / best(0) * flops / peak_flops,
            3,
        );
    if threads == 1
        && let (Some(cpu), Some(peak_cpu)) = (lib_t.cpu, peak_t.cpu)
    {
        record = record
            .float("oncpu_gflops", gflops(flops, cpu), 2)
            .float("oncpu_peak_gflops", gflops(peak_flops, peak_cpu), 2)
            .float(
                "oncpu_fraction_of_peak",
                peak_cpu / cpu * flops / peak_flops,
                3,
            );
    }
    if threads > 1 && lib_busiest.len() > 1 && peak_busiest.len() > 1 {
        // Means without the warm-up run recorded first.
        let mean = |xs: &[f64]| xs[1..].iter().sum::<f64>() / (xs.len() - 1) as f64;
        let (lib_cpu, peak_cpu) = (mean(&lib_busiest), mean(&peak_busiest));
        record = record
            .float("oncpu_busiest_thread_gflops", gflops(flops, lib_cpu), 2)
            .float(
                "oncpu_busiest_thread_peak_gflops",
                gflops(peak_flops, peak_cpu),
                2,
            )
            .float(
                "oncpu_busiest_thread_fraction_of_peak",
                peak_cpu / lib_cpu * flops / peak_flops,
                3,
            );
        if mat_busiest.len() > 1 {
            record = record.float(
                "materialised_oncpu_busiest_thread_gflops",
                gflops(flops, mean(&mat_busiest)),
                2,
            );
        }
    }
    if with_others {
        record = record
            .float("materialised_ms_median", mat_t.wall * 1e3, 3)
            .float("materialised_gflops", gflops(flops, mat_t.wall), 2)
            .float("materialised_best_gflops", gflops(flops, best(1)), 2);
        if let (Some(cpu), true) = (mat_t.cpu, threads == 1) {
            record = record.float("materialised_oncpu_gflops", gflops(flops, cpu), 2);
        }
    }
    if with_shifted {
        record = record
            .float("shifted_ms_median", shifted_t.wall * 1e3, 3)
            .float("shifted_gflops", gflops(flops, shifted_t.wall), 2)
            .float("shifted_best_gflops", gflops(flops, best(2)), 2);
        if let (Some(cpu), true) = (shifted_t.cpu, threads == 1) {
            record = record.float("shifted_oncpu_gflops", gflops(flops, cpu), 2);
        }
    }
    record.emit();
}
