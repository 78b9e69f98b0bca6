//! Signed spot trading on one Binance account: the clock kept in step with
//! Binance's, the symbol's filters checked before anything is sent, and an
//! order placed at most once.
//!
//! The one rule that matters most: an order whose fate is unknown (the
//! request timed out or broke after it left, a 5xx, any error code but the
//! few that Binance gives before the matching engine) is never sent again.
//! It is [`Placement::Unknown`], and [`SpotAccount::resolve`] finds out by
//! querying it by its client order id, which is derived from the bot and
//! its order number ([`client_order_id`]) so that it is the same after a
//! restart; "no such order" is believed only once Binance could no longer
//! take the order. Only what provably never reached the matching engine is
//! sent again: -1021 (timestamp outside `recvWindow`), once, after the
//! clock is synced. A 429 or 418 stops new orders until its `Retry-After`;
//! orders are paced by the account's order counts against the `ORDERS`
//! limits of `exchangeInfo` (per 10 s and per day), and every request by
//! the weight budget of the deployment's shared [`RestClient`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::filters::{FilterRefusal, OpenOrders, OrderShape, OrderSide, OrderType, SymbolInfo};
use super::rest::{ExchangeInfo, RestClient, RestError, with_causes};
use super::signing::{Signer, mask};

/// An API key and what signs with it. Shown only masked.
pub struct Credentials {
    api_key: String,
    signer: Signer,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Key(#[from] super::signing::KeyError),
}

/// The environment variables credentials are read from.
pub const API_KEY_VAR: &str = "STRATBOX_BINANCE_API_KEY";
pub const API_SECRET_VAR: &str = "STRATBOX_BINANCE_API_SECRET";
pub const PRIVATE_KEY_FILE_VAR: &str = "STRATBOX_BINANCE_PRIVATE_KEY_FILE";

impl Credentials {
    pub fn new(api_key: &str, signer: Signer) -> Self {
        Self {
            api_key: api_key.to_string(),
            signer,
        }
    }

    /// `STRATBOX_BINANCE_API_KEY` with `STRATBOX_BINANCE_API_SECRET`
    /// (HMAC) or `STRATBOX_BINANCE_PRIVATE_KEY_FILE` (an Ed25519 PEM file).
    pub fn from_env() -> Result<Self, CredentialError> {
        let api_key =
            std::env::var(API_KEY_VAR).map_err(|_| CredentialError::Missing(API_KEY_VAR))?;
        let signer = match std::env::var(PRIVATE_KEY_FILE_VAR) {
            Ok(path) => {
                let pem =
                    std::fs::read_to_string(&path).map_err(|error| CredentialError::File {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
                Signer::ed25519_pem(&pem)?
            }
            Err(_) => Signer::hmac(
                &std::env::var(API_SECRET_VAR)
                    .map_err(|_| CredentialError::Missing(API_SECRET_VAR))?,
            )?,
        };
        Ok(Self::new(&api_key, signer))
    }

    /// A YAML file of `api_key` and `api_secret` (HMAC) or
    /// `private_key_file` (an Ed25519 PEM file, relative to this file's
    /// folder). Errors never quote the file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, CredentialError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            api_key: String,
            #[serde(default)]
            api_secret: Option<String>,
            #[serde(default)]
            private_key_file: Option<std::path::PathBuf>,
        }
        // Only the file's name: the folder it lies in is the server's business.
        let shown = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let failed = |reason: &str| CredentialError::File {
            path: shown.clone(),
            reason: reason.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|_| failed("cannot be read"))?;
        let file: File = serde_yaml::from_str(&text).map_err(|_| {
            failed("expected YAML with `api_key` and `api_secret` or `private_key_file`")
        })?;
        let signer = match (file.api_secret, file.private_key_file) {
            (Some(secret), None) => Signer::hmac(&secret)?,
            (None, Some(key_file)) => {
                let key_path = path
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join(key_file);
                let pem = std::fs::read_to_string(&key_path)
                    .map_err(|_| failed("its `private_key_file` cannot be read"))?;
                Signer::ed25519_pem(&pem)?
            }
            _ => {
                return Err(failed(
                    "give exactly one of `api_secret` and `private_key_file`",
                ));
            }
        };
        Ok(Self::new(&file.api_key, signer))
    }

