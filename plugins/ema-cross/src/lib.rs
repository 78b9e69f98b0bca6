//! ema-cross: buy when a fast EMA of the close crosses above a slow one, sell
//! when it crosses back below. Long only.
//!
//! A first plugin to read: parameters with bounds, a cross-field check, two
//! indicators and market orders. Build it with
//! `cargo build --target wasm32-unknown-unknown --release`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stratbox_sdk::indicators::{Ema, EmaSeed};
use stratbox_sdk::{Action, BotView, Candle, OrderIntent, ParamError, Side, Strategy, param_error};

// Doc comments and `schemars` bounds become the JSON Schema the host
// validates a bot's `strategy.params` against (so a period of 0 is refused
// before the strategy ever sees it), and what the control UI shows beside
// each field: they are written for the person configuring a bot. Types of
// our own derive `Serialize` too: only then does the schema carry their
// default, which the UI shows for a field the config leaves out.
// `x-search` is what an optimisation searches when it is given no ranges
// (the syntax of `stratbox optimize --param`; `false` leaves a parameter
// out): the bounds say what may run, not what is worth trying.

/// A fast and a slow exponential moving average of the close: buy when the
/// fast one crosses above the slow one, sell when it crosses back below.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Period of the fast EMA, in candles.
    #[schemars(range(min = 1, max = 10000), extend("x-search" = "3..21:2"))]
    pub fast: u32,
    /// Period of the slow EMA, in candles. Must be greater than `fast`.
    #[schemars(range(min = 2, max = 10000), extend("x-search" = "25..205:20"))]
    pub slow: u32,
    /// How big a position to open.
    pub size: Size,
    /// How the EMAs get their first value: from the first close
    /// (`first_value`) or from the average of the first `period` closes (`sma`).
    #[schemars(extend("x-search" = false))]
    pub ema_seed: Seed,
}

/// Position size of a new entry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Size {
    /// Percent of the bot's equity, converted to base units at the close.
    PercentOfEquity(#[schemars(range(min = 0.01, max = 100))] f64),
    /// A fixed quantity in base units.
    Quantity(#[schemars(range(min = 0))] f64),
}

/// EMA seeding convention (see the SDK's `EmaSeed`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seed {
    #[default]
    FirstValue,
    Sma,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            fast: 12,
            slow: 26,
            size: Size::PercentOfEquity(90.0),
            ema_seed: Seed::FirstValue,
        }
    }
}

pub struct EmaCross {
    params: Params,
    fast: Ema,
    slow: Ema,
    /// fast - slow on the previous candle where both were warm.
    previous_diff: Option<f64>,
}

impl Strategy for EmaCross {
    type Params = Params;
    const NAME: &'static str = "ema-cross";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Long when the fast EMA of the close crosses above the slow EMA; flat when it crosses below.";

    fn new(params: Params) -> Result<Self, Vec<ParamError>> {
        // The schema checks each field alone; rules between fields live here.
        if params.slow <= params.fast {
            return Err(vec![param_error(
                "/slow",
                format!(
                    "must be greater than fast ({}), got {}",
                    params.fast, params.slow
                ),
            )]);
        }
        let seed = match params.ema_seed {
            Seed::FirstValue => EmaSeed::FirstValue,
            Seed::Sma => EmaSeed::Sma,
        };
        Ok(Self {
            fast: Ema::with_seed(params.fast as usize, seed),
            slow: Ema::with_seed(params.slow as usize, seed),
            previous_diff: None,
            params,
        })
    }

    fn warmup(&self) -> u32 {
        self.params.slow
    }

    fn on_candle(&mut self, candle: &Candle, bot: &BotView) -> Vec<Action> {
        let fast = self.fast.update(candle.close);
        let (Some(fast), Some(slow)) = (fast, self.slow.update(candle.close)) else {
            return Vec::new();
        };
        let diff = fast - slow;
        let Some(previous) = self.previous_diff.replace(diff) else {
            return Vec::new();
        };

        if bot.position_qty <= 0.0 && diff > 0.0 && previous <= 0.0 {
            let quantity = match self.params.size {
                Size::PercentOfEquity(percent) => bot.equity * percent / 100.0 / candle.close,
                Size::Quantity(quantity) => quantity,
            };
            return vec![
                OrderIntent::market(Side::Buy, quantity)
                    .tagged("entry")
                    .into(),
            ];
        }
        if bot.position_qty > 0.0 && diff < 0.0 && previous >= 0.0 {
            let exit = OrderIntent::market(Side::Sell, bot.position_qty).reduce_only();
            return vec![exit.tagged("exit").into()];
        }
        Vec::new()
    }
}

stratbox_sdk::export_strategy!(EmaCross);
