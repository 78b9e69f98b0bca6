//! Binance's REST API for public data: klines, server time and the rate
//! limits from `exchangeInfo`.
//!
//! Every answer's `X-MBX-USED-WEIGHT-1m` header is read, and requests wait
//! for the next minute rather than go past nine tenths of the weight limit
//! (the limit comes from `exchangeInfo`, never assumed beyond a
//! conservative start). A 429 or 418 stops every request of this client
//! until its `Retry-After` has passed. Only idempotent GETs live here, so
//! network errors and 5xx answers are retried with backoff.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::kline::RestKline;
use crate::domain::Timeframe;

/// The weight a client allows itself per minute until `exchangeInfo` says
/// more (Binance's spot limit has been 6,000 since 2023; less is safe).
pub const START_WEIGHT_LIMIT: u32 = 1_200;

/// The most klines one request may ask for.
pub const MAX_KLINES: u16 = 1_000;

/// The longest `Retry-After` a request waits out; a longer ban is an error.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Tries of one GET through network errors and 5xx answers.
const ATTEMPTS: u32 = 5;
const WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Binance refused the request ({status}, code {code}): {msg}")]
    Api { status: u16, code: i64, msg: String },
    #[error("Binance answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Binance's answer from {url} is not what the API documents: {reason}")]
    Format { url: String, reason: String },
    #[error(
        "Binance {what} for {seconds} s (Retry-After), longer than this client waits; try again later"
    )]
    RateLimited { what: &'static str, seconds: u64 },
    #[error("the request weight budget of this minute is used up (or Binance asked to stop)")]
    BudgetUsedUp,
}

/// An error and each cause under it ("error sending request: client
/// error (Connect): tcp connect error: Connection refused"): reqwest's own
/// words alone do not say what went wrong.
pub(super) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let said = next.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = next.source();
    }
    text
}

#[derive(Deserialize)]
struct ApiError {
    code: i64,
    msg: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerTime {
    server_time: i64,
}

/// The parts of `exchangeInfo` this client reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExchangeInfo {
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    #[serde(default)]
    pub symbols: Vec<super::filters::SymbolInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RateLimit {
    rate_limit_type: String,
    interval: String,
    interval_num: u32,
    limit: u32,
}

impl ExchangeInfo {
    /// The limit of `kind` (`REQUEST_WEIGHT`, `ORDERS`) per `count`
    /// `interval`s (`SECOND`, `MINUTE`, `DAY`), if Binance sets one.
    pub fn limit(&self, kind: &str, interval: &str, count: u32) -> Option<u32> {
        self.rate_limits
            .iter()
            .find(|limit| {
                limit.rate_limit_type == kind
                    && limit.interval == interval
                    && limit.interval_num == count
            })
            .map(|limit| limit.limit)
    }
}

/// What the client knows of its budget.
#[derive(Debug)]
struct Pacing {
    /// Weight used in `minute`, as the last answer said (plus requests
    /// sent since).
    used: u32,
    /// The epoch minute `used` belongs to.
    minute: i64,
    /// No request before this (a 429 or 418's `Retry-After`).
    blocked_until: Option<Instant>,
    /// Requests weight per minute allowed.
    limit: u32,
}

impl Pacing {
    /// Count a request of `weight` in and return None, or say how long to
    /// wait first (at `now_ms` on the wall clock, `now` on the monotonic).
    fn take(&mut self, weight: u32, now_ms: i64, now: Instant) -> Option<Duration> {
        let minute = now_ms.div_euclid(60_000);
        if minute != self.minute {
            self.minute = minute;
            self.used = 0;
        }
        match self.blocked_until {
            Some(until) if until > now => Some(until - now),
            _ if self.used.saturating_add(weight) > (u64::from(self.limit) * 9 / 10) as u32 => {
                let into_minute = now_ms.rem_euclid(60_000);
                Some(Duration::from_millis((60_000 - into_minute) as u64 + 50))
            }
            _ => {
                self.used = self.used.saturating_add(weight);
                None
            }
        }
    }
}

/// A REST client for one Binance base URL. Share it: the weight budget is
/// per IP, so all requests to one deployment should go through one client
/// ([`RestClient::shared`]).
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    pacing: Mutex<Pacing>,
    limits: OnceCell<()>,
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn epoch_minute() -> i64 {
    wall_ms().div_euclid(60_000)
}

impl RestClient {
    /// The one client of this process for `base`: Binance counts weight
    /// and bans per IP, so a feed's requests and every account's on one
    /// deployment share one budget, and a 429 or 418 met by any of them
    /// stops them all. A client lives while someone holds it.
    pub fn shared(base: &str) -> Arc<RestClient> {
        static CLIENTS: LazyLock<Mutex<HashMap<String, Weak<RestClient>>>> =
            LazyLock::new(Default::default);
        let base = base.trim_end_matches('/');
        let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(base).and_then(Weak::upgrade) {
            return client;
        }
        clients.retain(|_, client| client.strong_count() > 0);
        let client = Arc::new(RestClient::new(base));
        clients.insert(base.to_string(), Arc::downgrade(&client));
        client
    }

    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("stratbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            pacing: Mutex::new(Pacing {
                used: 0,
                minute: epoch_minute(),
                blocked_until: None,
                limit: START_WEIGHT_LIMIT,
            }),
            limits: OnceCell::new(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The weight used this minute, as Binance last reported it.
    pub fn used_weight(&self) -> u32 {
        self.lock().used
    }

    /// Until when Binance told this client to stop (429 / 418), if it did.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.lock()
            .blocked_until
            .filter(|until| *until > Instant::now())
    }

