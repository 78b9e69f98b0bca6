//! Orders and fills, in exact decimals.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// Its name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// +1 for buys, -1 for sells: the sign of the position change.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Market,
    Limit,
    Stop,
}

impl OrderKind {
    /// Its name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Market => "market",
            OrderKind::Limit => "limit",
            OrderKind::Stop => "stop",
        }
    }
}

/// Who asked for the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderOrigin {
    Strategy,
    Manual,
    KillSwitch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Filled,
    Cancelled,
}

/// Whether a fill added liquidity (a resting limit) or took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Liquidity {
    Maker,
    Taker,
}

/// An order accepted by a venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub client_tag: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Decimal,
    /// How much of `quantity` has filled so far (partial fills come from
    /// an exchange; the paper venue fills whole).
    #[serde(default)]
    pub filled: Decimal,
    /// Limit or stop price.
    pub price: Option<Decimal>,
    pub reduce_only: bool,
    pub origin: OrderOrigin,
    pub status: OrderStatus,
    /// Engine-clock time the order was accepted.
    pub created_ts: i64,
    /// Engine-clock time of the last status change.
    pub updated_ts: i64,
    /// Why the order was cancelled, when it was.
    pub reason: Option<String>,
}

/// An execution of (part of) an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub order_id: u64,
    pub client_tag: String,
    pub side: Side,
    pub quantity: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub liquidity: Liquidity,
    pub origin: OrderOrigin,
    pub ts: i64,
}

impl Fill {
    pub fn notional(&self) -> Decimal {
        self.quantity * self.price
    }
}

/// An order someone wants placed, in decimals already on the instrument's
/// grid; the risk engine checks it before the venue sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub client_tag: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub reduce_only: bool,
    pub origin: OrderOrigin,
}
