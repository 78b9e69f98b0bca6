//! Account events over Binance's WebSocket API (the listenKey streams are
//! gone): one connection, subscribed with `userDataStream.subscribe.signature`,
//! read until it fails, falls silent or the subscription ends
//! (`eventStreamTerminated`), then subscribed again (after a backoff with
//! jitter when the connection was lost). Every (re)subscription is announced
//! as [`AccountEvent::Subscribed`], so that the owner reconciles open orders
//! and recent trades with REST: events sent while nobody listened are not
//! replayed. Executions are passed on once per trade id.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::account::SpotAccount;

/// An `executionReport`: an order's state changed, by a trade or not.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecutionReport {
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "c")]
    pub client_order_id: String,
    #[serde(rename = "S")]
    pub side: String,
    /// NEW, TRADE, CANCELED, REJECTED, EXPIRED, ...
    #[serde(rename = "x")]
    pub execution_type: String,
    /// The order's status after this event.
    #[serde(rename = "X")]
    pub status: String,
    #[serde(rename = "i")]
    pub order_id: u64,
    #[serde(rename = "l")]
    pub last_quantity: Decimal,
    #[serde(rename = "L")]
    pub last_price: Decimal,
    #[serde(rename = "z")]
    pub cumulative_quantity: Decimal,
    #[serde(rename = "n")]
    pub commission: Decimal,
    #[serde(rename = "N")]
    pub commission_asset: Option<String>,
    /// -1 unless this is a trade.
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// The trade added liquidity.
    #[serde(rename = "m", default)]
    pub maker: bool,
    #[serde(rename = "T")]
    pub transaction_time: i64,
}

/// What the account stream tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// Subscribed (again): reconcile what may have been missed.
    Subscribed,
    Execution(Box<ExecutionReport>),
}

#[derive(Debug, Clone)]
pub struct UserStreamSettings {
    pub silence: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for UserStreamSettings {
    fn default() -> Self {
        Self {
            silence: Duration::from_secs(60),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    event: Option<serde_json::Value>,
}

/// Trades already passed on (the last ones; a replay is recent), by
/// symbol, order and trade id: a self-trade reports one trade id for two
/// orders.
type TradeKey = (String, u64, i64);

struct SeenTrades {
    set: HashSet<TradeKey>,
    order: VecDeque<TradeKey>,
}

impl SeenTrades {
    const KEPT: usize = 100_000;

    /// True the first time.
    fn first(&mut self, symbol: &str, order: u64, trade: i64) -> bool {
        let key = (symbol.to_string(), order, trade);
        if !self.set.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > Self::KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// Read `account`'s events from the WebSocket API at `url` (e.g.
/// `wss://ws-api.testnet.binance.vision/ws-api/v3`) into `out`, until `out`
/// is dropped.
pub fn spawn_user_stream(
    url: String,
    account: Arc<SpotAccount>,
    out: mpsc::UnboundedSender<AccountEvent>,
    settings: UserStreamSettings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = SeenTrades {
            set: HashSet::new(),
            order: VecDeque::new(),
        };
        let mut failures: u32 = 0;
        while !out.is_closed() {
            let started = Instant::now();
            let reason = session(&url, &account, &out, &settings, &mut seen).await;
            if out.is_closed() {
                return;
            }
            failures = if started.elapsed() > Duration::from_secs(60) {
                1
            } else {
                failures + 1
            };
            let wait = settings
                .backoff_min
                .saturating_mul(1 << failures.min(16))
                .min(settings.backoff_max)
                .mul_f64(0.5 + rand::random::<f64>() * 0.5);
            tracing::warn!(
                url,
                reason,
                wait_ms = wait.as_millis() as u64,
                "account stream lost"
            );
            tokio::time::sleep(wait).await;
        }
    })
}

async fn subscribe(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    account: &SpotAccount,
    id: &mut u64,
) -> Result<(), String> {
    *id += 1;
    let request = serde_json::json!({
        "id": format!("subscribe-{id}"),
        "method": "userDataStream.subscribe.signature",
        "params": account.user_stream_params(),
    });
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|error| format!("cannot subscribe: {error}"))
}

/// One connection: subscribe, pass events on; the reason it ended.
async fn session(
    url: &str,
    account: &SpotAccount,
    out: &mpsc::UnboundedSender<AccountEvent>,
    settings: &UserStreamSettings,
    seen: &mut SeenTrades,
) -> String {
    let connect = tokio_tungstenite::connect_async(url);
    let mut socket = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(error)) => return format!("cannot connect: {error}"),
        Err(_) => return "cannot connect: timed out".into(),
    };
    let mut id = 0;
    if let Err(reason) = subscribe(&mut socket, account, &mut id).await {
        return reason;
    }
    loop {
        let message = match tokio::time::timeout(settings.silence, socket.next()).await {
            Err(_) => return "silent".into(),
            Ok(None) => return "closed by the server".into(),
            Ok(Some(Err(error))) => return error.to_string(),
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Ping(_) => {
                if let Err(error) = socket.flush().await {
                    return error.to_string();
                }
                continue;
            }
            Message::Close(frame) => return format!("closed by the server: {frame:?}"),
            _ => continue,
        };
        let Ok(incoming) = serde_json::from_str::<Incoming>(&text) else {
            tracing::debug!("unreadable account stream message");
            continue;
        };
        if incoming.id.is_some() {
            if let Some(error) = incoming.error {
                if error["code"] == -1021 {
                    let _ = account.sync_clock().await;
                }
                return format!("subscription refused: {error}");
            }
            if incoming.status == Some(200) && out.send(AccountEvent::Subscribed).is_err() {
                return "no one listens".into();
            }
            continue;
        }
        let Some(event) = incoming.event else {
            continue;
        };
        match event["e"].as_str() {
            Some("executionReport") => match serde_json::from_value::<ExecutionReport>(event) {
                Ok(report) => {
                    if report.trade_id >= 0
                        && !seen.first(&report.symbol, report.order_id, report.trade_id)
                    {
                        continue; // a trade already passed on
                    }
                    if out.send(AccountEvent::Execution(Box::new(report))).is_err() {
                        return "no one listens".into();
                    }
                }
                Err(error) => tracing::warn!(%error, "unreadable executionReport"),
            },
            // The server is about to close: connect again now.
            Some("serverShutdown") => return "the server is shutting down".into(),
            Some("eventStreamTerminated") => {
                if let Err(reason) = subscribe(&mut socket, account, &mut id).await {
                    return reason;
                }
            }
            _ => {}
        }
    }
}
