//! The paper venue: a simulated exchange that fills orders against candles.
//!
//! Fill model (also in ARCHITECTURE.md):
//! - strategy market orders fill at the next candle's open (or, with
//!   `fill_timing: signal_close`, at once at the signal candle's close),
//!   plus slippage against the taker;
//! - operator and kill-switch orders fill at once at the last close plus
//!   slippage;
//! - fills on a candle carry the candle's open time; an order placed at a
//!   candle's close (engine time = close time = the next candle's open) is
//!   first considered on the next candle;
//! - on each candle, after the pending market orders, resting stops are
//!   checked before resting limits (when a candle reaches both a stop-loss
//!   and a take-profit, the worse outcome is assumed);
//! - a stop triggers when the candle touches its price; gap-aware: if the
//!   candle opens beyond the stop it fills at the open, else at the stop;
//!   plus slippage; taker fee;
//! - a limit fills when the candle trades through its price (strictly
//!   beyond it); at the limit, or at the open when the candle opens beyond
//!   it; maker fee, no slippage;
//! - sells never exceed the position (spot, long only): they are clipped at
//!   fill time, and an order with nothing left to sell is cancelled;
//! - a buy that the cash cannot pay for at fill time is shrunk to what the
//!   cash pays for (fee included), or cancelled below the minimum notional;
//! - fees are the fill's notional times the bps rate, at full precision.

use rust_decimal::Decimal;

use crate::domain::config::{Execution, Fees};
use crate::domain::{
    Candle, Fill, InstrumentRules, Liquidity, Order, OrderKind, OrderRequest, OrderStatus, Side,
};

use super::portfolio::{Portfolio, Trade};

const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// Something the venue did.
// Events go into a scratch buffer the engine reuses across steps, so the
// size of the larger variant costs nothing per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueEvent {
    Filled {
        /// The order in its final state (filled: every order fills whole or
        /// is cancelled).
        order: Order,
        fill: Fill,
        /// The round trip this fill completed, if any.
        trade: Option<Trade>,
        /// The position right after this fill.
        position_after: Decimal,
    },
    Cancelled(Order),
}

/// Why the venue refused an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueRejection {
    #[error("order value {notional} is below the minimum notional {min}")]
    BelowMinNotional { notional: Decimal, min: Decimal },
    #[error("quantity is zero after rounding down to the step size {step}")]
    ZeroQuantity { step: Decimal },
    #[error("{kind:?} orders need a price")]
    MissingPrice { kind: OrderKind },
    /// The price is not above zero once rounded to the tick (0.001 with a
    /// tick of 0.01 is 0).
    #[error("price must be at least the tick size {tick}")]
    BadPrice { tick: Decimal },
    #[error("a client tag `{0}` is already in use by an open order")]
    DuplicateTag(String),
}

impl VenueRejection {
    /// The check's name, as a refusal reports it.
    pub fn check(&self) -> &'static str {
        match self {
            Self::BelowMinNotional { .. } => "min_notional",
            Self::ZeroQuantity { .. } => "step_size",
            Self::MissingPrice { .. } => "price",
            Self::BadPrice { .. } => "tick_size",
            Self::DuplicateTag(_) => "client_tag",
        }
    }
}

/// Why a reduce-only order is cancelled once the position is flat.
const NOTHING_TO_REDUCE: &str = "reduce-only order has nothing left to reduce";

/// A resting reduce-only sell (a protective stop, a take-profit): nothing
/// to do once the position is flat.
pub(crate) fn is_reduce_only_sell(order: &Order) -> bool {
    order.reduce_only && order.side == Side::Sell
}

/// Serialisable so that resting orders (and the next order id, which keeps
/// ids unique) survive a restart. The terms (rules, fees, execution) are
/// the config's, not readings: a checkpoint leaves them out, and a restored
/// venue keeps the ones it was built with.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PaperVenue {
    #[serde(skip)]
    rules: InstrumentRules,
    #[serde(skip)]
    fees: Fees,
    #[serde(skip)]
    execution: Execution,
    next_id: u64,
    /// Resting limit/stop orders and market orders waiting for the next open,
    /// in the order they were accepted.
    open: Vec<Order>,
}

impl PaperVenue {
    pub fn new(rules: InstrumentRules, fees: Fees, execution: Execution) -> Self {
        Self {
            rules,
            fees,
            execution,
            next_id: 1,
            open: Vec::new(),
        }
    }

    pub fn rules(&self) -> &InstrumentRules {
        &self.rules
    }

