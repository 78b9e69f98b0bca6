//! A fake Binance spot server on 127.0.0.1 for tests and benchmarks: the
//! REST endpoints a market data client uses (`/api/v3/time`,
//! `/api/v3/exchangeInfo`, `/api/v3/klines`, with the documented formats,
//! error codes, `X-MBX-USED-WEIGHT-1m` and `Retry-After`) and combined kline
//! streams at `/stream` (SUBSCRIBE / UNSUBSCRIBE, pings every so often
//! whose pongs must carry the payload, at most 5 incoming messages a second,
//! `serverShutdown`).
//!
//! The test moves the market: each `close` ends the current candle of a
//! market, keeps it for REST and pushes it (closed) to every connection
//! subscribed to its stream, then pushes the next candle as open. Faults
//! are switched on by the test: dropped, refused or frozen connections,
//! candles that never reach the streams, exchange outages (no candle at
//! all), and scripted REST answers (429, 418, 5xx).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// First open time of every market (2026-01-01).
pub const START_TS: i64 = 1_767_225_600_000;
/// The request weight limit per minute `exchangeInfo` announces.
pub const WEIGHT_LIMIT: u32 = 6_000;

/// The candle at `index` of any market: deterministic, valid OHLC, prices
/// with decimals as Binance sends them (8 places).
pub fn candle_values(index: u64) -> [String; 5] {
    let base = 100 + (index * 7) % 13;
    let cents = (index * 37) % 100;
    let open = format!("{base}.{cents:02}000000");
    let close = format!("{}.{:02}000000", base + 1, (cents + 11) % 100);
    let high = format!("{}.50000000", base + 2);
    let low = format!("{}.50000000", base - 1);
    let volume = format!("{}.12345678", 10 + index % 5);
    [open, high, low, close, volume]
}

fn step_ms(interval: &str) -> i64 {
    let (count, unit) = interval.split_at(interval.len() - 1);
    let count: i64 = count.parse().unwrap_or(0);
    count
        * match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => 0,
        }
}

const INTERVALS: &[&str] = &[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
];

/// One market: candles `0..closed` are history (`None`: an outage left no
/// candle), candle `closed` is the open one.
struct Market {
    symbol: String,
    interval: String,
    step: i64,
    candles: Vec<Option<u64>>,
}

impl Market {
    fn open_index(&self) -> u64 {
        self.candles.len() as u64
    }

    fn ts(&self, index: u64) -> i64 {
        START_TS + index as i64 * self.step
    }

    fn stream(&self) -> String {
        format!(
            "{}@kline_{}",
            self.symbol.to_ascii_lowercase(),
            self.interval
        )
    }

    fn rest_row(&self, index: u64) -> Value {
        let [o, h, l, c, v] = candle_values(index);
        let ts = self.ts(index);
        json!([
            ts,
            o,
            h,
            l,
            c,
            v,
            ts + self.step - 1,
            "1000.0",
            42,
            "5.0",
            "500.0",
            "0"
        ])
    }

    fn stream_message(&self, index: u64, closed: bool) -> String {
        let [o, h, l, c, v] = candle_values(index);
        let ts = self.ts(index);
        json!({
            "stream": self.stream(),
            "data": {
                "e": "kline", "E": ts + 1_000, "s": self.symbol,
                "k": {
                    "t": ts, "T": ts + self.step - 1, "s": self.symbol, "i": self.interval,
                    "f": 100, "L": 200, "o": o, "c": c, "h": h, "l": l, "v": v,
                    "n": 100, "x": closed, "q": "1.0", "V": "500", "Q": "0.5", "B": "0"
                }
            }
        })
        .to_string()
    }
}

/// A scripted REST answer for the next klines request.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub code: i64,
    pub msg: String,
}

impl Scripted {
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            status: 429,
            retry_after: Some(retry_after),
            code: -1003,
            msg: "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use WebSocket Streams for live updates to avoid polling the API.".into(),
        }
    }

    pub fn banned(retry_after: u64) -> Self {
        Self {
            status: 418,
            retry_after: Some(retry_after),
            code: -1003,
            msg: "Way too many requests; IP(127.0.0.1) banned until 1767225660000. Please use WebSocket Streams for live updates to avoid bans.".into(),
        }
    }

    /// Answer this request normally.
    pub fn normal() -> Self {
        Self {
            status: 200,
            retry_after: None,
            code: 0,
            msg: String::new(),
        }
    }

    pub fn refused() -> Self {
        Self {
            status: 400,
            retry_after: None,
            code: -1100,
            msg: "Illegal characters found in a parameter.".into(),
        }
    }
}

