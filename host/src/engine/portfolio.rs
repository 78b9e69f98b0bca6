//! The bot's money, exact: cash, the position and its cost basis, realized
//! and unrealized PnL, fees paid, equity.
//!
//! Spot accounting, long only: a sell never exceeds the position (the venue
//! clips it). The position's cost is tracked as a cost basis (the sum paid
//! for what is held) rather than an average price, so that
//! `equity == initial + realized - fees + unrealized` holds exactly after
//! every fill, whatever the rounding of partial closes.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{Fill, Side};

/// Decimal places kept when part of the cost basis is released.
const RELEASE_SCALE: u32 = 16;
/// Decimal places of an average price (of a position, or of a round trip's
/// buys or sells): a quotient of exact sums, which would otherwise run to
/// 28 digits. Twelve places are finer than any exchange's tick.
const AVERAGE_PRICE_SCALE: u32 = 12;

/// `notional / quantity` as a price of [`AVERAGE_PRICE_SCALE`] places at
/// most (trailing zeros dropped).
fn average_price(notional: Decimal, quantity: Decimal) -> Decimal {
    (notional / quantity)
        .round_dp(AVERAGE_PRICE_SCALE)
        .normalize()
}

/// A round trip: from flat to flat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub entry_ts: i64,
    pub exit_ts: i64,
    /// Total base quantity bought in the round trip.
    pub quantity: Decimal,
    /// Average buy price.
    pub entry_price: Decimal,
    /// Average sell price.
    pub exit_price: Decimal,
    /// Realized PnL minus every fee of the round trip.
    pub pnl: Decimal,
    pub fees: Decimal,
}

/// The round trip being built while a position is open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OpenTrip {
    entry_ts: i64,
    bought: Decimal,
    bought_notional: Decimal,
    sold: Decimal,
    sold_notional: Decimal,
    realized: Decimal,
    fees: Decimal,
}

/// Serialisable so that the books survive a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Portfolio {
    initial: Decimal,
    cash: Decimal,
    position: Decimal,
    /// What the current position cost (quote), fees excluded.
    cost_basis: Decimal,
    realized_pnl: Decimal,
    fees_paid: Decimal,
    last_price: Decimal,
    trip: Option<OpenTrip>,
}

/// A read-only copy of the numbers, for snapshots and results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortfolioView {
    pub cash: Decimal,
    pub position: Decimal,
    pub avg_entry_price: Decimal,
    pub realized_pnl: Decimal,
    pub unrealized_pnl: Decimal,
    pub fees_paid: Decimal,
    pub equity: Decimal,
}

impl Portfolio {
    pub fn new(initial: Decimal) -> Self {
        Self {
            initial,
            cash: initial,
            position: Decimal::ZERO,
            cost_basis: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            fees_paid: Decimal::ZERO,
            last_price: Decimal::ZERO,
            trip: None,
        }
    }

    pub fn initial(&self) -> Decimal {
        self.initial
    }

    pub fn cash(&self) -> Decimal {
        self.cash
    }

    pub fn position(&self) -> Decimal {
        self.position
    }

    pub fn last_price(&self) -> Decimal {
        self.last_price
    }

    pub fn fees_paid(&self) -> Decimal {
        self.fees_paid
    }

    pub fn realized_pnl(&self) -> Decimal {
        self.realized_pnl
    }

    /// Average entry price of the position (0 when flat).
    pub fn avg_entry_price(&self) -> Decimal {
        if self.position.is_zero() {
            Decimal::ZERO
        } else {
            average_price(self.cost_basis, self.position)
        }
    }

    /// Value the position at `price` from now on.
    pub fn mark(&mut self, price: Decimal) {
        self.last_price = price;
    }

    pub fn position_value(&self) -> Decimal {
        self.position * self.last_price
    }

    pub fn unrealized_pnl(&self) -> Decimal {
        self.position_value() - self.cost_basis
    }

    pub fn equity(&self) -> Decimal {
        self.cash + self.position_value()
    }

