//! Forecasting generated signals ([`super::signals`]) with a many-to-one recurrent regressor,
//! against the persistence and moving-average baselines, on held-out series.
//!
//! Every series is cut into windows: `W` past values in, the next `horizon` values as targets.
//! Two models are trained on the training series' windows with MSE:
//!
//! - **one-step** (many-to-one, one output): `x̂_{t+1}` from `x_{t−W+1..t}`;
//! - **multi-step, direct** (many-to-one, `horizon` outputs): `x̂_{t+1..t+horizon}` all at once
//!   from one dense head on the last step's features. Direct rather than recursive: no error
//!   feeds back into the inputs, and each horizon gets its own output weights (Ben Taieb et al.
//!   2012 compare the strategies).
//!
//! For contrast, the one-step model is also run **recursively** over the horizon (its forecast
//! appended to the window and fed back, [`predict_recursive`]), and scored beside the direct model.
//!
//! Baselines: **persistence** `x̂_{t+k} = x_t`, and the **moving average**
//! `x̂_{t+k} = (1/m) Σ_{j<m} x_{t−j}`, with `m` given or (by default) the `m ∈ 1..=W` with the
//! lowest MSE on the *training* windows, chosen separately for each model's horizon — so the
//! baseline is the best of its family, not a strawman (m = 1 is persistence). All forecasters are
//! scored by MSE per horizon step on every window of the held-out series (generated from their own
//! RNG streams, never seen in training).
//!
//! ```
//! use recur_engine::tasks::forecast::{ForecastConfig, run};
//! use recur_engine::tasks::signals::Signal;
//!
//! let config = ForecastConfig {
//!     train_series: 8,
//!     test_series: 2,
//!     series_len: 40,
//!     epochs: 1,
//!     ..ForecastConfig::new(Signal::Ar, 3)
//! };
//! let report = run(&config, &mut |_| {})?;
//! assert_eq!(report.multi_step.as_ref().unwrap().rnn.len(), 3); // MSE at k = 1, 2, 3
//! assert!(report.one_step.persistence[0] > 0.0);
//! # Ok::<(), recur_engine::tasks::forecast::ForecastError>(())
//! ```

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use recur_kernels::{CellKind, Par};

use super::signals::{Signal, series};
use crate::heads::{HeadError, ManyToOne, Objective, Readout, Targets};
use crate::optim::{LrSchedule, Optimizer, OptimizerConfig};
use crate::rnn::{RnnConfig, SeqBatch};

/// Everything that defines a forecasting run (same config and seed, same numbers, for any
/// thread count).
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastConfig {
    pub signal: Signal,
    /// Steps ahead of the multi-step model (≥ 1; 1 trains only the one-step model).
    pub horizon: usize,
    /// W: past values each forecast sees (≥ 1).
    pub window: usize,
    /// m of the moving-average baseline, in `1..=W`; `None`: the best m on the training windows.
    pub moving_average: Option<usize>,
    pub train_series: usize,
    pub test_series: usize,
    /// Values per series; each holds `len − W − horizon + 1` windows.
    pub series_len: usize,
    pub cell: CellKind,
    pub hidden: usize,
    pub epochs: usize,
    pub batch: usize,
    /// Adam's lr₀, decayed exponentially to lr₀/10 over the run.
    pub learning_rate: f32,
    /// Seeds the series, the initialisation and the shuffling.
    pub seed: u64,
    pub par: Par,
}

impl ForecastConfig {
    /// The defaults of `recur forecast`: W = 32, m chosen on the training windows, 256 training and 64 held-out series of
    /// 200 values, GRU(32), 6 epochs of batch 64, lr 5e-3.
    pub fn new(signal: Signal, horizon: usize) -> Self {
        ForecastConfig {
            signal,
            horizon,
            window: 32,
            moving_average: None,
            train_series: 256,
            test_series: 64,
            series_len: 200,
            cell: CellKind::Gru,
            hidden: 32,
            epochs: 6,
            batch: 64,
            learning_rate: 5e-3,
            seed: 1,
            par: Par::Rayon(0),
        }
    }