/// A klines request as the fake saw it.
#[derive(Debug, Clone)]
pub struct KlineRequest {
    pub at: Instant,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: u32,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
enum Push {
    Kline { stream: String, text: Arc<str> },
    Shutdown,
    Drop,
    Freeze,
}

#[derive(Default)]
pub(crate) struct Inner {
    markets: HashMap<String, Market>,
    /// The account side: keys, orders, scripted order answers.
    pub(crate) trading: super::fake_binance_trading::Trading,
    /// Added to the wall clock (when there are no markets).
    clock_skew_ms: i64,
    scripted: VecDeque<Scripted>,
    kline_requests: Vec<KlineRequest>,
    refuse_connections: bool,
    connections_opened: u64,
    connections_open: u64,
    /// SUBSCRIBE requests answered, over all connections.
    stream_subscriptions: u64,
    pongs: u64,
    weight_minute: i64,
    weight_used: u32,
    /// `GET /api/v3/avgPrice` answers by symbol (else [`AVERAGE_PRICE`]).
    average_prices: HashMap<String, String>,
}

impl Inner {
    /// The `symbol` a request of `weight` asks about, if it is traded here
    /// (a market or an account's symbol); else Binance's -1121 answer.
    fn known_symbol(
        &mut self,
        query: &HashMap<String, String>,
        weight: u32,
    ) -> Result<String, Box<Response>> {
        let symbol = query.get("symbol").cloned().unwrap_or_default();
        if self.markets.values().any(|market| market.symbol == symbol)
            || self.trading.symbols.contains(&symbol)
        {
            Ok(symbol)
        } else {
            Err(Box::new(weigh(
                self,
                weight,
                refusal(400, -1121, "Invalid symbol."),
            )))
        }
    }
}

/// The average price a symbol has unless a test sets another (the
/// markets' candles trade at 99-115).
pub const AVERAGE_PRICE: &str = "105.00000000";

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pushes: broadcast::Sender<Push>,
    /// Account events for the WebSocket API connections.
    pub(crate) user_pushes: broadcast::Sender<super::fake_binance_trading::UserPush>,
    ping_every: Duration,
    pong_within: Duration,
    shutdown_grace: Duration,
    first_connection_lag: Duration,
}

/// The running fake. Dropping it stops the server.
pub struct FakeBinance {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBinance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Timings of the fake's WebSocket side.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub ping_every: Duration,
    pub pong_within: Duration,
    /// How long after `serverShutdown` a connection is closed.
    pub shutdown_grace: Duration,
    /// Candles reach the first connection opened this late (a slow route),
    /// the others at once.
    pub first_connection_lag: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_millis(500),
            pong_within: Duration::from_secs(2),
            shutdown_grace: Duration::from_millis(500),
            first_connection_lag: Duration::ZERO,
        }
    }
}

