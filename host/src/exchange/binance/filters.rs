//! The trading rules of a Binance symbol, read from `exchangeInfo`, and the
//! check of an order against them before it is sent: an order Binance would
//! refuse is refused here, naming the filter (as the paper venue names its
//! rules). A zero bound disables that bound, as on Binance.

use rust_decimal::Decimal;
use serde::Deserialize;

/// One entry of a symbol's `filters` in `exchangeInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "filterType", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Filter {
    #[serde(rename_all = "camelCase")]
    PriceFilter {
        min_price: Decimal,
        max_price: Decimal,
        tick_size: Decimal,
    },
    LotSize(QuantityBounds),
    MarketLotSize(QuantityBounds),
    #[serde(rename_all = "camelCase")]
    MinNotional {
        min_notional: Decimal,
        #[serde(default)]
        apply_to_market: bool,
    },
    #[serde(rename_all = "camelCase")]
    Notional {
        min_notional: Decimal,
        #[serde(default)]
        apply_min_to_market: bool,
        max_notional: Decimal,
        #[serde(default)]
        apply_max_to_market: bool,
    },
    #[serde(rename_all = "camelCase")]
    PercentPriceBySide {
        bid_multiplier_up: Decimal,
        bid_multiplier_down: Decimal,
        ask_multiplier_up: Decimal,
        ask_multiplier_down: Decimal,
    },
    #[serde(rename_all = "camelCase")]
    MaxNumOrders {
        max_num_orders: u32,
    },
    /// Filters this client does not check (iceberg parts, trailing delta,
    /// ...): orders using them are not sent.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantityBounds {
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub step_size: Decimal,
}

/// A symbol as `exchangeInfo` describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolInfo {
    pub symbol: String,
    pub status: String,
    pub base_asset: String,
    pub quote_asset: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSide {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
}

/// What the filters look at in an order.
#[derive(Debug, Clone, Copy)]
pub struct OrderShape {
    pub side: OrderSide,
    pub kind: OrderType,
    pub quantity: Decimal,
    /// The limit price (None for market orders).
    pub price: Option<Decimal>,
}

/// An order refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by Binance's {filter} filter: {reason}")]
pub struct FilterRefusal {
    pub filter: &'static str,
    pub reason: String,
}

fn refuse(filter: &'static str, reason: String) -> Result<(), FilterRefusal> {
    Err(FilterRefusal { filter, reason })
}

/// `value` is on the grid `min + k * step` (a zero step: any value).
fn on_grid(value: Decimal, min: Decimal, step: Decimal) -> bool {
    step.is_zero() || ((value - min) % step).is_zero()
}

fn check_quantity(
    filter: &'static str,
    bounds: &QuantityBounds,
    quantity: Decimal,
) -> Result<(), FilterRefusal> {
    if !bounds.min_qty.is_zero() && quantity < bounds.min_qty {
        return refuse(
            filter,
            format!("quantity {quantity} is below minQty {}", bounds.min_qty),
        );
    }
    if !bounds.max_qty.is_zero() && quantity > bounds.max_qty {
        return refuse(
            filter,
            format!("quantity {quantity} is above maxQty {}", bounds.max_qty),
        );
    }
    if !on_grid(quantity, bounds.min_qty, bounds.step_size) {
        return refuse(
            filter,
            format!(
                "quantity {quantity} is not a multiple of stepSize {}",
                bounds.step_size.normalize()
            ),
        );
    }
    Ok(())
}

