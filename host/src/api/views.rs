//! What the API answers: the JSON shapes of bots, orders, trades and the
//! rest, as the control UI caches them by URL.
//!
//! The runtime's types keep epoch milliseconds and decimals; here times
//! become RFC 3339 UTC and decimals become strings, once, so every endpoint
//! writes them the same way. Every shape derives its JSON Schema for the
//! OpenAPI document.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::domain::{Fill, Order};
use crate::engine::metrics::EquityPoint;
use crate::engine::{RuleStatus, Trade, Violation};
use crate::live::{BotSnapshot, LogLine};
use crate::store::{AuditEntry, ConfigVersion, PresetRecord, StoredLogLine, TokenRecord};

/// Epoch milliseconds as RFC 3339 UTC.
pub use crate::domain::format_instant as time;

/// A decimal as a JSON string.
pub use crate::domain::decimal::to_text as decimal;

/// A page of a list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Rows read with one more than `limit`: the first `limit` of them, and the
/// cursor of the next page (`key` of the last row kept) when more exist.
pub fn split_page<S>(
    mut rows: Vec<S>,
    limit: usize,
    key: impl Fn(&S) -> String,
) -> (Vec<S>, Option<String>) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more { rows.last().map(key) } else { None };
    (rows, next_cursor)
}

/// A bot in the list: enough for an overview row.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BotSummary {
    pub id: String,
    pub name: String,
    /// stopped, starting, running, paused, stopping, killed or error.
    pub state: String,
    /// ACTIVE, REDUCING or HALTED.
    pub trading_state: String,
    pub mode: String,
    pub symbol: String,
    pub timeframe: String,
    /// Plugin name and version.
    pub strategy: String,
    pub config_version: u64,
    pub equity: String,
    /// Equity less the initial capital: realized plus unrealized PnL, less
    /// every fee paid.
    pub pnl: String,
    /// PnL of the quantity sold out of positions, before fees.
    pub realized_pnl: String,
    /// PnL of the open position at the last close, before fees.
    pub unrealized_pnl: String,
    pub position: String,
    pub last_candle_at: Option<String>,
    pub error: Option<String>,
    pub allowed_commands: Vec<String>,
    /// Why the kill-switch is engaged, if it is.
    pub kill_switch: Option<String>,
    /// Recent equity readings, oldest first (about one a second at most):
    /// a sparkline.
    pub equity_trail: Arc<[Arc<str>]>,
}

/// The JSON name of a unit enum variant (`running`, `buy`, `orders`, ...).
pub fn state_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl BotSummary {
    /// The summary of `snapshot` as JSON, rendered once per snapshot.
    pub fn json_of(snapshot: &BotSnapshot) -> &serde_json::value::RawValue {
        snapshot.summary_json.get_or_render(|| {
            serde_json::value::to_raw_value(&BotSummary::from(snapshot))
                .expect("a summary of strings and numbers serialises")
        })
    }
}

impl From<&BotSnapshot> for BotSummary {
    fn from(s: &BotSnapshot) -> Self {
        let initial = s.config.as_ref().map_or(s.equity, |c| c.capital.initial);
        Self {
            id: s.id.to_string(),
            name: s.name.to_string(),
            state: state_name(&s.state),
            trading_state: state_name(&s.trading_state),
            mode: state_name(&s.mode),
            symbol: s.symbol.to_string(),
            timeframe: s.timeframe.to_string(),
            strategy: s.plugin.to_string(),
            config_version: s.config_version,
            equity: decimal(s.equity),
            pnl: decimal(s.equity - initial),
            realized_pnl: decimal(s.realized_pnl),
            unrealized_pnl: decimal(s.unrealized_pnl),
            position: decimal(s.position),
            last_candle_at: s.last_candle_ts.map(time),
            error: s.error.clone(),
            allowed_commands: s.allowed_commands.iter().map(|c| c.to_string()).collect(),
            kill_switch: s.kill_switch.clone(),
            equity_trail: s.equity_trail.clone(),
        }
    }
}