impl FakeBinance {
    pub async fn start() -> Self {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(options: FakeOptions) -> Self {
        let (pushes, _) = broadcast::channel(65_536);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            pushes,
            user_pushes: broadcast::channel(4_096).0,
            ping_every: options.ping_every,
            pong_within: options.pong_within,
            shutdown_grace: options.shutdown_grace,
            first_connection_lag: options.first_connection_lag,
        });
        let app = Router::new()
            .route("/api/v3/time", get(time))
            .route("/api/v3/exchangeInfo", get(exchange_info))
            .route("/api/v3/klines", get(klines))
            .route("/api/v3/avgPrice", get(average_price))
            .route("/stream", get(stream))
            .route("/ws-api/v3", get(super::fake_binance_trading::ws_api))
            .route(
                "/api/v3/order",
                axum::routing::post(super::fake_binance_trading::new_order)
                    .get(super::fake_binance_trading::query_order)
                    .delete(super::fake_binance_trading::cancel_order),
            )
            .route(
                "/api/v3/myTrades",
                get(super::fake_binance_trading::my_trades),
            )
            .route("/api/v3/account", get(super::fake_binance_trading::account))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, task }
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stream_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }

    /// A market with `closed` candles of history and one open candle.
    pub fn add_market(&self, symbol: &str, interval: &str, closed: u64) {
        let step = step_ms(interval);
        assert!(step > 0, "unknown interval {interval}");
        self.inner().markets.insert(
            format!("{symbol}|{interval}"),
            Market {
                symbol: symbol.to_string(),
                interval: interval.to_string(),
                step,
                candles: (0..closed).map(Some).collect(),
            },
        );
    }

    /// Close the open candle, pushing it (closed) and its successor (open)
    /// to the subscribed connections unless `pushed` is false (the streams
    /// never carry it, REST has it). Returns the closed candle's open time.
    pub fn close(&self, symbol: &str, interval: &str, pushed: bool) -> i64 {
        let mut inner = self.inner();
        let market = inner
            .markets
            .get_mut(&format!("{symbol}|{interval}"))
            .expect("a market added first");
        let index = market.open_index();
        market.candles.push(Some(index));
        let messages = [
            market.stream_message(index, true),
            market.stream_message(index + 1, false),
        ];
        let (stream, ts) = (market.stream(), market.ts(index));
        drop(inner);
        if pushed {
            for text in messages {
                let _ = self.shared.pushes.send(Push::Kline {
                    stream: stream.clone(),
                    text: text.into(),
                });
            }
        }
        ts
    }

    /// The exchange was down for one candle: neither REST nor the streams
    /// will ever have it.
    pub fn outage(&self, symbol: &str, interval: &str) {
        let mut inner = self.inner();
        let market = inner
            .markets
            .get_mut(&format!("{symbol}|{interval}"))
            .expect("a market added first");
        market.candles.push(None);
    }

    /// Open times of the market's closed candles (the truth a client must
    /// reproduce).
    pub fn closed_ts(&self, symbol: &str, interval: &str) -> Vec<i64> {
        let inner = self.inner();
        let market = &inner.markets[&format!("{symbol}|{interval}")];
        market
            .candles
            .iter()
            .flatten()
            .map(|&index| market.ts(index))
            .collect()
    }

    pub fn drop_connections(&self) {
        let _ = self.shared.pushes.send(Push::Drop);
    }

    /// Connections go quiet (no data, no pings) without closing.
    pub fn freeze_connections(&self) {
        let _ = self.shared.pushes.send(Push::Freeze);
    }

    /// Send `serverShutdown` on every connection, closing each after the
    /// grace period.
    pub fn server_shutdown(&self) {
        let _ = self.shared.pushes.send(Push::Shutdown);
    }

    pub fn refuse_connections(&self, refuse: bool) {
        self.inner().refuse_connections = refuse;
    }

    pub fn script(&self, answer: Scripted) {
        self.inner().scripted.push_back(answer);
    }

    pub fn kline_requests(&self) -> Vec<KlineRequest> {
        self.inner().kline_requests.clone()
    }

    pub fn connections_opened(&self) -> u64 {
        self.inner().connections_opened
    }

    /// Accept signed requests with this API key and HMAC secret, and
    /// orders on `symbol`.
    pub fn add_account(&self, api_key: &str, secret: &str, symbol: &str) {
        let mut inner = self.inner();
        inner.trading.api_key = api_key.to_string();
        inner.trading.secret = secret.to_string();
        inner.trading.symbols.insert(symbol.to_string());
    }

    /// Binance's average price of `symbol` from now on.
    pub fn set_average_price(&self, symbol: &str, price: &str) {
        self.inner()
            .average_prices
            .insert(symbol.to_string(), price.to_string());
    }

    /// Set what the account holds of `asset` (fills move it from then on).
    pub fn set_balance(&self, asset: &str, free: f64) {
        self.inner()
            .trading
            .balances
            .insert(asset.to_string(), free);
    }

    /// What the account holds of `asset`.
    pub fn balance(&self, asset: &str) -> f64 {
        self.inner()
            .trading
            .balances
            .get(asset)
            .copied()
            .unwrap_or(0.0)
    }

    /// Every signed request the fake received: method and path.
    pub fn signed_requests(&self) -> Vec<(String, String)> {
        self.inner().trading.requests.clone()
    }

    /// Move the fake's wall clock (for timestamp checks).
    pub fn set_clock_skew(&self, ms: i64) {
        self.inner().clock_skew_ms = ms;
    }

    /// How the next order POST is answered.
    pub fn script_order(&self, answer: super::fake_binance_trading::OrderScript) {
        self.inner().trading.scripted.push_back(answer);
    }

    /// Every order POST the fake received: client order id and status.
    pub fn order_posts(&self) -> Vec<(String, u16)> {
        self.inner().trading.posts.clone()
    }

    /// Orders the exchange holds: client order id and status.
    pub fn orders(&self) -> Vec<(String, String)> {
        self.inner()
            .trading
            .orders
            .iter()
            .map(|order| (order.client_order_id.clone(), order.status.clone()))
            .collect()
    }

    /// The order `client_order_id` as `GET /api/v3/order` answers it.
    pub fn order(&self, client_order_id: &str) -> Option<Value> {
        self.inner()
            .trading
            .orders
            .iter()
            .find(|order| order.client_order_id == client_order_id)
            .map(|order| super::fake_binance_trading::order_json(order, false))
    }

    pub fn ws_api_url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.addr)
    }

    /// Fill `quantity` more of the resting order `client_order_id` at its
    /// price, telling the account streams; the trade id.
    pub fn fill_order(&self, client_order_id: &str, quantity: &str) -> u64 {
        let mut inner = self.inner();
        let now = now_ms(&inner);
        let event = inner.trading.fill(client_order_id, quantity, now);
        let trade = event["t"].as_u64().unwrap();
        let _ = self
            .shared
            .user_pushes
            .send(super::fake_binance_trading::UserPush::Event(
                event.to_string().into(),
            ));
        trade
    }

    /// Send the last account event again (a duplicate delivery).
    pub fn repeat_last_account_event(&self) {
        if let Some(text) = self.inner().trading.last_event.clone() {
            let _ = self
                .shared
                .user_pushes
                .send(super::fake_binance_trading::UserPush::Event(text));
        }
    }

    /// End every account subscription (`eventStreamTerminated`).
    pub fn terminate_account_streams(&self) {
        let _ = self
            .shared
            .user_pushes
            .send(super::fake_binance_trading::UserPush::Terminate);
    }

    pub fn drop_account_streams(&self) {
        let _ = self
            .shared
            .user_pushes
            .send(super::fake_binance_trading::UserPush::Drop);
    }

    /// Successful `userDataStream.subscribe.signature` requests so far.
    pub fn account_subscriptions(&self) -> u64 {
        self.inner().trading.subscriptions
    }

    /// SUBSCRIBE requests answered so far, over all connections: a
    /// candle pushed after one reaches the streams it named.
    pub fn stream_subscriptions(&self) -> u64 {
        self.inner().stream_subscriptions
    }

    /// Connections open now.
    pub fn connections_open(&self) -> u64 {
        self.inner().connections_open
    }

    /// Pongs received that carried their ping's payload.
    pub fn pongs(&self) -> u64 {
        self.inner().pongs
    }
}

