//! A live bot's link to its Binance spot account: one task per live bot
//! that sends what the engine's outbox asks (after the runner committed
//! it), and reports back what the exchange did, for the runner to apply
//! and commit like any other change. The runner stays the bot's only
//! writer; this task only talks to Binance.
//!
//! - **Before trading** the link syncs the clock, loads the symbol's
//!   filters, reconciles every order the bot's book holds open (queried by
//!   client order id, trades from `myTrades`) and checks that the account
//!   holds what the bot believes it owns; until then the bot's orders are
//!   refused ("the exchange link is not ready"). A shortfall puts the bot
//!   in error.
//! - **Orders** are checked against the filters before they enter the book
//!   ([`OrderCheck`]), placed once, and an order whose fate is unknown is
//!   never sent again: it is asked after (by client order id) until
//!   Binance reports it or could no longer take it.
//! - **Fills** come from the account stream (WebSocket API), from the
//!   placement's own answer, and from reconciliation: the engine books each
//!   part once whatever the number of sources (see `engine::routing`).
//!   After every (re)subscription the open orders are reconciled again.
//! - **Secrets** stay in [`Credentials`]: never in a config, a log line, an
//!   answer or an event.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::config::{BinanceNetwork, BotConfig, ConfigIssue, FeedConfig};
use crate::domain::{Liquidity, Order, OrderKind, OrderRequest, Side};
use crate::engine::{CheckRefusal, ExchangeFill, ExchangeReport, OrderCheck, VenueRequest};
use crate::exchange::binance::{
    AccountEvent, AccountSettings, Credentials, Endpoints, ExecutionReport, NewOrder, OpenOrders,
    OrderReport, OrderShape, OrderSide, OrderType, Placement, Resolution, RestClient, RestError,
    SpotAccount, SymbolInfo, UserStreamSettings, client_order_id, order_number, spawn_user_stream,
};

use super::feed::{PathRefusal, inside};

/// How often the symbol's filters are loaded again.
const FILTERS_REFRESH: Duration = Duration::from_secs(3_600);
/// How often orders of unknown fate are asked after.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);
/// Largest price, quantity or commission taken from Binance (10^12):
/// products of such values stay far inside a decimal's range.
const MAX_EXCHANGE_VALUE: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);
/// How often the clock offset is measured again (and at every -1021).
const CLOCK_SYNC_EVERY: Duration = Duration::from_secs(600);

/// Where live bots' accounts are, and what the server allows them.
pub struct LiveVenues {
    /// Credentials files must lie here (the server's); without it (the
    /// CLI) any file the user names.
    secrets_dir: Option<PathBuf>,
    /// Whether a bot may trade on the live exchange (not only the testnet).
    live_account_allowed: bool,
    account_settings: AccountSettings,
    stream_settings: UserStreamSettings,
    /// One account per REST base and API key, shared by its bots (one
    /// clock offset, one order count).
    accounts: Mutex<HashMap<(String, String), Arc<SpotAccount>>>,
}

impl Default for LiveVenues {
    fn default() -> Self {
        Self {
            secrets_dir: None,
            live_account_allowed: false,
            account_settings: AccountSettings::default(),
            stream_settings: UserStreamSettings::default(),
            accounts: Mutex::new(HashMap::new()),
        }
    }
}

/// What a live bot's book holds when its link starts.
pub(crate) struct Book {
    pub open: Vec<Order>,
    pub cash: Decimal,
    pub position: Decimal,
}

/// What the link tells the runner.
#[derive(Debug, Clone)]
pub(crate) enum LinkReport {
    Exchange(ExchangeReport),
    /// The account does not hold what the bot believes: the bot must stop.
    Halt(String),
}

/// A running link; dropping it ends the task (and its account stream).
pub(crate) struct ExchangeLink {
    requests: mpsc::UnboundedSender<VenueRequest>,
    pub reports: mpsc::UnboundedReceiver<LinkReport>,
    pub check: Arc<dyn OrderCheck>,
    task: JoinHandle<()>,
}

