//! Instrument rules: the grid prices and quantities must sit on, and the
//! smallest order the venue takes.

use rust_decimal::Decimal;
use rust_decimal::prelude::RoundingStrategy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::decimal::decimal_schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InstrumentRules {
    /// Price increment; prices are rounded to the nearest tick.
    #[schemars(schema_with = "decimal_schema")]
    pub tick_size: Decimal,
    /// Quantity increment; quantities are rounded down to a whole step.
    #[schemars(schema_with = "decimal_schema")]
    pub step_size: Decimal,
    /// Smallest order value (quantity x price) accepted.
    #[schemars(schema_with = "decimal_schema")]
    pub min_notional: Decimal,
}

impl Default for InstrumentRules {
    /// Binance-like spot defaults: 0.01 tick, 0.00001 step, 5 quote minimum.
    fn default() -> Self {
        Self {
            tick_size: Decimal::new(1, 2),
            step_size: Decimal::new(1, 5),
            min_notional: Decimal::new(5, 0),
        }
    }
}

impl InstrumentRules {
    /// Round a quantity down to the step (never trade more than asked).
    pub fn round_quantity(&self, quantity: Decimal) -> Decimal {
        if self.step_size <= Decimal::ZERO {
            return quantity;
        }
        match quantity.checked_div(self.step_size) {
            Some(steps) => (steps.floor() * self.step_size).normalize(),
            None => Decimal::ZERO,
        }
    }

    /// Round a price to the nearest tick (midpoints away from zero).
    pub fn round_price(&self, price: Decimal) -> Decimal {
        if self.tick_size <= Decimal::ZERO {
            return price;
        }
        match price.checked_div(self.tick_size) {
            Some(ticks) => (ticks
                .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
                * self.tick_size)
                .normalize(),
            None => Decimal::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounding_follows_the_grid() {
        let rules = InstrumentRules {
            tick_size: dec!(0.05),
            step_size: dec!(0.001),
            min_notional: dec!(10),
        };
        assert_eq!(rules.round_quantity(dec!(1.23999)), dec!(1.239));
        assert_eq!(rules.round_quantity(dec!(0.0009)), dec!(0));
        assert_eq!(rules.round_price(dec!(100.024)), dec!(100));
        assert_eq!(rules.round_price(dec!(100.025)), dec!(100.05));
        assert_eq!(rules.round_price(dec!(100.074)), dec!(100.05));
    }
}
