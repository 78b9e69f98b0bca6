//! Binance spot: REST klines with weight pacing ([`rest`]), the kline
//! streams shared by many feeds on few connections ([`stream`]), paged
//! history downloads that resume ([`history`]), and signed trading on an
//! account ([`account`]: [`signing`], [`filters`]) with its events over the
//! WebSocket API ([`user_stream`]). Message formats are in
//! [`kline`].

pub mod account;
pub mod filters;
pub mod history;
pub mod kline;
pub mod rest;
pub mod signing;
pub mod stream;
pub mod user_stream;

pub use account::{
    AccountSettings, AccountTrade, Balance, Credentials, NewOrder, OrderReport, Placement,
    Resolution, SpotAccount, client_order_id, order_number,
};
pub use filters::{FilterRefusal, OpenOrders, OrderShape, OrderSide, OrderType, SymbolInfo};
pub use history::{DownloadProgress, download};
pub use kline::{StreamMessage, parse_stream_message, stream_name};
pub use rest::{RestClient, RestError};
pub use signing::Signer;
pub use stream::{KlineSink, KlineStreams, StreamSettings};
pub use user_stream::{AccountEvent, ExecutionReport, UserStreamSettings, spawn_user_stream};

use crate::domain::config::{BinanceNetwork, FeedConfig};

/// Where one Binance deployment answers: the REST base (without `/api`) and
/// the WebSocket base (without `/ws` or `/stream`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoints {
    pub rest: String,
    pub stream: String,
}

/// The WebSocket API (account events) of a Binance feed's network, or its
/// override.
pub fn ws_api_of_feed(feed: &FeedConfig) -> Option<String> {
    let FeedConfig::Binance {
        network,
        ws_api_url,
        ..
    } = feed
    else {
        return None;
    };
    let default = match network {
        BinanceNetwork::MarketData | BinanceNetwork::Live => {
            "wss://ws-api.binance.com:443/ws-api/v3"
        }
        BinanceNetwork::Testnet => "wss://ws-api.testnet.binance.vision/ws-api/v3",
    };
    Some(ws_api_url.as_deref().unwrap_or(default).to_string())
}

impl Endpoints {
    /// The network's own URLs, each replaced where an override is given.
    pub fn of(network: BinanceNetwork, rest: Option<&str>, stream: Option<&str>) -> Self {
        let (default_rest, default_stream) = match network {
            BinanceNetwork::MarketData => (
                "https://data-api.binance.vision",
                "wss://data-stream.binance.vision",
            ),
            BinanceNetwork::Live => ("https://api.binance.com", "wss://stream.binance.com:9443"),
            BinanceNetwork::Testnet => (
                "https://testnet.binance.vision",
                "wss://stream.testnet.binance.vision",
            ),
        };
        let trim = |url: &str| url.trim_end_matches('/').to_string();
        Self {
            rest: trim(rest.unwrap_or(default_rest)),
            stream: trim(stream.unwrap_or(default_stream)),
        }
    }

    /// Where a Binance feed reads; None for other feeds.
    pub fn of_feed(feed: &FeedConfig) -> Option<Self> {
        match feed {
            FeedConfig::Binance {
                network,
                rest_url,
                stream_url,
                ..
            } => Some(Self::of(
                *network,
                rest_url.as_deref(),
                stream_url.as_deref(),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_networks_urls() {
        let testnet = Endpoints::of(BinanceNetwork::Testnet, None, None);
        assert_eq!(testnet.rest, "https://testnet.binance.vision");
        assert_eq!(testnet.stream, "wss://stream.testnet.binance.vision");
        let local = Endpoints::of(
            BinanceNetwork::Live,
            Some("http://127.0.0.1:9/"),
            Some("ws://127.0.0.1:9"),
        );
        assert_eq!(local.rest, "http://127.0.0.1:9");
        assert_eq!(local.stream, "ws://127.0.0.1:9");
    }
}
