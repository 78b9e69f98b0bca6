//! The backtester: the engine driven synchronously over candles in memory,
//! as fast as the CPU allows. Same input, byte-identical result: nothing in
//! a result depends on wall time or on the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use crate::domain::config::{BotConfig, ConfigIssue, join_issues};
use crate::domain::{CandleSeries, Fill, Order, OrderOrigin, Timeframe};
use crate::engine::metrics::{self, EquityPoint, Metrics};
use crate::engine::{
    BotEngine, CandleClose, Decider, EngineError, EngineEvent, PortfolioView, Rejection,
    RuleStatus, StateChange, Trade, Violation,
};
use crate::plugin::{InitError, Plugin};

/// What to do with a position still open when the candles run out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EndOfRun {
    /// Value it at the last close (the default).
    #[default]
    ValueAtLastClose,
    /// Sell it with a final market order at the last close (fees and slippage apply).
    CloseAtMarket,
}

#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Only candles opening at or after this time (epoch ms).
    pub from: Option<i64>,
    /// Only candles opening before this time (epoch ms).
    pub to: Option<i64>,
    pub end_of_run: EndOfRun,
    /// The equity curve in the result is downsampled to at most this many points.
    pub max_curve_points: usize,
    /// Where a run reports how far it is and learns it is cancelled.
    pub progress: Option<Arc<Progress>>,
}

impl BacktestOptions {
    /// The indices of `candles` a run covers: from `from` (inclusive) to
    /// `to` (exclusive); empty when none is in range.
    pub fn window<S: CandleSeries + ?Sized>(&self, candles: &S) -> std::ops::Range<usize> {
        let start = self.from.map_or(0, |from| candles.first_from(from));
        let end = self.to.map_or(candles.len(), |to| candles.first_from(to));
        start..end.max(start)
    }
}

impl Default for BacktestOptions {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            end_of_run: EndOfRun::ValueAtLastClose,
            max_curve_points: 2_000,
            progress: None,
        }
    }
}

/// A run's progress, shared with whoever watches it: candles done of how
/// many, a flag that stops it, and who is told at each report.
#[derive(Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    cancelled: AtomicBool,
    observer: Option<Box<dyn Fn(f64) + Send + Sync>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("fraction", &self.fraction())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Candles between two progress reports (and cancellation checks).
const PROGRESS_EVERY: usize = 4_096;
/// Candles taken from the series at a time (90 KB: they stay in cache).
const BLOCK: usize = 1_024;

impl Progress {
    /// Progress that calls `observer` with the fraction done at every report
    /// (on the backtest's thread: keep it short).
    pub fn observed(observer: impl Fn(f64) + Send + Sync + 'static) -> Self {
        Self {
            observer: Some(Box::new(observer)),
            ..Self::default()
        }
    }

    fn report(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
        if let Some(observer) = &self.observer {
            observer(self.fraction());
        }
    }

    /// 0 to 1.
    pub fn fraction(&self) -> f64 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.done.load(Ordering::Relaxed) as f64 / total as f64
    }

    /// Set how far a piece of work that is not one backtest is (`done` of
    /// `total` steps), telling the observer.
    pub fn set(&self, done: u64, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.report(done);
    }

    /// Stop the run at its next report.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("invalid bot config: {}", join_issues(.0))]
    Config(Vec<ConfigIssue>),
    /// (Not a `source`: the message includes it, and error chains would
    /// print it twice.)
    #[error("the strategy did not start: {0}")]
    Params(InitError),
    #[error("no candles in the selected range{}", held_text(*.held))]
    NoCandles {
        /// Open times of the first and last candle there are, if any.
        held: Option<(i64, i64)>,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("the candles could not be read: {0}")]
    Data(String),
    #[error(
        "candles at {} are {spacing_ms} ms apart, closer than the bot's timeframe {timeframe} allows",
        crate::domain::format_instant(*ts)
    )]
    TimeframeMismatch {
        ts: i64,
        spacing_ms: i64,
        timeframe: String,
    },
    #[error("at the candle of {}: {error}", crate::domain::format_instant(*ts))]
    Engine { ts: i64, error: EngineError },
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub version: String,
    pub content_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskSummary {
    pub kill_switch: Option<String>,
    pub rules: Vec<RuleStatus>,
    pub violations: Vec<Violation>,
    pub state_changes: Vec<StateChange>,
}

/// Everything a backtest produced.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult {
    pub config: BotConfig,
    pub plugin: PluginSummary,
    pub end_of_run: EndOfRun,
    pub candles: usize,
    /// Open time of the first candle and close time of the last.
    pub start_ts: i64,
    pub end_ts: i64,
    pub metrics: Metrics,
    pub portfolio: PortfolioView,
    pub trades: Vec<Trade>,
    pub orders: Vec<Order>,
    pub fills: Vec<Fill>,
    pub rejections: Vec<Rejection>,
    pub risk: RiskSummary,
    /// Equity at candle closes, downsampled to each stretch's lowest and
    /// highest point (the first and last are always kept).
    pub equity_curve: Vec<EquityPoint>,
    /// Equity at each UTC day's last candle close, every day: what daily
    /// and monthly returns are measured on.
    pub daily_equity: Vec<EquityPoint>,
}

