//! Performance metrics of a run, with their definitions.
//!
//! Money figures stay decimal; ratios are statistics and use f64. A ratio
//! that is undefined for the data (no losing trade for the profit factor, a
//! flat equity curve for Sharpe) is `None` (JSON `null`), never a made-up number.
//!
//! Definitions:
//! - total return: final equity / initial equity - 1;
//! - CAGR: (final / initial) ^ (1 / years) - 1, years = (end - start) / 365 days;
//! - daily returns: the equity at the last candle close of each UTC day,
//!   relative to the previous day's (the first day relative to the initial
//!   equity);
//! - Sharpe: mean(daily returns) / sample standard deviation * sqrt(365)
//!   (crypto trades every day; risk-free rate 0);
//! - Sortino: mean(daily returns) / sqrt(mean(min(r, 0)^2)) * sqrt(365);
//! - max drawdown: the largest fall from a running peak of the per-candle
//!   equity curve (the initial equity is the first peak), in percent; its
//!   duration is the longest time from a peak until equity is back at it (or
//!   the end of the run);
//! - Calmar: CAGR / max drawdown;
//! - trades are round trips (flat to flat); win rate: share with PnL > 0;
//!   profit factor: gross profit / gross loss; expectancy: mean PnL per trade;
//! - exposure: share of candles that closed with a position;
//! - fees: everything paid.

use rust_decimal::Decimal;
use serde::Serialize;

use super::portfolio::Trade;

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: f64 = 365.0 * DAY_MS as f64;

/// Equity at a candle's close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EquityPoint {
    /// Close time, epoch ms.
    pub ts: i64,
    pub equity: Decimal,
}

/// The UTC day (its start, epoch ms) a candle closing at `ts` traded in: a
/// close exactly at midnight belongs to the day before it.
pub fn trading_day(ts: i64) -> i64 {
    (ts - 1).div_euclid(DAY_MS) * DAY_MS
}

/// The equity at each UTC trading day's last close.
pub fn day_closes(curve: &[EquityPoint]) -> Vec<EquityPoint> {
    let mut closes: Vec<EquityPoint> = Vec::new();
    for point in curve {
        match closes.last_mut() {
            Some(last) if trading_day(last.ts) == trading_day(point.ts) => *last = *point,
            _ => closes.push(*point),
        }
    }
    closes
}

/// A run's performance; its JSON Schema (decimals as strings) is what the
/// API documents for bot stats.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Metrics {
    #[schemars(with = "String")]
    pub initial_equity: Decimal,
    #[schemars(with = "String")]
    pub final_equity: Decimal,
    pub total_return_pct: f64,
    pub cagr_pct: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub calmar: Option<f64>,
    pub max_drawdown_pct: f64,
    pub max_drawdown_duration_ms: i64,
    pub trades: usize,
    pub win_rate_pct: Option<f64>,
    pub profit_factor: Option<f64>,
    #[schemars(with = "Option<String>")]
    pub expectancy: Option<Decimal>,
    pub exposure_pct: f64,
    #[schemars(with = "String")]
    pub fees: Decimal,
}

fn f(value: Decimal) -> f64 {
    crate::domain::decimal::to_f64(value)
}

