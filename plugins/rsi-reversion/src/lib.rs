//! rsi-reversion: buy when the RSI says the market is oversold, sell when it
//! says overbought. Long only.

use schemars::JsonSchema;
use serde::Deserialize;
use stratbox_sdk::indicators::Rsi;
use stratbox_sdk::{Action, BotView, Candle, OrderIntent, ParamError, Side, Strategy, param_error};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// RSI period (Wilder), in candles.
    #[schemars(range(min = 2, max = 1000), extend("x-search" = "8..24:4"))]
    pub period: u32,
    /// Buy when the RSI falls below this level.
    #[schemars(range(min = 0, max = 100), extend("x-search" = "15..40:5"))]
    pub oversold: f64,
    /// Sell when the RSI rises above this level. Must be above `oversold`.
    #[schemars(range(min = 0, max = 100), extend("x-search" = "60..85:5"))]
    pub overbought: f64,
    /// Percent of equity to put into each entry.
    #[schemars(range(min = 0.01, max = 100), extend("x-search" = false))]
    pub size_pct: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            period: 14,
            oversold: 30.0,
            overbought: 70.0,
            size_pct: 90.0,
        }
    }
}

pub struct RsiReversion {
    params: Params,
    rsi: Rsi,
}

impl Strategy for RsiReversion {
    type Params = Params;
    const NAME: &'static str = "rsi-reversion";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Mean reversion: long when the RSI is below the oversold level, flat above the overbought level.";

    fn new(params: Params) -> Result<Self, Vec<ParamError>> {
        if params.overbought <= params.oversold {
            return Err(vec![param_error(
                "/overbought",
                format!(
                    "must be greater than oversold ({}), got {}",
                    params.oversold, params.overbought
                ),
            )]);
        }
        Ok(Self {
            rsi: Rsi::new(params.period as usize),
            params,
        })
    }

    fn warmup(&self) -> u32 {
        // The RSI needs `period` price changes, so one candle more.
        self.params.period + 1
    }

    fn on_candle(&mut self, candle: &Candle, bot: &BotView) -> Vec<Action> {
        let Some(rsi) = self.rsi.update(candle.close) else {
            return Vec::new();
        };
        if bot.is_flat() && rsi < self.params.oversold {
            let quantity = bot.equity * self.params.size_pct / 100.0 / candle.close;
            return vec![
                OrderIntent::market(Side::Buy, quantity)
                    .tagged("entry")
                    .into(),
            ];
        }
        if bot.position_qty > 0.0 && rsi > self.params.overbought {
            let exit = OrderIntent::market(Side::Sell, bot.position_qty).reduce_only();
            return vec![exit.tagged("exit").into()];
        }
        Vec::new()
    }
}

stratbox_sdk::export_strategy!(RsiReversion);
