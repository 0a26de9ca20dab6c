//! `recur forecast`: one-step and direct multi-step forecasting of a generated signal with a
//! recurrent many-to-one regressor, against the persistence and moving-average baselines on
//! held-out series (see `recur_engine::tasks::forecast`).

use std::time::Instant;

use clap::{Args, ValueEnum};
use recur::engine::tasks::forecast::{ForecastConfig, Progress, Scores, mean, run};
use recur::engine::tasks::signals::Signal;
use recur::kernels::{CellKind, Isa, Par, RnnActivation};

use super::CliError;
use super::args::ModelArg;

/// Which generated signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    /// Noisy sines: random period 8–40 steps, phase, amplitude 0.5–1.5; noise σ 0.1.
    Sine,
    /// AR(2): x_t = 1.5 x_{t−1} − 0.75 x_{t−2} + ε_t, σ 0.3 (a damped oscillation).
    Ar,
}

/// `recur forecast`.
#[derive(Debug, Args)]
#[command(
    after_help = "Trains a one-step model and (for --horizon > 1) a direct multi-step model (one \
                  dense output per step ahead), then prints the held-out MSE of each beside \
                  persistence (x̂_{t+k} = x_t) and the moving average of the last m values (m from \
                  --ma, or the best m on the training windows), and the one-step model run \
                  recursively over the horizon for contrast.\n\n\
                  Examples:\n  \
                  recur forecast --signal sine --horizon 10 --seed 1\n  \
                  recur forecast --signal ar --horizon 10 --seed 1 --threads 2"
)]
pub struct ForecastArgs {
    /// The generated signal.
    #[arg(long, value_enum, default_value_t = SignalArg::Sine)]
    pub signal: SignalArg,

    /// Steps ahead of the multi-step model (1: one-step model only).
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub horizon: usize,

    /// Past values each forecast sees.
    #[arg(long, value_name = "W", default_value_t = 32)]
    pub window: usize,

    /// Values averaged by the moving-average baseline (≤ --window) [default: the best m on the
    /// training windows, per model].
    #[arg(long, value_name = "M")]
    pub ma: Option<usize>,

    /// Training series.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub train_series: usize,

    /// Held-out series.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub test_series: usize,

    /// Values per series.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub series_len: usize,

    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = ModelArg::Gru)]
    pub model: ModelArg,

    /// Hidden units.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub hidden: usize,

    /// Passes over the training windows, per model.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub epochs: usize,

    /// Windows per minibatch.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,

    /// Adam's initial learning rate (decayed exponentially to a tenth over the run).
    #[arg(
        long,
        value_name = "LR",
        default_value_t = 5e-3,
        allow_negative_numbers = true
    )]
    pub learning_rate: f32,

    /// Seed of the series, the initialisation and the shuffling (same seed, same numbers).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs `recur forecast`.
pub fn forecast_command(args: &ForecastArgs) -> Result<(), CliError> {
    let signal = match args.signal {
        SignalArg::Sine => Signal::Sine,
        SignalArg::Ar => Signal::Ar,
    };
    let cell = match args.model {
        ModelArg::Rnn => CellKind::Rnn(RnnActivation::Tanh),
        ModelArg::Lstm => CellKind::Lstm,
        ModelArg::Gru => CellKind::Gru,
    };
    if args.threads == Some(0) {
        return Err(CliError::bad_input(
            "--threads: expected at least 1, found 0",
        ));
    }
    let config = ForecastConfig {
        signal,
        horizon: args.horizon,
        window: args.window,
        moving_average: args.ma,
        train_series: args.train_series,
        test_series: args.test_series,
        series_len: args.series_len,
        cell,
        hidden: args.hidden,
        epochs: args.epochs,
        batch: args.batch_size,
        learning_rate: args.learning_rate,
        seed: args.seed,
        par: Par::Rayon(0),
    };
    config
        .validate()
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.threads {
        builder = builder.num_threads(n);
    }
    let pool = builder
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the thread pool: {e}")))?;
    println!(
        "recur forecast: signal {}, horizon {}, window {}, seed {}; {}({}), {} epochs of batch {}, \
         Adam lr {}; {} threads, ISA {}",
        signal.name(),
        config.horizon,
        config.window,
        config.seed,
        cell.name(),
        config.hidden,
        config.epochs,
        config.batch,
        config.learning_rate,
        pool.current_num_threads(),
        Isa::active(),
    );
    let started = Instant::now();
    let mut last = Instant::now();
    let mut report_progress = |p: Progress| {
        println!(
            "  {:<10} epoch {}/{}  train MSE {:.5}  ({:.1} s)",
            p.model,
            p.epoch,
            p.epochs,
            p.train_mse,
            last.elapsed().as_secs_f64()
        );
        last = Instant::now();
    };
    let report = pool
        .install(|| run(&config, &mut report_progress))
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    println!(
        "train: {} series × {} values → {} windows; held-out: {} series → {} windows; {:.1} s",
        config.train_series,
        config.series_len,
        report.train_windows,
        config.test_series,
        report.test_windows,
        started.elapsed().as_secs_f64()
    );
    print_header(&report.one_step);
    print_row("one-step model, k=1", &report.one_step, 0);
    let mut verdicts = vec![verdict("one-step", &report.one_step, &[0])];
    if let Some(multi) = &report.multi_step {
        println!("direct multi-step model:");
        print_header(multi);
        for k in 0..multi.outputs {
            print_row(&format!("  k={}", k + 1), multi, k);
        }
        println!(
            "  mean over k=1..{:<4}  {:>10.5} {:>12.5} {:>12.5}",
            multi.outputs,
            mean(&multi.rnn),
            mean(&multi.persistence),
            mean(&multi.moving_average)
        );
        let all: Vec<usize> = (0..multi.outputs).collect();
        verdicts.push(verdict("multi-step (mean over k)", multi, &all));
    }
    if let Some(recursive) = &report.recursive {
        print_recursive(recursive);
    }
    for v in verdicts {
        println!("{v}");
    }
    Ok(())
}

fn print_header(scores: &Scores) {
    println!(
        "held-out MSE           {:>10} {:>12} {:>12}",
        "RNN",
        "persistence",
        format!("MA(m={})", scores.moving_average_m)
    );
}

/// MSE per step ahead of the one-step model fed its own forecasts.
fn print_recursive(recursive: &[f64]) {
    println!("one-step model run recursively (its forecasts fed back), for contrast:");
    for (k, mse) in recursive.iter().enumerate() {
        println!("  k={:<20} {mse:>10.5}", k + 1);
    }
    println!(
        "  mean over k=1..{:<4}  {:>10.5}",
        recursive.len(),
        mean(recursive)
    );
}

fn print_row(label: &str, scores: &Scores, k: usize) {
    println!(
        "{label:<22} {:>10.5} {:>12.5} {:>12.5}",
        scores.rnn[k], scores.persistence[k], scores.moving_average[k]
    );
}

fn verdict(name: &str, scores: &Scores, steps: &[usize]) -> String {
    let pick = |v: &[f64]| steps.iter().map(|&k| v[k]).sum::<f64>() / steps.len() as f64;
    let (rnn, persistence, average) = (
        pick(&scores.rnn),
        pick(&scores.persistence),
        pick(&scores.moving_average),
    );
    let best = persistence.min(average);
    if rnn < best {
        format!(
            "{name}: the RNN beats both baselines ({:.1}% of the better one's MSE)",
            100.0 * rnn / best
        )
    } else {
        format!(
            "{name}: the RNN does NOT beat both baselines ({rnn:.5} vs persistence \
             {persistence:.5}, moving average {average:.5})"
        )
    }
}