    pub fn fees(&self) -> &Fees {
        &self.fees
    }

    pub fn execution(&self) -> &Execution {
        &self.execution
    }

    pub fn set_terms(&mut self, rules: InstrumentRules, fees: Fees, execution: Execution) {
        self.rules = rules;
        self.fees = fees;
        self.execution = execution;
    }

    pub fn open_orders(&self) -> &[Order] {
        &self.open
    }

    /// Check an order against the instrument rules; `reference` prices a
    /// market order for the minimum-notional check.
    pub fn validate(
        &self,
        request: &OrderRequest,
        reference: Decimal,
    ) -> Result<(), VenueRejection> {
        if request.quantity <= Decimal::ZERO {
            return Err(VenueRejection::ZeroQuantity {
                step: self.rules.step_size,
            });
        }
        let price = match (request.kind, request.price) {
            (OrderKind::Market, _) => reference,
            (kind, None) => return Err(VenueRejection::MissingPrice { kind }),
            (_, Some(price)) if price <= Decimal::ZERO => {
                return Err(VenueRejection::BadPrice {
                    tick: self.rules.tick_size,
                });
            }
            (_, Some(price)) => price,
        };
        let notional = request.quantity * price;
        if notional < self.rules.min_notional {
            return Err(VenueRejection::BelowMinNotional {
                notional,
                min: self.rules.min_notional,
            });
        }
        if !request.client_tag.is_empty()
            && self.open.iter().any(|o| o.client_tag == request.client_tag)
        {
            return Err(VenueRejection::DuplicateTag(request.client_tag.clone()));
        }
        Ok(())
    }

    /// Accept an order (validated beforehand) to rest or wait for the next open.
    pub fn accept(&mut self, request: OrderRequest, ts: i64) -> Order {
        let order = Order {
            id: self.next_id,
            client_tag: request.client_tag,
            side: request.side,
            kind: request.kind,
            quantity: request.quantity,
            filled: Decimal::ZERO,
            price: request.price,
            reduce_only: request.reduce_only,
            origin: request.origin,
            status: OrderStatus::Open,
            created_ts: ts,
            updated_ts: ts,
            reason: None,
        };
        self.next_id += 1;
        self.open.push(order.clone());
        order
    }

    /// Number new orders from at least `first`.
    pub fn number_from(&mut self, first: u64) {
        self.next_id = self.next_id.max(first);
    }

    /// The open order with this id, to update in place (live fills).
    pub fn open_order_mut(&mut self, id: u64) -> Option<&mut Order> {
        self.open.iter_mut().find(|o| o.id == id)
    }

    /// Take the open order with this id out of the book with its final
    /// `status`.
    pub fn remove_open(&mut self, id: u64, status: OrderStatus, ts: i64) -> Option<Order> {
        let index = self.open.iter().position(|o| o.id == id)?;
        let mut order = self.open.remove(index);
        order.status = status;
        order.updated_ts = ts;
        Some(order)
    }

    /// Cancel the open order with this client tag.
    pub fn cancel_tag(&mut self, tag: &str, ts: i64, reason: &str) -> Option<Order> {
        let index = self.open.iter().position(|o| o.client_tag == tag)?;
        Some(Self::close(
            self.open.remove(index),
            OrderStatus::Cancelled,
            ts,
            Some(reason),
        ))
    }

    /// Cancel the open order with this id.
    pub fn cancel_id(&mut self, id: u64, ts: i64, reason: &str) -> Option<Order> {
        let index = self.open.iter().position(|o| o.id == id)?;
        Some(Self::close(
            self.open.remove(index),
            OrderStatus::Cancelled,
            ts,
            Some(reason),
        ))
    }

