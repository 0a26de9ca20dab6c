//! Shared helpers of recur's benchmarks: timing, paired (interleaved) measurements, thread pools,
//! test data, and the one-JSON-object-per-line output of `rnnbench`.
//!
//! The machine the benchmarks run on is shared and noisy, so comparisons are made side by side in
//! one process: [`interleaved`] alternates the contenders rep by rep and the medians are compared.

pub mod conv;
pub mod layer;

use std::time::Instant;

use serde_json::Value;

/// Seconds taken by one call of `f`.
pub fn time_once(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Seconds this thread has spent running on a CPU (from `/proc/thread-self/schedstat`, in ns),
/// or `None` where that file does not exist. Differences of it exclude the time the thread was
/// descheduled, which on a loaded machine is most of the noise of a long single-thread run.
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// The largest per-thread increase of on-CPU seconds between two `rayon::broadcast` readings of
/// [`thread_cpu_seconds`]: a multi-thread run's duration had every thread had a core to itself
/// (an estimate: time a thread spent waiting for a descheduled one is not in it).
pub fn busiest_thread(before: &[Option<f64>], after: &[Option<f64>]) -> f64 {
    before
        .iter()
        .zip(after)
        .filter_map(|(b, a)| Some((*a)? - (*b)?))
        .fold(0.0, f64::max)
}

/// One timed run: wall-clock seconds, and on-CPU seconds of the calling thread when known.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: f64,
    pub cpu: Option<f64>,
}

/// Times one call of `f` (wall clock and this thread's on-CPU time).
pub fn sample_once(f: &mut dyn FnMut()) -> Sample {
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    f();
    let wall = start.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    Sample { wall, cpu }
}

/// The median wall time and the mean on-CPU time of `samples`. The kernel updates a running
/// thread's on-CPU time only at scheduler ticks, so single readings of short runs are coarse; their
/// mean over many runs is not biased by it, their median would be.
pub fn summarise(samples: &[Sample]) -> Sample {
    let walls: Vec<f64> = samples.iter().map(|s| s.wall).collect();
    let cpus: Option<Vec<f64>> = samples.iter().map(|s| s.cpu).collect();
    Sample {
        wall: median(&walls),
        cpu: cpus.map(|c| c.iter().sum::<f64>() / c.len().max(1) as f64),
    }
}

/// Runs every contender once per rep, alternating them (after one untimed warm-up round), and
/// returns each contender's times in seconds. Alternating makes slow phases of a loaded machine hit
/// all contenders alike.
pub fn interleaved(reps: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Vec<Sample>> {
    for f in contenders.iter_mut() {
        f();
    }
    let mut times = vec![Vec::with_capacity(reps); contenders.len()];
    for _ in 0..reps {
        for (f, t) in contenders.iter_mut().zip(&mut times) {
            t.push(sample_once(*f));
        }
    }
    times
}

/// Median of `xs` (mean of the middle two for an even count); NaN if empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        0.5 * (sorted[mid - 1] + sorted[mid])
    }
}

/// Floating-point operations of an `m × k` by `k × n` matrix product.
pub fn gemm_flops(m: usize, n: usize, k: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64
}

/// GFLOP/s of `flops` done in `seconds`.
pub fn gflops(flops: f64, seconds: f64) -> f64 {
    flops / seconds / 1e9
}

/// A rayon pool of exactly `threads` threads (benchmarks pass `Par::Rayon(threads)` inside it).
pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("building a rayon thread pool")
}

/// `len` deterministic pseudo-random values in [-1, 1) (benchmark inputs; not for statistics).
pub fn uniform_data(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One measurement as a JSON object with its fields in insertion order.
#[derive(Debug, Default)]
pub struct Record(Vec<(String, Value)>);

impl Record {
    /// A record of operation `op` (the `"op"` field comes first).
    pub fn new(op: &str) -> Record {
        Record::default().field("op", op)
    }

    /// Adds a field.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Record {
        let key = key.to_string();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
        self
    }

    /// Adds a float field rounded to `decimals` places (keeps the lines readable).
    pub fn float(self, key: &str, value: f64, decimals: i32) -> Record {
        let scale = 10f64.powi(decimals);
        self.field(key, (value * scale).round() / scale)
    }

    /// The record as one line of JSON.
    pub fn to_line(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
            .collect();
        format!("{{{}}}", fields.join(","))
    }

    /// Prints the record as one line on stdout.
    pub fn emit(&self) {
        println!("{}", self.to_line());
    }
}

/// Sets matrixmultiply's thread count (it reads `MATMUL_NUM_THREADS` once per process): if the
/// variable does not already say `threads`, re-runs this program with it set and exits with the
/// child's status. Returns only when the current process is configured.
pub fn ensure_matmul_threads(threads: usize) {
    let wanted = threads.to_string();
    if std::env::var("MATMUL_NUM_THREADS").ok().as_deref() == Some(wanted.as_str()) {
        return;
    }
    let exe = std::env::current_exe().expect("locating the running executable");
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MATMUL_NUM_THREADS", &wanted)
        .status()
        .expect("re-running with MATMUL_NUM_THREADS set");
    std::process::exit(status.code().unwrap_or(1));
}