/// Binance's error body.
pub(crate) fn refusal(status: u16, code: i64, msg: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"code": code, "msg": msg})),
    )
        .into_response()
}

/// The fake's clock: just after the newest open candle when it has
/// markets (their time is the test's), else the wall clock plus the skew.
pub(crate) fn now_ms(inner: &Inner) -> i64 {
    inner
        .markets
        .values()
        .map(|market| market.ts(market.open_index()) + 1)
        .max()
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
                + inner.clock_skew_ms
        })
}

/// Count `weight` into the minute and say so in the header.
pub(crate) fn weigh(inner: &mut Inner, weight: u32, mut response: Response) -> Response {
    let minute = chrono_minute();
    if minute != inner.weight_minute {
        inner.weight_minute = minute;
        inner.weight_used = 0;
    }
    inner.weight_used += weight;
    response.headers_mut().insert(
        "x-mbx-used-weight-1m",
        HeaderValue::from_str(&inner.weight_used.to_string()).unwrap(),
    );
    response
}

fn chrono_minute() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60
}

async fn time(State(shared): State<Arc<Shared>>) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let body = axum::Json(json!({"serverTime": now_ms(&inner)})).into_response();
    weigh(&mut inner, 1, body)
}

async fn average_price(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let symbol = match inner.known_symbol(&query, 2) {
        Ok(symbol) => symbol,
        Err(refused) => return *refused,
    };
    let price = inner
        .average_prices
        .get(&symbol)
        .cloned()
        .unwrap_or_else(|| AVERAGE_PRICE.to_string());
    let body = json!({"mins": 5, "price": price, "closeTime": now_ms(&inner)});
    let body = axum::Json(body).into_response();
    weigh(&mut inner, 2, body)
}

