//! The figures of a report beyond the backtester's metrics: daily and
//! monthly returns, drawdown periods, trade statistics and a rolling
//! Sharpe, all from the result's equity curve and trades (so a report can
//! be made again from a stored result).

use rust_decimal::Decimal;

use crate::domain::decimal::to_f64;
use crate::engine::Trade;
use crate::engine::metrics::{EquityPoint, day_closes, trading_day};

/// The equity at each UTC day's last point, with the day's start.
pub fn daily_closes(curve: &[EquityPoint]) -> Vec<(i64, f64)> {
    day_closes(curve)
        .iter()
        .map(|point| (trading_day(point.ts), to_f64(point.equity)))
        .collect()
}

/// Each day's return (the first against the initial equity).
pub fn daily_returns(initial: f64, closes: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut previous = initial;
    closes
        .iter()
        .map(|&(day, close)| {
            let r = close / previous - 1.0;
            previous = close;
            (day, r)
        })
        .collect()
}

/// Returns per calendar month: (year, month 1-12, return).
pub fn monthly_returns(initial: f64, closes: &[(i64, f64)]) -> Vec<(i32, u32, f64)> {
    use chrono::Datelike;
    let mut months: Vec<(i32, u32, f64)> = Vec::new();
    for &(day, close) in closes {
        let Some(date) = chrono::DateTime::from_timestamp_millis(day) else {
            continue;
        };
        let key = (date.year(), date.month());
        match months.last_mut() {
            Some((year, month, equity)) if (*year, *month) == key => *equity = close,
            _ => months.push((key.0, key.1, close)),
        }
    }
    let mut previous = initial;
    months
        .into_iter()
        .map(|(year, month, close)| {
            let r = close / previous - 1.0;
            previous = close;
            (year, month, r)
        })
        .collect()
}

/// A stretch under a previous peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawdownPeriod {
    pub peak_ts: i64,
    pub trough_ts: i64,
    /// When the equity was back at the peak; None if it never was.
    pub recovered_ts: Option<i64>,
    /// Depth as a fraction of the peak.
    pub depth: f64,
}

impl DrawdownPeriod {
    pub fn length_ms(&self, end_ts: i64) -> i64 {
        self.recovered_ts.unwrap_or(end_ts) - self.peak_ts
    }
}

/// The drawdown periods, longest first.
pub fn drawdowns(initial: Decimal, start_ts: i64, curve: &[EquityPoint]) -> Vec<DrawdownPeriod> {
    let mut periods = Vec::new();
    let (mut peak, mut peak_ts) = (initial, start_ts);
    let mut current: Option<DrawdownPeriod> = None;
    for point in curve {
        if point.equity >= peak {
            if let Some(mut period) = current.take() {
                period.recovered_ts = Some(point.ts);
                periods.push(period);
            }
            peak = point.equity;
            peak_ts = point.ts;
            continue;
        }
        let depth = if peak > Decimal::ZERO {
            to_f64((peak - point.equity) / peak)
        } else {
            0.0
        };
        let period = current.get_or_insert(DrawdownPeriod {
            peak_ts,
            trough_ts: point.ts,
            recovered_ts: None,
            depth,
        });
        if depth > period.depth {
            period.depth = depth;
            period.trough_ts = point.ts;
        }
    }
    periods.extend(current);
    let end = curve.last().map_or(start_ts, |p| p.ts);
    periods.sort_by_key(|period| std::cmp::Reverse(period.length_ms(end)));
    periods
}

/// The equity's fall from its running peak at each point (0 or negative,
/// a fraction).
pub fn underwater(initial: Decimal, curve: &[EquityPoint]) -> Vec<(i64, f64)> {
    let mut peak = to_f64(initial);
    curve
        .iter()
        .map(|point| {
            let equity = to_f64(point.equity);
            peak = peak.max(equity);
            (point.ts, if peak > 0.0 { equity / peak - 1.0 } else { 0.0 })
        })
        .collect()
}

/// Trade figures a tear sheet shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TradeStats {
    pub average: Option<Decimal>,
    pub average_win: Option<Decimal>,
    pub average_loss: Option<Decimal>,
    pub best: Option<Decimal>,
    pub worst: Option<Decimal>,
    pub longest_winning_streak: usize,
    pub longest_losing_streak: usize,
    pub average_holding_ms: Option<i64>,
}

fn mean(values: &[Decimal]) -> Option<Decimal> {
    (!values.is_empty()).then(|| values.iter().sum::<Decimal>() / Decimal::from(values.len()))
}