    /// Checks every size.
    ///
    /// # Errors
    /// [`ForecastError`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), ForecastError> {
        for (what, value) in [
            ("horizon", self.horizon),
            ("window", self.window),
            ("train_series", self.train_series),
            ("test_series", self.test_series),
            ("hidden", self.hidden),
            ("epochs", self.epochs),
            ("batch", self.batch),
        ] {
            if value == 0 {
                return Err(ForecastError::Zero { what });
            }
        }
        if let Some(m) = self.moving_average
            && (m == 0 || m > self.window)
        {
            return Err(ForecastError::MovingAverage {
                moving_average: m,
                window: self.window,
            });
        }
        if self.window + self.horizon > self.series_len {
            return Err(ForecastError::SeriesTooShort {
                window: self.window,
                horizon: self.horizon,
                series_len: self.series_len,
            });
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ForecastError::LearningRate {
                found: self.learning_rate,
            });
        }
        Ok(())
    }
}

/// What a caller can get wrong configuring a forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("{what} must be at least 1, found 0")]
    Zero { what: &'static str },
    #[error("moving average: expected m in 1..=window ({window}), found {moving_average}")]
    MovingAverage {
        moving_average: usize,
        window: usize,
    },
    #[error(
        "series of {series_len} values hold no window: expected window + horizon ≤ series length, \
         found {window} + {horizon}"
    )]
    SeriesTooShort {
        window: usize,
        horizon: usize,
        series_len: usize,
    },
    #[error("learning rate: expected a finite value > 0, found {found}")]
    LearningRate { found: f32 },
    #[error(transparent)]
    Head(#[from] HeadError),
}

/// Forecasting examples cut from series.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// W.
    pub window: usize,
    /// The number of target values per example.
    pub horizon: usize,
    /// (N, W)
    pub inputs: Vec<f32>,
    /// (N, horizon)
    pub targets: Vec<f32>,
}

impl Windows {
    /// Every window of every series (stride 1): `inputs = x[s..s+W]`, `targets =
    /// x[s+W..s+W+horizon]`.
    ///
    /// # Errors
    /// [`ForecastError::Zero`] for W or horizon 0; [`ForecastError::SeriesTooShort`] if a series
    /// is shorter than `W + horizon`.
    pub fn cut(series: &[Vec<f32>], window: usize, horizon: usize) -> Result<Self, ForecastError> {
        if window == 0 {
            return Err(ForecastError::Zero { what: "window" });
        }
        if horizon == 0 {
            return Err(ForecastError::Zero { what: "horizon" });
        }
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for s in series {
            if s.len() < window + horizon {
                return Err(ForecastError::SeriesTooShort {
                    window,
                    horizon,
                    series_len: s.len(),
                });
            }
            for start in 0..=s.len() - window - horizon {
                inputs.extend_from_slice(&s[start..start + window]);
                targets.extend_from_slice(&s[start + window..start + window + horizon]);
            }
        }
        Ok(Windows {
            window,
            horizon,
            inputs,
            targets,
        })
    }

    /// N.
    pub fn len(&self) -> usize {
        self.targets.len() / self.horizon
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The examples `rows` as a time-major batch (W, B, 1) and their first `outputs` targets
    /// (B, outputs).
    fn batch(&self, rows: &[usize], outputs: usize) -> (Vec<f32>, Vec<f32>) {
        let (w, b) = (self.window, rows.len());
        let mut x = vec![0.0f32; w * b];
        let mut y = Vec::with_capacity(b * outputs);
        for (j, &r) in rows.iter().enumerate() {
            for t in 0..w {
                x[t * b + j] = self.inputs[r * w + t];
            }
            y.extend_from_slice(&self.targets[r * self.horizon..r * self.horizon + outputs]);
        }
        (x, y)
    }
}

/// Persistence: every step ahead is the last value. (N, horizon)
pub fn persistence(windows: &Windows) -> Vec<f32> {
    windows
        .inputs
        .chunks_exact(windows.window)
        .flat_map(|w| std::iter::repeat_n(w[windows.window - 1], windows.horizon))
        .collect()
}

/// Moving average: every step ahead is the mean of the last `m` values (`m ≤ W`). (N, horizon)
pub fn moving_average(windows: &Windows, m: usize) -> Vec<f32> {
    windows
        .inputs
        .chunks_exact(windows.window)
        .flat_map(|w| {
            let tail = &w[w.len() - m..];
            let mean = tail.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
            std::iter::repeat_n(mean as f32, windows.horizon)
        })
        .collect()
}

/// MSE at each step ahead `k = 1..=width` of `pred` (N, width) against the first `width` of
/// each example's targets.
pub fn mse_per_step(pred: &[f32], windows: &Windows, width: usize) -> Vec<f64> {
    let n = windows.len();
    let mut sums = vec![0.0f64; width];
    for r in 0..n {
        for k in 0..width {
            let e = pred[r * width + k] as f64 - windows.targets[r * windows.horizon + k] as f64;
            sums[k] += e * e;
        }
    }
    sums.iter().map(|s| s / n.max(1) as f64).collect()
}

/// The `m ∈ 1..=W` whose moving average has the lowest MSE over the first `outputs` steps ahead
/// of `windows` (the smallest such m on ties).
pub fn best_moving_average(windows: &Windows, outputs: usize) -> usize {
    let mut best = (f64::INFINITY, 1);
    for m in 1..=windows.window {
        let pred = moving_average(windows, m);
        let first: Vec<f32> = pred
            .chunks_exact(windows.horizon)
            .flat_map(|row| row[..outputs].to_vec())
            .collect();
        let score = mean(&mse_per_step(&first, windows, outputs));
        if score < best.0 {
            best = (score, m);
        }
    }
    best.1
}

/// A progress report from [`run`]: one per epoch of each model.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// `"one-step"` or `"multi-step"`.
    pub model: &'static str,
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Mean training MSE over the epoch's batches.
    pub train_mse: f64,
}