    /// A digest of the key and what signs with it: equal for equal
    /// credentials, and telling nothing of them.
    pub fn fingerprint(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(self.api_key.as_bytes());
        digest.update([0]);
        digest.update(self.signer.identity());
        digest.finalize()[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The API key as it may be shown.
    pub fn masked_key(&self) -> String {
        mask(&self.api_key)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.masked_key())
            .field("signer", &self.signer)
            .finish()
    }
}

/// The client order id of `bot`'s order number `order`: the same on every
/// run, unique per bot, at most 36 of `[A-Za-z0-9-_]` as Binance requires.
pub fn client_order_id(bot: &str, order: u64) -> String {
    format!("{}-{order}", client_order_id_prefix(bot))
}

/// A fill of an order, as Binance reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeFill {
    pub price: Decimal,
    pub qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: String,
    pub trade_id: u64,
}

/// An order as Binance reports it (placement answer or query).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReport {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    /// NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, ...
    pub status: String,
    pub executed_qty: Decimal,
    pub cummulative_quote_qty: Decimal,
    #[serde(default)]
    pub fills: Vec<TradeFill>,
}

/// One trade of the account (`myTrades`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountTrade {
    pub id: u64,
    pub order_id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub is_maker: bool,
}

/// What the account holds of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Balance {
    pub asset: String,
    pub free: Decimal,
    pub locked: Decimal,
}

/// The order number `bot` gave the order with this client order id (see
/// [`client_order_id`]), or None if it is not one of `bot`'s.
pub fn order_number(bot: &str, client_order_id: &str) -> Option<u64> {
    let (prefix, number) = client_order_id.rsplit_once('-')?;
    let number: u64 = number.parse().ok()?;
    (client_order_id_prefix(bot) == prefix).then_some(number)
}

fn client_order_id_prefix(bot: &str) -> String {
    let digest = Sha256::digest(bot.as_bytes());
    let tag: String = digest[..5]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sb{tag}")
}

/// An order to place.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub symbol: String,
    pub client_order_id: String,
    pub shape: OrderShape,
    /// The last price seen: a market order's notional and the price bands
    /// are checked against it.
    pub reference: Decimal,
    /// The symbol's orders open now (MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS).
    pub open_orders: OpenOrders,
}

/// How a placement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Binance has the order.
    Accepted(OrderReport),
    /// A filter refused it here; nothing was sent.
    Filtered(FilterRefusal),
    /// Binance said stop (429/418) or the order rate limit is reached:
    /// nothing was sent, no new orders until `until`.
    Blocked { until: Instant, reason: String },
    /// Binance refused it; nothing happened on the exchange.
    Refused { code: i64, msg: String },
    /// Nothing was sent (no connection, the symbol unknown).
    NotSent(String),
    /// It may or may not be on the exchange. Never send it again: resolve
    /// it with [`SpotAccount::resolve`], from `sent_at` (the request's
    /// timestamp, Binance's clock).
    Unknown { reason: String, sent_at: i64 },
}

/// The parameters naming one order by its client order id.
fn order_params(symbol: &str, client_order_id: &str) -> [(&'static str, String); 2] {
    [
        ("symbol", symbol.to_string()),
        ("origClientOrderId", client_order_id.to_string()),
    ]
}

/// What became of an order of unknown fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(OrderReport),
    /// Binance does not have it, and can no longer take it: its request
    /// was refused or lost, and it is past the time Binance would have
    /// processed it.
    Absent,
    /// Not found yet, but still possibly on its way: ask again later.
    StillUnknown,
}

/// Whether Binance's error `code` means the request was refused before the
/// matching engine (so nothing happened). Every other code, -1000, -1001,
/// -1006 and -1007 among them, leaves an order's fate unknown.
fn refused_before_matching(code: i64) -> bool {
    matches!(
        code,
        -1002 | -1003 | -1013 | -1015 | -1016 | -1021 | -1022 | -2010 | -2011 | -2014 | -2015
    ) || (-1199..=-1100).contains(&code)
}

