//! Connects the live runtime to the store: the runners' [`CommitLog`] (their
//! records, config versions and checkpoints as store rows, through the
//! group-committing writer), event sequence numbers that keep rising across
//! restarts, and the restoration of every bot (config, books, orders, risk
//! state) when the host starts.

use std::sync::Arc;

use crate::domain::Candle;
use crate::domain::config::{BotConfig, join_issues};
use crate::live::{
    BotManager, CandleArchive, CommitFuture, CommitLog, EventBus, HostRecord, Lifecycle, LogBook,
    LogLine, RecordBatch, Reserve, RunnerState,
};
use crate::store::{LogFilter, Record, Store, StoreResult, Writer};

/// Store key of the event sequence reservation.
const SEQ_RESERVED: &str = "event_seq_reserved";
/// Sequence numbers reserved per store write.
pub const SEQ_BLOCK: u64 = 10_000;

/// The writer as the runners' commit log.
pub struct StoreCommitLog {
    writer: Writer,
}

impl StoreCommitLog {
    pub fn new(writer: Writer) -> Self {
        Self { writer }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A batch as store rows, in the order they must be written.
fn records(batch: RecordBatch) -> Vec<Record> {
    let bot = &batch.bot_id;
    if matches!(batch.lifecycle, Lifecycle::Deleted) {
        return vec![Record::BotDeleted {
            bot_id: bot.clone(),
        }];
    }
    let mut records = Vec::new();
    if let Some(config) = &batch.config {
        records.push(Record::ConfigVersion {
            bot_id: bot.clone(),
            version: config.version,
            config: json(&*config.config),
            created_at: config.at,
            actor: config.actor.clone(),
        });
    }
    for order in &batch.orders {
        records.push(Record::Order {
            bot_id: bot.clone(),
            order_id: order.id,
            status: name(&order.status),
            created_ts: order.created_ts,
            updated_ts: order.updated_ts,
            data: json(order),
        });
    }
    for fill in &batch.fills {
        records.push(Record::Fill {
            bot_id: bot.clone(),
            ts: fill.ts,
            data: json(fill),
        });
    }
    for trade in &batch.trades {
        records.push(Record::Trade {
            bot_id: bot.clone(),
            exit_ts: trade.exit_ts,
            data: json(trade),
        });
    }
    for sample in &batch.equity {
        records.push(Record::Equity {
            bot_id: bot.clone(),
            ts: sample.ts,
            equity: sample.equity.to_string(),
            exposed: sample.exposed,
        });
    }
    for violation in &batch.violations {
        records.push(Record::Risk {
            bot_id: bot.clone(),
            ts: violation.ts,
            kind: "violation".into(),
            data: json(violation),
        });
    }
    for change in &batch.state_changes {
        records.push(Record::Risk {
            bot_id: bot.clone(),
            ts: change.ts,
            kind: "state_change".into(),
            data: json(change),
        });
    }
    for kill in &batch.kill_switches {
        records.push(Record::Risk {
            bot_id: bot.clone(),
            ts: kill.ts,
            kind: "kill_switch".into(),
            data: json(&serde_json::json!({ "reason": kill.reason })),
        });
    }
    records.push(Record::BotState {
        bot_id: bot.clone(),
        updated_at: crate::live::wall_ms(),
        state: json(&batch.state),
    });
    records
}

/// Store key of the emergency flag (`engaged` or `released`).
pub const EMERGENCY: &str = "emergency";

impl CommitLog for StoreCommitLog {
    fn commit(&self, batch: RecordBatch) -> CommitFuture<'_> {
        if batch.quiet {
            Box::pin(self.writer.commit_quiet(records(batch)))
        } else {
            Box::pin(self.writer.commit(records(batch)))
        }
    }

    fn commit_host(&self, record: HostRecord) -> CommitFuture<'_> {
        let records = match record {
            HostRecord::Emergency { engaged, by, at } => {
                let kind = if engaged {
                    "emergency.engaged"
                } else {
                    "emergency.reset"
                };
                vec![
                    Record::Meta {
                        key: EMERGENCY.into(),
                        value: if engaged { "engaged" } else { "released" }.into(),
                    },
                    Record::SystemEvent {
                        ts: at,
                        kind: kind.into(),
                        data: serde_json::json!({ "by": by }).to_string(),
                    },
                ]
            }
        };
        Box::pin(self.writer.commit(records))
    }
}

/// Whether the emergency stop was engaged when the host stopped.
pub fn emergency_engaged(store: &dyn Store) -> StoreResult<bool> {
    Ok(store.meta(EMERGENCY)?.as_deref() == Some("engaged"))
}

