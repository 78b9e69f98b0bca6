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
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub tick_size: Decimal,
    /// Quantity increment; quantities are rounded down to a whole step.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub step_size: Decimal,
    /// Smallest order value (quantity x price) accepted.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
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

    /// Why `quantity` is not a whole number of steps, naming the two
    /// nearest that are; None when it is. For orders a person writes: a
    /// strategy's quantities are rounded, a person is told.
    pub fn quantity_off_grid(&self, quantity: Decimal) -> Option<String> {
        off_grid(quantity, self.step_size, "step size")
    }

    /// Why `price` is not a whole number of ticks (as
    /// [`Self::quantity_off_grid`]).
    pub fn price_off_grid(&self, price: Decimal) -> Option<String> {
        off_grid(price, self.tick_size, "tick size")
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

/// Why `value` is not a whole number of `unit`s, if it is not.
fn off_grid(value: Decimal, unit: Decimal, name: &str) -> Option<String> {
    if unit <= Decimal::ZERO {
        return None;
    }
    let units = value.checked_div(unit)?;
    if units.fract().is_zero() {
        return None;
    }
    let below = units.floor().checked_mul(unit)?.normalize();
    if below.is_zero() {
        return Some(format!(
            "{value} is less than the {name} {unit}, the smallest there is"
        ));
    }
    let above = below.checked_add(unit)?.normalize();
    Some(format!(
        "{value} is not a multiple of the {name} {unit}: {below} or {above} is"
    ))
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

    #[test]
    fn off_grid_values_are_named_with_their_neighbours() {
        let rules = InstrumentRules {
            tick_size: dec!(0.05),
            step_size: dec!(0.001),
            min_notional: dec!(10),
        };
        assert_eq!(rules.quantity_off_grid(dec!(1.239)), None);
        assert_eq!(rules.quantity_off_grid(dec!(2)), None);
        assert_eq!(
            rules.quantity_off_grid(dec!(1.2345)).as_deref(),
            Some("1.2345 is not a multiple of the step size 0.001: 1.234 or 1.235 is")
        );
        assert_eq!(
            rules.quantity_off_grid(dec!(0.0004)).as_deref(),
            Some("0.0004 is less than the step size 0.001, the smallest there is")
        );
        assert_eq!(rules.price_off_grid(dec!(100.05)), None);
        assert_eq!(
            rules.price_off_grid(dec!(100.07)).as_deref(),
            Some("100.07 is not a multiple of the tick size 0.05: 100.05 or 100.1 is")
        );
    }
}