impl Drop for ExchangeLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ExchangeLink {
    /// Hand committed requests to the exchange.
    pub fn send(&self, requests: Vec<VenueRequest>) {
        for request in requests {
            if self.requests.send(request).is_err() {
                tracing::error!("the exchange link has ended: a request was not sent");
            }
        }
    }
}

fn issue(pointer: &str, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        pointer: pointer.into(),
        message: message.into(),
    }
}

impl LiveVenues {
    /// Credentials files must lie inside `dir`.
    pub fn with_secrets_dir(mut self, dir: PathBuf) -> Self {
        self.secrets_dir = Some(dir);
        self
    }

    /// Allow bots on the live exchange (`network: live`), not only the testnet.
    pub fn allow_live_account(mut self, allowed: bool) -> Self {
        self.live_account_allowed = allowed;
        self
    }

    /// How accounts and their streams behave (tests shorten the timings).
    pub fn with_settings(mut self, account: AccountSettings, stream: UserStreamSettings) -> Self {
        self.account_settings = account;
        self.stream_settings = stream;
        self
    }

    /// The credentials a live config names, or the environment's.
    fn credentials(&self, config: &BotConfig) -> Result<Credentials, ConfigIssue> {
        const POINTER: &str = "/account/credentials_file";
        let Some(account) = &config.account else {
            return Credentials::from_env().map_err(|error| {
                issue(
                    "/account",
                    format!("no credentials: name a `credentials_file`, or set them in the environment ({error})"),
                )
            });
        };
        let file = &account.credentials_file;
        let path = match &self.secrets_dir {
            Some(dir) => inside(dir, file).map_err(|refusal| {
                issue(
                    POINTER,
                    match refusal {
                        PathRefusal::Outside => "credentials files must be relative paths (no `..`) to files inside the server's secrets folder",
                        PathRefusal::Missing => "no such file in the server's secrets folder",
                    },
                )
            })?,
            None => file.clone(),
        };
        Credentials::from_file(&path).map_err(|error| issue(POINTER, error.to_string()))
    }

    fn account(&self, endpoints: &Endpoints, credentials: Credentials) -> Arc<SpotAccount> {
        let key = (endpoints.rest.clone(), credentials.fingerprint());
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        accounts
            .entry(key)
            .or_insert_with(|| {
                Arc::new(SpotAccount::new(
                    RestClient::shared(&endpoints.rest),
                    credentials,
                    self.account_settings.clone(),
                ))
            })
            .clone()
    }

    /// Start the link of live bot `bot` (its config checked): it
    /// reconciles `book` with the account before the bot may trade.
    pub(crate) fn connect(
        &self,
        bot: &str,
        config: &BotConfig,
        book: Book,
    ) -> Result<ExchangeLink, Vec<ConfigIssue>> {
        let feed = &config.market.feed;
        let (Some(endpoints), Some(ws_api)) = (
            Endpoints::of_feed(feed),
            crate::exchange::binance::ws_api_of_feed(feed),
        ) else {
            return Err(vec![issue(
                "/market/feed/kind",
                "a live bot needs a binance feed",
            )]);
        };
        if matches!(
            feed,
            FeedConfig::Binance {
                network: BinanceNetwork::Live,
                ..
            }
        ) && !self.live_account_allowed
        {
            return Err(vec![issue(
                "/market/feed/network",
                "this server trades only on the testnet: a live account needs its `binance_live_account` setting",
            )]);
        }
        let credentials = self.credentials(config).map_err(|issue| vec![issue])?;
        let account = self.account(&endpoints, credentials);
        let state = Arc::new(CheckState {
            rules: RwLock::new(Err("the account is being reconciled".into())),
            account: account.clone(),
            bot: bot.to_string(),
            symbol: config.market.symbol.clone(),
        });
        let (requests, requests_in) = mpsc::unbounded_channel();
        let (reports_out, reports) = mpsc::unbounded_channel();
        static LINKS: AtomicU64 = AtomicU64::new(0);
        let link = Link {
            bot: bot.to_string(),
            id: LINKS.fetch_add(1, Ordering::Relaxed),
            symbol: config.market.symbol.clone(),
            account,
            state: state.clone(),
            out: reports_out,
            open: book
                .open
                .iter()
                .map(|order| (order.id, order.clone()))
                .collect(),
            unknown: BTreeMap::new(),
            ws_api,
            stream_settings: self.stream_settings.clone(),
        };
        link.publish_open();
        let task = tokio::spawn(link.run(requests_in, book));
        Ok(ExchangeLink {
            requests,
            reports,
            check: Arc::new(LinkCheck(state)),
            task,
        })
    }
}