/// MSE per step ahead of the RNN and the baselines on the held-out windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Outputs of the model (1 for one-step, `horizon` for multi-step).
    pub outputs: usize,
    /// `[k − 1]`: MSE at `k` steps ahead.
    pub rnn: Vec<f64>,
    pub persistence: Vec<f64>,
    pub moving_average: Vec<f64>,
    /// The moving average's m.
    pub moving_average_m: usize,
    /// Mean training MSE of each epoch.
    pub train_mse: Vec<f64>,
}

/// The mean of a per-step score over the horizon.
pub fn mean(scores: &[f64]) -> f64 {
    scores.iter().sum::<f64>() / scores.len().max(1) as f64
}

/// The results of [`run`].
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastReport {
    pub train_windows: usize,
    pub test_windows: usize,
    pub one_step: Scores,
    /// `None` when `horizon = 1`.
    pub multi_step: Option<Scores>,
    /// MSE per step ahead of the one-step model run recursively over the horizon; `None` when
    /// `horizon = 1`.
    pub recursive: Option<Vec<f64>>,
}

/// Trains a many-to-one regressor with `outputs` outputs on `train` (MSE, Adam, shuffled
/// minibatches), reporting each epoch's mean training MSE.
///
/// # Errors
/// [`ForecastError`] from the configuration or the model.
pub fn train_forecaster(
    config: &ForecastConfig,
    train: &Windows,
    outputs: usize,
    model_name: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> Result<(ManyToOne, Vec<f64>), ForecastError> {
    config.validate()?;
    let rnn = RnnConfig::new(config.cell, 1, config.hidden)
        .with_par(config.par)
        .init(config.seed)
        .map_err(HeadError::from)?;
    let mut model = ManyToOne::new(
        rnn,
        Objective::Regress { outputs },
        Readout::LastStep,
        config.seed.wrapping_add(1),
    )?;
    let batches_per_epoch = train.len().div_ceil(config.batch) as u64;
    let total = (batches_per_epoch * config.epochs as u64).max(1);
    let mut optimizer = Optimizer::new(
        OptimizerConfig::pytorch_adam()
            .with_learning_rate(config.learning_rate)
            .with_schedule(LrSchedule::Exponential {
                decay_steps: total,
                decay_rate: 0.1,
            }),
    )
    .map_err(HeadError::from)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(2));
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut grads = model.zero_grads();
    let mut history = Vec::with_capacity(config.epochs);
    let mut step = 0u64;
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for rows in order.chunks(config.batch) {
            let (x, y) = train.batch(rows, outputs);
            grads.zero();
            sum += model.loss_and_grads(
                SeqBatch::new(&x, train.window, rows.len()),
                Targets::Values(&y),
                step,
                &mut grads,
            )?;
            model.apply(&mut optimizer, &grads)?;
            step += 1;
        }
        let train_mse = sum / batches_per_epoch as f64;
        history.push(train_mse);
        progress(Progress {
            model: model_name,
            epoch,
            epochs: config.epochs,
            train_mse,
        });
    }
    Ok((model, history))
}

