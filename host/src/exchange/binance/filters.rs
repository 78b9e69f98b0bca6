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
    /// The most open stop (and take-profit) orders, which Binance calls
    /// algo orders.
    #[serde(rename_all = "camelCase")]
    MaxNumAlgoOrders {
        max_num_algo_orders: u32,
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
    /// The order types the symbol takes (`MARKET`, `LIMIT`, `STOP_LOSS`,
    /// ...); when absent, not checked.
    #[serde(default)]
    pub order_types: Vec<String>,
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
    /// `STOP_LOSS`: a market order once the last price reaches the stop
    /// price (the shape's `price`).
    StopLoss,
}

impl OrderType {
    /// The name Binance gives the type.
    pub fn name(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::StopLoss => "STOP_LOSS",
        }
    }
}

/// What the filters look at in an order.
#[derive(Debug, Clone, Copy)]
pub struct OrderShape {
    pub side: OrderSide,
    pub kind: OrderType,
    pub quantity: Decimal,
    /// The limit price, or a stop order's stop price (None for market
    /// orders).
    pub price: Option<Decimal>,
}

/// An order refused before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by Binance's {filter} filter: {reason}")]
pub struct FilterRefusal {
    pub filter: &'static str,
    pub reason: String,
}

/// How many orders are open on the symbol now: all of them, and the stop
/// orders among them (MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOrders {
    pub all: u32,
    pub stops: u32,
}

impl std::ops::Add for OpenOrders {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            all: self.all.saturating_add(other.all),
            stops: self.stops.saturating_add(other.stops),
        }
    }
}

