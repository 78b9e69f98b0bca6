//! The engine: everything between a candle and the money.
//!
//! One candle in -> plugin decision -> risk checks -> paper venue -> fills ->
//! portfolio -> risk rules -> events out ([`BotEngine::on_candle`]). Plain
//! synchronous Rust with no clock of its own (it uses candle time), so a
//! backtest and a live bot drive exactly the same code. A live bot's
//! engine routes its orders to an exchange instead ([`routing`]): same
//! checks, same book and money, fills reported back.

mod bot;
mod manual;
pub mod metrics;
mod portfolio;
mod risk;
mod routing;
#[cfg(test)]
mod routing_tests;
mod venue;

pub use bot::{
    BotEngine, CandleClose, Decider, EngineCheckpoint, EngineError, EngineEvent, MAX_INTENT_VALUE,
    Placement, QueueMarks, Rejection, STOP_PRICE_CHECK, StretchError, max_order_value,
    refused_field,
};
pub use manual::manual_order_issues;
pub use portfolio::{Portfolio, PortfolioView, Trade};
pub use risk::{
    OrderContext, Refusal, RiskEngine, RiskEvent, RiskOutcome, Rule, RuleStatus, StateChange,
    TradingState, Violation,
};
pub use routing::{CheckRefusal, ExchangeFill, ExchangeReport, OrderCheck, VenueRequest};
pub use venue::{PaperVenue, VenueEvent, VenueRejection};
