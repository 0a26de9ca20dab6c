//! Generated time series for forecasting: noisy sines with a random frequency, phase and
//! amplitude, and a stationary AR(2) process. Deterministic for a seed: series `k` of a seed is
//! drawn from its own `ChaCha8Rng` stream (`seed_from_u64(seed)` then `set_stream(k)`), so any
//! range of series can be generated independently and held-out series never overlap training ones.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::init::standard_normal;

/// Which generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// [`SineConfig`]: `x_t = A·sin(2π f t + φ) + ε_t`.
    Sine,
    /// [`Ar2Config`]: `x_t = φ₁ x_{t−1} + φ₂ x_{t−2} + ε_t`.
    Ar,
}

impl Signal {
    /// `"sine"` or `"ar"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Sine => "sine",
            Signal::Ar => "ar",
        }
    }
}

/// A noisy sine per series: frequency `f ~ U(min_frequency, max_frequency)` cycles per step,
/// phase `φ ~ U(0, 2π)`, amplitude `A ~ U(min_amplitude, max_amplitude)`, and i.i.d. Gaussian
/// observation noise `ε_t ~ N(0, noise²)` (so no forecaster can get below `noise²` MSE).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SineConfig {
    pub min_frequency: f64,
    pub max_frequency: f64,
    pub min_amplitude: f64,
    pub max_amplitude: f64,
    pub noise: f64,
}

impl Default for SineConfig {
    /// Periods of 8 to 40 steps, amplitudes 0.5 to 1.5, noise σ = 0.1.
    fn default() -> Self {
        SineConfig {
            min_frequency: 1.0 / 40.0,
            max_frequency: 1.0 / 8.0,
            min_amplitude: 0.5,
            max_amplitude: 1.5,
            noise: 0.1,
        }
    }
}

/// An AR(2) process `x_t = φ₁ x_{t−1} + φ₂ x_{t−2} + ε_t`, `ε_t ~ N(0, σ²)`, started from 0 and
/// run for `burn_in` steps before the first kept value so each series starts near stationarity.
///
/// The defaults φ₁ = 1.5, φ₂ = −0.75 put the characteristic roots at modulus `1/√0.75 ≈ 1.155`
/// (stationary) with argument 30°: a damped oscillation of period ≈ 12 steps. The stationary
/// variance is `γ₀ = σ²(1 − φ₂) / ((1 + φ₂)((1 − φ₂)² − φ₁²)) ≈ 8.62 σ²` (Box & Jenkins, AR(2)
/// autocovariances), and the best possible one-step MSE is `σ²`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ar2Config {
    pub phi1: f64,
    pub phi2: f64,
    pub sigma: f64,
    pub burn_in: usize,
}

impl Default for Ar2Config {
    fn default() -> Self {
        Ar2Config {
            phi1: 1.5,
            phi2: -0.75,
            sigma: 0.3,
            burn_in: 100,
        }
    }
}

impl Ar2Config {
    /// The stationary variance γ₀ (see the type's docs), or infinity outside the stationary
    /// triangle (`φ₂ > −1`, `φ₂ ± φ₁ < 1`).
    pub fn stationary_variance(&self) -> f64 {
        let (p1, p2) = (self.phi1, self.phi2);
        if p2 <= -1.0 || p2 + p1 >= 1.0 || p2 - p1 >= 1.0 {
            return f64::INFINITY;
        }
        self.sigma * self.sigma * (1.0 - p2) / ((1.0 + p2) * ((1.0 - p2).powi(2) - p1 * p1))
    }
}

/// One noisy sine of `len` values.
pub fn noisy_sine<R: Rng + ?Sized>(rng: &mut R, len: usize, config: &SineConfig) -> Vec<f32> {
    let f = rng.random_range(config.min_frequency..=config.max_frequency);
    let phase = rng.random_range(0.0..2.0 * PI);
    let amplitude = rng.random_range(config.min_amplitude..=config.max_amplitude);
    (0..len)
        .map(|t| {
            let clean = amplitude * (2.0 * PI * f * t as f64 + phase).sin();
            (clean + config.noise * standard_normal(rng)) as f32
        })
        .collect()
}

/// One AR(2) series of `len` values (after the burn-in).
pub fn ar2<R: Rng + ?Sized>(rng: &mut R, len: usize, config: &Ar2Config) -> Vec<f32> {
    let (mut previous, mut before) = (0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(len);
    for t in 0..config.burn_in + len {
        let x = config.phi1 * previous + config.phi2 * before + config.sigma * standard_normal(rng);
        before = previous;
        previous = x;
        if t >= config.burn_in {
            out.push(x as f32);
        }
    }
    out
}

/// Series `first..first + count` of `signal` for `seed`, each `len` values long, with the default
/// configurations. Series `k` depends only on `(signal, seed, k)`.
pub fn series(signal: Signal, seed: u64, first: u64, count: usize, len: usize) -> Vec<Vec<f32>> {
    (first..first + count as u64)
        .map(|k| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(k);
            match signal {
                Signal::Sine => noisy_sine(&mut rng, len, &SineConfig::default()),
                Signal::Ar => ar2(&mut rng, len, &Ar2Config::default()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_series_and_independent_of_the_range() {
        for signal in [Signal::Sine, Signal::Ar] {
            let a = series(signal, 7, 0, 5, 50);
            let b = series(signal, 7, 3, 2, 50);
            assert_eq!(a[3..5], b[..]);
            assert_eq!(a, series(signal, 7, 0, 5, 50));
            assert_ne!(a[0], a[1]);
            assert_ne!(a, series(signal, 8, 0, 5, 50));
        }
    }

    #[test]
    fn ar2_has_its_stationary_variance_and_lag_one_coefficients() {
        let config = Ar2Config::default();
        let xs: Vec<f64> = series(Signal::Ar, 1, 0, 40, 2_000)
            .into_iter()
            .flatten()
            .map(f64::from)
            .collect();
        let n = xs.len() as f64;
        let var = xs.iter().map(|x| x * x).sum::<f64>() / n;
        let gamma0 = config.stationary_variance();
        assert!((var / gamma0 - 1.0).abs() < 0.05, "{var} vs {gamma0}");
        // ρ₁ = φ₁/(1 − φ₂) (Yule–Walker).
        let lag1 = xs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n / var;
        let rho1 = config.phi1 / (1.0 - config.phi2);
        assert!((lag1 - rho1).abs() < 0.02, "{lag1} vs {rho1}");
    }

    #[test]
    fn sine_noise_is_the_residual_of_the_clean_wave() {
        // With the noise off, the series is an exact sine: x_{t+1} + x_{t−1} = 2 cos(2πf) x_t.
        let config = SineConfig {
            noise: 0.0,
            ..SineConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let xs = noisy_sine(&mut rng, 100, &config);
        let c = (xs[0] + xs[2]) / (2.0 * xs[1]);
        for w in xs.windows(3) {
            assert!((w[0] + w[2] - 2.0 * c * w[1]).abs() < 1e-4);
        }
        assert!(xs.iter().all(|x| x.abs() <= 1.5 + 1e-6));
        assert!(c.acos() / (2.0 * std::f32::consts::PI) >= (1.0 / 40.0) - 1e-4);
    }
}