    /// Book a fill; the price also becomes the mark. Returns the round trip
    /// when the fill brings the position back to flat.
    pub fn apply_fill(&mut self, fill: &Fill) -> Option<Trade> {
        let notional = fill.quantity * fill.price;
        self.fees_paid += fill.fee;
        self.last_price = fill.price;
        let trip = self.trip.get_or_insert_with(|| OpenTrip {
            entry_ts: fill.ts,
            ..OpenTrip::default()
        });
        trip.fees += fill.fee;
        match fill.side {
            Side::Buy => {
                self.cash -= notional + fill.fee;
                self.position += fill.quantity;
                self.cost_basis += notional;
                trip.bought += fill.quantity;
                trip.bought_notional += notional;
            }
            Side::Sell => {
                debug_assert!(fill.quantity <= self.position, "the venue clips sells");
                let quantity = fill.quantity;
                // The share of the basis this sale releases. Rounded to a
                // fixed scale so sums stay within Decimal's 28 digits and
                // remain exact; the same amount leaves the basis and enters
                // realized PnL, so the accounting identity holds regardless.
                let released = if quantity == self.position {
                    self.cost_basis
                } else {
                    (self.cost_basis * quantity / self.position).round_dp(RELEASE_SCALE)
                };
                let realized = quantity * fill.price - released;
                self.cash += notional - fill.fee;
                self.position -= quantity;
                self.cost_basis -= released;
                self.realized_pnl += realized;
                trip.sold += quantity;
                trip.sold_notional += notional;
                trip.realized += realized;
            }
        }
        if !self.position.is_zero() {
            return None;
        }
        self.cost_basis = Decimal::ZERO;
        let trip = self.trip.take()?;
        if trip.bought.is_zero() || trip.sold.is_zero() {
            return None;
        }
        Some(Trade {
            entry_ts: trip.entry_ts,
            exit_ts: fill.ts,
            quantity: trip.bought,
            entry_price: average_price(trip.bought_notional, trip.bought),
            exit_price: average_price(trip.sold_notional, trip.sold),
            pnl: trip.realized - trip.fees,
            fees: trip.fees,
        })
    }

