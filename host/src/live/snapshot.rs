//! What readers see of a bot: an immutable snapshot the runner publishes
//! after every candle batch and command. Readers never lock the runner.

use std::sync::{Arc, OnceLock};

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::Order;
use crate::domain::config::{BotConfig, Mode};
use crate::engine::{RuleStatus, TradingState};

use super::state::BotState;

/// Equity readings kept in a snapshot's trail (one per `bot.updated`, so
/// about one a second at most): what a fleet view draws as a sparkline.
pub const EQUITY_TRAIL: usize = 30;

/// The names a snapshot shows. Shared by every snapshot (one allocation
/// per config change, not per candle).
#[derive(Debug, Clone, Default)]
pub struct SnapshotLabels {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub symbol: Arc<str>,
    pub timeframe: Arc<str>,
    pub plugin: Arc<str>,
}

impl SnapshotLabels {
    pub fn new(config: &BotConfig, plugin: &crate::plugin::PluginInfo) -> Self {
        Self {
            id: config.id.as_str().into(),
            name: config.name.as_str().into(),
            symbol: config.market.symbol.as_str().into(),
            timeframe: config.market.timeframe.as_str().into(),
            plugin: format!("{} {}", plugin.name, plugin.version).into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BotSnapshot {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub state: BotState,
    pub trading_state: TradingState,
    /// Why the kill-switch is engaged, if it is.
    pub kill_switch: Option<String>,
    /// Why the bot is in the error state, if it is.
    pub error: Option<String>,
    pub mode: Mode,
    pub symbol: Arc<str>,
    pub timeframe: Arc<str>,
    /// Plugin name and version.
    pub plugin: Arc<str>,
    pub config_version: u64,
    /// Wall time of the last start, epoch ms.
    pub started_at: Option<i64>,
    pub cash: Decimal,
    pub equity: Decimal,
    pub position: Decimal,
    pub avg_entry_price: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees_paid: Decimal,
    pub open_orders: Vec<Order>,
    /// Open time of the last candle processed.
    pub last_candle_ts: Option<i64>,
    pub candles_processed: u64,
    /// From the feed publishing the last candle to the end of its decision.
    pub decision_latency_us: Option<u64>,
    pub risk_rules: Vec<RuleStatus>,
    /// Recent equity readings, oldest first (see [`EQUITY_TRAIL`]), as the
    /// API shows decimals: formatted once, when the trail moves, not for
    /// every view of the bot.
    pub equity_trail: Arc<[Arc<str>]>,
    pub allowed_commands: Vec<&'static str>,
    /// The config in force (version `config_version`).
    #[serde(skip)]
    pub config: Option<Arc<BotConfig>>,
    /// The API's summary of this snapshot as JSON, rendered by the first
    /// reader that asks for it.
    #[serde(skip)]
    pub summary_json: RenderedOnce,
}

/// JSON rendered from a snapshot at most once and shared by every later
/// reader: the fleet list answers every bot on every request, while a bot
/// publishes a new snapshot about once a candle. A clone starts empty, since
/// a cloned snapshot may be changed before it is published.
#[derive(Debug, Default)]
pub struct RenderedOnce(OnceLock<Box<RawValue>>);

impl RenderedOnce {
    /// The rendering, made by `render` if this is the first call.
    pub fn get_or_render(&self, render: impl FnOnce() -> Box<RawValue>) -> &RawValue {
        self.0.get_or_init(render)
    }
}

impl Clone for RenderedOnce {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn a_snapshot_is_rendered_once_and_a_clone_renders_afresh() {
        let snapshot = BotSnapshot::default();
        let mut renders = 0;
        for _ in 0..3 {
            let json = snapshot.summary_json.get_or_render(|| {
                renders += 1;
                raw(r#"{"state":"stopped"}"#)
            });
            assert_eq!(json.get(), r#"{"state":"stopped"}"#);
        }
        assert_eq!(renders, 1);

        let mut changed = snapshot.clone();
        changed.state = BotState::Running;
        let json = changed
            .summary_json
            .get_or_render(|| raw(r#"{"state":"running"}"#));
        assert_eq!(json.get(), r#"{"state":"running"}"#);
    }
}
