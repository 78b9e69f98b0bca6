//! [`BotJournal`]: a bot's recent history (orders, fills, trades, equity
//! samples, risk violations), written by its runner and read by the API.
//!
//! Snapshots carry only what changes every candle; history is larger and
//! read rarely, so it lives here behind a mutex that the runner holds for a
//! push and a reader for a copy of one page, never across a plugin call.
//! Each list is a bounded ring: the durable store keeps everything, this
//! keeps what a live view needs.

use std::collections::VecDeque;
use std::sync::Mutex;

use rust_decimal::Decimal;

use crate::domain::{Fill, Order, OrderStatus};
use crate::engine::metrics::EquityPoint;
use crate::engine::{Trade, Violation};

/// Orders kept (open and closed).
pub const ORDER_HISTORY: usize = 2_000;
/// Fills and round trips kept.
pub const TRADE_HISTORY: usize = 10_000;
/// Equity samples kept (one per candle).
pub const EQUITY_HISTORY: usize = 20_000;
/// Risk violations kept.
pub const VIOLATION_HISTORY: usize = 1_000;

#[derive(Debug, Default)]
struct History {
    orders: VecDeque<Order>,
    fills: VecDeque<Fill>,
    trades: VecDeque<Trade>,
    equity: VecDeque<EquityPoint>,
    violations: VecDeque<Violation>,
    /// Candles that closed with a position, and all candles, since the start.
    exposed_candles: usize,
    candles: usize,
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, capacity: usize) {
    if ring.len() == capacity {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// Which orders a reader wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFilter {
    Open,
    Closed,
    All,
}

impl OrderFilter {
    fn accepts(self, order: &Order) -> bool {
        match self {
            OrderFilter::All => true,
            OrderFilter::Open => order.status == OrderStatus::Open,
            OrderFilter::Closed => order.status != OrderStatus::Open,
        }
    }
}

/// What the metrics need, copied out in one go.
#[derive(Debug, Clone, Default)]
pub struct PerformanceInputs {
    pub start_ts: Option<i64>,
    pub equity: Vec<EquityPoint>,
    pub trades: Vec<Trade>,
    pub exposed_candles: usize,
}

#[derive(Debug, Default)]
pub struct BotJournal {
    history: Mutex<History>,
}

impl BotJournal {
    fn with<R>(&self, f: impl FnOnce(&mut History) -> R) -> R {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut history)
    }

    /// A new order, or a new status of a known one.
    pub(crate) fn record_order(&self, order: &Order) {
        self.with(
            |h| match h.orders.iter_mut().rev().find(|o| o.id == order.id) {
                Some(known) => *known = order.clone(),
                None => push_bounded(&mut h.orders, order.clone(), ORDER_HISTORY),
            },
        );
    }

    /// A fill; marks its order filled.
    pub(crate) fn record_fill(&self, fill: &Fill) {
        self.with(|h| {
            if let Some(order) = h.orders.iter_mut().rev().find(|o| o.id == fill.order_id) {
                order.status = OrderStatus::Filled;
                order.updated_ts = fill.ts;
            }
            push_bounded(&mut h.fills, fill.clone(), TRADE_HISTORY);
        });
    }

    pub(crate) fn record_trade(&self, trade: &Trade) {
        self.with(|h| push_bounded(&mut h.trades, trade.clone(), TRADE_HISTORY));
    }

    pub(crate) fn record_violation(&self, violation: &Violation) {
        self.with(|h| push_bounded(&mut h.violations, violation.clone(), VIOLATION_HISTORY));
    }

    /// Equity at a candle's close, and whether a position was held.
    pub(crate) fn record_equity(&self, ts: i64, equity: Decimal, exposed: bool) {
        self.with(|h| {
            push_bounded(&mut h.equity, EquityPoint { ts, equity }, EQUITY_HISTORY);
            h.candles += 1;
            h.exposed_candles += usize::from(exposed);
        });
    }

    /// A known order by id.
    pub fn order(&self, id: u64) -> Option<Order> {
        self.with(|h| h.orders.iter().rev().find(|o| o.id == id).cloned())
    }

    /// Fill an empty journal with stored history (oldest first), after a restart.
    pub fn hydrate(
        &self,
        orders: Vec<Order>,
        fills: Vec<Fill>,
        trades: Vec<Trade>,
        equity: Vec<(i64, Decimal, bool)>,
        violations: Vec<Violation>,
    ) {
        self.with(|h| {
            for order in orders {
                push_bounded(&mut h.orders, order, ORDER_HISTORY);
            }
            for fill in fills {
                push_bounded(&mut h.fills, fill, TRADE_HISTORY);
            }
            for trade in trades {
                push_bounded(&mut h.trades, trade, TRADE_HISTORY);
            }
            for (ts, equity, exposed) in equity {
                push_bounded(&mut h.equity, EquityPoint { ts, equity }, EQUITY_HISTORY);
                h.candles += 1;
                h.exposed_candles += usize::from(exposed);
            }
            for violation in violations {
                push_bounded(&mut h.violations, violation, VIOLATION_HISTORY);
            }
        });
    }

    /// Orders matching `filter`, newest first.
    pub fn orders(&self, filter: OrderFilter) -> Vec<Order> {
        self.with(|h| {
            h.orders
                .iter()
                .rev()
                .filter(|o| filter.accepts(o))
                .cloned()
                .collect()
        })
    }

    /// Fills, oldest first.
    pub fn fills(&self) -> Vec<Fill> {
        self.with(|h| h.fills.iter().cloned().collect())
    }

    /// Round trips whose exit lies in `[from, to]`, oldest first.
    pub fn trades(&self, from: i64, to: i64) -> Vec<Trade> {
        self.with(|h| {
            h.trades
                .iter()
                .filter(|t| t.exit_ts >= from && t.exit_ts <= to)
                .cloned()
                .collect()
        })
    }

    /// Equity samples in `[from, to]`, oldest first.
    pub fn equity(&self, from: i64, to: i64) -> Vec<EquityPoint> {
        self.with(|h| {
            h.equity
                .iter()
                .filter(|p| p.ts >= from && p.ts <= to)
                .copied()
                .collect()
        })
    }

    /// Violations, newest first.
    pub fn violations(&self) -> Vec<Violation> {
        self.with(|h| h.violations.iter().rev().cloned().collect())
    }

    pub fn performance_inputs(&self) -> PerformanceInputs {
        self.with(|h| PerformanceInputs {
            start_ts: h.equity.front().map(|p| p.ts),
            equity: h.equity.iter().copied().collect(),
            trades: h.trades.iter().cloned().collect(),
            exposed_candles: h.exposed_candles,
        })
    }

    /// Round trips closed since `since` (engine-clock ms).
    pub fn trades_since(&self, since: i64) -> usize {
        self.with(|h| h.trades.iter().filter(|t| t.exit_ts >= since).count())
    }

    /// Orders created since `since` (engine-clock ms).
    pub fn orders_since(&self, since: i64) -> usize {
        self.with(|h| h.orders.iter().filter(|o| o.created_ts >= since).count())
    }

    /// Total fills kept (for metrics).
    pub fn fill_count(&self) -> usize {
        self.with(|h| h.fills.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Liquidity, OrderKind, OrderOrigin, Side};
    use rust_decimal_macros::dec;

    fn order(id: u64) -> Order {
        Order {
            id,
            client_tag: format!("t{id}"),
            side: Side::Buy,
            kind: OrderKind::Limit,
            quantity: dec!(1),
            price: Some(dec!(10)),
            reduce_only: false,
            origin: OrderOrigin::Strategy,
            status: OrderStatus::Open,
            created_ts: id as i64,
            updated_ts: id as i64,
            reason: None,
        }
    }

    #[test]
    fn orders_follow_their_status_and_filters() {
        let journal = BotJournal::default();
        journal.record_order(&order(1));
        journal.record_order(&order(2));
        journal.record_fill(&Fill {
            order_id: 1,
            client_tag: "t1".into(),
            side: Side::Buy,
            quantity: dec!(1),
            price: dec!(10),
            fee: dec!(0.01),
            liquidity: Liquidity::Maker,
            origin: OrderOrigin::Strategy,
            ts: 5,
        });
        let open: Vec<u64> = journal
            .orders(OrderFilter::Open)
            .iter()
            .map(|o| o.id)
            .collect();
        let closed = journal.orders(OrderFilter::Closed);
        assert_eq!(open, [2]);
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].id, closed[0].status, closed[0].updated_ts),
            (1, OrderStatus::Filled, 5)
        );
        assert_eq!(journal.orders(OrderFilter::All).len(), 2);
        assert_eq!(journal.fill_count(), 1);
    }

    #[test]
    fn rings_stay_bounded_and_ranges_filter() {
        let journal = BotJournal::default();
        for ts in 0..(EQUITY_HISTORY as i64 + 10) {
            journal.record_equity(ts, Decimal::from(ts), ts % 2 == 0);
        }
        let all = journal.equity(i64::MIN, i64::MAX);
        assert_eq!(all.len(), EQUITY_HISTORY);
        assert_eq!(all[0].ts, 10);
        assert_eq!(journal.equity(100, 104).len(), 5);
        let inputs = journal.performance_inputs();
        assert_eq!(inputs.start_ts, Some(10));
        assert_eq!(inputs.exposed_candles, (EQUITY_HISTORY + 10) / 2);
    }
}