async fn exchange_info(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let symbol = match inner.known_symbol(&query, 20) {
        Ok(symbol) => symbol,
        Err(refused) => return *refused,
    };
    let body = json!({
        "timezone": "UTC",
        "serverTime": now_ms(&inner),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": WEIGHT_LIMIT},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}
        ],
        "exchangeFilters": [],
        "symbols": [{
            "symbol": symbol, "status": "TRADING", "baseAsset": &symbol[..3],
            "baseAssetPrecision": 8, "quoteAsset": &symbol[3..], "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"], "isSpotTradingAllowed": true,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000", "stepSize": "0.00000000"},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
                {"filterType": "MIN_NOTIONAL", "minNotional": "1.00000000", "applyToMarket": true, "avgPriceMins": 5},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 3},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5}
            ]
        }]
    });
    let body = axum::Json(body).into_response();
    weigh(&mut inner, 20, body)
}

async fn klines(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let number = |name: &str| query.get(name).map(|text| text.parse::<i64>());
    let (start, end) = (number("startTime"), number("endTime"));
    let limit = number("limit");
    let asked_limit = limit.clone().and_then(Result::ok).unwrap_or(500) as u32;
    let mut seen = KlineRequest {
        at: Instant::now(),
        start: start.clone().and_then(Result::ok),
        end: end.clone().and_then(Result::ok),
        limit: 500,
        status: 200,
    };
    let answer = (|| {
        if let Some(scripted) = inner.scripted.pop_front().filter(|s| s.status != 200) {
            let mut response = refusal(scripted.status, scripted.code, &scripted.msg);
            if let Some(seconds) = scripted.retry_after {
                response.headers_mut().insert(
                    "retry-after",
                    HeaderValue::from_str(&seconds.to_string()).unwrap(),
                );
            }
            return response;
        }
        let Some(symbol) = query.get("symbol").filter(|s| !s.is_empty()) else {
            return refusal(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            );
        };
        let interval = query.get("interval").map(String::as_str).unwrap_or("");
        if !INTERVALS.contains(&interval) {
            return refusal(400, -1120, "Invalid interval.");
        }
        let bad = |name: &str| {
            refusal(
                400,
                -1100,
                &format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
                ),
            )
        };
        let (start, end, limit) = match (start.transpose(), end.transpose(), limit.transpose()) {
            (Ok(start), Ok(end), Ok(limit)) => (start, end, limit.unwrap_or(500)),
            (Err(_), _, _) => return bad("startTime"),
            (_, Err(_), _) => return bad("endTime"),
            (_, _, Err(_)) => return bad("limit"),
        };
        if !(1..=1000).contains(&limit) {
            return refusal(400, -1130, "Data sent for parameter 'limit' is not valid.");
        }
        let Some(market) = inner.markets.get(&format!("{symbol}|{interval}")) else {
            return refusal(400, -1121, "Invalid symbol.");
        };
        // History plus the open candle, in the requested range.
        let all = market
            .candles
            .iter()
            .flatten()
            .copied()
            .chain([market.open_index()])
            .filter(|&index| {
                let ts = market.ts(index);
                start.is_none_or(|start| ts >= start) && end.is_none_or(|end| ts <= end)
            });
        let indices: Vec<u64> = if start.is_some() {
            all.take(limit as usize).collect()
        } else {
            let all: Vec<u64> = all.collect();
            all[all.len().saturating_sub(limit as usize)..].to_vec()
        };
        let rows: Vec<Value> = indices
            .iter()
            .map(|&index| market.rest_row(index))
            .collect();
        axum::Json(Value::Array(rows)).into_response()
    })();
    seen.limit = asked_limit;
    seen.status = answer.status().as_u16();
    inner.kline_requests.push(seen);
    weigh(&mut inner, 2, answer)
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    _headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let lag = {
        let mut inner = shared.inner.lock().unwrap();
        if inner.refuse_connections {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        inner.connections_opened += 1;
        match inner.connections_opened {
            1 => shared.first_connection_lag,
            _ => Duration::ZERO,
        }
    };
    let pushes = shared.pushes.subscribe();
    upgrade.on_upgrade(move |socket| async move {
        shared.inner.lock().unwrap().connections_open += 1;
        serve_connection(shared.clone(), socket, pushes, lag).await;
        shared.inner.lock().unwrap().connections_open -= 1;
    })
}