    /// Cancel every open order.
    pub fn cancel_all(&mut self, ts: i64, reason: &str) -> Vec<Order> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(|order| Self::close(order, OrderStatus::Cancelled, ts, Some(reason)))
            .collect()
    }

    fn close(mut order: Order, status: OrderStatus, ts: i64, reason: Option<&str>) -> Order {
        order.status = status;
        order.updated_ts = ts;
        order.reason = reason.map(str::to_string);
        order
    }

    /// Fill an order at once at `reference` (the last close) plus slippage:
    /// operator orders, the kill-switch, and signal-close market orders.
    pub fn fill_now(
        &mut self,
        request: OrderRequest,
        reference: Decimal,
        ts: i64,
        portfolio: &mut Portfolio,
        events: &mut Vec<VenueEvent>,
    ) -> Order {
        let order = self.accept(request, ts);
        let index = self.open.len() - 1;
        let price = self.slipped(order.side, reference);
        self.execute(index, price, Liquidity::Taker, ts, portfolio, events);
        self.cancel_stale_reduce_only(portfolio, ts, events);
        order
    }

    /// A flat position leaves resting reduce-only sells nothing to do: cancel them.
    fn cancel_stale_reduce_only(
        &mut self,
        portfolio: &Portfolio,
        ts: i64,
        events: &mut Vec<VenueEvent>,
    ) {
        if !portfolio.position().is_zero() {
            return;
        }
        let (stale, keep): (Vec<Order>, Vec<Order>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(is_reduce_only_sell);
        self.open = keep;
        for order in stale {
            let reason = Some(NOTHING_TO_REDUCE);
            events.push(VenueEvent::Cancelled(Self::close(
                order,
                OrderStatus::Cancelled,
                ts,
                reason,
            )));
        }
    }

    /// Run one candle past the open orders: pending market orders at the
    /// open, then stops, then limits; then drop reduce-only orders a flat
    /// position has made pointless.
    pub fn on_candle(
        &mut self,
        candle: &Candle,
        portfolio: &mut Portfolio,
        events: &mut Vec<VenueEvent>,
    ) {
        if self.open.is_empty() {
            return;
        }
        self.match_candle(candle, portfolio, events);
        self.cancel_stale_reduce_only(portfolio, candle.ts, events);
    }

    fn match_candle(
        &mut self,
        candle: &Candle,
        portfolio: &mut Portfolio,
        events: &mut Vec<VenueEvent>,
    ) {
        for kind in [OrderKind::Market, OrderKind::Stop, OrderKind::Limit] {
            let mut index = 0;
            while index < self.open.len() {
                let order = &self.open[index];
                // Orders placed after this candle opened wait for the next one.
                if order.kind != kind || order.created_ts > candle.ts {
                    index += 1;
                    continue;
                }
                let execution = match kind {
                    OrderKind::Market => {
                        Some((self.slipped(order.side, candle.open), Liquidity::Taker))
                    }
                    OrderKind::Stop => self.stop_trigger(order, candle),
                    OrderKind::Limit => {
                        Self::limit_fill(order, candle).map(|p| (p, Liquidity::Maker))
                    }
                };
                match execution {
                    Some((price, liquidity)) => {
                        // execute removes the order; the next one slides into `index`.
                        self.execute(index, price, liquidity, candle.ts, portfolio, events);
                    }
                    None => index += 1,
                }
            }
        }
    }

    fn stop_trigger(&self, order: &Order, candle: &Candle) -> Option<(Decimal, Liquidity)> {
        let stop = order.price?;
        let touched = match order.side {
            Side::Buy => candle.high >= stop,
            Side::Sell => candle.low <= stop,
        };
        if !touched {
            return None;
        }
        let base = match order.side {
            Side::Buy => candle.open.max(stop),
            Side::Sell => candle.open.min(stop),
        };
        Some((self.slipped(order.side, base), Liquidity::Taker))
    }

    fn limit_fill(order: &Order, candle: &Candle) -> Option<Decimal> {
        let limit = order.price?;
        match order.side {
            Side::Buy if candle.low < limit => Some(candle.open.min(limit)),
            Side::Sell if candle.high > limit => Some(candle.open.max(limit)),
            _ => None,
        }
    }

    /// Price moved against the taker by the slippage, back on the tick grid.
    fn slipped(&self, side: Side, price: Decimal) -> Decimal {
        if self.execution.slippage_bps.is_zero() {
            return price;
        }
        let factor = Decimal::ONE + side.sign() * self.execution.slippage_bps / BPS;
        self.rules.round_price(price * factor)
    }

    fn fee(&self, notional: Decimal, liquidity: Liquidity) -> Decimal {
        let bps = match liquidity {
            Liquidity::Maker => self.fees.maker_bps,
            Liquidity::Taker => self.fees.taker_bps,
        };
        notional * bps / BPS
    }

    /// Fill the open order at `index` (removing it), clipping sells to the
    /// position and buys to the cash.
    fn execute(
        &mut self,
        index: usize,
        price: Decimal,
        liquidity: Liquidity,
        ts: i64,
        portfolio: &mut Portfolio,
        events: &mut Vec<VenueEvent>,
    ) {
        let order = self.open.remove(index);
        let quantity = match order.side {
            Side::Sell => order.quantity.min(portfolio.position()),
            Side::Buy if order.reduce_only => Decimal::ZERO,
            Side::Buy => {
                let fee_rate = self.fee(Decimal::ONE, liquidity);
                let affordable = portfolio
                    .cash()
                    .checked_div(price * (Decimal::ONE + fee_rate))
                    .unwrap_or(Decimal::ZERO);
                order.quantity.min(self.rules.round_quantity(affordable))
            }
        };
        if price <= Decimal::ZERO
            || quantity.is_zero()
            || quantity * price < self.rules.min_notional
        {
            let reason = match order.side {
                _ if price <= Decimal::ZERO => "the fill price rounds to zero on the tick grid",
                Side::Sell => "nothing to sell: the position is smaller than the order's minimum",
                Side::Buy if order.reduce_only => "a reduce-only buy cannot reduce a long position",
                Side::Buy => "insufficient cash at fill time",
            };
            events.push(VenueEvent::Cancelled(Self::close(
                order,
                OrderStatus::Cancelled,
                ts,
                Some(reason),
            )));
            return;
        }
        let notional = quantity * price;
        let fill = Fill {
            order_id: order.id,
            client_tag: order.client_tag.clone(),
            side: order.side,
            quantity,
            price,
            fee: self.fee(notional, liquidity),
            liquidity,
            origin: order.origin,
            ts,
        };
        let trade = portfolio.apply_fill(&fill);
        let position_after = portfolio.position();
        // Cut short by what there was to pay or to sell: the order is done,
        // and says why it holds less than it asked for.
        let short = (quantity < order.quantity).then(|| {
            let limit = match order.side {
                Side::Buy => "the cash at fill time paid for no more",
                Side::Sell => "the position held no more",
            };
            format!("filled {quantity} of {}: {limit}", order.quantity)
        });
        let order = Order {
            filled: quantity,
            ..order
        };
        events.push(VenueEvent::Filled {
            order: Self::close(order, OrderStatus::Filled, ts, short.as_deref()),
            fill,
            trade,
            position_after,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderOrigin;
    use rust_decimal_macros::dec;

    fn venue(slippage_bps: Decimal) -> PaperVenue {
        PaperVenue::new(
            InstrumentRules {
                tick_size: dec!(0.01),
                step_size: dec!(0.001),
                min_notional: dec!(5),
            },
            Fees {
                maker_bps: dec!(2),
                taker_bps: dec!(10),
            },
            Execution {
                slippage_bps,
                ..Execution::default()
            },
        )
    }

    fn request(
        side: Side,
        kind: OrderKind,
        quantity: Decimal,
        price: Option<Decimal>,
    ) -> OrderRequest {
        OrderRequest {
            client_tag: String::new(),
            side,
            kind,
            quantity,
            price,
            reduce_only: false,
            origin: OrderOrigin::Strategy,
        }
    }

    fn candle(ts: i64, open: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Candle {
        Candle {
            ts,
            open,
            high,
            low,
            close,
            volume: dec!(1),
        }
    }

    fn fills(events: &[VenueEvent]) -> Vec<&Fill> {
        events
            .iter()
            .filter_map(|e| match e {
                VenueEvent::Filled { fill, .. } => Some(fill),
                VenueEvent::Cancelled(_) => None,
            })
            .collect()
    }

    #[test]
    fn market_orders_fill_at_the_next_open_with_slippage_and_taker_fee() {
        let mut v = venue(dec!(10));
        let mut p = Portfolio::new(dec!(1000));
        v.accept(request(Side::Buy, OrderKind::Market, dec!(2), None), 60_000);
        let mut events = Vec::new();
        v.on_candle(
            &candle(60_000, dec!(100), dec!(101), dec!(99), dec!(100.5)),
            &mut p,
            &mut events,
        );
        let fill = fills(&events)[0];
        // 100 * (1 + 10 bps) = 100.1; fee 200.2 * 10 bps = 0.2002.
        assert_eq!(
            (fill.price, fill.fee, fill.liquidity),
            (dec!(100.1), dec!(0.2002), Liquidity::Taker)
        );
        assert_eq!(p.position(), dec!(2));
        assert!(v.open_orders().is_empty());
    }

    #[test]
    fn an_order_cut_short_by_the_cash_says_how_much_filled_and_why() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(1000));
        v.accept(
            request(Side::Buy, OrderKind::Market, dec!(20), None),
            60_000,
        );
        let mut events = Vec::new();
        v.on_candle(
            &candle(60_000, dec!(100), dec!(101), dec!(99), dec!(100)),
            &mut p,
            &mut events,
        );
        let VenueEvent::Filled { order, .. } = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(order.status, OrderStatus::Filled);
        assert!(order.filled < order.quantity, "{order:?}");
        assert_eq!(
            order.reason.as_deref(),
            Some(
                format!(
                    "filled {} of 20: the cash at fill time paid for no more",
                    order.filled
                )
                .as_str()
            )
        );
        // A whole fill carries no reason.
        v.accept(
            request(Side::Sell, OrderKind::Market, dec!(1), None),
            120_000,
        );
        events.clear();
        v.on_candle(
            &candle(120_000, dec!(100), dec!(101), dec!(99), dec!(100)),
            &mut p,
            &mut events,
        );
        let VenueEvent::Filled { order, .. } = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!((order.filled, order.reason.as_deref()), (dec!(1), None));
    }

    #[test]
    fn orders_placed_after_a_candle_opened_wait_for_the_next() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(1000));
        v.accept(
            request(Side::Buy, OrderKind::Market, dec!(1), None),
            120_000,
        );
        let mut events = Vec::new();
        v.on_candle(
            &candle(60_000, dec!(100), dec!(101), dec!(99), dec!(100)),
            &mut p,
            &mut events,
        );
        assert!(events.is_empty());
    }

    #[test]
    fn limits_fill_only_when_traded_through_at_maker_fee() {
        let mut v = venue(dec!(10));
        let mut p = Portfolio::new(dec!(1000));
        v.accept(
            request(Side::Buy, OrderKind::Limit, dec!(1), Some(dec!(99))),
            0,
        );
        let mut events = Vec::new();
        // Low touches 99 but does not trade through: no fill.
        v.on_candle(
            &candle(60_000, dec!(100), dec!(101), dec!(99), dec!(100)),
            &mut p,
            &mut events,
        );
        assert!(events.is_empty());
        // Low 98.5 < 99: fills at the limit, no slippage, maker fee 2 bps.
        v.on_candle(
            &candle(120_000, dec!(100), dec!(101), dec!(98.5), dec!(100)),
            &mut p,
            &mut events,
        );
        let fill = fills(&events)[0];
        assert_eq!(
            (fill.price, fill.fee, fill.liquidity),
            (dec!(99), dec!(0.0198), Liquidity::Maker)
        );
        // A sell limit when the candle gaps above it fills at the (better) open.
        v.accept(
            request(Side::Sell, OrderKind::Limit, dec!(1), Some(dec!(102))),
            120_000,
        );
        events.clear();
        v.on_candle(
            &candle(180_000, dec!(105), dec!(106), dec!(104), dec!(105)),
            &mut p,
            &mut events,
        );
        assert_eq!(fills(&events)[0].price, dec!(105));
    }

    #[test]
    fn stops_trigger_on_touch_and_are_gap_aware() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(1000));
        p.apply_fill(&Fill {
            order_id: 0,
            client_tag: String::new(),
            side: Side::Buy,
            quantity: dec!(2),
            price: dec!(100),
            fee: dec!(0),
            liquidity: Liquidity::Taker,
            origin: OrderOrigin::Strategy,
            ts: 0,
        });
        v.accept(
            request(Side::Sell, OrderKind::Stop, dec!(1), Some(dec!(95))),
            0,
        );
        v.accept(
            request(Side::Sell, OrderKind::Stop, dec!(1), Some(dec!(90))),
            0,
        );
        let mut events = Vec::new();
        // Touches 95 exactly: the first stop fills at 95.
        v.on_candle(
            &candle(60_000, dec!(97), dec!(98), dec!(95), dec!(96)),
            &mut p,
            &mut events,
        );
        assert_eq!(
            fills(&events).iter().map(|f| f.price).collect::<Vec<_>>(),
            [dec!(95)]
        );
        // Opens at 85, below the 90 stop: fills at the open, not at 90.
        events.clear();
        v.on_candle(
            &candle(120_000, dec!(85), dec!(86), dec!(84), dec!(85)),
            &mut p,
            &mut events,
        );
        assert_eq!(fills(&events)[0].price, dec!(85));
        assert!(p.position().is_zero());
    }

    #[test]
    fn instrument_rules_refuse_with_reasons() {
        let v = venue(dec!(0));
        let small = request(Side::Buy, OrderKind::Market, dec!(0.04), None);
        assert_eq!(
            v.validate(&small, dec!(100)),
            Err(VenueRejection::BelowMinNotional {
                notional: dec!(4),
                min: dec!(5)
            })
        );
        let zero = request(Side::Buy, OrderKind::Market, dec!(0), None);
        assert!(matches!(
            v.validate(&zero, dec!(100)),
            Err(VenueRejection::ZeroQuantity { .. })
        ));
        let no_price = request(Side::Buy, OrderKind::Limit, dec!(1), None);
        assert!(matches!(
            v.validate(&no_price, dec!(100)),
            Err(VenueRejection::MissingPrice { .. })
        ));
        // Rounded to the tick, the price is zero: the answer names the tick.
        let zero_price = request(Side::Buy, OrderKind::Limit, dec!(1), Some(dec!(0)));
        let refused = v.validate(&zero_price, dec!(100)).unwrap_err();
        assert!(matches!(refused, VenueRejection::BadPrice { .. }));
        assert!(refused.to_string().contains("tick size"), "{refused}");
    }

    #[test]
    fn sells_are_clipped_to_the_position_and_reduce_only_leftovers_cancelled() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(1000));
        let mut events = Vec::new();
        v.fill_now(
            request(Side::Buy, OrderKind::Market, dec!(1), None),
            dec!(100),
            0,
            &mut p,
            &mut events,
        );
        let mut protective = request(Side::Sell, OrderKind::Stop, dec!(1), Some(dec!(90)));
        protective.reduce_only = true;
        v.accept(protective, 0);
        events.clear();
        // Selling 3 with 1 held sells 1; the stop is then cancelled.
        v.fill_now(
            request(Side::Sell, OrderKind::Market, dec!(3), None),
            dec!(100),
            0,
            &mut p,
            &mut events,
        );
        assert_eq!(fills(&events)[0].quantity, dec!(1));
        assert!(matches!(&events[1], VenueEvent::Cancelled(o) if o.kind == OrderKind::Stop));
        assert!(v.open_orders().is_empty());
    }

    #[test]
    fn buys_shrink_to_the_cash_at_fill_time() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(100));
        let mut events = Vec::new();
        v.fill_now(
            request(Side::Buy, OrderKind::Market, dec!(5), None),
            dec!(50),
            0,
            &mut p,
            &mut events,
        );
        // 100 / (50 * 1.001) = 1.998 after rounding down to the step.
        assert_eq!(fills(&events)[0].quantity, dec!(1.998));
        assert!(p.cash() >= Decimal::ZERO);
    }

    #[test]
    fn a_sweep_of_reduce_only_orders_skips_no_other_order() {
        let mut v = venue(dec!(0));
        let mut p = Portfolio::new(dec!(1000));
        let mut events = Vec::new();
        v.fill_now(
            request(Side::Buy, OrderKind::Market, dec!(1), None),
            dec!(100),
            0,
            &mut p,
            &mut events,
        );
        let mut protective = request(Side::Sell, OrderKind::Stop, dec!(1), Some(dec!(50)));
        protective.reduce_only = true;
        v.accept(protective, 0);
        v.accept(request(Side::Sell, OrderKind::Market, dec!(1), None), 0);
        v.accept(request(Side::Buy, OrderKind::Market, dec!(1), None), 0);
        events.clear();
        v.on_candle(
            &candle(60_000, dec!(100), dec!(101), dec!(99), dec!(100)),
            &mut p,
            &mut events,
        );
        // The sell flattens and the buy still fills at this open (it is not
        // skipped); the sweep then finds the position long again, so the
        // protective stop stays.
        let sides: Vec<Side> = fills(&events).iter().map(|f| f.side).collect();
        assert_eq!(sides, [Side::Sell, Side::Buy]);
        assert_eq!(p.position(), dec!(1));
        assert_eq!(v.open_orders().len(), 1);
    }

    #[test]
    fn prices_that_round_to_zero_cancel_instead_of_panicking() {
        let mut v = venue(dec!(50));
        let mut p = Portfolio::new(dec!(1000));
        let mut events = Vec::new();
        v.accept(request(Side::Buy, OrderKind::Market, dec!(1), None), 0);
        v.on_candle(
            &candle(60_000, dec!(0.004), dec!(0.004), dec!(0.004), dec!(0.004)),
            &mut p,
            &mut events,
        );
        assert!(
            matches!(&events[0], VenueEvent::Cancelled(o) if o.reason.as_deref().unwrap().contains("rounds to zero"))
        );
        assert_eq!(p.cash(), dec!(1000));
    }
}