impl SymbolInfo {
    /// Check `order` against every filter. `reference` is the price Binance
    /// would use for a market order's notional and for the price bands (the
    /// last price the bot saw); `open_orders` the symbol's open orders now.
    pub fn check(
        &self,
        order: &OrderShape,
        reference: Decimal,
        open_orders: u32,
    ) -> Result<(), FilterRefusal> {
        if self.status != "TRADING" {
            return refuse(
                "symbol status",
                format!("{} is {}, not TRADING", self.symbol, self.status),
            );
        }
        let market = order.kind == OrderType::Market;
        let price = order.price.unwrap_or(reference);
        let notional = price * order.quantity;
        for filter in &self.filters {
            match filter {
                Filter::PriceFilter {
                    min_price,
                    max_price,
                    tick_size,
                } if !market => {
                    if !min_price.is_zero() && price < *min_price {
                        return refuse(
                            "PRICE_FILTER",
                            format!("price {price} is below minPrice {min_price}"),
                        );
                    }
                    if !max_price.is_zero() && price > *max_price {
                        return refuse(
                            "PRICE_FILTER",
                            format!("price {price} is above maxPrice {max_price}"),
                        );
                    }
                    if !on_grid(price, *min_price, *tick_size) {
                        return refuse(
                            "PRICE_FILTER",
                            format!(
                                "price {price} is not a multiple of tickSize {}",
                                tick_size.normalize()
                            ),
                        );
                    }
                }
                Filter::LotSize(bounds) => check_quantity("LOT_SIZE", bounds, order.quantity)?,
                Filter::MarketLotSize(bounds) if market => {
                    check_quantity("MARKET_LOT_SIZE", bounds, order.quantity)?
                }
                Filter::MinNotional {
                    min_notional,
                    apply_to_market,
                } if (!market || *apply_to_market) && notional < *min_notional => {
                    return refuse(
                        "MIN_NOTIONAL",
                        format!("notional {notional} is below minNotional {min_notional}"),
                    );
                }
                Filter::Notional {
                    min_notional,
                    apply_min_to_market,
                    max_notional,
                    apply_max_to_market,
                } => {
                    if (!market || *apply_min_to_market)
                        && !min_notional.is_zero()
                        && notional < *min_notional
                    {
                        return refuse(
                            "NOTIONAL",
                            format!("notional {notional} is below minNotional {min_notional}"),
                        );
                    }
                    if (!market || *apply_max_to_market)
                        && !max_notional.is_zero()
                        && notional > *max_notional
                    {
                        return refuse(
                            "NOTIONAL",
                            format!("notional {notional} is above maxNotional {max_notional}"),
                        );
                    }
                }
                Filter::PercentPriceBySide {
                    bid_multiplier_up,
                    bid_multiplier_down,
                    ask_multiplier_up,
                    ask_multiplier_down,
                } if !market => {
                    let (up, down) = match order.side {
                        OrderSide::Buy => (bid_multiplier_up, bid_multiplier_down),
                        OrderSide::Sell => (ask_multiplier_up, ask_multiplier_down),
                    };
                    let (high, low) = (reference * up, reference * down);
                    if !up.is_zero() && price > high {
                        return refuse(
                            "PERCENT_PRICE_BY_SIDE",
                            format!(
                                "price {price} is above {high} ({up} x the reference {reference})"
                            ),
                        );
                    }
                    if !down.is_zero() && price < low {
                        return refuse(
                            "PERCENT_PRICE_BY_SIDE",
                            format!(
                                "price {price} is below {low} ({down} x the reference {reference})"
                            ),
                        );
                    }
                }
                Filter::MaxNumOrders { max_num_orders }
                    if *max_num_orders != 0 && open_orders >= *max_num_orders =>
                {
                    return refuse(
                        "MAX_NUM_ORDERS",
                        format!(
                            "{open_orders} orders are open, the most allowed is {max_num_orders}"
                        ),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// BTCUSDT's filters as `exchangeInfo` lists them (the values of the
    /// live exchange at the time of writing, MAX_NUM_ORDERS lowered).
    fn btcusdt() -> SymbolInfo {
        serde_json::from_value(serde_json::json!({
            "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "120.00000000", "stepSize": "0.00000000"},
                {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
                {"filterType": "MIN_NOTIONAL", "minNotional": "5.00000000", "applyToMarket": true, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 3},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5}
            ]
        }))
        .unwrap()
    }

    fn limit(side: OrderSide, quantity: Decimal, price: Decimal) -> OrderShape {
        OrderShape {
            side,
            kind: OrderType::Limit,
            quantity,
            price: Some(price),
        }
    }

    fn market(quantity: Decimal) -> OrderShape {
        OrderShape {
            side: OrderSide::Buy,
            kind: OrderType::Market,
            quantity,
            price: None,
        }
    }

    fn refused_by(order: OrderShape, open: u32) -> &'static str {
        btcusdt()
            .check(&order, dec!(60000), open)
            .expect_err("refused")
            .filter
    }

    #[test]
    fn a_valid_order_passes() {
        let info = btcusdt();
        assert_eq!(
            info.check(
                &limit(OrderSide::Buy, dec!(0.001), dec!(59999.99)),
                dec!(60000),
                0
            ),
            Ok(())
        );
        assert_eq!(info.check(&market(dec!(0.5)), dec!(60000), 2), Ok(()));
    }

    #[test]
    fn every_filter_refuses_once_by_name() {
        use OrderSide::{Buy, Sell};
        assert_eq!(
            refused_by(limit(Buy, dec!(0.001), dec!(0.001)), 0),
            "PRICE_FILTER"
        );
        assert_eq!(
            refused_by(limit(Buy, dec!(0.001), dec!(60000.005)), 0),
            "PRICE_FILTER"
        );
        assert_eq!(
            refused_by(limit(Buy, dec!(0.000015), dec!(60000)), 0),
            "LOT_SIZE"
        );
        assert_eq!(
            refused_by(limit(Buy, dec!(9001), dec!(60000)), 0),
            "LOT_SIZE"
        );
        assert_eq!(refused_by(market(dec!(121)), 0), "MARKET_LOT_SIZE");
        // 0.00005 BTC at 60,000 is 3 USDT: below both minimum notionals;
        // NOTIONAL comes first in the list.
        assert_eq!(
            refused_by(limit(Buy, dec!(0.00005), dec!(60000)), 0),
            "NOTIONAL"
        );
        assert_eq!(refused_by(market(dec!(0.00005)), 0), "NOTIONAL");
        assert_eq!(
            refused_by(limit(Buy, dec!(200), dec!(60000)), 0),
            "NOTIONAL"
        );
        assert_eq!(
            refused_by(limit(Sell, dec!(0.001), dec!(300001)), 0),
            "PERCENT_PRICE_BY_SIDE"
        );
        assert_eq!(
            refused_by(limit(Buy, dec!(0.01), dec!(11999)), 0),
            "PERCENT_PRICE_BY_SIDE"
        );
        assert_eq!(
            refused_by(limit(Buy, dec!(0.001), dec!(60000)), 3),
            "MAX_NUM_ORDERS"
        );
    }

    #[test]
    fn min_notional_alone_and_zero_bounds() {
        let mut info = btcusdt();
        info.filters
            .retain(|f| !matches!(f, Filter::Notional { .. }));
        let error = info
            .check(
                &limit(OrderSide::Buy, dec!(0.00005), dec!(60000)),
                dec!(60000),
                0,
            )
            .unwrap_err();
        assert_eq!(error.filter, "MIN_NOTIONAL");
        assert!(
            error.to_string().contains("minNotional 5.00000000"),
            "{error}"
        );
        // MARKET_LOT_SIZE has a zero minimum and step: any small quantity
        // passes it (LOT_SIZE still applies).
        info.filters
            .retain(|f| !matches!(f, Filter::MinNotional { .. }));
        assert_eq!(info.check(&market(dec!(0.00001)), dec!(60000), 0), Ok(()));
    }

    #[test]
    fn a_halted_symbol_takes_no_orders() {
        let mut info = btcusdt();
        info.status = "HALT".into();
        assert_eq!(
            info.check(&market(dec!(1)), dec!(60000), 0)
                .unwrap_err()
                .filter,
            "symbol status"
        );
    }
}
