//! What happened, as typed data: every event the bus carries, with its
//! channel and type name decided here, in one table.
//!
//! Payloads keep the runtime's own types (orders, fills, snapshots); the
//! API turns each into the same view its REST endpoints answer (RFC 3339
//! times, decimal strings, string ids) when it sends the event, so a client
//! sees one JSON dialect everywhere.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::config::BotConfig;
use crate::domain::{Fill, Order};
use crate::engine::{EngineEvent, Rejection, StateChange, Trade, Violation};

use super::logbook::LogLine;
use super::snapshot::BotSnapshot;
use super::state::BotState;

/// Groups of events a client subscribes to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Bots,
    Signals,
    Orders,
    Positions,
    Trades,
    Risk,
    Logs,
    System,
    /// Backtest jobs: progress and completion.
    Backtests,
}

impl Channel {
    pub const ALL: [Channel; 9] = [
        Channel::Bots,
        Channel::Signals,
        Channel::Orders,
        Channel::Positions,
        Channel::Trades,
        Channel::Risk,
        Channel::Logs,
        Channel::System,
        Channel::Backtests,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Bots => "bots",
            Channel::Signals => "signals",
            Channel::Orders => "orders",
            Channel::Positions => "positions",
            Channel::Trades => "trades",
            Channel::Risk => "risk",
            Channel::Logs => "logs",
            Channel::System => "system",
            Channel::Backtests => "backtests",
        }
    }
}

/// Why a subscriber missed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LagReason {
    /// It read too slowly and the buffer moved on.
    Slow,
    /// It resumed from a point the ring no longer holds.
    Resume,
    /// A bot found more than one candle waiting (it catches up in order).
    Backlog,
}

/// A new config version, as committed.
#[derive(Debug, Clone)]
pub struct ConfigRecord {
    pub version: u64,
    pub config: Arc<BotConfig>,
    /// The token name (or `seed`) that made the change.
    pub actor: String,
    /// Wall time, epoch ms.
    pub at: i64,
}

/// A bot's state change, with the bot as it is after it.
#[derive(Debug, Clone)]
pub struct StateChanged {
    pub from: BotState,
    pub to: BotState,
    pub reason: String,
    pub bot: Arc<BotSnapshot>,
}

/// The payload of an event.
#[derive(Debug, Clone)]
pub enum EventData {
    BotCreated(Arc<BotSnapshot>),
    BotDeleted,
    BotStateChanged(Box<StateChanged>),
    /// The bot's latest numbers (equity, PnL, position), at most about once
    /// a second per bot, so a fleet view never polls.
    BotUpdated(Arc<BotSnapshot>),
    ConfigUpdated(Box<ConfigRecord>),
    /// A strategy's decision (bounded by the engine).
    Signal {
        ts: i64,
        actions: serde_json::Value,
    },
    OrderPlaced(Box<Order>),
    OrderFilled(Box<(Order, Fill)>),
    OrderCancelled(Box<Order>),
    OrderRejected(Box<Rejection>),
    PositionOpened {
        ts: i64,
        quantity: Decimal,
        price: Decimal,
    },
    PositionClosed(Box<Trade>),
    /// A round trip, on the trades channel.
    Trade(Box<Trade>),
    RiskViolation(Box<Violation>),
    RiskStateChanged(Box<StateChange>),
    KillSwitch {
        ts: i64,
        reason: String,
    },
    Log(Box<LogLine>),
    /// Events a subscriber (or, with [`LagReason::Backlog`], a bot) missed
    /// or is behind by.
    Lagged {
        missed: u64,
        reason: LagReason,
    },
    /// The bot's feed jumped: no candle exists between these open times
    /// (an exchange outage, a hole in a replay file, a host down longer
    /// than a gap fill reaches).
    FeedGap {
        after: i64,
        before: i64,
        missing: u64,
    },
    EmergencyEngaged {
        by: String,
        bots: usize,
    },
    EmergencyReset {
        by: String,
    },
    /// A backtest job got further (at most every tenth of the way).
    BacktestProgress {
        job: Box<crate::research::JobRecord>,
        progress: f64,
    },
    /// A backtest job ended: done, failed or cancelled.
    BacktestFinished(Box<crate::research::JobRecord>),
}

