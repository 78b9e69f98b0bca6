//! What a strategy sees on each call: the candle, with its market's names,
//! and a read-only view of the bot.
//!
//! These are the SDK's own types, not the wire types of the contract. On the
//! wire a candle names its market by index and the bot view carries only the
//! number of open orders (see `wit/strategy.wit`: both keep the call cheap);
//! here the candle carries the symbol and timeframe themselves, and the open
//! orders are fetched from the host the first time a strategy asks for them.

use std::cell::OnceCell;
use std::sync::Arc;

use crate::OpenOrder;

/// One closed OHLCV candle of the bot's market.
#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    /// The exchange's symbol, e.g. `BTCUSDT`.
    pub symbol: Arc<str>,
    /// The candle interval, e.g. `1m`.
    pub timeframe: Arc<str>,
    /// Open time in epoch milliseconds.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Candle {
    /// A candle of `symbol` on `timeframe` with every price zero; set the
    /// fields you need.
    pub fn new(symbol: &str, timeframe: &str) -> Self {
        Self {
            symbol: symbol.into(),
            timeframe: timeframe.into(),
            ts: 0,
            open: 0.0,
            high: 0.0,
            low: 0.0,
            close: 0.0,
            volume: 0.0,
        }
    }
}

/// The bot as of the moment of the call.
#[derive(Debug, Clone, Default)]
pub struct BotView {
    /// Signed position in base units: > 0 long, < 0 short, 0 flat.
    pub position_qty: f64,
    /// Average entry price of the position (0 when flat).
    pub position_avg_price: f64,
    /// Quote currency not tied up in the position or in resting buy orders.
    pub free_cash: f64,
    /// Cash plus the position marked at the last close.
    pub equity: f64,
    open_order_count: u32,
    /// Filled on first use: from the host inside a plugin, or by
    /// [`BotView::with_open_orders`] in native code.
    open_orders: OnceCell<Vec<OpenOrder>>,
}

impl BotView {
    /// A flat bot with `cash` free and no open orders.
    pub fn flat(cash: f64) -> Self {
        Self {
            free_cash: cash,
            equity: cash,
            ..Self::default()
        }
    }

    /// This view holding `quantity` at `avg_price` (equity and cash as they are).
    pub fn with_position(mut self, quantity: f64, avg_price: f64) -> Self {
        self.position_qty = quantity;
        self.position_avg_price = avg_price;
        self
    }

    /// This view with these open orders (for native tests; inside a plugin
    /// the host supplies them).
    pub fn with_open_orders(mut self, orders: Vec<OpenOrder>) -> Self {
        self.open_order_count = orders.len() as u32;
        self.open_orders = OnceCell::from(orders);
        self
    }

    /// The view as it arrives from the host: open orders are fetched from
    /// the host when first asked for, and only if there are any.
    #[doc(hidden)]
    pub fn from_wire(wire: &crate::bindings::stratbox::strategy::types::BotView) -> Self {
        Self {
            position_qty: wire.position_qty,
            position_avg_price: wire.position_avg_price,
            free_cash: wire.free_cash,
            equity: wire.equity,
            open_order_count: wire.open_order_count,
            open_orders: OnceCell::new(),
        }
    }

    /// Whether the bot holds no position.
    pub fn is_flat(&self) -> bool {
        self.position_qty == 0.0
    }

    /// How many of the strategy's orders are open.
    pub fn open_order_count(&self) -> usize {
        self.open_order_count as usize
    }

    /// The strategy's open orders.
    pub fn open_orders(&self) -> &[OpenOrder] {
        self.open_orders.get_or_init(|| {
            if self.open_order_count == 0 {
                Vec::new()
            } else {
                fetch_open_orders()
            }
        })
    }

    /// Whether a strategy order with this tag is open.
    pub fn has_open_order(&self, tag: &str) -> bool {
        self.open_orders()
            .iter()
            .any(|order| order.client_tag == tag)
    }
}

/// Ask the host for the open orders of the current call.
fn fetch_open_orders() -> Vec<OpenOrder> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::stratbox::strategy::host::open_orders();
    // Natively there is no host: a view built without orders has none.
    #[cfg(not(target_arch = "wasm32"))]
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderKind, Side};

    #[test]
    fn open_orders_given_natively_are_what_the_view_reports() {
        let order = OpenOrder {
            client_tag: "stop".into(),
            side: Side::Sell,
            kind: OrderKind::Stop,
            quantity: 1.0,
            price: Some(90.0),
        };
        let view = BotView::flat(100.0).with_open_orders(vec![order]);
        assert_eq!(view.open_order_count(), 1);
        assert!(view.has_open_order("stop"));
        assert!(!view.has_open_order("take-profit"));
        assert!(BotView::flat(100.0).open_orders().is_empty());
    }

    #[test]
    fn a_position_keeps_cash_and_equity() {
        let view = BotView::flat(100.0).with_position(2.0, 40.0);
        assert_eq!((view.position_qty, view.position_avg_price), (2.0, 40.0));
        assert_eq!((view.free_cash, view.equity), (100.0, 100.0));
        assert!(!view.is_flat());
    }
}