/// Compute the metrics of a run that started at `start_ts` (first candle's
/// open time) with `initial` equity.
pub fn compute(
    initial: Decimal,
    start_ts: i64,
    curve: &[EquityPoint],
    trades: &[Trade],
    exposed_candles: usize,
    fees: Decimal,
) -> Metrics {
    let final_equity = curve.last().map_or(initial, |p| p.equity);
    let total_return = f(final_equity) / f(initial) - 1.0;
    let end_ts = curve.last().map_or(start_ts, |p| p.ts);
    let years = (end_ts - start_ts) as f64 / YEAR_MS;
    let cagr = (years > 0.0 && final_equity > Decimal::ZERO)
        .then(|| (f(final_equity) / f(initial)).powf(1.0 / years) - 1.0);

    let daily = daily_returns(f(initial), curve);
    let mean = daily.iter().sum::<f64>() / daily.len().max(1) as f64;
    let sharpe = (daily.len() >= 2)
        .then(|| {
            let variance =
                daily.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (daily.len() - 1) as f64;
            variance.sqrt()
        })
        .filter(|sd| *sd > 0.0)
        .map(|sd| mean / sd * 365f64.sqrt());
    let downside =
        (daily.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / daily.len().max(1) as f64).sqrt();
    let sortino = (!daily.is_empty() && downside > 0.0).then(|| mean / downside * 365f64.sqrt());

    let (max_drawdown, max_drawdown_duration_ms) = drawdown(initial, start_ts, curve);
    let calmar = cagr
        .filter(|_| max_drawdown > 0.0)
        .map(|c| c / max_drawdown);

    let wins = trades.iter().filter(|t| t.pnl > Decimal::ZERO).count();
    let gross_profit: Decimal = trades
        .iter()
        .map(|t| t.pnl)
        .filter(|p| *p > Decimal::ZERO)
        .sum();
    let gross_loss: Decimal = trades
        .iter()
        .map(|t| t.pnl)
        .filter(|p| *p < Decimal::ZERO)
        .sum();
    let total_pnl: Decimal = trades.iter().map(|t| t.pnl).sum();
    Metrics {
        initial_equity: initial,
        final_equity,
        total_return_pct: total_return * 100.0,
        cagr_pct: cagr.map(|c| c * 100.0),
        sharpe,
        sortino,
        calmar,
        max_drawdown_pct: max_drawdown * 100.0,
        max_drawdown_duration_ms,
        trades: trades.len(),
        win_rate_pct: (!trades.is_empty()).then(|| wins as f64 / trades.len() as f64 * 100.0),
        profit_factor: (!gross_loss.is_zero()).then(|| f(gross_profit) / -f(gross_loss)),
        expectancy: (!trades.is_empty()).then(|| total_pnl / Decimal::from(trades.len())),
        exposure_pct: exposed_candles as f64 / curve.len().max(1) as f64 * 100.0,
        fees,
    }
}

/// Returns of the equity at each UTC day's last close.
fn daily_returns(initial: f64, curve: &[EquityPoint]) -> Vec<f64> {
    let mut closes: Vec<f64> = Vec::new();
    // The day being walked and its latest equity: converted to f64 once
    // per day, not once per candle.
    let mut current: Option<(i64, Decimal)> = None;
    for point in curve {
        // A candle closing exactly at midnight belongs to the day it traded in.
        let day = (point.ts - 1).div_euclid(DAY_MS);
        match &mut current {
            Some((current_day, equity)) if *current_day == day => *equity = point.equity,
            _ => {
                if let Some((_, equity)) = current {
                    closes.push(f(equity));
                }
                current = Some((day, point.equity));
            }
        }
    }
    if let Some((_, equity)) = current {
        closes.push(f(equity));
    }
    let mut previous = initial;
    closes
        .into_iter()
        .map(|close| {
            let r = close / previous - 1.0;
            previous = close;
            r
        })
        .collect()
}