    pub fn view(&self) -> PortfolioView {
        PortfolioView {
            cash: self.cash,
            position: self.position,
            avg_entry_price: self.avg_entry_price(),
            realized_pnl: self.realized_pnl,
            unrealized_pnl: self.unrealized_pnl(),
            fees_paid: self.fees_paid,
            equity: self.equity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Liquidity, OrderOrigin};
    use rust_decimal_macros::dec;

    fn fill(side: Side, quantity: Decimal, price: Decimal, fee: Decimal, ts: i64) -> Fill {
        Fill {
            order_id: ts as u64,
            client_tag: String::new(),
            side,
            quantity,
            price,
            fee,
            liquidity: Liquidity::Taker,
            origin: OrderOrigin::Strategy,
            ts,
        }
    }

    fn assert_invariants(p: &Portfolio) {
        assert_eq!(p.cash() + p.position_value(), p.equity());
        assert_eq!(
            p.equity(),
            p.initial() + p.realized_pnl() - p.fees_paid() + p.unrealized_pnl()
        );
    }

    #[test]
    fn a_round_trip_at_the_same_price_loses_exactly_the_fees() {
        let mut p = Portfolio::new(dec!(1000));
        p.apply_fill(&fill(Side::Buy, dec!(2), dec!(100), dec!(0.2), 1));
        assert_invariants(&p);
        let trade = p
            .apply_fill(&fill(Side::Sell, dec!(2), dec!(100), dec!(0.2), 2))
            .unwrap();
        assert_invariants(&p);
        assert_eq!(p.equity(), dec!(999.6));
        assert_eq!(trade.pnl, dec!(-0.4));
        assert_eq!(trade.fees, dec!(0.4));
    }

    #[test]
    fn partial_closes_worked_by_hand() {
        let mut p = Portfolio::new(dec!(10000));
        // Buy 3 @ 100 (fee 0.3), buy 1 @ 120 (fee 0.12): basis 420, avg 105.
        p.apply_fill(&fill(Side::Buy, dec!(3), dec!(100), dec!(0.3), 1));
        p.apply_fill(&fill(Side::Buy, dec!(1), dec!(120), dec!(0.12), 2));
        assert_eq!(p.avg_entry_price(), dec!(105));
        assert_eq!(p.cash(), dec!(9579.58));
        // Sell 1 @ 110 (fee 0.11): realized (110 - 105) * 1 = 5.
        assert!(
            p.apply_fill(&fill(Side::Sell, dec!(1), dec!(110), dec!(0.11), 3))
                .is_none()
        );
        assert_eq!(p.realized_pnl(), dec!(5));
        assert_eq!(p.position(), dec!(3));
        assert_eq!(p.avg_entry_price(), dec!(105));
        // Marked at 110: unrealized (110 - 105) * 3 = 15.
        assert_eq!(p.unrealized_pnl(), dec!(15));
        assert_invariants(&p);
        // Sell the rest @ 90 (fee 0.27): realized (90 - 105) * 3 = -45.
        let trade = p
            .apply_fill(&fill(Side::Sell, dec!(3), dec!(90), dec!(0.27), 4))
            .unwrap();
        assert_eq!(p.realized_pnl(), dec!(-40));
        assert_eq!(p.fees_paid(), dec!(0.8));
        assert_eq!(p.equity(), dec!(9959.2));
        assert_eq!(trade.quantity, dec!(4));
        assert_eq!(trade.entry_price, dec!(105));
        assert_eq!(trade.exit_price, dec!(95)); // (110 + 270) / 4
        assert_eq!(trade.pnl, dec!(-40.8));
        assert_eq!((trade.entry_ts, trade.exit_ts), (1, 4));
        assert_invariants(&p);
    }

    #[test]
    fn average_prices_keep_twelve_places() {
        let mut p = Portfolio::new(dec!(10000));
        // (100 + 2 * 100.01) / 3 = 100.00666...: 28 digits unrounded.
        p.apply_fill(&fill(Side::Buy, dec!(1), dec!(100), dec!(0), 1));
        p.apply_fill(&fill(Side::Buy, dec!(2), dec!(100.01), dec!(0), 2));
        assert_eq!(p.avg_entry_price(), dec!(100.006666666667));
        let trade = p
            .apply_fill(&fill(Side::Sell, dec!(3), dec!(101), dec!(0), 3))
            .unwrap();
        assert_eq!(trade.entry_price, dec!(100.006666666667));
        assert_eq!(
            trade.exit_price.to_string(),
            "101",
            "trailing zeros dropped"
        );
        // The accounting itself keeps every digit: 303 - 300.02.
        assert_eq!(trade.pnl, dec!(2.98));
    }

    #[test]
    fn invariants_hold_after_every_fill_of_a_long_sequence() {
        let mut p = Portfolio::new(dec!(5000));
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % 1000
        };
        let mut fees = Decimal::ZERO;
        for ts in 0..2000 {
            let price = Decimal::new(9000 + next() as i64, 2);
            let quantity = Decimal::new(1 + next() as i64, 3);
            let (side, quantity) = if next() % 2 == 0 || p.position().is_zero() {
                (Side::Buy, quantity)
            } else {
                (Side::Sell, quantity.min(p.position()))
            };
            let fee = (quantity * price * dec!(0.00075)).round_dp(8);
            p.mark(price);
            let marked = p.equity();
            p.apply_fill(&fill(side, quantity, price, fee, ts));
            fees += fee;
            // A fill at the mark changes equity by exactly its fee: fees
            // always reduce equity.
            assert_eq!(p.equity(), marked - fee, "fill {ts}");
            assert_invariants(&p);
        }
        assert_eq!(p.fees_paid(), fees);
    }
}