/// How long after its `recvWindow` ends an order's absence is believed.
const SETTLED_AFTER_WINDOW_MS: i64 = 10_000;
const TIMESTAMP_OUTSIDE_WINDOW: i64 = -1021;
const NO_SUCH_ORDER: i64 = -2013;
/// A cancel of an order that is not open (filled, or never there).
const UNKNOWN_ORDER: i64 = -2011;
const API_KEY_HEADER: &str = "X-MBX-APIKEY";

#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// How long a signed request stays valid at Binance (default 5,000 ms).
    pub recv_window_ms: u32,
    /// How long a request may take before its fate is unknown.
    pub timeout: Duration,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            recv_window_ms: 5_000,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Deserialize)]
struct ApiError {
    code: i64,
    msg: String,
}

/// Orders placed in the current 10-second window and UTC day, as Binance
/// counts them, against the limits `exchangeInfo` gives.
#[derive(Debug, Default)]
struct OrderCount {
    window: i64,
    count: u32,
    /// Orders per 10 s allowed, 0 when not known.
    limit: u32,
    /// The UTC day (epoch days) `today` belongs to.
    day: i64,
    /// `X-MBX-ORDER-COUNT-1D` as last reported, plus orders sent since.
    today: u32,
    /// Orders per day allowed, 0 when not known.
    day_limit: u32,
}

const DAY_MS: i64 = 86_400_000;

impl OrderCount {
    /// Count one order sent at `now` (epoch ms), or say how many ms until
    /// one may go and why.
    fn take(&mut self, now: i64) -> Result<(), (i64, String)> {
        if self.window != now.div_euclid(10_000) {
            self.window = now.div_euclid(10_000);
            self.count = 0;
        }
        if self.day != now.div_euclid(DAY_MS) {
            self.day = now.div_euclid(DAY_MS);
            self.today = 0;
        }
        if self.limit != 0 && self.count >= self.limit {
            return Err((
                10_000 - now.rem_euclid(10_000),
                format!("{} orders in 10 s is Binance's limit", self.limit),
            ));
        }
        if self.day_limit != 0 && self.today >= self.day_limit {
            return Err((
                DAY_MS - now.rem_euclid(DAY_MS),
                format!("{} orders a day is Binance's limit", self.day_limit),
            ));
        }
        self.count += 1;
        self.today += 1;
        Ok(())
    }

    /// What the headers of an answer at `now` said.
    fn observe(&mut self, now: i64, in_10s: Option<u32>, today: Option<u32>) {
        if let Some(count) = in_10s {
            self.window = now.div_euclid(10_000);
            self.count = count;
        }
        if let Some(count) = today {
            self.day = now.div_euclid(DAY_MS);
            self.today = count;
        }
    }
}

/// What one bot holds open on the account, as its link last said.
struct OpenOnSymbol {
    /// Which link of the bot said it (a bot's link may be replaced).
    link: u64,
    symbol: String,
    open: OpenOrders,
}

/// One account on one Binance deployment.
pub struct SpotAccount {
    rest: Arc<RestClient>,
    http: reqwest::Client,
    credentials: Credentials,
    settings: AccountSettings,
    /// Binance's clock minus ours, ms.
    offset_ms: AtomicI64,
    symbols: Mutex<HashMap<String, SymbolInfo>>,
    orders: Mutex<OrderCount>,
    /// The orders each bot trading on this account holds open, with their
    /// symbol: Binance's MAX_NUM_ORDERS counts the account's orders on a
    /// symbol, not one bot's.
    open_by_bot: Mutex<HashMap<String, OpenOnSymbol>>,
    /// Binance's average price by symbol, and when it was read.
    average_prices: Mutex<HashMap<String, (Decimal, Instant)>>,
}

