//! Candles through a runner: read what the feed published since the last
//! read, run the engine over it on a strategy thread, then commit, publish
//! and snapshot.
//!
//! A strategy thread works through a backlog candle by candle and stops
//! early when a request or a kill waits, so commands are answered between
//! two candles and a kill never waits for a backlog. The records of every
//! candle it processed are committed in one batch, with the checkpoint
//! after the last. A failed commit acknowledges nothing: the books go back
//! to the last commit (the bot's records and its checkpoint stay what the
//! store holds), the bot goes to error (its strategy heard of candles that
//! are undone; a reset starts a fresh instance), and only that state is
//! published, with none of the step's events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::Candle;
use crate::engine::{BotEngine, EngineError, EngineEvent};
use crate::plugin::{PluginError, PluginInstance};

use super::super::durable::EquitySample;
use super::super::event::{EventData, LagReason};
use super::super::feed::FeedCandle;
use super::super::request::Urgent;
use super::BotRunner;

/// Most candles handed to a strategy thread at once.
const MAX_BATCH: usize = 4_096;
/// `bot.updated` goes out at most this often per bot.
const UPDATE_EVERY: Duration = Duration::from_secs(1);

/// One candle's results.
struct CandleRecord {
    /// Open time of the candle.
    open_ts: i64,
    events: Vec<EngineEvent>,
    equity: EquitySample,
    /// From the feed publishing the candle to the end of its decision.
    latency_us: u64,
}

/// What a strategy thread did with a batch.
struct Stepped {
    records: Vec<CandleRecord>,
    /// Why it stopped before the end, if the engine failed.
    failure: Option<EngineError>,
}

/// The engine over `candles`, in order, until the end, a failure, or
/// something the runner must see to first (a request, a kill).
fn step(
    engine: &mut BotEngine<PluginInstance>,
    candles: &[FeedCandle],
    urgent: &Urgent,
) -> Stepped {
    let mut records = Vec::with_capacity(candles.len().min(64));
    let mut failure = None;
    for (index, item) in candles.iter().enumerate() {
        if index > 0 && urgent.needs_attention() {
            break;
        }
        let result = engine.on_candle(&item.candle);
        let latency_us = item.published_at.elapsed().as_micros() as u64;
        let portfolio = engine.portfolio();
        records.push(CandleRecord {
            open_ts: item.candle.ts,
            equity: EquitySample {
                ts: engine.now(),
                equity: portfolio.equity(),
                exposed: !portfolio.position().is_zero(),
            },
            events: engine.drain_events().collect(),
            latency_us,
        });
        if let Err(error) = result {
            failure = Some(error);
            break;
        }
        if engine.risk().kill_switch().is_some() {
            break; // the runner moves the bot to killed first
        }
    }
    Stepped { records, failure }
}

impl BotRunner {
    /// Process what the feed has for this bot (up to [`MAX_BATCH`] candles);
    /// true when more is waiting.
    pub(super) async fn drain_feed(&mut self) -> bool {
        let mut batch = Vec::new();
        let outcome = self.feed.read_from(self.next_candle, MAX_BATCH, &mut batch);
        // `next_candle` moves one candle at a time below, so a command
        // answered between two jobs sees exactly what was processed.
        self.next_candle = self.next_candle.saturating_add(outcome.skipped);
        if outcome.skipped > 0 || batch.len() > 1 {
            let id = self.id().clone();
            self.context.bus.publish(
                Some(&id),
                EventData::Lagged {
                    missed: outcome.skipped,
                    reason: LagReason::Backlog,
                },
            );
        }
        if batch.is_empty() {
            return false;
        }
        let candles: Arc<[FeedCandle]> = batch.into();
        let urgent = self.urgent.clone();
        let job_candles = candles.clone();
        let point = self.undo_point();
        let Some(stepped) = self
            .with_engine(move |engine| step(engine, &job_candles, &urgent))
            .await
        else {
            return false;
        };
        self.absorb(stepped, point).await;
        self.state.consumes_candles() && self.next_candle < self.feed.published()
    }

    /// Book a strategy thread's results: counters, state, commit, publish.
    async fn absorb(&mut self, stepped: Stepped, point: super::UndoPoint) {
        let Stepped { records, failure } = stepped;
        let mut events = Vec::new();
        let mut equity = Vec::with_capacity(records.len());
        for record in records {
            self.next_candle = self.next_candle.saturating_add(1);
            self.announce_gap(record.open_ts);
            self.last_candle_ts = Some(record.open_ts);
            self.candles_processed = self.candles_processed.saturating_add(1);
            self.decision_latency_us = Some(record.latency_us);
            self.context.latency.record(record.latency_us);
            equity.push(record.equity);
            events.extend(record.events);
        }
        let quiet = events.is_empty() && failure.is_none();
        match failure {
            // A kill stopped the strategy mid-call: the kill comes next.
            Some(error) if error.is_interrupt() => {}
            // The failing candle is the last one recorded.
            Some(error) => {
                let at = self
                    .last_candle_ts
                    .map(|ts| format!(" at the candle of {}", crate::domain::format_instant(ts)))
                    .unwrap_or_default();
                self.fail(&format!("plugin failed{at}: {error}"));
            }
            None => {}
        }
        self.follow_kill_switch();
        let mut batch = self.record_batch(&events, equity);
        batch.quiet = quiet && self.state.consumes_candles();
        if let Err(error) = self.commit(batch).await {
            tracing::error!(bot = %self.id(), %error, "records not committed; undone");
            self.undo(point);
            self.fail(&format!("the store failed: {error}"));
            self.publish(Vec::new(), Vec::new());
            return;
        }
        let due = self
            .last_update_at
            .is_none_or(|at| at.elapsed() >= UPDATE_EVERY);
        if due {
            self.extend_equity_trail();
        }
        let snapshot = self.publish(events, Vec::new());
        if due {
            self.last_update_at = Some(Instant::now());
            let id = self.id().clone();
            self.context
                .bus
                .publish(Some(&id), EventData::BotUpdated(snapshot));
        }
    }
}

impl BotRunner {
    /// Tell watchers when the candle at `open_ts` does not follow the last
    /// one: the feed has no candles in between (those a start passed over
    /// are no gap).
    fn announce_gap(&self, open_ts: i64) {
        let Some(previous) = self.last_candle_ts.max(self.passed_over_ts) else {
            return;
        };
        let step = self.engine().timeframe_ms();
        if open_ts > previous.saturating_add(step) {
            let id = self.id().clone();
            let missing = ((open_ts - previous) / step - 1) as u64;
            tracing::warn!(
                bot = %id,
                after = %crate::domain::format_instant(previous),
                before = %crate::domain::format_instant(open_ts),
                missing,
                "feed gap"
            );
            self.context.bus.publish(
                Some(&id),
                EventData::FeedGap {
                    after: previous,
                    before: open_ts,
                    missing,
                },
            );
        }
    }
}

/// Warm `instance` up on `candles` (decisions discarded: only the
/// indicators matter), on the calling thread (a strategy thread).
pub(super) fn warm_up(
    instance: &mut PluginInstance,
    view: &crate::plugin::contract::PluginView,
    candles: &[Candle],
) -> Result<(), PluginError> {
    let mut candle = crate::plugin::contract::Candle::of_bot_market();
    for recent in candles {
        candle.set_prices(recent);
        instance.on_candle(&candle, view)?;
    }
    Ok(())
}