/// A stop order must not trigger at once (Binance refuses it: "Stop price
/// would trigger immediately"): a sell stop lies below the last price, a
/// buy stop above it.
fn check_stop(order: &OrderShape, reference: Decimal) -> Result<(), FilterRefusal> {
    let Some(stop) = order.price else {
        return refuse("stop price", "a stop order needs a stop price".into());
    };
    match order.side {
        OrderSide::Sell if stop >= reference => refuse(
            "stop price",
            format!("a sell stop at {stop} would trigger at once: the last price is {reference}"),
        ),
        OrderSide::Buy if stop <= reference => refuse(
            "stop price",
            format!("a buy stop at {stop} would trigger at once: the last price is {reference}"),
        ),
        _ => Ok(()),
    }
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
    /// Check `order` against every filter, with `reference` (the last price
    /// the bot saw) standing in for Binance's average price too; `open` the
    /// symbol's open orders now.
    pub fn check(
        &self,
        order: &OrderShape,
        reference: Decimal,
        open: OpenOrders,
    ) -> Result<(), FilterRefusal> {
        self.check_at(order, reference, reference, open)
    }

    /// Check `order` against every filter: `last` is the last price (what
    /// a stop must not have crossed already), `average` Binance's average
    /// price over `avgPriceMins` (`GET /api/v3/avgPrice`), which it prices
    /// a market order's notional at and sets the price bands of
    /// PERCENT_PRICE_BY_SIDE around; `open` the symbol's open orders now.
    pub fn check_at(
        &self,
        order: &OrderShape,
        last: Decimal,
        average: Decimal,
        open: OpenOrders,
    ) -> Result<(), FilterRefusal> {
        if self.status != "TRADING" {
            return refuse(
                "symbol status",
                format!("{} is {}, not TRADING", self.symbol, self.status),
            );
        }
        let kind = order.kind.name();
        if !self.order_types.is_empty() && !self.order_types.iter().any(|t| t == kind) {
            return refuse(
                "order type",
                format!(
                    "{} takes {} orders, not {kind}",
                    self.symbol,
                    self.order_types.join(", ")
                ),
            );
        }
        if order.kind == OrderType::StopLoss {
            check_stop(order, last)?;
        }
        // A stop order trades at market once triggered: the market rules
        // apply to it, with its stop price as the price it is checked at.
        let market = order.kind != OrderType::Limit;
        let price = order.price.unwrap_or(average);
        let notional = price * order.quantity;
        for filter in &self.filters {
            match filter {
                Filter::PriceFilter {
                    min_price,
                    max_price,
                    tick_size,
                } if order.kind != OrderType::Market => {
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
                    let (high, low) = (average * up, average * down);
                    if !up.is_zero() && price > high {
                        return refuse(
                            "PERCENT_PRICE_BY_SIDE",
                            format!(
                                "price {price} is above {high} ({up} x the average price {average})"
                            ),
                        );
                    }
                    if !down.is_zero() && price < low {
                        return refuse(
                            "PERCENT_PRICE_BY_SIDE",
                            format!(
                                "price {price} is below {low} ({down} x the average price {average})"
                            ),
                        );
                    }
                }
                Filter::MaxNumOrders { max_num_orders }
                    if *max_num_orders != 0 && open.all >= *max_num_orders =>
                {
                    return refuse(
                        "MAX_NUM_ORDERS",
                        format!(
                            "{} orders are open, the most allowed is {max_num_orders}",
                            open.all
                        ),
                    );
                }
                Filter::MaxNumAlgoOrders {
                    max_num_algo_orders,
                } if order.kind == OrderType::StopLoss
                    && *max_num_algo_orders != 0
                    && open.stops >= *max_num_algo_orders =>
                {
                    return refuse(
                        "MAX_NUM_ALGO_ORDERS",
                        format!(
                            "{} stop orders are open, the most allowed is {max_num_algo_orders}",
                            open.stops
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

    fn open(all: u32) -> OpenOrders {
        OpenOrders { all, stops: 0 }
    }

    fn stop(side: OrderSide, quantity: Decimal, price: Decimal) -> OrderShape {
        OrderShape {
            side,
            kind: OrderType::StopLoss,
            quantity,
            price: Some(price),
        }
    }

    fn refused_by(order: OrderShape, open_orders: u32) -> &'static str {
        btcusdt()
            .check(&order, dec!(60000), open(open_orders))
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
                open(0)
            ),
            Ok(())
        );
        assert_eq!(info.check(&market(dec!(0.5)), dec!(60000), open(2)), Ok(()));
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
                open(0),
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
        assert_eq!(
            info.check(&market(dec!(0.00001)), dec!(60000), open(0)),
            Ok(())
        );
    }

    #[test]
    fn stop_orders_are_checked_as_market_orders_at_their_stop_price() {
        use OrderSide::{Buy, Sell};
        let info = btcusdt();
        assert_eq!(
            info.check(&stop(Sell, dec!(0.001), dec!(58000)), dec!(60000), open(0)),
            Ok(())
        );
        assert_eq!(
            info.check(&stop(Buy, dec!(0.001), dec!(62000)), dec!(60000), open(0)),
            Ok(())
        );
        // One that would trigger at once, as Binance refuses it.
        assert_eq!(
            refused_by(stop(Sell, dec!(0.001), dec!(60000)), 0),
            "stop price"
        );
        assert_eq!(
            refused_by(stop(Buy, dec!(0.001), dec!(59000)), 0),
            "stop price"
        );
        // The stop price is on the tick grid; the quantity within the market lots.
        assert_eq!(
            refused_by(stop(Sell, dec!(0.001), dec!(58000.005)), 0),
            "PRICE_FILTER"
        );
        assert_eq!(
            refused_by(stop(Sell, dec!(121), dec!(58000)), 0),
            "MARKET_LOT_SIZE"
        );
        // The notional at the stop price: 0.0001 x 40,000 = 4 USDT.
        assert_eq!(
            refused_by(stop(Sell, dec!(0.0001), dec!(40000)), 0),
            "NOTIONAL"
        );
        // Open stops count against MAX_NUM_ALGO_ORDERS, other orders not.
        let five_stops = OpenOrders { all: 2, stops: 5 };
        assert_eq!(
            info.check(
                &stop(Sell, dec!(0.001), dec!(58000)),
                dec!(60000),
                five_stops
            )
            .unwrap_err()
            .filter,
            "MAX_NUM_ALGO_ORDERS"
        );
        assert_eq!(
            info.check(
                &limit(Buy, dec!(0.001), dec!(59000)),
                dec!(60000),
                five_stops
            ),
            Ok(())
        );
    }

    #[test]
    fn an_order_type_the_symbol_does_not_take_is_refused() {
        let mut info = btcusdt();
        info.order_types = vec!["LIMIT".into(), "MARKET".into()];
        let error = info
            .check(
                &stop(OrderSide::Sell, dec!(0.001), dec!(58000)),
                dec!(60000),
                open(0),
            )
            .unwrap_err();
        assert_eq!(error.filter, "order type");
        assert!(error.to_string().contains("not STOP_LOSS"), "{error}");
        assert_eq!(info.check(&market(dec!(0.5)), dec!(60000), open(0)), Ok(()));
    }

    #[test]
    fn a_halted_symbol_takes_no_orders() {
        let mut info = btcusdt();
        info.status = "HALT".into();
        assert_eq!(
            info.check(&market(dec!(1)), dec!(60000), open(0))
                .unwrap_err()
                .filter,
            "symbol status"
        );
    }
}
