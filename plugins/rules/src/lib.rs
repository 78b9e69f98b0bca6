//! rules: trading rules written in the bot's YAML instead of code.
//!
//! ```yaml
//! strategy:
//!   plugin: rules
//!   params:
//!     entry:
//!       all:
//!         - crosses_above: { left: { ema: 12 }, right: { ema: 26 } }
//!         - below: { left: { rsi: 14 }, right: 70 }
//!     exit:
//!       crosses_below: { left: { ema: 12 }, right: { ema: 26 } }
//!     size_pct: 50
//!     stop_loss_pct: 2
//!     take_profit_pct: 4
//! ```
//!
//! Long only. When flat and `entry` holds, buy `size_pct` of equity at
//! market. When long, rest a stop-loss and a take-profit order (if set) and
//! sell at market when `exit` holds. The language is plain serde types, so the
//! JSON Schema the host validates against describes all of it: a misspelt
//! indicator or a period of 0 is refused with the exact path.

mod language;
mod series;

use stratbox_sdk::{Action, BotView, Candle, OrderIntent, ParamError, Side, Strategy};

pub use language::{Comparison, Condition, Operand, Params, PriceField, SeriesSpec};
use series::{CompiledCondition, SeriesBank};

const STOP_LOSS_TAG: &str = "stop-loss";
const TAKE_PROFIT_TAG: &str = "take-profit";

pub struct Rules {
    params: Params,
    bank: SeriesBank,
    entry: CompiledCondition,
    exit: Option<CompiledCondition>,
}

impl Strategy for Rules {
    type Params = Params;
    const NAME: &'static str = "rules";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Entry and exit conditions over indicators and prices, written in YAML; optional stop-loss and take-profit.";

    fn new(params: Params) -> Result<Self, Vec<ParamError>> {
        let mut errors = Vec::new();
        params.entry.check("/entry", &mut errors);
        if let Some(exit) = &params.exit {
            exit.check("/exit", &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut bank = SeriesBank::default();
        let entry = bank.compile(&params.entry);
        let exit = params.exit.as_ref().map(|exit| bank.compile(exit));
        Ok(Self {
            params,
            bank,
            entry,
            exit,
        })
    }

    fn warmup(&self) -> u32 {
        self.bank.warmup()
    }

    fn on_candle(&mut self, candle: &Candle, bot: &BotView) -> Vec<Action> {
        self.bank.update(candle);
        let mut actions = Vec::new();

        if bot.position_qty > 0.0 {
            let exit_now = self
                .exit
                .as_ref()
                .is_some_and(|exit| self.bank.evaluate(exit));
            if exit_now {
                for tag in [STOP_LOSS_TAG, TAKE_PROFIT_TAG] {
                    if bot.has_open_order(tag) {
                        actions.push(Action::Cancel(tag.to_string()));
                    }
                }
                let exit = OrderIntent::market(Side::Sell, bot.position_qty).reduce_only();
                actions.push(exit.tagged("exit").into());
                return actions;
            }
            let entry_price = bot.position_avg_price;
            if let Some(pct) = self.params.stop_loss_pct
                && !bot.has_open_order(STOP_LOSS_TAG)
            {
                let price = entry_price * (1.0 - pct / 100.0);
                let stop = OrderIntent::stop(Side::Sell, bot.position_qty, price).reduce_only();
                actions.push(stop.tagged(STOP_LOSS_TAG).into());
            }
            if let Some(pct) = self.params.take_profit_pct
                && !bot.has_open_order(TAKE_PROFIT_TAG)
            {
                let price = entry_price * (1.0 + pct / 100.0);
                let limit = OrderIntent::limit(Side::Sell, bot.position_qty, price).reduce_only();
                actions.push(limit.tagged(TAKE_PROFIT_TAG).into());
            }
            return actions;
        }

        // Flat: protective orders left over from the last trade go first.
        let mut leftovers = false;
        for tag in [STOP_LOSS_TAG, TAKE_PROFIT_TAG] {
            if bot.has_open_order(tag) {
                actions.push(Action::Cancel(tag.to_string()));
                leftovers = true;
            }
        }
        if !leftovers && self.bank.evaluate(&self.entry) {
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

stratbox_sdk::export_strategy!(Rules);