/// How long an average price read from Binance is used (it is an average
/// over minutes, so it moves slowly).
const AVERAGE_PRICE_KEPT: Duration = Duration::from_secs(10);
/// Longest an order waits for Binance's average price (then the last price
/// stands in).
const AVERAGE_PRICE_TIMEOUT: Duration = Duration::from_secs(1);

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What one signed request came back with.
enum Answer {
    Ok(bytes::Bytes),
    Api { status: u16, code: i64, msg: String },
    Status(u16, String),
    RateLimited,
}

impl SpotAccount {
    pub fn new(rest: Arc<RestClient>, credentials: Credentials, settings: AccountSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(settings.timeout)
            .user_agent(concat!("stratbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            rest,
            http,
            credentials,
            settings,
            offset_ms: AtomicI64::new(0),
            symbols: Mutex::new(HashMap::new()),
            orders: Mutex::new(OrderCount::default()),
            open_by_bot: Mutex::new(HashMap::new()),
            average_prices: Mutex::new(HashMap::new()),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Set the clock offset from `/api/v3/time` (half the round trip taken
    /// as the one-way delay). Returns the offset, ms.
    pub async fn sync_clock(&self) -> Result<i64, RestError> {
        let before = wall_ms();
        let server = self.rest.server_time().await?;
        let after = wall_ms();
        let offset = server - (before + after) / 2;
        self.offset_ms.store(offset, Ordering::Release);
        Ok(offset)
    }

    /// Binance's time as this client reckons it, ms.
    pub fn timestamp(&self) -> i64 {
        wall_ms() + self.offset_ms.load(Ordering::Acquire)
    }

    /// The `params` of a WebSocket API `userDataStream.subscribe.signature`
    /// request: signed over the other params sorted by name.
    pub fn user_stream_params(&self) -> serde_json::Value {
        let timestamp = self.timestamp();
        let payload = format!(
            "apiKey={}&recvWindow={}&timestamp={timestamp}",
            self.credentials.api_key, self.settings.recv_window_ms
        );
        serde_json::json!({
            "apiKey": self.credentials.api_key,
            "recvWindow": self.settings.recv_window_ms,
            "timestamp": timestamp,
            "signature": self.credentials.signer.sign(&payload),
        })
    }

    /// Until when Binance told this client to stop (429/418), if it did.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.rest.blocked_until()
    }

    /// Orders placed today, as Binance last reported.
    pub fn orders_today(&self) -> u32 {
        self.order_count().today
    }

    /// `bot` (its link `link`) holds `open` on `symbol` now.
    pub fn set_open(&self, bot: &str, link: u64, symbol: &str, open: OpenOrders) {
        self.open_by_bot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                bot.to_string(),
                OpenOnSymbol {
                    link,
                    symbol: symbol.to_string(),
                    open,
                },
            );
    }

    /// Link `link` of `bot` is gone (unless another link of the bot has
    /// spoken since).
    pub fn forget_open(&self, bot: &str, link: u64) {
        let mut open = self
            .open_by_bot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if open.get(bot).is_some_and(|said| said.link == link) {
            open.remove(bot);
        }
    }

    /// What the account's other bots hold open on `symbol`.
    pub fn open_elsewhere(&self, bot: &str, symbol: &str) -> OpenOrders {
        self.open_by_bot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(other, said)| other.as_str() != bot && said.symbol == symbol)
            .fold(OpenOrders::default(), |sum, (_, said)| sum + said.open)
    }

    /// The request weight per minute this account's requests are paced by.
    pub fn weight_limit(&self) -> u32 {
        self.rest.weight_limit()
    }

    fn order_count(&self) -> std::sync::MutexGuard<'_, OrderCount> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The symbol's rules, from `exchangeInfo` (kept; `refresh` reloads).
    pub async fn symbol(&self, symbol: &str, refresh: bool) -> Result<SymbolInfo, RestError> {
        if !refresh
            && let Some(info) = self
                .symbols
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(symbol)
        {
            return Ok(info.clone());
        }
        let info: ExchangeInfo = self.rest.exchange_info(symbol).await?;
        self.rest.adopt_limits(&info);
        {
            let mut orders = self.order_count();
            if let Some(limit) = info.limit("ORDERS", "SECOND", 10) {
                orders.limit = limit;
            }
            if let Some(limit) = info.limit("ORDERS", "DAY", 1) {
                orders.day_limit = limit;
            }
        }
        let found = info
            .symbols
            .into_iter()
            .find(|candidate| candidate.symbol == symbol)
            .ok_or_else(|| RestError::Api {
                status: 400,
                code: -1121,
                msg: "Invalid symbol.".into(),
            })?;
        self.symbols
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(symbol.to_string(), found.clone());
        Ok(found)
    }

    /// Binance's average price of `symbol` (`GET /api/v3/avgPrice`, weight
    /// 2), which its price bands and market notionals are checked against;
    /// kept for [`AVERAGE_PRICE_KEPT`]. Asked on an order's way out, so
    /// never waited for: not asked when the weight budget is used up or a
    /// ban is in force, and given up after [`AVERAGE_PRICE_TIMEOUT`].
    pub async fn average_price(&self, symbol: &str) -> Result<Decimal, RestError> {
        if let Some(price) = self.cached_average_price(symbol) {
            return Ok(price);
        }
        #[derive(Deserialize)]
        struct AvgPrice {
            price: Decimal,
        }
        let query = [("symbol", symbol.to_string())];
        let answer: AvgPrice = self
            .rest
            .get_now("/api/v3/avgPrice", &query, 2, AVERAGE_PRICE_TIMEOUT)
            .await?;
        self.average_prices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(symbol.to_string(), (answer.price, Instant::now()));
        Ok(answer.price)
    }

    /// The average price last read for `symbol`, while it is fresh.
    pub fn cached_average_price(&self, symbol: &str) -> Option<Decimal> {
        self.average_prices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(symbol)
            .filter(|(_, at)| at.elapsed() < AVERAGE_PRICE_KEPT)
            .map(|(price, _)| *price)
    }

    /// A signed request with `params` in the query string.
    async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        timestamp: i64,
    ) -> Result<Answer, reqwest::Error> {
        let mut all: Vec<(&str, String)> = params.to_vec();
        all.push(("recvWindow", self.settings.recv_window_ms.to_string()));
        all.push(("timestamp", timestamp.to_string()));
        let query = serde_urlencoded::to_string(&all).expect("plain pairs encode");
        let signature = self.credentials.signer.sign(&query);
        let signature =
            serde_urlencoded::to_string([("signature", signature)]).expect("plain pairs encode");
        let url = format!("{}{path}?{query}&{signature}", self.rest.base());
        let response = self
            .http
            .request(method, url)
            .header(API_KEY_HEADER, &self.credentials.api_key)
            .send()
            .await?;
        self.rest.observe(&response);
        self.observe_orders(&response);
        let status = response.status().as_u16();
        if status == 429 || status == 418 {
            // Every request of this client stops until Retry-After, however
            // long it is.
            if let Err(error) = self.rest.back_off(&response) {
                tracing::warn!(%error, "Binance stopped this client");
            }
            return Ok(Answer::RateLimited);
        }
        let body = response.bytes().await?;
        Ok(match status {
            200 => Answer::Ok(body),
            400..500 => match serde_json::from_slice::<ApiError>(&body) {
                Ok(error) => Answer::Api {
                    status,
                    code: error.code,
                    msg: error.msg,
                },
                Err(_) => Answer::Status(status, String::from_utf8_lossy(&body).into()),
            },
            _ => Answer::Status(status, String::from_utf8_lossy(&body).into()),
        })
    }

