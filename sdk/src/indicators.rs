//! Streaming technical indicators.
//!
//! Each indicator takes one value per candle with `update` and answers `None`
//! until it has seen enough candles to be meaningful ("warm"), then the
//! current value. All are O(1) per update (amortised for the rolling
//! extremes) and allocate only their window.

use std::collections::VecDeque;

/// Simple moving average over the last `period` values.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    window: VecDeque<f64>,
    sum: f64,
}

impl Sma {
    /// `period` must be at least 1.
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "SMA period must be at least 1");
        Self {
            period,
            window: VecDeque::with_capacity(period + 1),
            sum: 0.0,
        }
    }

    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.window.push_back(value);
        self.sum += value;
        if self.window.len() > self.period {
            self.sum -= self.window.pop_front().unwrap_or(0.0);
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.window.len() == self.period).then(|| self.sum / self.period as f64)
    }
}

/// How an EMA gets its first value. Engines differ here, and the choice
/// changes the first few hundred values noticeably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmaSeed {
    /// The first input is the first EMA value (pandas `ewm(adjust=False)`,
    /// vectorbt, NautilusTrader).
    #[default]
    FirstValue,
    /// The simple average of the first `period` inputs is the first EMA value
    /// (TA-Lib, backtrader).
    Sma,
}

/// Exponential moving average with smoothing `2 / (period + 1)`.
///
/// Warm (returns `Some`) once it has seen `period` inputs, whatever the seed.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    alpha: f64,
    seed: EmaSeed,
    seen: usize,
    value: f64,
}

impl Ema {
    pub fn new(period: usize) -> Self {
        Self::with_seed(period, EmaSeed::FirstValue)
    }

    pub fn with_seed(period: usize, seed: EmaSeed) -> Self {
        assert!(period >= 1, "EMA period must be at least 1");
        Self {
            period,
            alpha: 2.0 / (period as f64 + 1.0),
            seed,
            seen: 0,
            value: 0.0,
        }
    }

    pub fn update(&mut self, input: f64) -> Option<f64> {
        self.seen += 1;
        match self.seed {
            EmaSeed::FirstValue if self.seen == 1 => self.value = input,
            EmaSeed::Sma if self.seen <= self.period => {
                // Running mean of the first `period` inputs.
                self.value += (input - self.value) / self.seen as f64;
            }
            _ => self.value += self.alpha * (input - self.value),
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.seen >= self.period).then_some(self.value)
    }
}

/// Wilder's smoothing: the first value is the mean of the first `period`
/// inputs, then `avg = (avg * (period - 1) + input) / period`.
#[derive(Debug, Clone)]
struct WilderAverage {
    period: usize,
    seen: usize,
    value: f64,
}

impl WilderAverage {
    fn new(period: usize) -> Self {
        Self {
            period,
            seen: 0,
            value: 0.0,
        }
    }

    fn update(&mut self, input: f64) -> Option<f64> {
        self.seen += 1;
        if self.seen <= self.period {
            self.value += (input - self.value) / self.seen as f64;
        } else {
            let n = self.period as f64;
            self.value = (self.value * (n - 1.0) + input) / n;
        }
        (self.seen >= self.period).then_some(self.value)
    }
}

/// Relative strength index with Wilder's smoothing, 0..=100.
///
/// Needs `period + 1` prices (that is `period` changes) before it is warm.
/// With no losses in the window it is 100; with no movement at all, 50.
#[derive(Debug, Clone)]
pub struct Rsi {
    gains: WilderAverage,
    losses: WilderAverage,
    previous: Option<f64>,
    value: Option<f64>,
}

