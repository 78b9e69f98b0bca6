//! Plain market types shared by every layer: candles, timeframes, orders,
//! fills, instrument rules and bot configuration. No I/O, no dependencies on
//! the rest of the host.

mod candle;
pub mod config;
pub mod decimal;
mod instant;
mod instrument;
mod json;
mod limits;
mod order;
pub(crate) mod patterns;
mod schema_issues;
mod serde_message;
mod timeframe;
pub mod yaml;

pub use candle::{Candle, CandleError, CandleSeries, MAX_CANDLE_TS, MAX_CANDLE_VALUE};
pub use instant::{format_duration, format_instant, parse_instant, parse_through, parse_until};
pub use instrument::InstrumentRules;
pub use json::{parse_json, pointer_of_json_refusal};
pub use limits::PluginLimits;
pub use order::{Fill, Liquidity, Order, OrderKind, OrderOrigin, OrderRequest, OrderStatus, Side};
pub use schema_issues::schema_issues;
pub use timeframe::{Timeframe, TimeframeError};
