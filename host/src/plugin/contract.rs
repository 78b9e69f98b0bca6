//! Host bindings of the strategy contract, generated from `sdk/wit/`.
//!
//! The generated types (`Candle`, `BotView`, `Action`, ...) are the exact
//! shapes that cross the boundary; the rest of the host converts to and from
//! its own decimal types at the edge.

use serde_json::Value;

use crate::domain::decimal::to_f64;
use crate::plugin::PluginError;

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "strategy",
    additional_derives: [PartialEq],
});

// The world's `use` already brings Action, BotView, Candle, Description, Fill
// and ParamError into this module.
pub use stratbox::strategy::types::{LogLevel, OpenOrder, OrderIntent, OrderKind, Side};

/// The contract's host interface, as a component imports it.
pub const HOST_INTERFACE: &str = "stratbox:strategy/host@0.2.0";

/// The interfaces a plugin may import: the contract's own, nothing else.
pub const ALLOWED_IMPORTS: &[&str] = &["stratbox:strategy/types@0.2.0", HOST_INTERFACE];

// The contract's sides and kinds are the domain's, spelled by the WIT
// bindings: one conversion each way, and the domain's names.
impl From<Side> for crate::domain::Side {
    fn from(side: Side) -> Self {
        match side {
            Side::Buy => Self::Buy,
            Side::Sell => Self::Sell,
        }
    }
}

impl From<crate::domain::Side> for Side {
    fn from(side: crate::domain::Side) -> Self {
        match side {
            crate::domain::Side::Buy => Self::Buy,
            crate::domain::Side::Sell => Self::Sell,
        }
    }
}

impl From<OrderKind> for crate::domain::OrderKind {
    fn from(kind: OrderKind) -> Self {
        match kind {
            OrderKind::Market => Self::Market,
            OrderKind::Limit => Self::Limit,
            OrderKind::Stop => Self::Stop,
        }
    }
}

impl From<crate::domain::OrderKind> for OrderKind {
    fn from(kind: crate::domain::OrderKind) -> Self {
        match kind {
            crate::domain::OrderKind::Market => Self::Market,
            crate::domain::OrderKind::Limit => Self::Limit,
            crate::domain::OrderKind::Stop => Self::Stop,
        }
    }
}

/// A strategy's action as the host shows it (a `signal` event's actions,
/// the CLI's decisions): `{"place": {...}}` or `{"cancel": client_tag}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionView {
    Place(IntentView),
    /// The client tag of the order to cancel.
    Cancel(String),
}

/// An order the strategy asked for, before rounding and risk checks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct IntentView {
    pub side: crate::domain::Side,
    pub kind: crate::domain::OrderKind,
    /// Strings like every decimal the host shows: the strategy's float as
    /// written (the shortest form that reads back the same).
    pub quantity: String,
    pub price: Option<String>,
    pub reduce_only: bool,
    pub client_tag: String,
}

impl From<&Action> for ActionView {
    fn from(action: &Action) -> Self {
        match action {
            Action::Place(intent) => Self::Place(IntentView {
                side: intent.side.into(),
                kind: intent.kind.into(),
                quantity: intent.quantity.to_string(),
                price: intent.price.map(|price| price.to_string()),
                reduce_only: intent.reduce_only,
                client_tag: intent.client_tag.clone(),
            }),
            Action::Cancel(tag) => Self::Cancel(tag.clone()),
        }
    }
}

/// An action as JSON (its [`ActionView`]).
pub fn action_to_json(action: &Action) -> Value {
    // Strings, numbers and booleans only: this cannot fail.
    serde_json::to_value(ActionView::from(action)).unwrap_or_default()
}

impl Market {
    pub fn new(symbol: &str, timeframe: &str) -> Self {
        Self {
            symbol: symbol.to_string(),
            timeframe: timeframe.to_string(),
        }
    }
}

/// The index of a bot's market in the list `init` receives: a bot trades one.
pub const BOT_MARKET: u32 = 0;

impl Candle {
    /// A candle of the bot's market with every price zero, to be filled with
    /// [`Candle::set_prices`].
    pub fn of_bot_market() -> Self {
        Self {
            market: BOT_MARKET,
            ts: 0,
            open: 0.0,
            high: 0.0,
            low: 0.0,
            close: 0.0,
            volume: 0.0,
        }
    }

    /// Take time and prices from a host candle.
    pub fn set_prices(&mut self, candle: &crate::domain::Candle) {
        self.ts = candle.ts;
        self.open = to_f64(candle.open);
        self.high = to_f64(candle.high);
        self.low = to_f64(candle.low);
        self.close = to_f64(candle.close);
        self.volume = to_f64(candle.volume);
    }