/// The model's forecasts for every example of `windows`, in batches of `batch`. (N, outputs)
///
/// # Errors
/// [`ForecastError::Head`] if the model does not read one value per step.
pub fn predict(
    model: &ManyToOne,
    windows: &Windows,
    batch: usize,
) -> Result<Vec<f32>, ForecastError> {
    let outputs = model.objective.width();
    let rows: Vec<usize> = (0..windows.len()).collect();
    let mut out = Vec::with_capacity(windows.len() * outputs);
    for chunk in rows.chunks(batch.max(1)) {
        let (x, _) = windows.batch(chunk, outputs);
        out.extend(model.predict(SeqBatch::new(&x, windows.window, chunk.len()))?);
    }
    Ok(out)
}

/// Multi-step forecasts of a one-output model run recursively: each forecast is appended to the
/// window (the oldest value dropped) and the model is run again, `horizon` times. (N, horizon)
///
/// # Errors
/// [`ForecastError::Head`] if the model does not have exactly one output per step.
pub fn predict_recursive(
    model: &ManyToOne,
    windows: &Windows,
    batch: usize,
) -> Result<Vec<f32>, ForecastError> {
    let outputs = model.objective.width();
    if outputs != 1 {
        return Err(HeadError::Mismatch {
            what: "outputs of a model run recursively",
            expected: 1,
            found: outputs,
        }
        .into());
    }
    let (w, horizon) = (windows.window, windows.horizon);
    let mut out = vec![0.0f32; windows.len() * horizon];
    let rows: Vec<usize> = (0..windows.len()).collect();
    for chunk in rows.chunks(batch.max(1)) {
        let b = chunk.len();
        // (W, B, 1), time-major; rolled forward one step per forecast
        let (mut x, _) = windows.batch(chunk, 1);
        for k in 0..horizon {
            let next = model.predict(SeqBatch::new(&x, w, b))?; // (B, 1)
            for (j, &r) in chunk.iter().enumerate() {
                out[r * horizon + k] = next[j];
            }
            x.copy_within(b.., 0);
            x[(w - 1) * b..].copy_from_slice(&next);
        }
    }
    Ok(out)
}