/// Where the candles there are run, for a range that holds none of them.
fn held_text(held: Option<(i64, i64)>) -> String {
    use crate::domain::format_instant;
    match held {
        Some((first, last)) => format!(
            ": the candles run from {} to {}",
            format_instant(first),
            format_instant(last)
        ),
        None => ": there are none".into(),
    }
}

/// The records a run accumulates from the engine's events.
#[derive(Default)]
struct Journal {
    orders: Vec<Order>,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    rejections: Vec<Rejection>,
    violations: Vec<Violation>,
    state_changes: Vec<StateChange>,
}

impl Journal {
    fn record(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::OrderPlaced { order } => self.orders.push(order),
            EngineEvent::OrderCancelled { order } => self.update(order),
            EngineEvent::OrderFilled { order, fill } => {
                self.update(order);
                self.fills.push(fill);
            }
            EngineEvent::OrderRejected { rejection } => self.rejections.push(rejection),
            EngineEvent::PositionClosed { trade, .. } => self.trades.push(trade),
            EngineEvent::RiskViolation { violation } => self.violations.push(violation),
            EngineEvent::RiskStateChanged { change } => self.state_changes.push(change),
            EngineEvent::Signal { .. }
            | EngineEvent::PositionOpened { .. }
            | EngineEvent::KillSwitch { .. } => {}
        }
    }

    /// An order's new state. Orders are journaled in id order, so a binary
    /// search finds them.
    fn update(&mut self, order: Order) {
        if let Ok(index) = self.orders.binary_search_by_key(&order.id, |o| o.id) {
            self.orders[index] = order;
        }
    }
}

/// Run `config`'s strategy (`plugin`) over `candles` (in memory, or a
/// data set read where it lies).
pub fn run<S: CandleSeries + ?Sized>(
    config: &BotConfig,
    plugin: &Plugin,
    candles: &S,
    options: &BacktestOptions,
) -> Result<BacktestResult, BacktestError> {
    // The config is checked before the plugin sees it.
    let issues = config.check();
    if !issues.is_empty() {
        return Err(BacktestError::Config(issues));
    }
    let (instance, _warmup) = plugin.start_bot(config).map_err(BacktestError::Params)?;
    let info = plugin.info();
    let summary = PluginSummary {
        name: info.name.clone(),
        version: info.version.to_string(),
        content_hash: info.content_hash.clone(),
    };
    run_with(config, instance, summary, candles, options)
}

/// [`run`] with any decider: the same backtest whoever decides (the
/// benchmark runs it with the strategy compiled natively).
pub fn run_with<D: Decider, S: CandleSeries + ?Sized>(
    config: &BotConfig,
    decider: D,
    plugin: PluginSummary,
    candles: &S,
    options: &BacktestOptions,
) -> Result<BacktestResult, BacktestError> {
    let issues = config.check();
    if !issues.is_empty() {
        return Err(BacktestError::Config(issues));
    }
    let std::ops::Range { start, end } = options.window(candles);
    if start >= end {
        let held = (!candles.is_empty())
            .then(|| (candles.open_time(0), candles.open_time(candles.len() - 1)));
        return Err(BacktestError::NoCandles { held });
    }
    let count = end - start;
    let first_ts = candles.open_time(start);
    check_spacing(candles, start..end, &config.market.timeframe)?;

    let engine_error = |ts, error| BacktestError::Engine { ts, error };
    let mut engine =
        BotEngine::simulated(config, decider).map_err(|error| engine_error(first_ts, error))?;

    let mut journal = Journal::default();
    let mut curve = Vec::with_capacity(count);
    let mut exposed = 0usize;
    if let Some(progress) = &options.progress {
        progress.total.store(count as u64, Ordering::Relaxed);
    }
    let mut block = Vec::with_capacity(BLOCK.min(count));
    let mut record = |close: CandleClose| {
        exposed += usize::from(close.in_position);
        curve.push(EquityPoint {
            ts: close.ts,
            equity: close.equity,
        });
    };
    let mut index = 0;
    let mut next_report = 0;
    while index < count {
        if index % BLOCK == 0 {
            let from = start + index;
            candles.copy_into(from..(from + BLOCK).min(end), &mut block);
        }
        if index >= next_report {
            next_report = index + PROGRESS_EVERY;
            if let Some(progress) = &options.progress {
                if progress.is_cancelled() {
                    return Err(BacktestError::Cancelled);
                }
                progress.report(index as u64);
            }
        }
        // Up to the block's end and the next report.
        let offset = index % BLOCK;
        let upto = block.len().min(offset + (next_report - index));
        let taken = engine
            .on_candles(&block[offset..upto], &mut record)
            .map_err(|failed| BacktestError::Engine {
                ts: block[offset + failed.candle - 1].ts,
                error: failed.error,
            })?;
        for event in engine.drain_events() {
            journal.record(event);
        }
        index += taken;
    }
    if options.end_of_run == EndOfRun::CloseAtMarket {
        let last = candles.open_time(end - 1);
        engine
            .flatten(OrderOrigin::Strategy, "end-of-run")
            .map_err(|error| engine_error(last, error))?;
        for event in engine.drain_events() {
            journal.record(event);
        }
        if let Some(point) = curve.last_mut() {
            point.equity = engine.portfolio().equity();
        }
    }

    if let Some(progress) = &options.progress {
        progress.report(count as u64);
    }
    let portfolio = engine.portfolio();
    let metrics = metrics::compute(
        portfolio.initial(),
        first_ts,
        &curve,
        &journal.trades,
        exposed,
        portfolio.fees_paid(),
    );
    let risk = engine.risk();
    Ok(BacktestResult {
        config: config.clone(),
        plugin,
        end_of_run: options.end_of_run,
        candles: count,
        start_ts: first_ts,
        end_ts: engine.now(),
        metrics,
        portfolio: portfolio.view(),
        trades: journal.trades,
        orders: journal.orders,
        fills: journal.fills,
        rejections: journal.rejections,
        risk: RiskSummary {
            kill_switch: risk.kill_switch().map(str::to_string),
            rules: risk.rule_statuses(),
            violations: journal.violations,
            state_changes: journal.state_changes,
        },
        equity_curve: downsample(&curve, options.max_curve_points),
        daily_equity: metrics::day_closes(&curve),
    })
}

