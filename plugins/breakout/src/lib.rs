//! breakout: Donchian channel breakout with an ATR stop. Long only.
//!
//! Enter when the close breaks above the highest high of the previous
//! `channel` candles. Once long, keep a protective stop `atr_multiplier` ATRs
//! below the entry price, resting at the venue; leave at market when the
//! close falls below the lowest low of the previous `exit_channel` candles.
//! Shows resting (stop) orders, client tags and cancels.

use schemars::JsonSchema;
use serde::Deserialize;
use stratbox_sdk::indicators::{Atr, Highest, Lowest};
use stratbox_sdk::{Action, BotView, Candle, OrderIntent, ParamError, Side, Strategy, param_error};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Entry channel: candles whose highest high must be broken.
    #[schemars(range(min = 2, max = 10000), extend("x-search" = "20..60:10"))]
    pub channel: u32,
    /// Exit channel: candles whose lowest low ends the trade. At most `channel`.
    #[schemars(range(min = 1, max = 10000), extend("x-search" = "5..20:5"))]
    pub exit_channel: u32,
    /// ATR period (Wilder), in candles.
    #[schemars(range(min = 1, max = 1000), extend("x-search" = false))]
    pub atr_period: u32,
    /// Stop distance below the entry, in ATRs.
    #[schemars(range(min = 0.1, max = 20), extend("x-search" = "1..4:0.5"))]
    pub atr_multiplier: f64,
    /// Percent of equity to put into each entry.
    #[schemars(range(min = 0.01, max = 100), extend("x-search" = false))]
    pub size_pct: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            channel: 20,
            exit_channel: 10,
            atr_period: 14,
            atr_multiplier: 2.0,
            size_pct: 90.0,
        }
    }
}

const STOP_TAG: &str = "atr-stop";

pub struct Breakout {
    params: Params,
    /// Channels over the previous candles: updated after the decision, so the
    /// current candle is compared with the ones before it.
    upper: Highest,
    lower: Lowest,
    atr: Atr,
}

impl Strategy for Breakout {
    type Params = Params;
    const NAME: &'static str = "breakout";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str =
        "Donchian channel breakout: long above the channel high, protected by an ATR stop.";

    fn new(params: Params) -> Result<Self, Vec<ParamError>> {
        if params.exit_channel > params.channel {
            return Err(vec![param_error(
                "/exit_channel",
                format!(
                    "must not exceed channel ({}), got {}",
                    params.channel, params.exit_channel
                ),
            )]);
        }
        Ok(Self {
            upper: Highest::new(params.channel as usize),
            lower: Lowest::new(params.exit_channel as usize),
            atr: Atr::new(params.atr_period as usize),
            params,
        })
    }

    fn warmup(&self) -> u32 {
        (self.params.channel + 1).max(self.params.atr_period)
    }

    fn on_candle(&mut self, candle: &Candle, bot: &BotView) -> Vec<Action> {
        let (upper, lower) = (self.upper.value(), self.lower.value());
        let atr = self.atr.update(candle.high, candle.low, candle.close);
        self.upper.update(candle.high);
        self.lower.update(candle.low);

        let mut actions = Vec::new();
        if bot.position_qty > 0.0 {
            if lower.is_some_and(|lower| candle.close < lower) {
                if bot.has_open_order(STOP_TAG) {
                    actions.push(Action::Cancel(STOP_TAG.to_string()));
                }
                let exit = OrderIntent::market(Side::Sell, bot.position_qty).reduce_only();
                actions.push(exit.tagged("exit").into());
            } else if let (false, Some(atr)) = (bot.has_open_order(STOP_TAG), atr) {
                let stop_price = bot.position_avg_price - self.params.atr_multiplier * atr;
                let stop = OrderIntent::stop(Side::Sell, bot.position_qty, stop_price);
                actions.push(stop.reduce_only().tagged(STOP_TAG).into());
            }
        } else if bot.has_open_order(STOP_TAG) {
            // Flat again (the stop filled or the position was closed by
            // hand): a leftover stop has nothing to protect.
            actions.push(Action::Cancel(STOP_TAG.to_string()));
        } else if upper.is_some_and(|upper| candle.close > upper) && atr.is_some() {
            let quantity = bot.equity * self.params.size_pct / 100.0 / candle.close;
            actions.push(
                OrderIntent::market(Side::Buy, quantity)
                    .tagged("entry")
                    .into(),
            );
        }
        actions
    }
}

stratbox_sdk::export_strategy!(Breakout);
