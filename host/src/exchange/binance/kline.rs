//! Binance's kline formats: the REST array rows of `GET /api/v3/klines`,
//! the `<symbol>@kline_<interval>` stream payload wrapped in a combined
//! stream message, and the other messages a combined stream carries.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::domain::{Candle, Timeframe};

/// The stream of `symbol`'s klines on `timeframe` (Binance wants it lowercase).
pub fn stream_name(symbol: &str, timeframe: Timeframe) -> String {
    format!("{}@kline_{}", symbol.to_ascii_lowercase(), timeframe.name())
}

/// One row of `GET /api/v3/klines`: open time, open, high, low, close,
/// volume, close time, then fields we do not use.
#[derive(Debug, Deserialize)]
pub struct RestKline(
    pub i64,
    pub Decimal,
    pub Decimal,
    pub Decimal,
    pub Decimal,
    pub Decimal,
    pub i64,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
);

impl RestKline {
    pub fn candle(&self) -> Candle {
        Candle {
            ts: self.0,
            open: self.1,
            high: self.2,
            low: self.3,
            close: self.4,
            volume: self.5,
        }
    }

    /// The candle, if it is one (prices positive, high and low around open
    /// and close, a time between 1970 and 9999): what a server sends is
    /// checked before anything computes with it.
    pub fn valid_candle(&self) -> Option<Candle> {
        let candle = self.candle();
        candle.validate().ok().map(|()| candle)
    }

    /// The kline's last millisecond.
    pub fn close_time(&self) -> i64 {
        self.6
    }
}

/// The `k` object of a kline stream payload.
#[derive(Debug, Deserialize)]
struct StreamKline {
    t: i64,
    o: Decimal,
    h: Decimal,
    l: Decimal,
    c: Decimal,
    v: Decimal,
    /// Whether this kline is closed (final).
    x: bool,
}

/// A kline stream update: the current candle so far, or the final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlineUpdate {
    pub candle: Candle,
    pub closed: bool,
}

/// What a combined stream connection can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// An update of `stream` (e.g. `btcusdt@kline_1m`).
    Kline { stream: String, update: KlineUpdate },
    /// The server is about to close the connection: open another now.
    ServerShutdown,
    /// The answer to a `SUBSCRIBE` / `UNSUBSCRIBE` request.
    Reply { id: u64, error: Option<String> },
    /// Anything else (other event types): ignored.
    Other,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    stream: Option<&'a str>,
    #[serde(default)]
    data: Option<Payload>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// Errors may also come as a top-level code and message.
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    // Raw (non-combined) payloads carry the event type at the top.
    #[serde(default)]
    e: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    e: String,
    #[serde(default)]
    k: Option<StreamKline>,
}

/// Parse one text message of a combined stream connection.
pub fn parse_stream_message(text: &str) -> Result<StreamMessage, serde_json::Error> {
    let envelope: Envelope = serde_json::from_str(text)?;
    if let Some(id) = envelope.id {
        let error = envelope.error.map(|error| error.to_string()).or_else(|| {
            envelope
                .code
                .map(|code| format!("{code}: {}", envelope.msg.unwrap_or_default()))
        });
        return Ok(StreamMessage::Reply { id, error });
    }
    if envelope.e.as_deref() == Some("serverShutdown") {
        return Ok(StreamMessage::ServerShutdown);
    }
    let (Some(stream), Some(data)) = (envelope.stream, envelope.data) else {
        return Ok(StreamMessage::Other);
    };
    match (data.e.as_str(), data.k) {
        ("serverShutdown", _) => Ok(StreamMessage::ServerShutdown),
        ("kline", Some(k)) => {
            let candle = Candle {
                ts: k.t,
                open: k.o,
                high: k.h,
                low: k.l,
                close: k.c,
                volume: k.v,
            };
            if let Err(reason) = candle.validate() {
                tracing::warn!(stream, %reason, "invalid kline ignored");
                return Ok(StreamMessage::Other);
            }
            Ok(StreamMessage::Kline {
                stream: stream.to_string(),
                update: KlineUpdate {
                    candle,
                    closed: k.x,
                },
            })
        }
        _ => Ok(StreamMessage::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// The docs' kline payload; its low (0.0015) is above its open, which
    /// no real candle has.
    const DOCS_KLINE: &str = r#"{"stream":"bnbbtc@kline_1m","data":{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}}"#;

    #[test]
    fn reads_the_docs_kline_payload_in_a_combined_stream() {
        let text = DOCS_KLINE.replace(r#""l":"0.0015""#, r#""l":"0.0005""#);
        let StreamMessage::Kline { stream, update } = parse_stream_message(&text).unwrap() else {
            panic!("a kline")
        };
        assert_eq!(stream, "bnbbtc@kline_1m");
        assert!(!update.closed);
        assert_eq!(update.candle.ts, 1_672_515_780_000);
        assert_eq!(update.candle.close, dec!(0.0020));
        assert_eq!(update.candle.high, dec!(0.0025));
    }

    #[test]
    fn an_impossible_kline_is_ignored_not_computed_with() {
        assert_eq!(
            parse_stream_message(DOCS_KLINE).unwrap(),
            StreamMessage::Other
        );
        let far = DOCS_KLINE
            .replace(r#""l":"0.0015""#, r#""l":"0.0005""#)
            .replace("1672515780000", "9223372036854775000");
        assert_eq!(parse_stream_message(&far).unwrap(), StreamMessage::Other);
    }

    #[test]
    fn reads_shutdowns_replies_and_ignores_the_rest() {
        let shutdown =
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#;
        assert_eq!(
            parse_stream_message(shutdown).unwrap(),
            StreamMessage::ServerShutdown
        );
        assert_eq!(
            parse_stream_message(r#"{"e":"serverShutdown","E":1}"#).unwrap(),
            StreamMessage::ServerShutdown
        );
        assert_eq!(
            parse_stream_message(r#"{"result":null,"id":7}"#).unwrap(),
            StreamMessage::Reply { id: 7, error: None }
        );
        assert!(matches!(
            parse_stream_message(r#"{"error":{"code":2,"msg":"Invalid request"},"id":8}"#).unwrap(),
            StreamMessage::Reply {
                id: 8,
                error: Some(_)
            }
        ));
        assert_eq!(
            parse_stream_message(r#"{"stream":"btcusdt@trade","data":{"e":"trade"}}"#).unwrap(),
            StreamMessage::Other
        );
        assert!(parse_stream_message("not json").is_err());
    }

    #[test]
    fn reads_the_docs_rest_row() {
        let text = r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]"#;
        let rows: Vec<RestKline> = serde_json::from_str(text).unwrap();
        let candle = rows[0].candle();
        assert_eq!(candle.ts, 1_499_040_000_000);
        assert_eq!(candle.low, dec!(0.01575800));
        assert_eq!(candle.volume, dec!(148976.11427815));
        assert_eq!(rows[0].close_time(), 1_499_644_799_999);
    }

    #[test]
    fn stream_names_are_lowercase() {
        assert_eq!(
            stream_name("BTCUSDT", "1h".parse().unwrap()),
            "btcusdt@kline_1h"
        );
    }
}