    fn observe_orders(&self, response: &reqwest::Response) {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u32>().ok())
        };
        self.order_count().observe(
            wall_ms(),
            header("x-mbx-order-count-10s"),
            header("x-mbx-order-count-1d"),
        );
    }

    /// None when an order may go now; else until when it may not.
    fn order_budget(&self) -> Option<(Instant, String)> {
        if let Some(until) = self.rest.blocked_until() {
            return Some((until, "Binance asked this client to stop (429/418)".into()));
        }
        self.order_count()
            .take(wall_ms())
            .err()
            .map(|(wait_ms, reason)| {
                (
                    Instant::now() + Duration::from_millis(wait_ms as u64),
                    reason,
                )
            })
    }

    /// Place `order` once (see the module comment for what is never done).
    pub async fn place(&self, order: &NewOrder) -> Placement {
        let info = match self.symbol(&order.symbol, false).await {
            Ok(info) => info,
            Err(error) => return Placement::NotSent(format!("no trading rules: {error}")),
        };
        let average = self.average_price(&order.symbol).await.unwrap_or_else(|error| {
            tracing::debug!(symbol = %order.symbol, %error, "no average price: the last one stands in");
            order.reference
        });
        if let Err(refusal) =
            info.check_at(&order.shape, order.reference, average, order.open_orders)
        {
            return Placement::Filtered(refusal);
        }
        if let Some((until, reason)) = self.order_budget() {
            return Placement::Blocked { until, reason };
        }
        let mut params = vec![
            ("symbol", order.symbol.clone()),
            (
                "side",
                match order.shape.side {
                    OrderSide::Buy => "BUY",
                    OrderSide::Sell => "SELL",
                }
                .to_string(),
            ),
        ];
        params.push(("type", order.shape.kind.name().into()));
        let price = order.shape.price.unwrap_or(order.reference);
        match order.shape.kind {
            OrderType::Market => {}
            OrderType::Limit => {
                params.push(("timeInForce", "GTC".into()));
                params.push(("price", price.normalize().to_string()));
            }
            OrderType::StopLoss => params.push(("stopPrice", price.normalize().to_string())),
        }
        params.push(("quantity", order.shape.quantity.normalize().to_string()));
        params.push(("newClientOrderId", order.client_order_id.clone()));
        params.push(("newOrderRespType", "FULL".into()));
        for attempt in 0..2 {
            // An order is never held back to wait for the weight budget: it
            // would go out late, on a stale decision.
            if let Some(wait) = self.rest.try_take(1) {
                return Placement::Blocked {
                    until: Instant::now() + wait,
                    reason: "the request weight budget of this minute is used up".into(),
                };
            }
            let sent_at = self.timestamp();
            let unknown = |reason: String| Placement::Unknown { reason, sent_at };
            let answer = match self
                .signed(reqwest::Method::POST, "/api/v3/order", &params, sent_at)
                .await
            {
                Ok(answer) => answer,
                Err(error) if error.is_connect() => {
                    return Placement::NotSent(format!("cannot connect: {}", with_causes(&error)));
                }
                Err(error) => return unknown(format!("no answer: {}", with_causes(&error))),
            };
            match answer {
                Answer::Ok(body) => {
                    return match serde_json::from_slice::<OrderReport>(&body) {
                        Ok(report) => Placement::Accepted(report),
                        Err(error) => unknown(format!("unreadable answer: {error}")),
                    };
                }
                Answer::RateLimited => {
                    let until = self.rest.blocked_until().unwrap_or_else(Instant::now);
                    return Placement::Blocked {
                        until,
                        reason: "Binance answered 429/418: no new orders until Retry-After".into(),
                    };
                }
                Answer::Api { code, .. } if code == TIMESTAMP_OUTSIDE_WINDOW && attempt == 0 => {
                    // Refused before the matching engine: safe to send again.
                    tracing::warn!("Binance refused the timestamp (-1021); syncing the clock");
                    if let Err(error) = self.sync_clock().await {
                        return Placement::NotSent(format!("cannot sync the clock: {error}"));
                    }
                }
                Answer::Api { code, msg, .. } if refused_before_matching(code) => {
                    return Placement::Refused { code, msg };
                }
                Answer::Api { code, msg, .. } => return unknown(format!("{code}: {msg}")),
                Answer::Status(status, body) => return unknown(format!("{status}: {body}")),
            }
        }
        Placement::Refused {
            code: TIMESTAMP_OUTSIDE_WINDOW,
            msg: "the timestamp was refused again after syncing the clock".into(),
        }
    }

    /// The order with this client order id, or None if Binance has none.
    pub async fn query(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<Option<OrderReport>, RestError> {
        let params = order_params(symbol, client_order_id);
        self.repeatable(reqwest::Method::GET, "/api/v3/order", &params, 4)
            .await
    }

    /// Cancel the order with this client order id: its report after the
    /// cancel, or None if Binance has no open order by that id (it filled,
    /// or was never placed: query it to know which).
    pub async fn cancel(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<Option<OrderReport>, RestError> {
        let params = order_params(symbol, client_order_id);
        self.repeatable(reqwest::Method::DELETE, "/api/v3/order", &params, 1)
            .await
    }

    /// The trades of one order (Binance's order id), oldest first.
    pub async fn trades(
        &self,
        symbol: &str,
        order_id: u64,
    ) -> Result<Vec<AccountTrade>, RestError> {
        let params = [
            ("symbol", symbol.to_string()),
            ("orderId", order_id.to_string()),
        ];
        let mut trades: Vec<AccountTrade> = self
            .repeatable(reqwest::Method::GET, "/api/v3/myTrades", &params, 5)
            .await?
            .unwrap_or_default();
        trades.sort_by_key(|trade| trade.id);
        Ok(trades)
    }

    /// The account's balances (non-zero ones).
    pub async fn balances(&self) -> Result<Vec<Balance>, RestError> {
        #[derive(Deserialize)]
        struct AccountInfo {
            balances: Vec<Balance>,
        }
        let params = [("omitZeroBalances", "true".to_string())];
        let info: Option<AccountInfo> = self
            .repeatable(reqwest::Method::GET, "/api/v3/account", &params, 20)
            .await?;
        Ok(info.map(|info| info.balances).unwrap_or_default())
    }

    /// A signed request that may be sent again without harm (a read, a
    /// cancel): retried on 5xx and network errors, and once more after a
    /// clock sync on -1021. None when Binance has no such order.
    async fn repeatable<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
        weight: u32,
    ) -> Result<Option<T>, RestError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt == 3;
            self.rest.pace(weight).await;
            let answer = self
                .signed(method.clone(), path, params, self.timestamp())
                .await;
            match answer {
                Ok(Answer::Ok(body)) => {
                    return serde_json::from_slice(&body).map(Some).map_err(|error| {
                        RestError::Format {
                            url: path.to_string(),
                            reason: error.to_string(),
                        }
                    });
                }
                Ok(Answer::Api { code, .. }) if code == NO_SUCH_ORDER || code == UNKNOWN_ORDER => {
                    return Ok(None);
                }
                Ok(Answer::Api { code, .. }) if code == TIMESTAMP_OUTSIDE_WINDOW && !last => {
                    self.sync_clock().await?;
                }
                Ok(Answer::Api { status, code, msg }) => {
                    return Err(RestError::Api { status, code, msg });
                }
                Ok(Answer::RateLimited) => {
                    return Err(RestError::RateLimited {
                        what: "asked to back off",
                        seconds: self
                            .rest
                            .blocked_until()
                            .map_or(0, |until| (until - Instant::now()).as_secs()),
                    });
                }
                Ok(Answer::Status(status, body)) if last => {
                    return Err(RestError::Status { status, body });
                }
                Err(error) if last => {
                    return Err(RestError::Unreachable {
                        url: path.to_string(),
                        reason: with_causes(&error),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Find out what became of an order whose placement had an unknown
    /// outcome (its request's timestamp `sent_at`): query it by its client
    /// order id until Binance reports it, or until Binance can no longer
    /// take it (`recvWindow` and a margin after `sent_at`) and still does
    /// not have it, or until `patience` runs out. Never places it again.
    pub async fn resolve(
        &self,
        symbol: &str,
        client_order_id: &str,
        sent_at: i64,
        patience: Duration,
    ) -> Result<Resolution, RestError> {
        let deadline = Instant::now() + patience;
        let settled = sent_at + i64::from(self.settings.recv_window_ms) + SETTLED_AFTER_WINDOW_MS;
        loop {
            if let Some(report) = self.query(symbol, client_order_id).await? {
                return Ok(Resolution::Found(report));
            }
            // Binance answers "no such order" from a cache: only a miss after
            // the order could no longer be processed is believed.
            if self.timestamp() > settled {
                return Ok(Resolution::Absent);
            }
            if Instant::now() >= deadline {
                return Ok(Resolution::StillUnknown);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_paced_by_the_ten_second_and_the_daily_limit() {
        let day = 20_000 * DAY_MS;
        let mut orders = OrderCount {
            limit: 2,
            day_limit: 3,
            ..OrderCount::default()
        };
        assert_eq!(orders.take(day + 1_000), Ok(()));
        assert_eq!(orders.take(day + 2_000), Ok(()));
        let (wait, reason) = orders.take(day + 3_000).unwrap_err();
        assert_eq!(wait, 7_000, "until the next 10 s window");
        assert!(reason.contains("2 orders in 10 s"), "{reason}");
        assert_eq!(orders.take(day + 10_000), Ok(()), "a new window");
        let (wait, reason) = orders.take(day + 20_000).unwrap_err();
        assert_eq!(wait, DAY_MS - 20_000, "until the next UTC day");
        assert!(reason.contains("3 orders a day"), "{reason}");
        assert_eq!(orders.take(day + DAY_MS), Ok(()), "a new day");

        // The headers are the truth: another client of the account may
        // have placed orders too.
        let mut orders = OrderCount {
            day_limit: 100,
            ..OrderCount::default()
        };
        orders.observe(day, Some(1), Some(100));
        assert!(orders.take(day + 1).is_err());
        let unknown = &mut OrderCount::default();
        assert!(
            (0..1_000).all(|n| unknown.take(day + n).is_ok()),
            "no limits known"
        );
    }

    #[test]
    fn open_orders_of_the_accounts_other_bots_count_on_their_symbol() {
        let account = SpotAccount::new(
            Arc::new(RestClient::new("http://127.0.0.1:9")),
            Credentials::new(
                "key",
                crate::exchange::binance::Signer::hmac("secret").unwrap(),
            ),
            AccountSettings::default(),
        );
        let open = |all, stops| OpenOrders { all, stops };
        account.set_open("a", 1, "BTCUSDT", open(3, 1));
        account.set_open("b", 2, "BTCUSDT", open(2, 0));
        account.set_open("c", 3, "ETHUSDT", open(7, 7));
        assert_eq!(account.open_elsewhere("a", "BTCUSDT"), open(2, 0));
        assert_eq!(account.open_elsewhere("new", "BTCUSDT"), open(5, 1));
        assert_eq!(account.open_elsewhere("a", "ETHUSDT"), open(7, 7));
        // A replaced link's end does not erase what its successor said.
        account.set_open("b", 4, "BTCUSDT", open(1, 0));
        account.forget_open("b", 2);
        assert_eq!(account.open_elsewhere("a", "BTCUSDT"), open(1, 0));
        account.forget_open("b", 4);
        assert_eq!(account.open_elsewhere("a", "BTCUSDT"), open(0, 0));
    }

    #[test]
    fn only_refusals_before_the_matching_engine_count_as_nothing_happened() {
        for code in [-1013, -1021, -1022, -1100, -1121, -2010, -2015] {
            assert!(refused_before_matching(code), "{code}");
        }
        for code in [-1000, -1001, -1006, -1007, -1008, -9999] {
            assert!(!refused_before_matching(code), "{code}");
        }
    }

    #[test]
    fn client_order_ids_are_stable_short_and_per_bot() {
        let id = client_order_id("btc-trend-follower-with-a-long-name", u64::MAX);
        assert!(id.len() <= 36, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(
            id,
            client_order_id("btc-trend-follower-with-a-long-name", u64::MAX)
        );
        assert_ne!(client_order_id("a", 1), client_order_id("b", 1));
        assert_ne!(client_order_id("a", 1), client_order_id("a", 2));
    }
}