impl Rsi {
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "RSI period must be at least 1");
        Self {
            gains: WilderAverage::new(period),
            losses: WilderAverage::new(period),
            previous: None,
            value: None,
        }
    }

    pub fn update(&mut self, price: f64) -> Option<f64> {
        if let Some(previous) = self.previous.replace(price) {
            let change = price - previous;
            let gain = self.gains.update(change.max(0.0));
            let loss = self.losses.update((-change).max(0.0));
            if let (Some(gain), Some(loss)) = (gain, loss) {
                self.value = Some(if loss == 0.0 {
                    if gain == 0.0 { 50.0 } else { 100.0 }
                } else {
                    100.0 - 100.0 / (1.0 + gain / loss)
                });
            }
        }
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Average true range with Wilder's smoothing.
///
/// The true range of the first candle is its high - low; later ones also
/// reach to the previous close. Warm after `period` candles.
#[derive(Debug, Clone)]
pub struct Atr {
    average: WilderAverage,
    previous_close: Option<f64>,
    value: Option<f64>,
}

impl Atr {
    pub fn new(period: usize) -> Self {
        assert!(period >= 1, "ATR period must be at least 1");
        Self {
            average: WilderAverage::new(period),
            previous_close: None,
            value: None,
        }
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let range = high - low;
        let true_range = match self.previous_close {
            Some(previous) => range
                .max((high - previous).abs())
                .max((low - previous).abs()),
            None => range,
        };
        self.previous_close = Some(close);
        self.value = self.average.update(true_range);
        self.value
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// Bollinger bands: the SMA of `period` values, plus and minus `k`
/// population standard deviations of the same window.
#[derive(Debug, Clone)]
pub struct Bollinger {
    period: usize,
    k: f64,
    window: VecDeque<f64>,
    value: Option<Bands>,
}

/// One reading of [`Bollinger`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub lower: f64,
    pub middle: f64,
    pub upper: f64,
}

impl Bollinger {
    pub fn new(period: usize, k: f64) -> Self {
        assert!(period >= 1, "Bollinger period must be at least 1");
        Self {
            period,
            k,
            window: VecDeque::with_capacity(period + 1),
            value: None,
        }
    }

    pub fn update(&mut self, price: f64) -> Option<Bands> {
        self.window.push_back(price);
        if self.window.len() > self.period {
            self.window.pop_front();
        }
        if self.window.len() == self.period {
            // Two passes over the window: exact enough for any price scale,
            // unlike a running sum of squares.
            let n = self.period as f64;
            let mean = self.window.iter().sum::<f64>() / n;
            let variance = self.window.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            let width = self.k * variance.sqrt();
            self.value = Some(Bands {
                lower: mean - width,
                middle: mean,
                upper: mean + width,
            });
        }
        self.value
    }

    pub fn value(&self) -> Option<Bands> {
        self.value
    }
}

/// The extreme of the last `period` values, kept in a monotonic queue.
#[derive(Debug, Clone)]
struct RollingExtreme {
    period: usize,
    seen: usize,
    /// (index, value), values strictly ordered so the front is the extreme.
    queue: VecDeque<(usize, f64)>,
    /// `true` keeps the maximum, `false` the minimum.
    keep_max: bool,
}

impl RollingExtreme {
    fn new(period: usize, keep_max: bool) -> Self {
        assert!(period >= 1, "rolling window must be at least 1");
        Self {
            period,
            seen: 0,
            queue: VecDeque::with_capacity(period),
            keep_max,
        }
    }

    fn update(&mut self, value: f64) -> Option<f64> {
        let index = self.seen;
        self.seen += 1;
        while let Some(&(_, back)) = self.queue.back() {
            let dominated = if self.keep_max {
                back <= value
            } else {
                back >= value
            };
            if !dominated {
                break;
            }
            self.queue.pop_back();
        }
        self.queue.push_back((index, value));
        while let Some(&(front_index, _)) = self.queue.front() {
            if front_index + self.period > index {
                break;
            }
            self.queue.pop_front();
        }
        self.value()
    }

    fn value(&self) -> Option<f64> {
        if self.seen < self.period {
            return None;
        }
        self.queue.front().map(|&(_, value)| value)
    }
}

/// Highest of the last `period` values (e.g. the upper Donchian channel).
#[derive(Debug, Clone)]
pub struct Highest(RollingExtreme);

impl Highest {
    pub fn new(period: usize) -> Self {
        Self(RollingExtreme::new(period, true))
    }

    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.0.update(value)
    }

    pub fn value(&self) -> Option<f64> {
        self.0.value()
    }
}

/// Lowest of the last `period` values (e.g. the lower Donchian channel).
#[derive(Debug, Clone)]
pub struct Lowest(RollingExtreme);

impl Lowest {
    pub fn new(period: usize) -> Self {
        Self(RollingExtreme::new(period, false))
    }

    pub fn update(&mut self, value: f64) -> Option<f64> {
        self.0.update(value)
    }

    pub fn value(&self) -> Option<f64> {
        self.0.value()
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are worked out by hand in the comments.
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("indicator should be warm");
        assert!(
            (actual - expected).abs() < 1e-9,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn sma_averages_the_last_period_values() {
        let mut sma = Sma::new(3);
        assert_eq!(sma.update(1.0), None);
        assert_eq!(sma.update(2.0), None);
        close(sma.update(3.0), 2.0); // (1+2+3)/3
        close(sma.update(4.0), 3.0); // (2+3+4)/3
        close(sma.update(11.0), 6.0); // (3+4+11)/3
    }

    #[test]
    fn ema_seeded_from_first_value() {
        // alpha = 2/(3+1) = 0.5
        let mut ema = Ema::new(3);
        assert_eq!(ema.update(10.0), None); // 10
        assert_eq!(ema.update(20.0), None); // 10 + 0.5*10 = 15
        close(ema.update(30.0), 22.5); // 15 + 0.5*15
        close(ema.update(10.0), 16.25); // 22.5 + 0.5*(-12.5)
    }

    #[test]
    fn ema_seeded_from_sma() {
        // first value = (10+20+30)/3 = 20, then alpha = 0.5
        let mut ema = Ema::with_seed(3, EmaSeed::Sma);
        assert_eq!(ema.update(10.0), None);
        assert_eq!(ema.update(20.0), None);
        close(ema.update(30.0), 20.0);
        close(ema.update(40.0), 30.0); // 20 + 0.5*20
    }

    #[test]
    fn rsi_uses_wilder_smoothing() {
        // period 2; changes: +2, -1, +3, -2
        let mut rsi = Rsi::new(2);
        assert_eq!(rsi.update(10.0), None);
        assert_eq!(rsi.update(12.0), None); // one change only
        // gains avg (2+0)/2 = 1, losses avg (0+1)/2 = 0.5, RS = 2 -> 100 - 100/3
        close(rsi.update(11.0), 100.0 - 100.0 / 3.0);
        // gain 3: avg = (1*1+3)/2 = 2; loss 0: avg = (0.5*1+0)/2 = 0.25; RS = 8 -> 100 - 100/9
        close(rsi.update(14.0), 100.0 - 100.0 / 9.0);
        // gain 0: avg = (2+0)/2 = 1; loss 2: avg = (0.25+2)/2 = 1.125; RS = 8/9 -> 100 - 100/(17/9)
        close(rsi.update(12.0), 100.0 - 900.0 / 17.0);
    }

    #[test]
    fn rsi_edge_cases() {
        let mut rising = Rsi::new(2);
        for price in [1.0, 2.0, 3.0] {
            rising.update(price);
        }
        close(rising.value(), 100.0);
        let mut flat = Rsi::new(2);
        for price in [5.0, 5.0, 5.0] {
            flat.update(price);
        }
        close(flat.value(), 50.0);
    }

    #[test]
    fn atr_uses_true_range_and_wilder_smoothing() {
        let mut atr = Atr::new(2);
        // TR1 = 12 - 8 = 4
        assert_eq!(atr.update(12.0, 8.0, 10.0), None);
        // TR2 = max(11-9, |11-10|, |9-10|) = 2; ATR = (4+2)/2 = 3
        close(atr.update(11.0, 9.0, 9.5), 3.0);
        // gap up: TR3 = max(15-14, |15-9.5|, |14-9.5|) = 5.5; ATR = (3*1+5.5)/2 = 4.25
        close(atr.update(15.0, 14.0, 14.5), 4.25);
    }

    #[test]
    fn bollinger_uses_population_deviation() {
        let mut bands = Bollinger::new(4, 2.0);
        for price in [2.0, 4.0, 4.0] {
            assert_eq!(bands.update(price), None);
        }
        // window 2,4,4,6: mean 4, variance (4+0+0+4)/4 = 2, sd = sqrt(2)
        let reading = bands.update(6.0).unwrap();
        let width = 2.0 * 2f64.sqrt();
        close(Some(reading.middle), 4.0);
        close(Some(reading.upper), 4.0 + width);
        close(Some(reading.lower), 4.0 - width);
    }

    #[test]
    fn rolling_extremes_slide() {
        let mut highest = Highest::new(3);
        let mut lowest = Lowest::new(3);
        let series = [5.0, 3.0, 4.0, 1.0, 2.0, 6.0, 6.0];
        let highs: Vec<_> = series.iter().map(|&x| highest.update(x)).collect();
        let lows: Vec<_> = series.iter().map(|&x| lowest.update(x)).collect();
        // windows: [5,3,4] [3,4,1] [4,1,2] [1,2,6] [2,6,6]
        assert_eq!(
            highs,
            [
                None,
                None,
                Some(5.0),
                Some(4.0),
                Some(4.0),
                Some(6.0),
                Some(6.0)
            ]
        );
        assert_eq!(
            lows,
            [
                None,
                None,
                Some(3.0),
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(2.0)
            ]
        );
    }
}