/// What the order check reads: the symbol's filters once the link is
/// ready (else why not), and the account's rate-limit stop.
struct CheckState {
    rules: RwLock<Result<SymbolInfo, String>>,
    account: Arc<SpotAccount>,
    bot: String,
    symbol: String,
}

struct LinkCheck(Arc<CheckState>);

fn refusal(check: &str, message: impl Into<String>) -> Result<(), CheckRefusal> {
    Err(CheckRefusal {
        check: check.into(),
        message: message.into(),
    })
}

/// A monotonic instant as wall time, RFC 3339.
fn wall_time(until: Instant) -> String {
    let left = until.saturating_duration_since(Instant::now());
    let at = chrono::Utc::now() + chrono::Duration::from_std(left).unwrap_or_default();
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn shape(side: Side, kind: OrderKind, quantity: Decimal, price: Option<Decimal>) -> OrderShape {
    OrderShape {
        side: match side {
            Side::Buy => OrderSide::Buy,
            Side::Sell => OrderSide::Sell,
        },
        kind: match kind {
            OrderKind::Limit => OrderType::Limit,
            OrderKind::Market => OrderType::Market,
            OrderKind::Stop => OrderType::StopLoss,
        },
        quantity,
        price: price.filter(|_| kind != OrderKind::Market),
    }
}

/// What MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS count among `orders` (a
/// bot's; the account's other bots' are added where it is checked).
fn open_counts<'a>(orders: impl Iterator<Item = &'a Order>) -> OpenOrders {
    let mut counts = OpenOrders::default();
    for order in orders {
        counts.all = counts.all.saturating_add(1);
        if order.kind == OrderKind::Stop {
            counts.stops = counts.stops.saturating_add(1);
        }
    }
    counts
}

impl OrderCheck for LinkCheck {
    fn check(
        &self,
        request: &OrderRequest,
        reference: Decimal,
        open_orders: &[Order],
    ) -> Result<(), CheckRefusal> {
        if let Some(until) = self.0.account.blocked_until() {
            return refusal(
                "rate_limit",
                format!(
                    "Binance asked this client to stop (429/418): no new orders until {}",
                    wall_time(until)
                ),
            );
        }
        let rules = self.0.rules.read().unwrap_or_else(PoisonError::into_inner);
        let info = match &*rules {
            Ok(info) => info,
            Err(reason) => {
                return refusal("venue", format!("the exchange link is not ready: {reason}"));
            }
        };
        let order = shape(request.side, request.kind, request.quantity, request.price);
        let open = open_counts(open_orders.iter())
            + self.0.account.open_elsewhere(&self.0.bot, &self.0.symbol);
        let average = self
            .0
            .account
            .cached_average_price(&self.0.symbol)
            .unwrap_or(reference);
        info.check_at(&order, reference, average, open)
            .or_else(|refused| refusal(refused.filter, refused.reason))
    }
}

/// One trade, from whichever answer told of it.
struct Trade {
    id: u64,
    price: Decimal,
    quantity: Decimal,
    commission: Decimal,
    commission_asset: String,
    ts: i64,
    maker: bool,
}