/// A bot's holding of its symbol.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PositionView {
    pub symbol: String,
    pub quantity: String,
    pub avg_entry_price: String,
    pub unrealized_pnl: String,
}

impl PositionView {
    /// The bot's positions: one per symbol held (a bot trades one).
    pub fn of(s: &BotSnapshot) -> Vec<PositionView> {
        if s.position.is_zero() {
            return Vec::new();
        }
        vec![PositionView {
            symbol: s.symbol.to_string(),
            quantity: decimal(s.position),
            avg_entry_price: decimal(s.avg_entry_price),
            unrealized_pnl: decimal(s.unrealized_pnl),
        }]
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderView {
    pub id: String,
    pub client_tag: String,
    /// buy or sell.
    pub side: String,
    /// market, limit or stop.
    pub kind: String,
    pub quantity: String,
    /// How much has filled so far (live orders fill in parts).
    pub filled_quantity: String,
    pub price: Option<String>,
    pub reduce_only: bool,
    /// strategy, manual or kill_switch.
    pub origin: String,
    /// open, filled or cancelled.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub reason: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.to_string(),
            client_tag: o.client_tag.clone(),
            side: state_name(&o.side),
            kind: state_name(&o.kind),
            quantity: decimal(o.quantity),
            filled_quantity: decimal(o.filled),
            price: o.price.map(decimal),
            reduce_only: o.reduce_only,
            origin: state_name(&o.origin),
            status: state_name(&o.status),
            created_at: time(o.created_ts),
            updated_at: time(o.updated_ts),
            reason: o.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FillView {
    pub order_id: String,
    pub client_tag: String,
    pub side: String,
    pub quantity: String,
    pub price: String,
    pub fee: String,
    pub liquidity: String,
    pub origin: String,
    pub at: String,
}

impl From<&Fill> for FillView {
    fn from(f: &Fill) -> Self {
        Self {
            order_id: f.order_id.to_string(),
            client_tag: f.client_tag.clone(),
            side: state_name(&f.side),
            quantity: decimal(f.quantity),
            price: decimal(f.price),
            fee: decimal(f.fee),
            liquidity: state_name(&f.liquidity),
            origin: state_name(&f.origin),
            at: time(f.ts),
        }
    }
}

/// A round trip: flat to flat.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TradeView {
    pub entry_at: String,
    pub exit_at: String,
    pub quantity: String,
    pub entry_price: String,
    pub exit_price: String,
    /// Net of every fee of the round trip.
    pub pnl: String,
    pub fees: String,
}

impl From<&Trade> for TradeView {
    fn from(t: &Trade) -> Self {
        Self {
            entry_at: time(t.entry_ts),
            exit_at: time(t.exit_ts),
            quantity: decimal(t.quantity),
            entry_price: decimal(t.entry_price),
            exit_price: decimal(t.exit_price),
            pnl: decimal(t.pnl),
            fees: decimal(t.fees),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EquityPointView {
    pub at: String,
    pub equity: String,
}

impl From<&EquityPoint> for EquityPointView {
    fn from(p: &EquityPoint) -> Self {
        Self {
            at: time(p.ts),
            equity: decimal(p.equity),
        }
    }
}

/// Everything a bot's detail page shows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BotStatus {
    #[serde(flatten)]
    pub summary: BotSummary,
    pub started_at: Option<String>,
    /// Free cash (quote asset).
    pub balance: String,
    pub quote: String,
    pub fees_paid: String,
    pub positions: Vec<PositionView>,
    pub open_orders: Vec<OrderView>,
    pub candles_processed: u64,
    /// From the feed publishing the last candle to the end of its decision.
    pub decision_latency_us: Option<u64>,
}

impl From<&BotSnapshot> for BotStatus {
    fn from(s: &BotSnapshot) -> Self {
        Self {
            summary: BotSummary::from(s),
            started_at: s.started_at.map(time),
            balance: decimal(s.cash),
            quote: s
                .config
                .as_ref()
                .map(|c| c.capital.quote.clone())
                .unwrap_or_default(),
            fees_paid: decimal(s.fees_paid),
            positions: PositionView::of(s),
            open_orders: s.open_orders.iter().map(OrderView::from).collect(),
            candles_processed: s.candles_processed,
            decision_latency_us: s.decision_latency_us,
        }
    }
}

/// A bot with its config: the answer to create and get.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BotDetail {
    #[serde(flatten)]
    pub status: BotStatus,
    pub config: Value,
}

impl From<&BotSnapshot> for BotDetail {
    fn from(s: &BotSnapshot) -> Self {
        Self {
            status: BotStatus::from(s),
            config: s
                .config
                .as_ref()
                .and_then(|c| serde_json::to_value(&**c).ok())
                .unwrap_or_default(),
        }
    }
}

/// What a bot's state allows now.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommandsView {
    pub state: String,
    pub allowed_commands: Vec<String>,
}

/// One bot's outcome in a bulk command.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BulkItem {
    pub id: String,
    pub ok: bool,
    pub state: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BulkOutcome {
    pub results: Vec<BulkItem>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EmergencyView {
    pub engaged: bool,
    /// Bots the kill was just sent to (the stop only).
    pub killing: Vec<String>,
    /// Bots that trade nothing (stopped, killed, failed), left as they are
    /// (the stop only).
    pub untouched: Vec<String>,
    /// Bots still running or paused while the emergency is engaged: the
    /// kills not done yet.
    pub pending: Vec<String>,
    /// Recent emergency stops and releases, newest first (GET only).
    pub events: Vec<SystemEventView>,
}

/// A host-wide event kept in the store.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SystemEventView {
    pub at: String,
    /// `emergency.engaged` or `emergency.reset`.
    pub kind: String,
    pub data: Value,
}

/// One state an order went through.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderChangeView {
    /// open, filled or cancelled.
    pub status: String,
    pub at: String,
}

/// An order with every state it went through.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub order: OrderView,
    pub changes: Vec<OrderChangeView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RuleView {
    /// max_drawdown, daily_loss or max_consecutive_losses.
    pub rule: String,
    pub limit: String,
    pub observed: String,
    /// What `limit` and `observed` count: `percent` (of equity: 20 is
    /// 20%) or `count` (losing trades in a row).
    pub unit: String,
    /// ok or breached.
    pub status: String,
    /// reduce, halt or kill.
    pub action: String,
}

impl From<&RuleStatus> for RuleView {
    fn from(r: &RuleStatus) -> Self {
        Self {
            rule: state_name(&r.rule),
            limit: decimal(r.limit),
            observed: decimal(r.observed),
            unit: r.rule.unit().into(),
            status: if r.breached { "breached" } else { "ok" }.into(),
            action: state_name(&r.action),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ViolationView {
    pub at: String,
    pub rule: String,
    pub limit: String,
    pub observed: String,
    /// What `limit` and `observed` count, as in the rule's view.
    pub unit: String,
    pub action: String,
}

impl From<&Violation> for ViolationView {
    fn from(v: &Violation) -> Self {
        Self {
            at: time(v.ts),
            rule: state_name(&v.rule),
            limit: decimal(v.limit),
            observed: decimal(v.observed),
            unit: v.rule.unit().into(),
            action: state_name(&v.action),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KillSwitchView {
    pub engaged: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RiskView {
    pub trading_state: String,
    pub kill_switch: KillSwitchView,
    pub rules: Vec<RuleView>,
    /// Newest first.
    pub recent_violations: Vec<ViolationView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigVersionView {
    pub version: u64,
    pub created_at: String,
    /// The token name that made the change.
    pub actor: String,
    /// The config as it was accepted (carried as stored; its shape is the
    /// bot config's).
    #[schemars(with = "crate::domain::config::BotConfig")]
    pub config: Value,
}

impl From<&ConfigVersion> for ConfigVersionView {
    fn from(v: &ConfigVersion) -> Self {
        Self {
            version: v.version,
            created_at: time(v.created_at),
            actor: v.actor.clone(),
            config: v.config.clone(),
        }
    }
}

/// The answer to a config change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigApplied {
    pub version: u64,
    /// The config in force.
    #[schemars(required)]
    pub config: Option<std::sync::Arc<crate::domain::config::BotConfig>>,
    pub status: BotStatus,
}

/// The answer to a validation: it passed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ValidationPassed {
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StrategyView {
    pub name: String,
    pub version: String,
    pub description: String,
    pub params_schema: Value,
    pub warmup: u32,
    /// SHA-256 of the plugin file.
    pub content_hash: String,
    /// What an optimisation given no ranges searches, by parameter
    /// (`MIN..MAX:STEP` or `A,B,C`): the schema's `x-search` ranges, else
    /// its bounds and enums.
    pub default_search: std::collections::BTreeMap<String, String>,
    /// Parameters whose `x-search` keyword cannot be read, and why: their
    /// bounds or enum are searched instead (with neither, they are left
    /// out). Empty for a well-formed schema.
    pub search_problems: std::collections::BTreeMap<String, String>,
    /// Ids of the bots whose config names this plugin.
    pub bots: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PresetView {
    pub name: String,
    pub config: Value,
    pub updated_at: String,
}

impl From<&PresetRecord> for PresetView {
    fn from(p: &PresetRecord) -> Self {
        Self {
            name: p.name.clone(),
            config: p.config.clone(),
            updated_at: time(p.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CandleView {
    /// Open time.
    pub at: String,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
}

impl From<&crate::domain::Candle> for CandleView {
    fn from(c: &crate::domain::Candle) -> Self {
        Self {
            at: time(c.ts),
            open: decimal(c.open),
            high: decimal(c.high),
            low: decimal(c.low),
            close: decimal(c.close),
            volume: decimal(c.volume),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogLineView {
    pub id: String,
    pub at: String,
    pub level: String,
    pub component: String,
    pub bot_id: Option<String>,
    pub plugin: Option<String>,
    pub message: String,
}

impl From<StoredLogLine> for LogLineView {
    fn from(line: StoredLogLine) -> Self {
        Self {
            id: line.id.to_string(),
            at: time(line.ts),
            level: line.level.to_lowercase(),
            component: line.component,
            bot_id: line.bot_id,
            plugin: line.plugin,
            message: line.message,
        }
    }
}

impl From<&LogLine> for LogLineView {
    fn from(line: &LogLine) -> Self {
        Self {
            id: line.id.to_string(),
            at: time(line.ts),
            level: line.level.to_lowercase(),
            component: line.component.clone(),
            bot_id: line.bot_id.clone(),
            plugin: line.plugin.clone(),
            message: line.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub status: u16,
    pub remote: String,
    pub request_id: String,
    pub detail: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id.to_string(),
            at: time(a.ts),
            actor: a.actor.clone(),
            role: a.role.clone(),
            action: a.action.clone(),
            target: a.target.clone(),
            status: a.status,
            remote: a.remote.clone(),
            request_id: a.request_id.clone(),
            detail: a.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role.clone(),
            created_at: time(t.created_at),
            revoked_at: t.revoked_at.map(time),
        }
    }
}

/// A new token: its text appears here once and is never shown again.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub info: TokenView,
    pub token: String,
}

/// A stored data set.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DataSetView {
    pub symbol: String,
    pub timeframe: String,
    /// Open time of the first and the last candle.
    pub first: String,
    pub last: String,
    pub count: u64,
    pub gaps: GapsView,
    pub size_bytes: u64,
    /// SHA-256 of the candles: equal for equal candles, whatever file they
    /// came from.
    pub content_hash: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GapsView {
    /// Stretches with candles missing.
    pub count: u64,
    /// Candles missing in all.
    pub missing: u64,
    /// The first stretches (up to 20): the candle before each and how many
    /// are missing after it.
    pub first: Vec<GapView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GapView {
    pub after: String,
    pub missing: u64,
}

impl From<&crate::data::DataSetInfo> for DataSetView {
    fn from(info: &crate::data::DataSetInfo) -> Self {
        Self {
            symbol: info.symbol.clone(),
            timeframe: info.timeframe.to_string(),
            first: time(info.first_ts),
            last: time(info.last_ts),
            count: info.count,
            gaps: GapsView {
                count: info.gaps.count,
                missing: info.gaps.missing,
                first: info
                    .gaps
                    .first
                    .iter()
                    .map(|gap| GapView {
                        after: time(gap.after_ts),
                        missing: gap.missing,
                    })
                    .collect(),
            },
            size_bytes: info.size_bytes,
            content_hash: info.content_hash.clone(),
        }
    }
}

/// A backtest job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BacktestView {
    pub id: String,
    pub state: crate::research::JobState,
    /// 0 to 1.
    pub progress: f64,
    pub created: String,
    pub finished: Option<String>,
    /// What the job was made from: running it again gives the same result.
    pub config: Value,
    pub plugin: String,
    pub plugin_version: String,
    pub plugin_hash: String,
    pub data: String,
    pub data_hash: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub end_of_run: crate::backtest::EndOfRun,
    pub error: Option<String>,
    /// Headline figures once done (of an optimisation: its best run; of a
    /// walk-forward: its out-of-sample runs one after another, their
    /// returns compounded, the deepest window's drawdown, their trades, no
    /// Sharpe ratio).
    pub candles: Option<usize>,
    pub total_return_pct: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown_pct: Option<f64>,
    pub trades: Option<usize>,
    /// An optimisation's search (absent for a backtest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimization: Option<crate::research::OptimizationSpec>,
    /// An optimisation's best parameters and their score, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_params: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_score: Option<f64>,
    /// A finished backtest's first candle's open time and its last
    /// candle's close time: what it ran on (a range past the data's end is
    /// cut to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_to: Option<String>,
}

impl BacktestView {
    pub fn of(record: &crate::research::JobRecord, progress: f64) -> Self {
        let headline = record.headline.as_ref();
        BacktestView {
            id: record.id.clone(),
            state: record.state,
            progress,
            created: time(record.created_ms),
            finished: record.finished_ms.map(time),
            config: serde_json::to_value(&record.config).unwrap_or_default(),
            plugin: record.plugin_name.clone(),
            plugin_version: record.plugin_version.clone(),
            plugin_hash: record.plugin_hash.clone(),
            data: record.data.clone(),
            data_hash: record.data_hash.clone(),
            from: record.from.map(time),
            to: record.to.map(time),
            end_of_run: record.end_of_run,
            error: record.error.clone(),
            candles: headline.map(|h| h.candles),
            total_return_pct: headline.map(|h| h.total_return_pct),
            sharpe: headline.and_then(|h| h.sharpe),
            max_drawdown_pct: headline.map(|h| h.max_drawdown_pct),
            trades: headline.map(|h| h.trades),
            optimization: record.optimization.clone(),
            best_params: headline.and_then(|h| h.best_params.clone()),
            best_score: headline.and_then(|h| h.best_score),
            ran_from: headline.and_then(|h| h.ran).map(|(from, _)| time(from)),
            ran_to: headline.and_then(|h| h.ran).map(|(_, to)| time(to)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::RiskAction;
    use crate::engine::Rule;
    use rust_decimal::Decimal;

    #[test]
    fn a_rule_says_what_its_numbers_count() {
        let view = |rule| {
            RuleView::from(&RuleStatus {
                rule,
                limit: Decimal::from(20),
                observed: Decimal::new(144, 2),
                breached: false,
                action: RiskAction::Halt,
            })
        };
        let drawdown = view(Rule::MaxDrawdown);
        assert_eq!(
            (drawdown.rule.as_str(), drawdown.unit.as_str()),
            ("max_drawdown", "percent")
        );
        assert_eq!(
            (drawdown.limit.as_str(), drawdown.observed.as_str()),
            ("20", "1.44")
        );
        assert_eq!(view(Rule::DailyLoss).unit, "percent");
        assert_eq!(view(Rule::MaxConsecutiveLosses).unit, "count");
    }
}