/// The event bus, continuing the sequence numbers of the previous run.
///
/// The first block is stored here, before any number is handed out. The
/// next ones are queued to the writer, never written by the publisher
/// (which holds the bus's lock): the bus reserves half a block ahead, and
/// the writer commits in order, so every batch queued after a reservation,
/// and every event published after its commit, lands after it. When the
/// writer's queue is full, the bus asks again at its next event.
pub fn event_bus(store: &Arc<dyn Store>, writer: Writer) -> StoreResult<EventBus> {
    let first = store
        .meta(SEQ_RESERVED)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    store.set_meta(SEQ_RESERVED, &first.saturating_add(SEQ_BLOCK).to_string())?;
    let reserve: Reserve = Box::new(move |bound| {
        writer.try_submit(vec![Record::Meta {
            key: SEQ_RESERVED.to_string(),
            value: bound.to_string(),
        }])
    });
    Ok(EventBus::with_reservations(first, SEQ_BLOCK, reserve))
}

fn parse_all<T: serde::de::DeserializeOwned>(rows: Vec<String>) -> Vec<T> {
    rows.iter()
        .filter_map(|row| serde_json::from_str(row).ok())
        .collect()
}

/// Restore every stored bot into `manager`: its config at its version and
/// its stored state. A bot that never ran (its creation was stored, its
/// first state was not) comes back stopped. A bot that cannot be restored
/// is reported and skipped; the others come back.
pub async fn restore_bots(
    store: &dyn Store,
    manager: &BotManager,
) -> StoreResult<Vec<(String, String)>> {
    let mut failures = Vec::new();
    for stored in store.bots()? {
        let config = match BotConfig::from_value(stored.config) {
            Ok(config) => config,
            Err(issues) => {
                failures.push((stored.id, join_issues(&issues)));
                continue;
            }
        };
        let state: RunnerState = match store.bot_state(&stored.id)? {
            Some(text) => match serde_json::from_str(&text) {
                Ok(state) => state,
                Err(error) => {
                    failures.push((stored.id, format!("stored state is unreadable: {error}")));
                    continue;
                }
            },
            None => RunnerState {
                config_version: stored.version,
                ..RunnerState::default()
            },
        };
        if state.config_version != stored.version {
            // One transaction writes both; a difference means the file was
            // changed behind the host's back.
            failures.push((
                stored.id,
                format!(
                    "stored state is of config version {}, the config of version {}",
                    state.config_version, stored.version
                ),
            ));
            continue;
        }
        let resume = config.resumes_on_restart();
        if let Err(error) = manager.restore(config, stored.version, state, resume).await {
            failures.push((stored.id, error.to_string()));
        }
    }
    Ok(failures)
}

/// Keep the log book's lines in the store, numbered after the last stored one.
/// Lines are queued without waiting; under overload (a full queue) a line
/// is dropped rather than slowing whoever logged it.
pub fn persist_logs(store: &dyn Store, logbook: &LogBook, writer: Writer) -> StoreResult<()> {
    let last = store.logs_page(&LogFilter {
        limit: 1,
        ..LogFilter::default()
    })?;
    if let Some(line) = last.first() {
        logbook.continue_after(line.id);
    }
    logbook.attach_sink(Box::new(move |line: &LogLine| {
        writer.try_submit(vec![Record::Log {
            id: line.id,
            ts: line.ts,
            level: line.level.clone(),
            component: line.component.clone(),
            bot_id: line.bot_id.clone(),
            plugin: line.plugin.clone(),
            message: line.message.clone(),
        }]);
    }));
    Ok(())
}

/// Feeds' candles in the store: queued without waiting when published,
/// read back when a feed starts again.
pub struct StoreCandleArchive {
    store: Arc<dyn Store>,
    writer: Writer,
}

impl StoreCandleArchive {
    pub fn new(store: Arc<dyn Store>, writer: Writer) -> Self {
        Self { store, writer }
    }
}

impl CandleArchive for StoreCandleArchive {
    fn recent(&self, feed: &str, limit: usize) -> Vec<Candle> {
        match self.store.recent_candles(feed, limit) {
            Ok(rows) => parse_all(rows),
            Err(error) => {
                tracing::warn!(%error, feed, "stored candles not read");
                Vec::new()
            }
        }
    }

    fn keep(&self, feed: &str, candle: &Candle) {
        self.writer.try_submit(vec![Record::Candle {
            feed: feed.to_string(),
            ts: candle.ts,
            data: json(candle),
        }]);
    }
}
