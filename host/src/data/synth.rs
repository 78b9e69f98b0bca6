//! Reproducible synthetic candles: geometric Brownian motion.
//!
//! Each candle opens at the previous close and walks `SUBSTEPS` log-normal
//! steps; high and low are the extremes of that walk, so high >= max(open,
//! close) and low <= min(open, close) always hold. Prices are rounded to two
//! decimals (a 0.01 tick), volumes to four. The generator is ChaCha8, whose
//! output is fixed by its specification, so a seed gives the same series on
//! every machine and every version.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use crate::domain::{Candle, Timeframe};

/// Price path steps inside one candle.
const SUBSTEPS: usize = 4;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthParams {
    pub count: usize,
    pub seed: u64,
    pub timeframe: Timeframe,
    /// Open time of the first candle, epoch milliseconds.
    pub start_ts: i64,
    pub start_price: f64,
    /// Standard deviation of the log return per candle.
    pub volatility: f64,
    /// Mean log return per candle.
    pub drift: f64,
}

impl SynthParams {
    /// Defaults: 1m candles from 2024-01-01, price 100, 0.1% per candle.
    pub fn new(count: usize, seed: u64) -> Self {
        Self {
            count,
            seed,
            timeframe: "1m".parse().expect("1m is a timeframe"),
            start_ts: 1_704_067_200_000,
            start_price: 100.0,
            volatility: 0.001,
            drift: 0.0,
        }
    }
}

fn price(value: f64) -> Decimal {
    Decimal::from_f64(value)
        .unwrap_or(Decimal::ONE)
        .round_dp(2)
        .max(Decimal::new(1, 2))
}

/// An endless, reproducible candle series: `synthesize` takes a prefix of
/// it, live synthetic feeds draw from it one candle at a time.
pub struct SynthGenerator {
    rng: ChaCha8Rng,
    step_mu: f64,
    step_sigma: f64,
    last: f64,
    next_ts: i64,
    step_ms: i64,
}

impl SynthGenerator {
    pub fn new(params: &SynthParams) -> Self {
        let step_sigma = params.volatility / (SUBSTEPS as f64).sqrt();
        Self {
            rng: ChaCha8Rng::seed_from_u64(params.seed),
            step_mu: params.drift / SUBSTEPS as f64 - step_sigma * step_sigma / 2.0,
            step_sigma,
            last: params.start_price,
            next_ts: params.start_ts,
            step_ms: params.timeframe.millis(),
        }
    }

    pub fn next_candle(&mut self) -> Candle {
        let open = self.last;
        let (mut high, mut low) = (open, open);
        for _ in 0..SUBSTEPS {
            let z: f64 = self.rng.sample(StandardNormal);
            self.last *= (self.step_mu + self.step_sigma * z).exp();
            high = high.max(self.last);
            low = low.min(self.last);
        }
        let z: f64 = self.rng.sample(StandardNormal);
        let volume = 10.0 * (0.5 * z).exp();
        let ts = self.next_ts;
        self.next_ts += self.step_ms;
        Candle {
            ts,
            open: price(open),
            high: price(high),
            low: price(low),
            close: price(self.last),
            volume: Decimal::from_f64(volume).unwrap_or_default().round_dp(4),
        }
    }
}

/// Generate `params.count` candles.
pub fn synthesize(params: &SynthParams) -> Vec<Candle> {
    let mut generator = SynthGenerator::new(params);
    (0..params.count).map(|_| generator.next_candle()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_series_and_valid_candles() {
        let params = SynthParams::new(2_000, 42);
        let a = synthesize(&params);
        assert_eq!(a, synthesize(&params));
        assert_ne!(a, synthesize(&SynthParams::new(2_000, 43)));
        for pair in a.windows(2) {
            assert_eq!(pair[1].ts - pair[0].ts, 60_000);
            assert_eq!(pair[1].open, pair[0].close);
        }
        for candle in &a {
            candle.validate().unwrap();
        }
    }
}