/// Candles closer together than the timeframe are another timeframe's data
/// (gaps are fine: markets halt, files have holes).
fn check_spacing<S: CandleSeries + ?Sized>(
    candles: &S,
    range: std::ops::Range<usize>,
    timeframe: &str,
) -> Result<(), BacktestError> {
    let Ok(parsed) = timeframe.parse::<Timeframe>() else {
        return Ok(()); // BotEngine::new reports an unknown timeframe.
    };
    let mut previous = candles.open_time(range.start);
    for index in range.start + 1..range.end {
        let ts = candles.open_time(index);
        if ts - previous < parsed.millis() {
            return Err(BacktestError::TimeframeMismatch {
                ts,
                spacing_ms: ts - previous,
                timeframe: timeframe.to_string(),
            });
        }
        previous = ts;
    }
    Ok(())
}

/// At most `max` points: the first, the last, and between them the lowest
/// and the highest point of each stretch, in time order. Keeping the
/// extremes (not every n-th point) keeps the peaks and troughs drawdowns
/// are measured between, so a chart or report drawn from the curve finds
/// the drawdown the metrics give.
fn downsample(curve: &[EquityPoint], max: usize) -> Vec<EquityPoint> {
    if curve.len() <= max.max(4) {
        return curve.to_vec();
    }
    let (first, rest) = curve.split_first().expect("curve is not empty");
    let (last, inner) = rest.split_last().expect("curve has two points");
    let stretches = (max.saturating_sub(2) / 2).max(1);
    let mut points = Vec::with_capacity(max);
    points.push(*first);
    for stretch in inner.chunks(inner.len().div_ceil(stretches)) {
        let lowest = (0..stretch.len())
            .min_by_key(|&i| stretch[i].equity)
            .expect("chunks are not empty");
        let highest = (0..stretch.len())
            .max_by_key(|&i| stretch[i].equity)
            .expect("chunks are not empty");
        points.push(stretch[lowest.min(highest)]);
        if lowest != highest {
            points.push(stretch[lowest.max(highest)]);
        }
    }
    points.push(*last);
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    use rust_decimal::Decimal;

    #[test]
    fn downsampling_bounds_the_curve_and_keeps_the_last_point() {
        let curve: Vec<_> = (0..10_001)
            .map(|i| EquityPoint {
                ts: i,
                equity: Decimal::from(i),
            })
            .collect();
        let points = downsample(&curve, 2_000);
        assert!(points.len() <= 2_000, "{}", points.len());
        assert_eq!(points.first(), curve.first());
        assert_eq!(points.last(), curve.last());
        assert!(
            points.windows(2).all(|w| w[0].ts < w[1].ts),
            "in time order"
        );
        assert_eq!(downsample(&curve[..10], 2_000).len(), 10);
    }

    #[test]
    fn downsampling_keeps_the_peak_and_the_trough() {
        // A zigzag with one deep dip between a high peak and the end.
        let equity = |i: i64| match i {
            3_001 => 500,
            7_777 => 40,
            _ => 100 + i % 7,
        };
        let curve: Vec<_> = (0..10_001)
            .map(|i| EquityPoint {
                ts: i,
                equity: Decimal::from(equity(i)),
            })
            .collect();
        let points = downsample(&curve, 100);
        assert!(points.len() <= 100, "{}", points.len());
        for kept in [3_001, 7_777] {
            assert!(points.iter().any(|p| p.ts == kept), "{kept} kept");
        }
    }
}