/// One client connection, until it breaks a rule, the test drops it, or
/// the client goes. Candles are sent `lag` after they close.
async fn serve_connection(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    mut pushes: broadcast::Receiver<Push>,
    lag: Duration,
) {
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut ping = tokio::time::interval(shared.ping_every);
    ping.tick().await;
    let mut awaiting: Option<(Vec<u8>, Instant)> = None;
    let mut ping_count: u64 = 0;
    let mut incoming: VecDeque<Instant> = VecDeque::new();
    let mut closing_at: Option<tokio::time::Instant> = None;
    loop {
        let close_timer = async {
            match closing_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = close_timer => return,
            _ = ping.tick() => {
                if let Some((_, sent)) = &awaiting
                    && sent.elapsed() > shared.pong_within
                {
                    return; // no pong in time: Binance disconnects
                }
                if awaiting.is_none() {
                    ping_count += 1;
                    let payload = ping_count.to_be_bytes().to_vec();
                    if socket.send(Message::Ping(payload.clone().into())).await.is_err() {
                        return;
                    }
                    awaiting = Some((payload, Instant::now()));
                }
            }
            push = pushes.recv() => match push {
                Ok(Push::Kline { stream, text }) => {
                    if subscribed.contains(&stream) && !lag.is_zero() {
                        tokio::time::sleep(lag).await;
                    }
                    if subscribed.contains(&stream)
                        && socket.send(Message::Text(text.to_string().into())).await.is_err()
                    {
                        return;
                    }
                }
                Ok(Push::Shutdown) => {
                    let event = json!({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}});
                    let _ = socket.send(Message::Text(event.to_string().into())).await;
                    closing_at = Some(tokio::time::Instant::now() + shared.shutdown_grace);
                }
                Ok(Push::Drop) => return,
                Ok(Push::Freeze) => {
                    // Hold the TCP connection open and say nothing.
                    tokio::time::sleep(Duration::from_secs(3_600)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            message = socket.recv() => {
                let Some(Ok(message)) = message else { return };
                // Binance: at most 5 incoming messages a second, pongs included.
                let now = Instant::now();
                incoming.push_back(now);
                while incoming.front().is_some_and(|at| now - *at > Duration::from_secs(1)) {
                    incoming.pop_front();
                }
                if incoming.len() > 5 {
                    return;
                }
                match message {
                    Message::Pong(payload) => {
                        if let Some((expected, _)) = &awaiting
                            && payload.as_ref() == expected.as_slice()
                        {
                            awaiting = None;
                            shared.inner.lock().unwrap().pongs += 1;
                        }
                    }
                    Message::Text(text) => {
                        let Ok(request) = serde_json::from_str::<Value>(&text) else {
                            let _ = socket.send(Message::Text(json!({"error": {"code": 3, "msg": "Invalid JSON"}, "id": null}).to_string().into())).await;
                            continue;
                        };
                        let id = request["id"].clone();
                        let names: Vec<String> = request["params"]
                            .as_array()
                            .map(|names| names.iter().filter_map(|n| n.as_str().map(String::from)).collect())
                            .unwrap_or_default();
                        let reply = match request["method"].as_str() {
                            Some("SUBSCRIBE") => {
                                subscribed.extend(names);
                                shared.inner.lock().unwrap().stream_subscriptions += 1;
                                json!({"result": null, "id": id})
                            }
                            Some("UNSUBSCRIBE") => {
                                for name in &names {
                                    subscribed.remove(name);
                                }
                                json!({"result": null, "id": id})
                            }
                            _ => json!({"error": {"code": 2, "msg": "Invalid request: unknown variant"}, "id": id}),
                        };
                        if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
        }
    }
}