/// (max drawdown as a fraction, longest time under a peak in ms).
fn drawdown(initial: Decimal, start_ts: i64, curve: &[EquityPoint]) -> (f64, i64) {
    let (mut peak, mut peak_ts) = (initial, start_ts);
    // The lowest equity since the peak: only a new low can deepen the
    // drawdown, so the division runs at new lows, not at every candle.
    let mut trough = initial;
    let (mut worst, mut longest) = (0.0f64, 0i64);
    for point in curve {
        if point.equity >= peak {
            longest = longest.max(point.ts - peak_ts);
            peak = point.equity;
            peak_ts = point.ts;
            trough = peak;
        } else if point.equity < trough {
            trough = point.equity;
            if peak > Decimal::ZERO {
                worst = worst.max(f((peak - trough) / peak));
            }
        }
    }
    if let Some(last) = curve.last()
        && last.equity < peak
    {
        longest = longest.max(last.ts - peak_ts);
    }
    (worst, longest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn point(day: i64, equity: Decimal) -> EquityPoint {
        EquityPoint {
            ts: day * DAY_MS,
            equity,
        }
    }

    fn trade(pnl: Decimal) -> Trade {
        Trade {
            entry_ts: 0,
            exit_ts: 1,
            quantity: dec!(1),
            entry_price: dec!(1),
            exit_price: dec!(1),
            pnl,
            fees: dec!(0),
        }
    }

    #[test]
    fn hand_computed_series() {
        // One close per day: 100 -> 110, 99, 108.9, 121.
        let curve = [
            point(1, dec!(110)),
            point(2, dec!(99)),
            point(3, dec!(108.9)),
            point(4, dec!(121)),
        ];
        let trades = [trade(dec!(10)), trade(dec!(-5)), trade(dec!(15))];
        let m = compute(dec!(100), 0, &curve, &trades, 2, dec!(1.5));
        assert!((m.total_return_pct - 21.0).abs() < 1e-9);
        // Daily returns +10%, -10%, +10%, ~+11.111%.
        let r = [0.1, -0.1, 0.1, 121.0 / 108.9 - 1.0];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((m.sharpe.unwrap() - mean / sd * 365f64.sqrt()).abs() < 1e-9);
        let downside = (0.01f64 / 4.0).sqrt();
        assert!((m.sortino.unwrap() - mean / downside * 365f64.sqrt()).abs() < 1e-9);
        // Peak 110 on day 1, trough 99: 10%, back above 110 on day 4.
        assert!((m.max_drawdown_pct - 10.0).abs() < 1e-9);
        assert_eq!(m.max_drawdown_duration_ms, 3 * DAY_MS);
        // 4 days = 4/365 years.
        let cagr = 1.21f64.powf(365.0 / 4.0) - 1.0;
        assert!((m.cagr_pct.unwrap() / 100.0 / cagr - 1.0).abs() < 1e-9);
        assert!((m.calmar.unwrap() - cagr / 0.1).abs() / cagr < 1e-9);
        assert_eq!(m.trades, 3);
        assert!((m.win_rate_pct.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert!((m.profit_factor.unwrap() - 5.0).abs() < 1e-12);
        assert_eq!(m.expectancy, Some(dec!(20) / dec!(3)));
        assert!((m.exposure_pct - 50.0).abs() < 1e-12);
        assert_eq!(m.fees, dec!(1.5));
    }

    #[test]
    fn undefined_ratios_are_none() {
        let curve = [point(1, dec!(100)), point(2, dec!(100))];
        let m = compute(dec!(100), 0, &curve, &[], 0, dec!(0));
        assert_eq!(
            (
                m.sharpe,
                m.sortino,
                m.calmar,
                m.profit_factor,
                m.win_rate_pct
            ),
            (None, None, None, None, None)
        );
        assert_eq!(m.expectancy, None);
        assert_eq!(m.max_drawdown_pct, 0.0);
    }

    #[test]
    fn the_deepest_drawdown_counts_whichever_peak_it_follows() {
        // Peak 200 -> 150 (25%), peak 300 -> 210 -> 200 (33.3%), then 250.
        // Several candles a day: the daily return uses each day's last one.
        let minutes = |day: i64, minute: i64| day * DAY_MS + minute * 60_000;
        let curve: Vec<EquityPoint> = [
            (1, 0, dec!(200)),
            (1, 1, dec!(150)),
            (2, 0, dec!(300)),
            (2, 1, dec!(210)),
            (3, 0, dec!(200)),
            (3, 1, dec!(250)),
        ]
        .into_iter()
        .map(|(day, minute, equity)| EquityPoint {
            ts: minutes(day, minute),
            equity,
        })
        .collect();
        let m = compute(dec!(100), 0, &curve, &[], 0, dec!(0));
        assert!((m.max_drawdown_pct - 100.0 / 3.0).abs() < 1e-9);
        // A close at midnight belongs to the day before, so the days close
        // at 200, 300 (not 150), 200 (not 210) and 250.
        let daily = daily_returns(100.0, &curve);
        assert_eq!(daily, vec![1.0, 0.5, 200.0 / 300.0 - 1.0, 0.25]);
    }
}
