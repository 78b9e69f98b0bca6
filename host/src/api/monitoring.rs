//! What a bot is doing: status, positions, orders (and manual orders and
//! cancels), fills, trades, equity, risk, logs and performance stats.
//!
//! Status, positions and risk come from the bot's snapshot; orders, fills,
//! trades and equity from the store (complete, since runners commit before
//! they publish), with cursors on row keys. Nothing waits on the runner.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Deserialize;

use super::AppState;
use super::auth::{Caller, Role};
use super::bots::{PAGE_QUERY, PageQuery, page_by_offset};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::system::{LogsQuery, log_page, query_range};
use super::views::{
    BotStatus, EquityPointView, FillView, KillSwitchView, LogLineView, OrderChangeView,
    OrderDetail, OrderView, Page, PositionView, RiskView, RuleView, TradeView, ViolationView,
    split_page,
};
use crate::domain::decimal::decimal_schema;
use crate::domain::{Fill, Order, OrderKind, OrderOrigin, OrderRequest, Side};
use crate::engine::{Trade, Violation, metrics};
use crate::live::BotSnapshot;
use crate::store::{RecordTable, RowOrder};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/bots/{id}/status", "State, money, positions, open orders, latency", Role::Viewer, get(status))
            .returns::<BotStatus>(),
        Endpoint::get("/bots/{id}/positions", "Open positions", Role::Viewer, get(positions))
            .query(PAGE_QUERY)
            .returns::<Page<PositionView>>(),
        Endpoint::get("/bots/{id}/orders", "Orders, newest first", Role::Viewer, get(orders))
            .query(ORDERS_QUERY)
            .returns::<Page<OrderView>>(),
        Endpoint::post(
            "/bots/{id}/orders",
            "A manual order: checked by the risk engine like a strategy's; market orders fill at once at the last close plus slippage",
            Role::Operator,
            post(place),
        )
        .json_body::<ManualOrder>()
        .idempotent()
        .status(201)
        .returns::<OrderView>(),
        Endpoint::delete("/bots/{id}/orders/{order_id}", "Cancel an open order", Role::Operator, delete(cancel))
            .returns::<OrderView>(),
        Endpoint::get("/bots/{id}/orders/{order_id}", "One order, with every state it went through", Role::Viewer, get(order_detail))
            .returns::<OrderDetail>(),
        Endpoint::get("/bots/{id}/fills", "Fills in [from, to], oldest first (or newest first)", Role::Viewer, get(fills))
            .query(RECORDS_QUERY)
            .returns::<Page<FillView>>(),
        Endpoint::get("/bots/{id}/trades", "Round trips (flat to flat) closed in [from, to], oldest first (or newest first)", Role::Viewer, get(trades))
            .query(RECORDS_QUERY)
            .returns::<Page<TradeView>>(),
        Endpoint::get("/bots/{id}/equity", "Equity at each candle close in [from, to], oldest first (or newest first), for the PnL chart", Role::Viewer, get(equity))
            .query(RECORDS_QUERY)
            .returns::<Page<EquityPointView>>(),
        Endpoint::get("/bots/{id}/risk", "Trading state, kill-switch, each rule's limit and reading, recent violations", Role::Viewer, get(risk))
            .returns::<RiskView>(),
        Endpoint::get("/bots/{id}/logs", "The bot's engine and plugin log lines, newest first", Role::Viewer, get(logs))
            .query(super::system::LOGS_QUERY)
            .returns::<Page<LogLineView>>(),
        Endpoint::get("/bots/{id}/stats", "Performance since the bot was created, as the backtester reports it", Role::Viewer, get(stats))
            .returns::<metrics::Metrics>(),
    ]
}