impl EventData {
    /// The type name clients see (`order.filled`, ...).
    pub fn kind(&self) -> &'static str {
        self.route().1
    }

    pub fn channel(&self) -> Channel {
        self.route().0
    }

    /// The one table of channels and type names.
    fn route(&self) -> (Channel, &'static str) {
        match self {
            EventData::BotCreated(_) => (Channel::Bots, "bot.created"),
            EventData::BotDeleted => (Channel::Bots, "bot.deleted"),
            EventData::BotStateChanged(_) => (Channel::Bots, "bot.state_changed"),
            EventData::BotUpdated(_) => (Channel::Bots, "bot.updated"),
            EventData::ConfigUpdated(_) => (Channel::Bots, "config.updated"),
            EventData::Signal { .. } => (Channel::Signals, "signal"),
            EventData::OrderPlaced(_) => (Channel::Orders, "order.placed"),
            EventData::OrderFilled(_) => (Channel::Orders, "order.filled"),
            EventData::OrderCancelled(_) => (Channel::Orders, "order.cancelled"),
            EventData::OrderRejected(_) => (Channel::Orders, "order.rejected"),
            EventData::PositionOpened { .. } => (Channel::Positions, "position.opened"),
            EventData::PositionClosed(_) => (Channel::Positions, "position.closed"),
            EventData::Trade(_) => (Channel::Trades, "trade"),
            EventData::RiskViolation(_) => (Channel::Risk, "risk.violation"),
            EventData::RiskStateChanged(_) => (Channel::Risk, "risk.state_changed"),
            EventData::KillSwitch { .. } => (Channel::Risk, "risk.kill_switch"),
            EventData::Log(_) => (Channel::Logs, "log"),
            EventData::Lagged { .. } => (Channel::System, "lagged"),
            EventData::FeedGap { .. } => (Channel::System, "feed.gap"),
            EventData::EmergencyEngaged { .. } => (Channel::System, "emergency.engaged"),
            EventData::EmergencyReset { .. } => (Channel::System, "emergency.reset"),
            EventData::BacktestProgress { .. } => (Channel::Backtests, "backtest.progress"),
            EventData::BacktestFinished(_) => (Channel::Backtests, "backtest.finished"),
        }
    }
}

impl From<EngineEvent> for EventData {
    fn from(event: EngineEvent) -> Self {
        match event {
            EngineEvent::Signal { ts, actions } => EventData::Signal { ts, actions },
            EngineEvent::OrderPlaced { order } => EventData::OrderPlaced(Box::new(order)),
            EngineEvent::OrderFilled { order, fill } => {
                EventData::OrderFilled(Box::new((order, fill)))
            }
            EngineEvent::OrderCancelled { order } => EventData::OrderCancelled(Box::new(order)),
            EngineEvent::OrderRejected { rejection } => {
                EventData::OrderRejected(Box::new(rejection))
            }
            EngineEvent::PositionOpened {
                ts,
                quantity,
                price,
            } => EventData::PositionOpened {
                ts,
                quantity,
                price,
            },
            EngineEvent::PositionClosed { trade, .. } => EventData::PositionClosed(Box::new(trade)),
            EngineEvent::RiskViolation { violation } => {
                EventData::RiskViolation(Box::new(violation))
            }
            EngineEvent::RiskStateChanged { change } => {
                EventData::RiskStateChanged(Box::new(change))
            }
            EngineEvent::KillSwitch { ts, reason } => EventData::KillSwitch { ts, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_their_channel() {
        let samples = [
            EventData::BotDeleted,
            EventData::Signal {
                ts: 0,
                actions: serde_json::Value::Null,
            },
            EventData::KillSwitch {
                ts: 0,
                reason: String::new(),
            },
            EventData::Lagged {
                missed: 0,
                reason: LagReason::Slow,
            },
            EventData::EmergencyReset { by: String::new() },
            EventData::Log(Box::default()),
        ];
        let routes: Vec<(Channel, &str)> =
            samples.iter().map(|e| (e.channel(), e.kind())).collect();
        assert_eq!(
            routes,
            [
                (Channel::Bots, "bot.deleted"),
                (Channel::Signals, "signal"),
                (Channel::Risk, "risk.kill_switch"),
                (Channel::System, "lagged"),
                (Channel::System, "emergency.reset"),
                (Channel::Logs, "log"),
            ]
        );
    }
}
