//! Orders an exchange executes (live bots). The engine keeps the book and
//! the money as for paper, but the exchange decides the fills: what the
//! engine asks of it goes into an outbox that the runner hands to the
//! bot's exchange link after the step is committed (so an order is stored
//! before it can exist anywhere else), and what the exchange did comes back
//! as [`ExchangeReport`]s, applied by the runner like any other change.
//!
//! A report is applied at most once: a fill counts only as far as it takes
//! the order's cumulative filled quantity beyond what the book already
//! holds, so a trade heard twice (the account stream replays, a query after
//! a reconnect) books nothing the second time.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::domain::{Liquidity, Order, OrderRequest};

/// What the engine asks the exchange to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueRequest {
    /// Place this order (committed as open before it is sent);
    /// `reference` is the last close, a market order's expected price.
    Send { order: Order, reference: Decimal },
    /// Cancel this order; it stays open until the exchange confirms.
    Cancel(Order),
}

/// One trade of an order, as the exchange reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeFill {
    /// The engine's order id (the exchange knows it by its client order id).
    pub order_id: u64,
    pub trade_id: u64,
    pub quantity: Decimal,
    pub price: Decimal,
    /// The fee's value in the quote asset.
    pub fee: Decimal,
    /// The part of the fee taken in the base asset (a buy's commission in
    /// what it bought): the position grows by `quantity - base_fee`.
    pub base_fee: Decimal,
    pub liquidity: Liquidity,
    /// Exchange time of the trade, ms.
    pub ts: i64,
    /// The order's filled quantity after this trade.
    pub cumulative: Decimal,
}

/// What the exchange did with an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeReport {
    Fill(ExchangeFill),
    /// The order ended without (further) fills: cancelled, expired, refused
    /// or never received.
    Closed {
        order_id: u64,
        ts: i64,
        reason: String,
    },
}

impl ExchangeReport {
    pub fn order_id(&self) -> u64 {
        match self {
            ExchangeReport::Fill(fill) => fill.order_id,
            ExchangeReport::Closed { order_id, .. } => *order_id,
        }
    }
}

/// A refusal before sending: the check that refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRefusal {
    pub check: String,
    pub message: String,
}

/// The exchange's own rules, checked before an order enters the book (its
/// filters, whether it takes orders now), so that a refusal names them
/// like the engine's own checks do.
pub trait OrderCheck: Send + Sync {
    /// `reference`: the last close (a market order's price); `open_orders`:
    /// the bot's open orders now.
    fn check(
        &self,
        request: &OrderRequest,
        reference: Decimal,
        open_orders: &[Order],
    ) -> Result<(), CheckRefusal>;
}

/// A routed engine's link state: not part of a checkpoint (the outbox is
/// emptied after every commit, the check comes from the live exchange link).
#[derive(Default)]
pub(crate) struct Routing {
    pub outbox: Vec<VenueRequest>,
    pub check: Option<Arc<dyn OrderCheck>>,
}