const ORDERS_QUERY: &[(&str, &str)] = &[
    ("status", "open, closed or all (default all)"),
    ("limit", "items per page (1 to 1000, default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];

const RECORDS_QUERY: &[(&str, &str)] = &[
    (
        "from",
        "RFC 3339 time, YYYY-MM-DD date or epoch ms; default: the beginning",
    ),
    (
        "to",
        "RFC 3339 time, YYYY-MM-DD date (that whole day) or epoch ms; default: now",
    ),
    (
        "order",
        "oldest (default: oldest first, the cursor goes forward) or newest (newest first, the cursor goes back)",
    ),
    ("limit", "items per page (1 to 1000, default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];

/// An order an operator places by hand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualOrder {
    pub side: Side,
    #[serde(default = "market")]
    pub kind: OrderKind,
    /// Base quantity, above 0: a whole number of the instrument's steps.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub quantity: Decimal,
    /// Limit or stop price, above 0: a whole number of ticks. A market
    /// order takes none.
    #[serde(default, deserialize_with = "crate::domain::decimal::plain_option")]
    #[schemars(schema_with = "crate::domain::decimal::optional_decimal_schema")]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub reduce_only: bool,
    /// Your tag for the order (default: generated).
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub client_tag: Option<String>,
}

fn market() -> OrderKind {
    OrderKind::Market
}

fn snapshot_of(app: &AppState, id: &str) -> Result<std::sync::Arc<BotSnapshot>, ApiError> {
    app.manager
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no bot `{id}`")))
}

/// Equity samples the stats are computed over (the newest; older ones are
/// thinned to one per hour by retention, so this reaches back a long way).
const STATS_EQUITY_SAMPLES: usize = 20_000;
/// Round trips the stats are computed over (the newest).
const STATS_TRADES: usize = 100_000;
/// Violations the risk view lists (the newest).
const RECENT_VIOLATIONS: usize = 50;

/// Parse stored payloads; a row that does not parse is a corrupt store.
fn parse_rows<T: serde::de::DeserializeOwned>(rows: Vec<String>) -> Result<Vec<T>, ApiError> {
    rows.iter()
        .map(|row| {
            serde_json::from_str(row)
                .map_err(|e| ApiError::internal(format!("a stored record is unreadable: {e}")))
        })
        .collect()
}

async fn status(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<BotStatus>, ApiError> {
    Ok(axum::Json(BotStatus::from(&*snapshot_of(&app, &id)?)))
}

async fn positions(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<PositionView>>, ApiError> {
    let snapshot = snapshot_of(&app, &id)?;
    Ok(axum::Json(page_by_offset(
        PositionView::of(&snapshot),
        &query,
    )?))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrdersQuery {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn orders(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<axum::Json<Page<OrderView>>, ApiError> {
    // Some(true): open only; Some(false): closed only.
    let open = match query.status.as_deref() {
        None | Some("all") => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return Err(ApiError::malformed_at(
                "/status",
                format!("status must be open, closed or all, not `{other}`"),
            ));
        }
    };
    snapshot_of(&app, &id)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let cursor = page.numeric_cursor()?;
    let rows = app
        .with_store(move |store| store.orders_page(&id, open, cursor, limit + 1))
        .await?;
    let (orders, next_cursor) = keyed_page::<_, Order>(rows, limit)?;
    Ok(axum::Json(Page {
        items: orders.iter().map(OrderView::from).collect(),
        next_cursor,
    }))
}

/// Rows read with one more than `limit`: the parsed payloads of the first
/// `limit`, and the key of the last one as the next cursor if more exist.
fn keyed_page<K: ToString, T: serde::de::DeserializeOwned>(
    rows: Vec<(K, String)>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let (rows, next_cursor) = split_page(rows, limit, |(key, _)| key.to_string());
    let items = rows
        .iter()
        .map(|(_, data)| {
            serde_json::from_str(data)
                .map_err(|e| ApiError::internal(format!("a stored record is unreadable: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((items, next_cursor))
}

async fn place(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    JsonBody(order): JsonBody<ManualOrder>,
) -> Result<Response, ApiError> {
    let tag = order.client_tag.clone().unwrap_or_else(|| {
        // Unique among the process's manual orders (a tag must be free),
        // and within the 64 characters a tag may have: "manual-", 20 of
        // the caller's name, the time (13 digits) and a counter.
        static PLACED: AtomicU64 = AtomicU64::new(0);
        let name: String = caller.name.replace(' ', "-").chars().take(20).collect();
        format!(
            "manual-{name}-{}-{}",
            super::now_ms(),
            PLACED.fetch_add(1, Ordering::Relaxed)
        )
    });
    let request = OrderRequest {
        client_tag: tag.clone(),
        side: order.side,
        kind: order.kind,
        quantity: order.quantity,
        price: order.price,
        reduce_only: order.reduce_only,
        origin: OrderOrigin::Manual,
    };
    let (placed, _) = app.manager.place_order(&id, request).await?;
    let price = placed
        .price
        .map(|price| format!(" at {price}"))
        .unwrap_or_default();
    let note = AuditNote::detail(format!(
        "{} {} {}{price}: order {} ({tag})",
        placed.side.as_str(),
        placed.quantity,
        placed.kind.as_str(),
        placed.id
    ));
    Ok(note.on((StatusCode::CREATED, axum::Json(OrderView::from(&placed))).into_response()))
}

async fn order_detail(
    State(app): State<AppState>,
    ApiPath((id, order_id)): ApiPath<(String, u64)>,
) -> Result<axum::Json<OrderDetail>, ApiError> {
    snapshot_of(&app, &id)?;
    let changes = {
        let id = id.clone();
        app.with_store(move |store| store.order_changes(&id, order_id))
            .await?
    };
    let Some((_, _, latest)) = changes.last() else {
        return Err(ApiError::not_found(format!(
            "bot `{id}` has no order {order_id}"
        )));
    };
    let order: Order = serde_json::from_str(latest)
        .map_err(|e| ApiError::internal(format!("a stored record is unreadable: {e}")))?;
    Ok(axum::Json(OrderDetail {
        order: OrderView::from(&order),
        changes: changes
            .iter()
            .map(|(status, ts, _)| OrderChangeView {
                status: status.clone(),
                at: super::views::time(*ts),
            })
            .collect(),
    }))
}

async fn cancel(
    State(app): State<AppState>,
    ApiPath((id, order_id)): ApiPath<(String, u64)>,
) -> Result<axum::Json<OrderView>, ApiError> {
    let cancelled = app.manager.cancel_order(&id, order_id).await?;
    Ok(axum::Json(OrderView::from(&cancelled)))
}

async fn fills(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<axum::Json<Page<FillView>>, ApiError> {
    let (fills, next_cursor) = records_page::<Fill>(&app, &id, RecordTable::Fills, query).await?;
    Ok(axum::Json(Page {
        items: fills.iter().map(FillView::from).collect(),
        next_cursor,
    }))
}

/// A page of fills or trades, as a [`RecordsQuery`] asks.
async fn records_page<T: serde::de::DeserializeOwned>(
    app: &AppState,
    id: &str,
    table: RecordTable,
    query: RecordsQuery,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    snapshot_of(app, id)?;
    let (window, order, page) = query.split()?;
    let limit = page.limit()?;
    let after = page.numeric_cursor()?.map(|c| c as i64);
    let id = id.to_string();
    let rows = app
        .with_store(move |store| store.records_page(table, &id, window, after, order, limit + 1))
        .await?;
    keyed_page(rows, limit)
}

/// A range of time, an order and a page: how fills, trades and equity are
/// read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordsQuery {
    from: Option<String>,
    to: Option<String>,
    order: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

impl RecordsQuery {
    /// The range in epoch ms, the order and the paging part.
    fn split(self) -> Result<((i64, i64), RowOrder, PageQuery), ApiError> {
        let order = match self.order.as_deref() {
            None | Some("oldest") => RowOrder::OldestFirst,
            Some("newest") => RowOrder::NewestFirst,
            Some(_) => {
                return Err(ApiError::malformed_at(
                    "/order",
                    "order must be oldest or newest",
                ));
            }
        };
        let (from, to) = query_range(self.from.as_deref(), self.to.as_deref())?;
        let window = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        };
        Ok((window, order, page))
    }
}

async fn trades(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<axum::Json<Page<TradeView>>, ApiError> {
    let (trades, next_cursor) =
        records_page::<Trade>(&app, &id, RecordTable::Trades, query).await?;
    Ok(axum::Json(Page {
        items: trades.iter().map(TradeView::from).collect(),
        next_cursor,
    }))
}

async fn equity(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<axum::Json<Page<EquityPointView>>, ApiError> {
    snapshot_of(&app, &id)?;
    let (window, order, page) = query.split()?;
    let limit = page.limit()?;
    let after = page
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::malformed_at("/cursor", "cursor is not one this list gave"))
        })
        .transpose()?;
    let rows = app
        .with_store(move |store| store.equity_page(&id, window, after, order, limit + 1))
        .await?;
    let (rows, next_cursor) = split_page(rows, limit, |(ts, _)| ts.to_string());
    let items = rows
        .iter()
        .map(|(ts, equity)| EquityPointView {
            at: super::views::time(*ts),
            equity: equity
                .parse::<Decimal>()
                .map_or_else(|_| equity.clone(), |d| d.normalize().to_string()),
        })
        .collect();
    Ok(axum::Json(Page { items, next_cursor }))
}

async fn risk(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<RiskView>, ApiError> {
    let snapshot = snapshot_of(&app, &id)?;
    let rows = app
        .with_store(move |store| {
            store.recent_records(RecordTable::Violations, &id, RECENT_VIOLATIONS)
        })
        .await?;
    let mut violations: Vec<Violation> = parse_rows(rows)?;
    violations.reverse();
    let status = BotStatus::from(&*snapshot);
    Ok(axum::Json(RiskView {
        trading_state: status.summary.trading_state,
        kill_switch: KillSwitchView {
            engaged: snapshot.kill_switch.is_some(),
            reason: snapshot.kill_switch.clone(),
        },
        rules: snapshot.risk_rules.iter().map(RuleView::from).collect(),
        recent_violations: violations.iter().map(ViolationView::from).collect(),
    }))
}

async fn logs(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(mut query): ApiQuery<LogsQuery>,
) -> Result<axum::Json<Page<LogLineView>>, ApiError> {
    snapshot_of(&app, &id)?;
    query.bot = Some(id);
    Ok(axum::Json(log_page(&app, query).await?))
}

async fn stats(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<metrics::Metrics>, ApiError> {
    let snapshot = snapshot_of(&app, &id)?;
    let (samples, trade_rows) = app
        .with_store(move |store| {
            Ok((
                store.recent_equity(&id, STATS_EQUITY_SAMPLES)?,
                store.recent_records(RecordTable::Trades, &id, STATS_TRADES)?,
            ))
        })
        .await?;
    let trades: Vec<Trade> = parse_rows(trade_rows)?;
    let mut equity = Vec::with_capacity(samples.len());
    let mut exposed = 0;
    for (ts, value, held) in samples {
        let value = value
            .parse()
            .map_err(|e| ApiError::internal(format!("a stored equity is unreadable: {e}")))?;
        equity.push(metrics::EquityPoint { ts, equity: value });
        exposed += usize::from(held);
    }
    let initial = snapshot
        .config
        .as_ref()
        .map_or(snapshot.equity, |c| c.capital.initial);
    let start = equity.first().map_or(0, |p| p.ts);
    let computed = metrics::compute(
        initial,
        start,
        &equity,
        &trades,
        exposed,
        snapshot.fees_paid,
    );
    Ok(axum::Json(computed))
}