    /// A host candle of the bot's market as the plugin sees it.
    pub fn from_domain(candle: &crate::domain::Candle) -> Self {
        let mut converted = Self::of_bot_market();
        converted.set_prices(candle);
        converted
    }
}

/// What a strategy is shown of its bot on a call: the scalar view that
/// crosses with the call, and the open orders it may ask the host for.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginView {
    pub bot: BotView,
    pub open_orders: Vec<OpenOrder>,
}

impl PluginView {
    /// A flat bot with `cash` free and no open orders.
    pub fn flat(cash: f64) -> Self {
        Self {
            bot: BotView {
                position_qty: 0.0,
                position_avg_price: 0.0,
                free_cash: cash,
                equity: cash,
                open_order_count: 0,
            },
            open_orders: Vec::new(),
        }
    }

    /// The bot with these open orders: the view's count follows the list.
    pub fn new(mut bot: BotView, open_orders: Vec<OpenOrder>) -> Self {
        bot.open_order_count = u32::try_from(open_orders.len()).unwrap_or(u32::MAX);
        Self { bot, open_orders }
    }
}

/// A stretch of candles to decide on in one call: the bot as of the
/// stretch (within it only the equity changes) and each candle with the
/// bot's equity at its close. A stretch is only made of candles between
/// which nothing can happen: no order is open, nothing fills.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    pub bot: BotView,
    pub candles: Vec<(Candle, f64)>,
}

impl Default for Stretch {
    fn default() -> Self {
        Self {
            bot: PluginView::flat(0.0).bot,
            candles: Vec::new(),
        }
    }
}

impl Stretch {
    /// How many candles it holds.
    pub fn len(&self) -> usize {
        self.candles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    /// How a strategy without `on-stretch` decides on it: `decide` (its
    /// `on-candle`) on each candle in turn, up to the first that yields an
    /// action. How many candles were decided, and that candle's actions.
    pub fn decide_one_at_a_time(
        &self,
        mut decide: impl FnMut(&Candle, &PluginView) -> Result<Vec<Action>, PluginError>,
    ) -> Result<(usize, Vec<Action>), StretchFailure> {
        for (index, (candle, equity)) in self.candles.iter().enumerate() {
            let bot = BotView {
                equity: *equity,
                ..self.bot
            };
            let actions = decide(candle, &PluginView::new(bot, Vec::new())).map_err(|error| {
                StretchFailure {
                    candle: index + 1,
                    error,
                }
            })?;
            if !actions.is_empty() {
                return Ok((index + 1, actions));
            }
        }
        Ok((self.candles.len(), Vec::new()))
    }
}

/// A stretch's decision that failed, and at which of its candles (counted
/// from 1: the last one the strategy had taken).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct StretchFailure {
    pub candle: usize,
    #[source]
    pub error: PluginError,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stretch(closes: &[f64]) -> Stretch {
        let candles = closes
            .iter()
            .enumerate()
            .map(|(i, &close)| {
                let mut candle = Candle::of_bot_market();
                (candle.ts, candle.close) = (i as i64 * 60_000, close);
                (candle, 1_000.0 + close)
            })
            .collect();
        Stretch {
            bot: PluginView::flat(1_000.0).bot,
            candles,
        }
    }

    #[test]
    fn one_at_a_time_stops_at_the_first_action_with_each_candles_equity() {
        let stretch = stretch(&[1.0, 2.0, 3.0, 4.0]);
        let mut seen = Vec::new();
        let decided = stretch.decide_one_at_a_time(|candle, view| {
            seen.push((candle.close, view.bot.equity, view.open_orders.len()));
            Ok(if candle.close == 3.0 {
                vec![Action::Cancel("x".into())]
            } else {
                Vec::new()
            })
        });
        assert_eq!(decided, Ok((3, vec![Action::Cancel("x".into())])));
        assert_eq!(
            seen,
            [(1.0, 1_001.0, 0), (2.0, 1_002.0, 0), (3.0, 1_003.0, 0)]
        );
        // No action at all: every candle decided.
        assert_eq!(
            stretch.decide_one_at_a_time(|_, _| Ok(Vec::new())),
            Ok((4, Vec::new()))
        );
    }

    #[test]
    fn one_at_a_time_names_the_candle_that_failed() {
        let failure = stretch(&[1.0, 2.0, 3.0])
            .decide_one_at_a_time(|candle, _| {
                if candle.close == 2.0 {
                    Err(PluginError::Interrupted { call: "on-candle" })
                } else {
                    Ok(Vec::new())
                }
            })
            .unwrap_err();
        assert_eq!(failure.candle, 2);
        assert_eq!(
            failure.error,
            PluginError::Interrupted { call: "on-candle" }
        );
    }
}