    /// The weight limit per minute in force.
    pub fn weight_limit(&self) -> u32 {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pacing> {
        self.pacing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binance's clock, epoch ms.
    pub async fn server_time(&self) -> Result<i64, RestError> {
        let time: ServerTime = self.get("/api/v3/time", &[], 1).await?;
        Ok(time.server_time)
    }

    /// Up to `limit` klines of `symbol` with open times in `[start, end]`
    /// (either bound optional), oldest first. The newest may still be open.
    pub async fn klines(
        &self,
        symbol: &str,
        timeframe: Timeframe,
        start: Option<i64>,
        end: Option<i64>,
        limit: u16,
    ) -> Result<Vec<RestKline>, RestError> {
        self.load_limits(symbol).await;
        let mut query = vec![
            ("symbol", symbol.to_string()),
            ("interval", timeframe.name().to_string()),
            ("limit", limit.min(MAX_KLINES).to_string()),
        ];
        if let Some(start) = start {
            query.push(("startTime", start.to_string()));
        }
        if let Some(end) = end {
            query.push(("endTime", end.to_string()));
        }
        self.get("/api/v3/klines", &query, 2).await
    }

    /// `exchangeInfo` for one symbol (weight 20), in the caller's shape.
    pub async fn exchange_info<T: DeserializeOwned>(&self, symbol: &str) -> Result<T, RestError> {
        let query = [("symbol", symbol.to_string())];
        self.get("/api/v3/exchangeInfo", &query, 20).await
    }

    /// Stop every request for `wait` (a ban longer than this client waits
    /// out in a request).
    pub(super) fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pacing = self.lock();
        pacing.blocked_until = Some(pacing.blocked_until.map_or(until, |old| old.max(until)));
    }

    /// Read the request weight limit from `exchangeInfo` once. A failure
    /// keeps the conservative start limit (and is logged).
    async fn load_limits(&self, symbol: &str) {
        self.limits
            .get_or_init(|| async {
                match self.exchange_info::<ExchangeInfo>(symbol).await {
                    Ok(info) => self.adopt_limits(&info),
                    Err(error) => tracing::warn!(
                        base = self.base,
                        %error,
                        "cannot read the rate limits from exchangeInfo; pacing at {START_WEIGHT_LIMIT} weight/min"
                    ),
                }
            })
            .await;
    }

    /// Pace by the request weight limit `info` gives (the start limit
    /// stays when it gives none).
    pub(super) fn adopt_limits(&self, info: &ExchangeInfo) {
        if let Some(limit) = info.limit("REQUEST_WEIGHT", "MINUTE", 1) {
            self.lock().limit = limit;
        }
    }

    /// Count a request of `weight` in now, or say how long it would have to
    /// wait (and count nothing): for requests that must not wait.
    pub(super) fn try_take(&self, weight: u32) -> Option<Duration> {
        self.lock().take(weight, wall_ms(), Instant::now())
    }

    /// Wait until a request of `weight` may go: no ban or back-off in
    /// force, and the minute's budget not past nine tenths.
    pub(super) async fn pace(&self, weight: u32) {
        loop {
            let wait = self.lock().take(weight, wall_ms(), Instant::now());
            let Some(wait) = wait else { return };
            tracing::debug!(
                base = self.base,
                wait_ms = wait.as_millis() as u64,
                "pacing"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Take what the answer says about the budget.
    pub(super) fn observe(&self, response: &reqwest::Response) {
        let used = response
            .headers()
            .get(WEIGHT_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u32>().ok());
        if let Some(used) = used {
            // The header does not count requests still in flight: within
            // the same minute, keep the larger count.
            let mut pacing = self.lock();
            let minute = epoch_minute();
            pacing.used = if pacing.minute == minute {
                pacing.used.max(used)
            } else {
                used
            };
            pacing.minute = minute;
        }
    }

    /// Stop every request for `Retry-After` seconds (429: back off; 418:
    /// banned), or fail when that is longer than [`MAX_RETRY_AFTER`].
    pub(super) fn back_off(&self, response: &reqwest::Response) -> Result<(), RestError> {
        let banned = response.status().as_u16() == 418;
        let seconds = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(60);
        let what = if banned {
            "banned this IP"
        } else {
            "asked to back off"
        };
        // Every request stops for as long as Binance says, however long:
        // asking during a ban lengthens it.
        self.block_for(Duration::from_secs(seconds));
        if Duration::from_secs(seconds) > MAX_RETRY_AFTER {
            return Err(RestError::RateLimited { what, seconds });
        }
        tracing::warn!(base = self.base, seconds, "Binance {what}; waiting as told");
        Ok(())
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        weight: u32,
    ) -> Result<T, RestError> {
        let url = format!("{}{path}", self.base);
        let mut failures = 0;
        loop {
            let failure = match self.attempt(&url, query, weight).await {
                Attempt::Done(body) => {
                    return serde_json::from_slice(&body).map_err(|error| RestError::Format {
                        url,
                        reason: error.to_string(),
                    });
                }
                Attempt::Refused(error) => return Err(error),
                Attempt::WaitedOut => continue,
                Attempt::Failed(error) => error,
            };
            failures += 1;
            if failures >= ATTEMPTS {
                return Err(failure);
            }
            tracing::debug!(url, %failure, "retrying");
            tokio::time::sleep(Duration::from_millis(250 << failures)).await;
        }
    }

    /// One GET of `path` only if the weight budget allows it now, within
    /// `timeout`, never retried: for what an order needs on its way out
    /// (an order is never held back to wait).
    pub(super) async fn get_now<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        weight: u32,
        timeout: Duration,
    ) -> Result<T, RestError> {
        if self.try_take(weight).is_some() {
            return Err(RestError::BudgetUsedUp);
        }
        let url = format!("{}{path}", self.base);
        match self.send(&url, query, Some(timeout)).await {
            Attempt::Done(body) => {
                serde_json::from_slice(&body).map_err(|error| RestError::Format {
                    url,
                    reason: error.to_string(),
                })
            }
            Attempt::Refused(error) | Attempt::Failed(error) => Err(error),
            Attempt::WaitedOut => Err(RestError::BudgetUsedUp),
        }
    }

    /// One request, once its budget allows.
    async fn attempt(&self, url: &str, query: &[(&str, String)], weight: u32) -> Attempt {
        self.pace(weight).await;
        self.send(url, query, None).await
    }

    /// One request now (within `timeout` if given, else the client's).
    async fn send(
        &self,
        url: &str,
        query: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> Attempt {
        let unreachable = |error: reqwest::Error| {
            Attempt::Failed(RestError::Unreachable {
                url: url.to_string(),
                reason: with_causes(&error),
            })
        };
        let mut request = self.http.get(url).query(query);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return unreachable(error),
        };
        self.observe(&response);
        let status = response.status().as_u16();
        if status == 429 || status == 418 {
            return match self.back_off(&response) {
                Ok(()) => Attempt::WaitedOut,
                Err(error) => Attempt::Refused(error),
            };
        }
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return unreachable(error),
        };
        let text = || String::from_utf8_lossy(&body).chars().take(200).collect();
        match status {
            200 => Attempt::Done(body),
            500.. => Attempt::Failed(RestError::Status {
                status,
                body: text(),
            }),
            _ => Attempt::Refused(match serde_json::from_slice::<ApiError>(&body) {
                Ok(error) => RestError::Api {
                    status,
                    code: error.code,
                    msg: error.msg,
                },
                Err(_) => RestError::Status {
                    status,
                    body: text(),
                },
            }),
        }
    }
}

/// How one request went.
enum Attempt {
    Done(bytes::Bytes),
    /// A refusal that asking again will not change.
    Refused(RestError),
    /// Told to back off, and the wait is set: ask again.
    WaitedOut,
    /// Network or server trouble: worth another try.
    Failed(RestError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_base_url_so_a_ban_stops_every_user_of_it() {
        let feed = RestClient::shared("http://127.0.0.1:9/");
        let account = RestClient::shared("http://127.0.0.1:9");
        let elsewhere = RestClient::shared("http://127.0.0.1:10");
        assert!(Arc::ptr_eq(&feed, &account));
        assert!(!Arc::ptr_eq(&feed, &elsewhere));
        feed.block_for(Duration::from_secs(60));
        assert!(
            account.blocked_until().is_some(),
            "the feed's 418 stops orders too"
        );
        assert!(elsewhere.blocked_until().is_none());
        drop((feed, account));
        let fresh = RestClient::shared("http://127.0.0.1:9");
        assert!(fresh.blocked_until().is_none(), "a client lives while held");
    }

    #[tokio::test]
    async fn what_must_not_wait_is_not_sent_during_a_ban_nor_past_the_budget() {
        // Nothing listens on port 9: a request sent would fail as unreachable.
        let client = RestClient::new("http://127.0.0.1:9");
        client.block_for(Duration::from_secs(60));
        let asked = client
            .get_now::<serde_json::Value>("/api/v3/avgPrice", &[], 2, Duration::from_secs(5))
            .await;
        assert!(matches!(asked, Err(RestError::BudgetUsedUp)), "{asked:?}");

        let client = RestClient::new("http://127.0.0.1:9");
        client.lock().used = START_WEIGHT_LIMIT;
        let asked = client
            .get_now::<serde_json::Value>("/api/v3/avgPrice", &[], 2, Duration::from_secs(5))
            .await;
        assert!(matches!(asked, Err(RestError::BudgetUsedUp)), "{asked:?}");

        let client = RestClient::new("http://127.0.0.1:9");
        let asked = client
            .get_now::<serde_json::Value>("/api/v3/avgPrice", &[], 2, Duration::from_secs(5))
            .await;
        assert!(
            matches!(asked, Err(RestError::Unreachable { .. })),
            "sent: {asked:?}"
        );
        // Why, in the words of the cause under reqwest's own.
        let said = asked.unwrap_err().to_string();
        assert!(said.contains("Connection refused"), "{said}");
    }

    #[test]
    fn requests_wait_for_the_next_minute_before_nine_tenths_of_the_limit() {
        let now = Instant::now();
        let minute_start = 1_767_225_600_000;
        let mut pacing = Pacing {
            used: 0,
            minute: minute_start / 60_000,
            blocked_until: None,
            limit: 100,
        };
        for _ in 0..45 {
            assert_eq!(pacing.take(2, minute_start + 10_000, now), None);
        }
        // 90 used: the next would pass 90% of 100.
        assert_eq!(
            pacing.take(2, minute_start + 10_000, now),
            Some(Duration::from_millis(50_050))
        );
        // What Binance reports counts, not only what was sent.
        pacing.used = 0;
        assert_eq!(pacing.take(2, minute_start + 10_000, now), None);
        pacing.used = 89;
        assert!(pacing.take(2, minute_start + 59_000, now).is_some());
        // A new minute starts afresh.
        assert_eq!(pacing.take(2, minute_start + 60_000, now), None);
        assert_eq!(pacing.used, 2);
    }

    #[test]
    fn a_ban_stops_every_request_until_it_ends() {
        let now = Instant::now();
        let mut pacing = Pacing {
            used: 0,
            minute: 0,
            blocked_until: Some(now + Duration::from_secs(3)),
            limit: 6_000,
        };
        assert_eq!(pacing.take(1, 0, now), Some(Duration::from_secs(3)));
        assert_eq!(pacing.take(1, 0, now + Duration::from_secs(3)), None);
    }
}