pub fn trade_stats(trades: &[Trade]) -> TradeStats {
    let pnls: Vec<Decimal> = trades.iter().map(|t| t.pnl).collect();
    let wins: Vec<Decimal> = pnls
        .iter()
        .copied()
        .filter(|p| *p > Decimal::ZERO)
        .collect();
    let losses: Vec<Decimal> = pnls
        .iter()
        .copied()
        .filter(|p| *p < Decimal::ZERO)
        .collect();
    let (mut streak, mut best_win, mut best_loss) = (0i64, 0usize, 0usize);
    for pnl in &pnls {
        streak = match (*pnl > Decimal::ZERO, streak > 0) {
            (true, true) => streak + 1,
            (true, false) => 1,
            (false, false) => streak - 1,
            (false, true) => -1,
        };
        best_win = best_win.max(streak.max(0) as usize);
        best_loss = best_loss.max((-streak).max(0) as usize);
    }
    TradeStats {
        average: mean(&pnls),
        average_win: mean(&wins),
        average_loss: mean(&losses),
        best: pnls.iter().copied().max(),
        worst: pnls.iter().copied().min(),
        longest_winning_streak: best_win,
        longest_losing_streak: best_loss,
        average_holding_ms: (!trades.is_empty()).then(|| {
            trades.iter().map(|t| t.exit_ts - t.entry_ts).sum::<i64>() / trades.len() as i64
        }),
    }
}

/// Sharpe over the last `window` days at each day (annualised with
/// sqrt(365), as the backtester's); days without a full window are left out.
pub fn rolling_sharpe(returns: &[(i64, f64)], window: usize) -> Vec<(i64, f64)> {
    if returns.len() < window || window < 2 {
        return Vec::new();
    }
    returns
        .windows(window)
        .filter_map(|days| {
            let mean = days.iter().map(|d| d.1).sum::<f64>() / window as f64;
            let variance =
                days.iter().map(|d| (d.1 - mean).powi(2)).sum::<f64>() / (window - 1) as f64;
            let sd = variance.sqrt();
            (sd > 0.0).then(|| (days[window - 1].0, mean / sd * 365f64.sqrt()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;
    use rust_decimal_macros::dec;

    fn point(day: i64, equity: Decimal) -> EquityPoint {
        EquityPoint {
            ts: day * DAY_MS + DAY_MS / 2,
            equity,
        }
    }

    #[test]
    fn drawdown_periods_are_found_and_ordered_by_length() {
        let curve = [
            point(0, dec!(100)),
            point(1, dec!(90)),
            point(2, dec!(95)),
            point(3, dec!(101)),
            point(4, dec!(80)),
            point(5, dec!(85)),
            point(6, dec!(90)),
            point(7, dec!(95)),
        ];
        let periods = drawdowns(dec!(100), 0, &curve);
        assert_eq!(periods.len(), 2);
        // The open one is longer (4 days and counting).
        assert_eq!(periods[0].recovered_ts, None);
        assert!((periods[0].depth - 21.0 / 101.0).abs() < 1e-12);
        assert_eq!(periods[0].trough_ts, curve[4].ts);
        assert_eq!(periods[1].recovered_ts, Some(curve[3].ts));
        assert!((periods[1].depth - 0.1).abs() < 1e-12);
        let water = underwater(dec!(100), &curve);
        assert!((water[1].1 + 0.1).abs() < 1e-12);
        assert_eq!(water[3].1, 0.0);
    }

    #[test]
    fn months_and_days_chain_their_returns() {
        let curve = [
            point(0, dec!(110)),
            point(31, dec!(121)),
            point(32, dec!(121)),
        ];
        let closes = daily_closes(&curve);
        assert_eq!(closes.len(), 3);
        let months = monthly_returns(100.0, &closes);
        assert_eq!(months.len(), 2);
        assert_eq!((months[0].0, months[0].1), (1970, 1));
        assert!((months[0].2 - 0.1).abs() < 1e-12);
        assert!((months[1].2 - 0.1).abs() < 1e-12);
        let days = daily_returns(100.0, &closes);
        assert!((days[1].1 - 0.1).abs() < 1e-12 && days[2].1 == 0.0);
    }

    #[test]
    fn streaks_and_averages() {
        let trade = |pnl: Decimal| Trade {
            entry_ts: 0,
            exit_ts: 60_000,
            quantity: dec!(1),
            entry_price: dec!(1),
            exit_price: dec!(1),
            pnl,
            fees: dec!(0),
        };
        let trades: Vec<Trade> = [
            dec!(1),
            dec!(2),
            dec!(-1),
            dec!(3),
            dec!(4),
            dec!(5),
            dec!(-2),
            dec!(-2),
        ]
        .into_iter()
        .map(trade)
        .collect();
        let stats = trade_stats(&trades);
        assert_eq!(stats.longest_winning_streak, 3);
        assert_eq!(stats.longest_losing_streak, 2);
        assert_eq!(stats.average, Some(dec!(1.25)));
        assert_eq!(stats.best, Some(dec!(5)));
        assert_eq!(stats.worst, Some(dec!(-2)));
        assert_eq!(stats.average_holding_ms, Some(60_000));
    }

    #[test]
    fn rolling_sharpe_needs_a_full_window() {
        let returns: Vec<(i64, f64)> = (0..40)
            .map(|d| (d, if d % 2 == 0 { 0.01 } else { -0.005 }))
            .collect();
        let rolling = rolling_sharpe(&returns, 30);
        assert_eq!(rolling.len(), 11);
        assert!(rolling.iter().all(|(_, s)| s.is_finite() && *s > 0.0));
    }
}