/// Generates the series, trains the one-step and (for `horizon > 1`) the direct multi-step
/// model, and scores them and the baselines on the held-out series.
///
/// # Errors
/// [`ForecastError`] for a configuration out of range.
pub fn run(
    config: &ForecastConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<ForecastReport, ForecastError> {
    config.validate()?;
    let (len, horizon) = (config.series_len, config.horizon);
    let train_series = series(config.signal, config.seed, 0, config.train_series, len);
    let test_series = series(
        config.signal,
        config.seed,
        config.train_series as u64,
        config.test_series,
        len,
    );
    let train = Windows::cut(&train_series, config.window, horizon)?;
    let test = Windows::cut(&test_series, config.window, horizon)?;
    let baseline_persistence = persistence(&test);
    let mut recursive = None;
    let mut score = |outputs: usize, name: &'static str| -> Result<Scores, ForecastError> {
        let (model, train_mse) = train_forecaster(config, &train, outputs, name, progress)?;
        let pred = predict(&model, &test, 256)?;
        if outputs == 1 && horizon > 1 {
            let all = predict_recursive(&model, &test, 256)?;
            recursive = Some(mse_per_step(&all, &test, horizon));
        }
        let m = config
            .moving_average
            .unwrap_or_else(|| best_moving_average(&train, outputs));
        let baseline_average = moving_average(&test, m);
        let first = |all: &[f32]| -> Vec<f32> {
            all.chunks_exact(horizon)
                .flat_map(|row| row[..outputs].to_vec())
                .collect()
        };
        Ok(Scores {
            outputs,
            rnn: mse_per_step(&pred, &test, outputs),
            persistence: mse_per_step(&first(&baseline_persistence), &test, outputs),
            moving_average: mse_per_step(&first(&baseline_average), &test, outputs),
            moving_average_m: m,
            train_mse,
        })
    };
    let one_step = score(1, "one-step")?;
    let multi_step = if horizon > 1 {
        Some(score(horizon, "multi-step")?)
    } else {
        None
    };
    Ok(ForecastReport {
        train_windows: train.len(),
        test_windows: test.len(),
        one_step,
        multi_step,
        recursive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_series() -> Vec<Vec<f32>> {
        vec![
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            vec![0.0, -1.0, 4.0, 2.0, 6.0],
        ]
    }

    #[test]
    fn windows_and_baselines_by_hand() {
        let w = Windows::cut(&two_series(), 2, 2).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(w.inputs, [1.0, 2.0, 2.0, 3.0, 0.0, -1.0, -1.0, 4.0]);
        assert_eq!(w.targets, [3.0, 4.0, 4.0, 5.0, 4.0, 2.0, 2.0, 6.0]);
        assert_eq!(persistence(&w), [2.0, 2.0, 3.0, 3.0, -1.0, -1.0, 4.0, 4.0]);
        assert_eq!(
            moving_average(&w, 2),
            [1.5, 1.5, 2.5, 2.5, -0.5, -0.5, 1.5, 1.5]
        );
        // persistence errors: k=1: 1, 1, 5, −2 → (1+1+25+4)/4; k=2: 2, 2, 3, 2 → (4+4+9+4)/4
        assert_eq!(
            mse_per_step(&persistence(&w), &w, 2),
            [31.0 / 4.0, 21.0 / 4.0]
        );
        // m = 1 (persistence) vs m = 2 at k = 1: 31/4 vs (2.25+2.25+20.25+0.25)/4 = 25/4
        assert_eq!(best_moving_average(&w, 1), 2);
        // time-major batch of rows 3 and 0: x (W=2, B=2), y the first target of each
        let (x, y) = w.batch(&[3, 0], 1);
        assert_eq!(x, [-1.0, 1.0, 4.0, 2.0]);
        assert_eq!(y, [2.0, 3.0]);
    }

    #[test]
    fn user_errors_are_typed() {
        assert_eq!(
            Windows::cut(&two_series(), 0, 1),
            Err(ForecastError::Zero { what: "window" })
        );
        assert_eq!(
            Windows::cut(&two_series(), 1, 0),
            Err(ForecastError::Zero { what: "horizon" })
        );
        assert!(matches!(
            Windows::cut(&two_series(), 4, 2),
            Err(ForecastError::SeriesTooShort { series_len: 5, .. })
        ));
        let config = ForecastConfig::new(Signal::Sine, 0);
        assert_eq!(
            run(&config, &mut |_| {}),
            Err(ForecastError::Zero { what: "horizon" })
        );
        let config = ForecastConfig {
            moving_average: Some(40),
            ..ForecastConfig::new(Signal::Sine, 5)
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "moving average: expected m in 1..=window (32), found 40"
        );
        let config = ForecastConfig {
            series_len: 20,
            ..ForecastConfig::new(Signal::Ar, 5)
        };
        assert!(matches!(
            config.validate(),
            Err(ForecastError::SeriesTooShort { .. })
        ));
    }

    #[test]
    fn a_short_run_learns_and_is_deterministic() {
        let config = ForecastConfig {
            train_series: 24,
            test_series: 4,
            series_len: 60,
            window: 12,
            hidden: 8,
            epochs: 3,
            ..ForecastConfig::new(Signal::Ar, 2)
        };
        let a = run(&config, &mut |_| {}).unwrap();
        let b = run(
            &ForecastConfig {
                par: Par::Seq,
                ..config.clone()
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(a, b, "same seed, same numbers, any thread count");
        let history = &a.one_step.train_mse;
        assert!(history[2] < history[0], "{history:?}");
        assert_eq!(a.multi_step.as_ref().unwrap().rnn.len(), 2);
        let recursive = a.recursive.as_ref().unwrap();
        assert_eq!(
            recursive[0], a.one_step.rnn[0],
            "k = 1 is the one-step forecast"
        );
    }

    #[test]
    fn recursive_forecasts_feed_back_their_own_outputs() {
        // Against running the model by hand, one window at a time, on the rolled windows.
        let config = ForecastConfig {
            hidden: 4,
            window: 5,
            ..ForecastConfig::new(Signal::Sine, 3)
        };
        let data = series(Signal::Sine, 3, 0, 2, 12);
        let windows = Windows::cut(&data, 5, 3).unwrap();
        let rnn = RnnConfig::new(config.cell, 1, config.hidden)
            .init(5)
            .unwrap();
        let model =
            ManyToOne::new(rnn, Objective::Regress { outputs: 1 }, Readout::LastStep, 6).unwrap();
        let all = predict_recursive(&model, &windows, 3).unwrap();
        for r in [0, windows.len() - 1] {
            let mut window = windows.inputs[r * 5..(r + 1) * 5].to_vec();
            for k in 0..3 {
                let next = model.predict(SeqBatch::new(&window, 5, 1)).unwrap()[0];
                assert_eq!(all[r * 3 + k], next, "row {r}, k = {k}");
                window.remove(0);
                window.push(next);
            }
        }
    }
}