/// The link's task.
struct Link {
    bot: String,
    /// This link among every link of the process (a bot's may be replaced).
    id: u64,
    symbol: String,
    account: Arc<SpotAccount>,
    state: Arc<CheckState>,
    out: mpsc::UnboundedSender<LinkReport>,
    /// Orders the exchange may hold open, by the engine's id.
    open: BTreeMap<u64, Order>,
    /// Orders of unknown fate: when their request left (Binance's clock).
    unknown: BTreeMap<u64, i64>,
    ws_api: String,
    stream_settings: UserStreamSettings,
}

/// What reconciliation changed of the bot's cash and position.
#[derive(Default)]
struct Moved {
    cash: Decimal,
    position: Decimal,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.account.forget_open(&self.bot, self.id);
    }
}

impl Link {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<VenueRequest>, book: Book) {
        let info = self.prepare().await;
        let mut moved = Moved::default();
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            if let Err(error) = self.reconcile(id, &info, &mut moved).await {
                tracing::warn!(bot = %self.bot, order = id, %error, "order not reconciled yet");
                self.unknown
                    .entry(id)
                    .or_insert_with(|| self.account.timestamp());
            }
        }
        match self
            .check_balances(
                &info,
                book.cash + moved.cash,
                book.position + moved.position,
            )
            .await
        {
            Ok(()) => {
                *self
                    .state
                    .rules
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Ok(info.clone());
                tracing::info!(
                    bot = %self.bot,
                    symbol = %self.symbol,
                    key = %self.account.credentials().masked_key(),
                    "the exchange link is ready"
                );
            }
            Err(reason) => {
                *self
                    .state
                    .rules
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Err(reason.clone());
                let _ = self.out.send(LinkReport::Halt(reason));
            }
        }
        let (events_out, mut events) = mpsc::unbounded_channel();
        let stream = spawn_user_stream(
            self.ws_api.clone(),
            self.account.clone(),
            events_out,
            self.stream_settings.clone(),
        );
        let _stream = AbortOnDrop(stream);
        let mut info = info;
        let mut refreshed = Instant::now();
        let mut synced = Instant::now();
        let mut tick = tokio::time::interval(RESOLVE_EVERY);
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    None => return,
                    Some(VenueRequest::Send { order, reference }) => self.place(order, reference, &info).await,
                    Some(VenueRequest::Cancel(order)) => self.cancel(order, &info).await,
                },
                event = events.recv() => match event {
                    None => return,
                    Some(AccountEvent::Subscribed) => {
                        // Whatever happened while unsubscribed.
                        let ids: Vec<u64> = self.open.keys().copied().collect();
                        for id in ids {
                            if let Err(error) = self.reconcile(id, &info, &mut Moved::default()).await {
                                tracing::warn!(bot = %self.bot, order = id, %error, "order not reconciled");
                            }
                        }
                    }
                    Some(AccountEvent::Execution(report)) => self.on_execution(*report, &info),
                },
                _ = tick.tick() => {
                    self.resolve_unknown(&info).await;
                    if synced.elapsed() >= CLOCK_SYNC_EVERY {
                        synced = Instant::now();
                        if let Err(error) = self.account.sync_clock().await {
                            tracing::warn!(bot = %self.bot, %error, "clock not synced");
                        }
                    }
                    if refreshed.elapsed() >= FILTERS_REFRESH {
                        refreshed = Instant::now();
                        match self.account.symbol(&self.symbol, true).await {
                            Ok(fresh) => {
                                *self.state.rules.write().unwrap_or_else(PoisonError::into_inner) = Ok(fresh.clone());
                                info = fresh;
                            }
                            Err(error) => tracing::warn!(bot = %self.bot, %error, "filters not refreshed"),
                        }
                    }
                }
            }
        }
    }

    /// The clock synced and the symbol's rules loaded, retried until they are.
    async fn prepare(&self) -> SymbolInfo {
        let mut wait = Duration::from_millis(500);
        loop {
            let attempt = async {
                self.account.sync_clock().await?;
                self.account.symbol(&self.symbol, true).await
            };
            match attempt.await {
                Ok(info) => return info,
                Err(error) => {
                    let reason = format!("cannot reach Binance: {error}");
                    tracing::warn!(bot = %self.bot, %reason, "exchange link not ready");
                    *self
                        .state
                        .rules
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Err(reason);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// The account must hold at least the bot's cash and position, less
    /// what its open orders may have traded meanwhile (a sell filling
    /// between the order's query and the balances' takes the base away).
    async fn check_balances(
        &self,
        info: &SymbolInfo,
        cash: Decimal,
        position: Decimal,
    ) -> Result<(), String> {
        // A read that fails is tried again: only a shortfall stops the bot.
        let mut wait = Duration::from_millis(500);
        let balances = loop {
            match self.account.balances().await {
                Ok(balances) => break balances,
                Err(error) => {
                    tracing::warn!(bot = %self.bot, %error, "cannot read the account's balances yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        };
        let held = |asset: &str| -> Decimal {
            balances
                .iter()
                .filter(|balance| balance.asset == asset)
                .map(|balance| balance.free + balance.locked)
                .sum()
        };
        let (mut selling, mut buying) = (Decimal::ZERO, Decimal::ZERO);
        for order in self.open.values() {
            let left = order.quantity - order.filled;
            match (order.side, order.kind, order.price) {
                (Side::Sell, ..) => selling += left,
                (Side::Buy, OrderKind::Limit, Some(price)) => {
                    buying = left
                        .checked_mul(price)
                        .and_then(|value| buying.checked_add(value))
                        .unwrap_or(cash);
                }
                // A market or stop buy may have spent anything.
                (Side::Buy, ..) => buying = cash,
            }
        }
        for (asset, needed, what) in [
            (&info.quote_asset, cash - buying, "cash"),
            (&info.base_asset, position - selling, "position"),
        ] {
            let has = held(asset);
            if has < needed {
                return Err(format!(
                    "the account holds {has} {asset}, less than the bot's {what} of {needed} {asset}"
                ));
            }
        }
        Ok(())
    }

    fn report(&self, report: ExchangeReport) {
        let _ = self.out.send(LinkReport::Exchange(report));
    }

    /// Tell the account what this bot holds open (its other bots count it).
    fn publish_open(&self) {
        self.account.set_open(
            &self.bot,
            self.id,
            &self.symbol,
            open_counts(self.open.values()),
        );
    }

    /// An order ended without further fills.
    fn close(&mut self, id: u64, reason: String) {
        self.open.remove(&id);
        self.publish_open();
        self.unknown.remove(&id);
        self.report(ExchangeReport::Closed {
            order_id: id,
            ts: self.account.timestamp(),
            reason,
        });
    }

    /// `trade` of order `id` (its side `side`) as a report, with the order's
    /// `cumulative` quantity after it; None when Binance's numbers are out
    /// of any sane range (never booked, never a panic).
    fn fill_of(
        &self,
        id: u64,
        side: Side,
        trade: &Trade,
        cumulative: Decimal,
        info: &SymbolInfo,
    ) -> Option<ExchangeFill> {
        let sane = |value: Decimal, zero_ok: bool| {
            (value > Decimal::ZERO || (zero_ok && value.is_zero())) && value <= MAX_EXCHANGE_VALUE
        };
        if !(sane(trade.price, false)
            && sane(trade.quantity, false)
            && sane(trade.commission, true)
            && sane(cumulative, false))
        {
            tracing::warn!(bot = %self.bot, order = id, trade = trade.id, "a trade with numbers out of range: not booked");
            return None;
        }
        // Binance charges the asset received (or BNB, which has no price here).
        let (fee, base_fee) = if trade.commission_asset == info.quote_asset
            || trade.commission.is_zero()
        {
            (trade.commission, Decimal::ZERO)
        } else if trade.commission_asset == info.base_asset {
            let base_fee = if side == Side::Buy {
                trade.commission
            } else {
                Decimal::ZERO
            };
            (trade.commission * trade.price, base_fee)
        } else {
            tracing::warn!(bot = %self.bot, asset = %trade.commission_asset, "a commission in a third asset is not booked");
            (Decimal::ZERO, Decimal::ZERO)
        };
        Some(ExchangeFill {
            order_id: id,
            trade_id: trade.id,
            quantity: trade.quantity,
            price: trade.price,
            fee,
            base_fee,
            liquidity: if trade.maker {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
            ts: trade.ts,
            cumulative,
        })
    }

    /// Report `trades` of order `id` (oldest first), each with the order's
    /// cumulative quantity after it; `moved` adds up what the ones the book
    /// does not have yet change.
    fn report_trades(&self, id: u64, trades: &[Trade], info: &SymbolInfo, moved: &mut Moved) {
        let Some(order) = self.open.get(&id) else {
            return;
        };
        let mut cumulative = Decimal::ZERO;
        for trade in trades {
            cumulative += trade.quantity;
            let Some(fill) = self.fill_of(id, order.side, trade, cumulative, info) else {
                continue;
            };
            if cumulative > order.filled {
                let sign = order.side.sign();
                moved.position += sign * (fill.quantity - fill.base_fee);
                moved.cash -=
                    sign * fill.quantity * fill.price + fill.fee - fill.base_fee * fill.price;
            }
            self.report(ExchangeReport::Fill(fill));
        }
    }

    /// An order's status as Binance reports it: what it means for the link.
    fn end(&mut self, id: u64, status: &str) {
        match status {
            "FILLED" => {
                self.open.remove(&id);
                self.publish_open();
                self.unknown.remove(&id);
            }
            "CANCELED" | "EXPIRED" | "REJECTED" | "EXPIRED_IN_MATCH" => {
                self.close(id, format!("{} by Binance", status.to_lowercase()));
            }
            _ => {}
        }
    }

    /// Bring order `id` in line with what Binance reports of it.
    async fn reconcile(
        &mut self,
        id: u64,
        info: &SymbolInfo,
        moved: &mut Moved,
    ) -> Result<(), RestError> {
        let cid = client_order_id(&self.bot, id);
        match self.account.query(&self.symbol, &cid).await? {
            Some(report) => self.settle(id, &report, None, info, moved).await,
            None => {
                // Not there (yet): never sent, or on its way. Asked after
                // until Binance could no longer take it.
                self.unknown
                    .entry(id)
                    .or_insert_with(|| self.account.timestamp());
                Ok(())
            }
        }
    }

    /// Apply Binance's report of order `id`: its trades (from the
    /// placement's answer when given, else `myTrades`), then its end.
    async fn settle(
        &mut self,
        id: u64,
        report: &OrderReport,
        placed_at: Option<i64>,
        info: &SymbolInfo,
        moved: &mut Moved,
    ) -> Result<(), RestError> {
        self.unknown.remove(&id);
        if !report.executed_qty.is_zero() {
            let trades: Vec<Trade> = if report.fills.is_empty() {
                self.account
                    .trades(&self.symbol, report.order_id)
                    .await?
                    .into_iter()
                    .map(|trade| Trade {
                        id: trade.id,
                        price: trade.price,
                        quantity: trade.qty,
                        commission: trade.commission,
                        commission_asset: trade.commission_asset,
                        ts: trade.time,
                        maker: trade.is_maker,
                    })
                    .collect()
            } else {
                report
                    .fills
                    .iter()
                    .map(|fill| Trade {
                        id: fill.trade_id,
                        price: fill.price,
                        quantity: fill.qty,
                        commission: fill.commission,
                        commission_asset: fill.commission_asset.clone(),
                        ts: placed_at.unwrap_or_else(|| self.account.timestamp()),
                        maker: false,
                    })
                    .collect()
            };
            self.report_trades(id, &trades, info, moved);
        }
        self.end(id, &report.status);
        Ok(())
    }

    /// Place an order once.
    async fn place(&mut self, order: Order, reference: Decimal, info: &SymbolInfo) {
        let id = order.id;
        let new = NewOrder {
            symbol: self.symbol.clone(),
            client_order_id: client_order_id(&self.bot, id),
            shape: shape(order.side, order.kind, order.quantity, order.price),
            reference,
            open_orders: open_counts(self.open.values())
                + self.account.open_elsewhere(&self.bot, &self.symbol),
        };
        self.open.insert(id, order);
        self.publish_open();
        match self.account.place(&new).await {
            Placement::Accepted(report) => {
                let placed_at = Some(self.account.timestamp());
                if let Err(error) = self
                    .settle(id, &report, placed_at, info, &mut Moved::default())
                    .await
                {
                    tracing::warn!(bot = %self.bot, order = id, %error, "trades not read yet");
                }
            }
            Placement::Filtered(refused) => self.close(id, refused.to_string()),
            Placement::Blocked { until, reason } => self.close(
                id,
                format!(
                    "not sent: {reason}; no new orders until {}",
                    wall_time(until)
                ),
            ),
            Placement::Refused { code, msg } => {
                self.close(id, format!("Binance refused it ({code}): {msg}"));
            }
            Placement::NotSent(reason) => self.close(id, format!("not sent: {reason}")),
            Placement::Unknown { reason, sent_at } => {
                tracing::warn!(
                    bot = %self.bot, order = id, %reason,
                    "the order's fate is unknown: asked after, never sent again"
                );
                self.unknown.insert(id, sent_at);
            }
        }
    }

    /// Ask Binance to cancel; what became of the order is then reconciled.
    async fn cancel(&mut self, order: Order, info: &SymbolInfo) {
        if !self.open.contains_key(&order.id) {
            return;
        }
        let cid = client_order_id(&self.bot, order.id);
        if let Err(error) = self.account.cancel(&self.symbol, &cid).await {
            tracing::warn!(bot = %self.bot, order = order.id, %error, "cancel not confirmed");
        }
        if let Err(error) = self.reconcile(order.id, info, &mut Moved::default()).await {
            tracing::warn!(bot = %self.bot, order = order.id, %error, "order not reconciled");
        }
    }

    /// Ask after orders of unknown fate; close those Binance can no
    /// longer have.
    async fn resolve_unknown(&mut self, info: &SymbolInfo) {
        let pending: Vec<(u64, i64)> = self.unknown.iter().map(|(id, at)| (*id, *at)).collect();
        for (id, sent_at) in pending {
            let cid = client_order_id(&self.bot, id);
            match self
                .account
                .resolve(&self.symbol, &cid, sent_at, Duration::ZERO)
                .await
            {
                Ok(Resolution::Found(report)) => {
                    if let Err(error) = self
                        .settle(id, &report, None, info, &mut Moved::default())
                        .await
                    {
                        tracing::warn!(bot = %self.bot, order = id, %error, "trades not read yet");
                        self.unknown.insert(id, sent_at);
                    }
                }
                Ok(Resolution::Absent) => {
                    self.close(id, "never reached Binance".into());
                }
                Ok(Resolution::StillUnknown) => {}
                Err(error) => {
                    tracing::warn!(bot = %self.bot, order = id, %error, "cannot ask after an order");
                }
            }
        }
    }

    /// An event of the account stream about one of this bot's orders.
    fn on_execution(&mut self, report: ExecutionReport, info: &SymbolInfo) {
        if report.symbol != self.symbol {
            return;
        }
        let Some(id) = order_number(&self.bot, &report.client_order_id) else {
            return; // another bot's, or the account owner's
        };
        if !self.open.contains_key(&id) {
            return; // already settled (by the placement's answer, say)
        }
        self.unknown.remove(&id);
        if report.execution_type == "TRADE" && report.trade_id >= 0 {
            let side = self.open[&id].side;
            let trade = Trade {
                id: report.trade_id as u64,
                price: report.last_price,
                quantity: report.last_quantity,
                commission: report.commission,
                commission_asset: report.commission_asset.clone().unwrap_or_default(),
                ts: report.transaction_time,
                maker: report.maker,
            };
            if let Some(fill) = self.fill_of(id, side, &trade, report.cumulative_quantity, info) {
                self.report(ExchangeReport::Fill(fill));
            }
        }
        self.end(id, &report.status);
    }
}

/// Ends a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
