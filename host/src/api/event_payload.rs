//! Events as clients receive them: the envelope and, for each event type,
//! the same view the REST API answers for that thing (an `order.filled`
//! carries the order view and the fill view; times RFC 3339; decimals
//! strings; ids strings). The OpenAPI document describes [`Envelope`] as a
//! `oneOf` discriminated by `type`, so a generated client knows every
//! payload. The WebSocket, SSE and `stratbox live` all send [`encode`]'s text.

use schemars::JsonSchema;
use serde::Serialize;

use super::views::{
    BacktestView, BotSummary, ConfigVersionView, FillView, LogLineView, OrderView, TradeView,
    ViolationView, decimal, state_name, time,
};
use crate::engine::{Rejection, StateChange};
use crate::live::{Event, EventData, LagReason};

/// An event as clients receive it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Envelope {
    /// Rises by one per published event; resume after the last one seen.
    pub seq: u64,
    /// When it was published, RFC 3339 UTC.
    pub ts: String,
    /// bots, signals, orders, positions, trades, risk, logs, system or
    /// backtests.
    pub channel: String,
    /// The bot it is about; null for host-wide events.
    pub bot_id: Option<String>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

/// The type of an event and its data.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum EventPayload {
    #[serde(rename = "bot.created")]
    BotCreated(BotSummary),
    #[serde(rename = "bot.deleted")]
    BotDeleted(BotRef),
    #[serde(rename = "bot.state_changed")]
    BotStateChanged(BotStateChangedView),
    /// The bot's latest numbers, at most about once a second per bot.
    #[serde(rename = "bot.updated")]
    BotUpdated(BotSummary),
    #[serde(rename = "config.updated")]
    ConfigUpdated(ConfigVersionView),
    #[serde(rename = "signal")]
    Signal(SignalView),
    #[serde(rename = "order.placed")]
    OrderPlaced(OrderView),
    #[serde(rename = "order.filled")]
    OrderFilled(OrderFilledView),
    #[serde(rename = "order.cancelled")]
    OrderCancelled(OrderView),
    #[serde(rename = "order.rejected")]
    OrderRejected(RejectionView),
    #[serde(rename = "position.opened")]
    PositionOpened(PositionOpenedView),
    /// The round trip that closed the position.
    #[serde(rename = "position.closed")]
    PositionClosed(TradeView),
    #[serde(rename = "trade")]
    Trade(TradeView),
    #[serde(rename = "risk.violation")]
    RiskViolation(ViolationView),
    #[serde(rename = "risk.state_changed")]
    RiskStateChanged(TradingStateChangeView),
    #[serde(rename = "risk.kill_switch")]
    KillSwitch(KillSwitchEventView),
    #[serde(rename = "log")]
    Log(LogLineView),
    /// Events missed (a slow reader, a resume point the server no longer
    /// holds) or a bot catching up on a backlog of candles.
    #[serde(rename = "lagged")]
    Lagged(LaggedView),
    /// The bot's market data has a hole: no candle exists between two
    /// candles it got (an exchange outage, a hole in a replay file).
    #[serde(rename = "feed.gap")]
    FeedGap(FeedGapView),
    #[serde(rename = "emergency.engaged")]
    EmergencyEngaged(EmergencyEventView),
    #[serde(rename = "emergency.reset")]
    EmergencyReset(EmergencyEventView),
    /// A backtest job got a tenth further (the job as `GET /backtests/{id}`
    /// answers it).
    #[serde(rename = "backtest.progress")]
    BacktestProgress(BacktestView),
    /// A backtest job ended: done, failed or cancelled.
    #[serde(rename = "backtest.finished")]
    BacktestFinished(BacktestView),
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BotRef {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BotStateChangedView {
    /// stopped, running, paused, killed or error.
    pub from: String,
    pub to: String,
    pub reason: String,
    /// The bot after the change.
    pub bot: BotSummary,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SignalView {
    /// The candle close the decision was made at.
    pub at: String,
    /// What the strategy asked for, before rounding and risk checks (at most
    /// 100 shown): `{"place": {side, kind, quantity, price, reduce_only,
    /// client_tag}}` with quantity and price as decimal strings, or
    /// `{"cancel": client_tag}`.
    #[schemars(with = "Vec<crate::plugin::contract::ActionView>")]
    pub actions: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderFilledView {
    /// The order in its new state.
    pub order: OrderView,
    pub fill: FillView,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RejectionView {
    pub at: String,
    pub client_tag: String,
    /// strategy, manual or kill_switch.
    pub origin: String,
    /// The check that refused it (`max_order_notional`, `min_notional`, ...).
    pub check: String,
    pub message: String,
}

impl From<&Rejection> for RejectionView {
    fn from(r: &Rejection) -> Self {
        Self {
            at: time(r.ts),
            client_tag: r.client_tag.clone(),
            origin: state_name(&r.origin),
            check: r.check.clone(),
            message: r.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PositionOpenedView {
    pub at: String,
    pub quantity: String,
    pub price: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TradingStateChangeView {
    pub at: String,
    /// ACTIVE, REDUCING or HALTED.
    pub from: String,
    pub to: String,
    pub reason: String,
}

impl From<&StateChange> for TradingStateChangeView {
    fn from(c: &StateChange) -> Self {
        Self {
            at: time(c.ts),
            from: state_name(&c.from),
            to: state_name(&c.to),
            reason: c.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KillSwitchEventView {
    pub at: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LaggedView {
    /// Events (or, for a bot's backlog, candles) missed for good.
    pub missed: u64,
    /// slow: the reader fell behind and is disconnected; resume: the
    /// resume point is older than the events the server keeps; backlog: a
    /// bot found several candles waiting and catches up in order.
    pub reason: LagReason,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FeedGapView {
    /// Open time of the last candle before the hole.
    pub after: String,
    /// Open time of the first candle after it.
    pub before: String,
    /// Candles that would have been in between.
    pub missing: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EmergencyEventView {
    /// The token name that acted.
    pub by: String,
    /// Bots the kill went to (engaged only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bots: Option<usize>,
}

impl EventPayload {
    pub fn of(data: &EventData) -> Self {
        match data {
            EventData::BotCreated(bot) => EventPayload::BotCreated(BotSummary::from(&**bot)),
            EventData::BotDeleted => EventPayload::BotDeleted(BotRef { id: String::new() }),
            EventData::BotStateChanged(change) => {
                EventPayload::BotStateChanged(BotStateChangedView {
                    from: change.from.name().into(),
                    to: change.to.name().into(),
                    reason: change.reason.clone(),
                    bot: BotSummary::from(&*change.bot),
                })
            }
            EventData::BotUpdated(bot) => EventPayload::BotUpdated(BotSummary::from(&**bot)),
            EventData::ConfigUpdated(record) => EventPayload::ConfigUpdated(ConfigVersionView {
                version: record.version,
                created_at: time(record.at),
                actor: record.actor.clone(),
                config: serde_json::to_value(&*record.config).unwrap_or_default(),
            }),
            EventData::Signal { ts, actions } => EventPayload::Signal(SignalView {
                at: time(*ts),
                actions: actions.clone(),
            }),
            EventData::OrderPlaced(order) => EventPayload::OrderPlaced(OrderView::from(&**order)),
            EventData::OrderFilled(filled) => EventPayload::OrderFilled(OrderFilledView {
                order: OrderView::from(&filled.0),
                fill: FillView::from(&filled.1),
            }),
            EventData::OrderCancelled(order) => {
                EventPayload::OrderCancelled(OrderView::from(&**order))
            }
            EventData::OrderRejected(rejection) => {
                EventPayload::OrderRejected(RejectionView::from(&**rejection))
            }
            EventData::PositionOpened {
                ts,
                quantity,
                price,
            } => EventPayload::PositionOpened(PositionOpenedView {
                at: time(*ts),
                quantity: decimal(*quantity),
                price: decimal(*price),
            }),
            EventData::PositionClosed(trade) => {
                EventPayload::PositionClosed(TradeView::from(&**trade))
            }
            EventData::Trade(trade) => EventPayload::Trade(TradeView::from(&**trade)),
            EventData::RiskViolation(violation) => {
                EventPayload::RiskViolation(ViolationView::from(&**violation))
            }
            EventData::RiskStateChanged(change) => {
                EventPayload::RiskStateChanged(TradingStateChangeView::from(&**change))
            }
            EventData::KillSwitch { ts, reason } => EventPayload::KillSwitch(KillSwitchEventView {
                at: time(*ts),
                reason: reason.clone(),
            }),
            EventData::Log(line) => EventPayload::Log(LogLineView::from(&**line)),
            EventData::Lagged { missed, reason } => EventPayload::Lagged(LaggedView {
                missed: *missed,
                reason: *reason,
            }),
            EventData::FeedGap {
                after,
                before,
                missing,
            } => EventPayload::FeedGap(FeedGapView {
                after: time(*after),
                before: time(*before),
                missing: *missing,
            }),
            EventData::EmergencyEngaged { by, bots } => {
                EventPayload::EmergencyEngaged(EmergencyEventView {
                    by: by.clone(),
                    bots: Some(*bots),
                })
            }
            EventData::EmergencyReset { by } => EventPayload::EmergencyReset(EmergencyEventView {
                by: by.clone(),
                bots: None,
            }),
            EventData::BacktestProgress { job, progress } => {
                EventPayload::BacktestProgress(BacktestView::of(job, *progress))
            }
            EventData::BacktestFinished(job) => {
                EventPayload::BacktestFinished(BacktestView::of(job, job.final_progress()))
            }
        }
    }
}

impl From<&Event> for Envelope {
    fn from(event: &Event) -> Self {
        let mut payload = EventPayload::of(&event.data);
        if let EventPayload::BotDeleted(bot) = &mut payload {
            bot.id = event.bot_id.as_deref().unwrap_or_default().to_string();
        }
        Self {
            seq: event.seq,
            ts: time(event.ts),
            channel: event.channel().name().to_string(),
            bot_id: event.bot_id.as_deref().map(str::to_string),
            payload,
        }
    }
}

/// The event as JSON text, encoded once per event whoever sends it.
pub fn encode(event: &Event) -> std::sync::Arc<str> {
    event.encoded(|event| serde_json::to_string(&Envelope::from(event)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_type_written_is_the_bus_type() {
        let samples = [
            EventData::BotDeleted,
            EventData::Signal {
                ts: 0,
                actions: serde_json::json!([]),
            },
            EventData::KillSwitch {
                ts: 60_000,
                reason: "manual kill".into(),
            },
            EventData::Lagged {
                missed: 3,
                reason: LagReason::Backlog,
            },
            EventData::EmergencyReset { by: "ops".into() },
            EventData::FeedGap {
                after: 0,
                before: 300_000,
                missing: 4,
            },
            EventData::Log(Box::default()),
        ];
        for data in samples {
            let kind = data.kind();
            let event = Event::new(7, 0, Some(Arc::from("a")), data);
            let json: serde_json::Value = serde_json::from_str(&encode(&event)).unwrap();
            assert_eq!(json["type"], kind);
            assert_eq!(json["seq"], 7);
            assert_eq!(json["bot_id"], "a");
            assert!(json["data"].is_object(), "{json}");
        }
    }

    #[test]
    fn times_are_rfc3339_and_decimals_strings() {
        let event = Event::new(
            1,
            0,
            None,
            EventData::KillSwitch {
                ts: 60_000,
                reason: "manual kill".into(),
            },
        );
        let json: serde_json::Value = serde_json::from_str(&encode(&event)).unwrap();
        assert_eq!(json["data"]["at"], "1970-01-01T00:01:00.000Z");
        assert_eq!(json["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(json["channel"], "risk");
    }

    #[test]
    fn a_violation_says_what_its_numbers_count() {
        use crate::domain::config::RiskAction;
        use crate::engine::{Rule, Violation};
        let violation = |rule| {
            let event = Event::new(
                1,
                0,
                Some(Arc::from("a")),
                EventData::RiskViolation(Box::new(Violation {
                    ts: 60_000,
                    rule,
                    limit: rust_decimal::Decimal::new(20, 0),
                    observed: rust_decimal::Decimal::new(2_125, 2),
                    action: RiskAction::Halt,
                })),
            );
            serde_json::from_str::<serde_json::Value>(&encode(&event)).unwrap()["data"].clone()
        };
        let drawdown = violation(Rule::MaxDrawdown);
        assert_eq!(
            (&drawdown["observed"], &drawdown["limit"], &drawdown["unit"]),
            (&"21.25".into(), &"20".into(), &"percent".into())
        );
        assert_eq!(violation(Rule::MaxConsecutiveLosses)["unit"], "count");
    }
}
