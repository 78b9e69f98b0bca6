//! The host as a whole: health, the OpenAPI document, global figures,
//! process resources, logs of every component, and the audit log.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::Role;
use super::bots::PageQuery;
use super::extract::ApiQuery;
use super::openapi::{Access, Endpoint};
use super::problem::ApiError;
use super::views::{AuditView, BotSummary, LogLineView, Page, split_page};
use super::{API_REVISION, AppState};
use crate::live::BotState;
use crate::store::AuditQuery;
use crate::store::LogFilter;
use tracing::Level;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/health",
            "Liveness and component checks (no token needed)",
            Role::Viewer,
            get(health),
        )
        .access(Access::Open)
        .returns::<Health>(),
        Endpoint::get("/openapi.json", "This document", Role::Viewer, get(openapi))
            .returns_media("application/json"),
        Endpoint::get(
            "/metrics/global",
            "Bots by state, total equity and PnL, trades today, orders per minute",
            Role::Viewer,
            get(global),
        )
        .returns::<GlobalMetrics>(),
        Endpoint::get(
            "/system",
            "Process CPU, memory, threads, uptime, disk of the data directory",
            Role::Viewer,
            get(system),
        )
        .returns::<SystemView>(),
        Endpoint::get(
            "/logs",
            "Engine and plugin log lines of every bot, newest first",
            Role::Viewer,
            get(logs),
        )
        .query(LOGS_QUERY)
        .returns::<Page<LogLineView>>(),
        Endpoint::get(
            "/audit",
            "Who did what, when, from where, with what result; newest first",
            Role::Admin,
            get(audit),
        )
        .query(AUDIT_QUERY)
        .returns::<Page<AuditView>>(),
    ]
}

pub const LOGS_QUERY: &[(&str, &str)] = &[
    (
        "level",
        "error, warn, info, debug or trace: that level and more severe",
    ),
    (
        "component",
        "`plugin`, or a host module such as stratbox_host::live::runner",
    ),
    ("bot", "a bot id"),
    ("since", "RFC 3339 time, YYYY-MM-DD date or epoch ms"),
    ("limit", "items per page (1 to 1000, default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];

const AUDIT_QUERY: &[(&str, &str)] = &[
    ("actor", "token name"),
    (
        "action",
        "part of the action, e.g. `stop` or `POST /api/v1/bots`",
    ),
    ("from", "RFC 3339 time, YYYY-MM-DD date or epoch ms"),
    (
        "to",
        "RFC 3339 time, YYYY-MM-DD date (that whole day) or epoch ms",
    ),
    ("limit", "items per page (1 to 1000, default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Check {
    pub name: String,
    /// ok or failing.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Health {
    /// ok, or degraded when a check fails.
    pub status: String,
    pub version: String,
    pub api_revision: u32,
    pub uptime_secs: u64,
    pub checks: Vec<Check>,
}

async fn health(State(app): State<AppState>) -> Response {
    let store = match app.with_store(|store| store.meta("schema")).await {
        Ok(_) => ("ok", "the store answers".to_string()),
        Err(error) => ("failing", error.to_string()),
    };
    let bots = app.manager.list();
    let failed = bots.iter().filter(|b| b.state == BotState::Error).count();
    let plugins = app
        .manager
        .registry()
        .read()
        .map_or(0, |r| r.list().count());
    let checks = vec![
        Check {
            name: "store".into(),
            status: store.0.into(),
            detail: store.1,
        },
        Check {
            name: "bots".into(),
            status: "ok".into(),
            detail: format!("{} bots, {failed} in error", bots.len()),
        },
        Check {
            name: "plugins".into(),
            status: "ok".into(),
            detail: format!("{plugins} registered"),
        },
    ];
    let healthy = checks.iter().all(|c| c.status == "ok");
    let body = Health {
        status: if healthy { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_revision: API_REVISION,
        uptime_secs: app.started.elapsed().as_secs(),
        checks,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// The document, built once from the route table.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document().clone())
}

/// The OpenAPI 3.1 document of this API (built once).
pub fn openapi_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| super::openapi::document(&super::endpoints(), env!("CARGO_PKG_VERSION")))
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GlobalMetrics {
    pub bots: usize,
    pub bots_by_state: BTreeMap<String, usize>,
    pub total_equity: String,
    pub total_pnl: String,
    /// Round trips closed since midnight UTC (wall time).
    pub trades_today: u64,
    /// Orders placed in the last 60 s (wall time).
    pub orders_per_minute: u64,
    pub emergency_engaged: bool,
}

async fn global(State(app): State<AppState>) -> axum::Json<GlobalMetrics> {
    let bots = app.manager.list();
    let mut by_state = BTreeMap::new();
    let mut equity = Decimal::ZERO;
    let mut pnl = Decimal::ZERO;
    for snapshot in &bots {
        let summary = BotSummary::from(&**snapshot);
        *by_state.entry(summary.state).or_insert(0) += 1;
        equity += snapshot.equity;
        let initial = snapshot
            .config
            .as_ref()
            .map_or(snapshot.equity, |c| c.capital.initial);
        pnl += snapshot.equity - initial;
    }
    let activity = app.metrics.activity();
    axum::Json(GlobalMetrics {
        bots: bots.len(),
        bots_by_state: by_state,
        total_equity: equity.normalize().to_string(),
        total_pnl: pnl.normalize().to_string(),
        trades_today: activity.trades_today,
        orders_per_minute: activity.orders_last_minute,
        emergency_engaged: app.manager.emergency_engaged(),
    })
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SystemView {
    /// The host's version.
    pub version: String,
    pub api_revision: u32,
    pub pid: u32,
    /// Percent of one core since the previous call.
    pub cpu_percent: f32,
    pub memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub threads: Option<usize>,
    pub uptime_secs: u64,
    pub started_at: String,
    pub data_dir: String,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
    /// The store's size on disk: the database and its write-ahead log.
    pub store_bytes: u64,
}

/// The size of the store's files (database, WAL, shared memory).
fn store_bytes(data_dir: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            std::fs::metadata(data_dir.join(format!("{}{suffix}", crate::store::DATABASE_FILE)))
                .ok()
        })
        .map(|meta| meta.len())
        .sum()
}

async fn system(State(app): State<AppState>) -> axum::Json<SystemView> {
    let probe = app.metrics.probe_process(&app.settings.data_dir);
    axum::Json(SystemView {
        version: env!("CARGO_PKG_VERSION").to_string(),
        api_revision: API_REVISION,
        pid: std::process::id(),
        cpu_percent: probe.cpu_percent,
        memory_bytes: probe.memory_bytes,
        virtual_memory_bytes: probe.virtual_memory_bytes,
        threads: probe.threads,
        uptime_secs: app.started.elapsed().as_secs(),
        started_at: super::views::time(app.started_at_ms),
        data_dir: app.settings.data_dir.display().to_string(),
        disk_total_bytes: probe.disk_total_bytes,
        disk_available_bytes: probe.disk_available_bytes,
        store_bytes: store_bytes(&app.settings.data_dir),
    })
}

/// An optional time query parameter (an RFC 3339 time, a `YYYY-MM-DD`
/// date or epoch milliseconds) as epoch milliseconds, read by `parse`.
fn query_time_by(
    name: &str,
    text: Option<&str>,
    parse: fn(&str) -> Result<i64, String>,
) -> Result<Option<i64>, ApiError> {
    text.map(|text| {
        parse(text).map_err(|message| {
            ApiError::malformed_at(&format!("/{name}"), format!("`{name}`: {message}"))
        })
    })
    .transpose()
}

/// An optional time query parameter (a date: its midnight).
pub(super) fn query_time(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    query_time_by(name, text, crate::domain::parse_instant)
}

/// The `from` and `to` query parameters as epoch milliseconds, both
/// included (a date as `to` takes in that whole day); `to` before `from`
/// is refused rather than answered with nothing.
pub(super) fn query_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = query_time("from", from)?;
    let to = query_time_by("to", to, crate::domain::parse_through)?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::malformed_at("/to", "`to` is before `from`"));
    }
    Ok((from, to))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogsQuery {
    pub level: Option<String>,
    pub component: Option<String>,
    pub bot: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// A page of log lines; the cursor is the id of the last line given.
pub async fn log_page(app: &AppState, query: LogsQuery) -> Result<Page<LogLineView>, ApiError> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let level = query
        .level
        .as_deref()
        .map(|l| {
            l.parse::<tracing::Level>().map_err(|_| {
                ApiError::malformed_at("/level", "level must be error, warn, info, debug or trace")
            })
        })
        .transpose()?;
    // This level and every more severe one, as the store names them.
    let levels = level.map(|level| {
        [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ]
        .into_iter()
        .filter(|l| *l <= level)
        .map(|l| l.to_string())
        .collect()
    });
    app.settle_queued_writes().await;
    let filter = LogFilter {
        levels,
        component: query.component,
        bot_id: query.bot,
        since: query_time("since", query.since.as_deref())?,
        before_id: page.numeric_cursor()?,
        limit: limit + 1,
    };
    let lines = app
        .with_store(move |store| store.logs_page(&filter))
        .await?;
    let rows: Vec<LogLineView> = lines.into_iter().map(LogLineView::from).collect();
    let (items, next_cursor) = split_page(rows, limit, |l| l.id.clone());
    Ok(Page { items, next_cursor })
}

async fn logs(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Result<axum::Json<Page<LogLineView>>, ApiError> {
    Ok(axum::Json(log_page(&app, query).await?))
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn audit(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<axum::Json<Page<AuditView>>, ApiError> {
    let page = PageQuery {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = page.limit()?;
    let (from, to) = query_range(params.from.as_deref(), params.to.as_deref())?;
    app.settle_queued_writes().await;
    let query = AuditQuery {
        actor: params.actor,
        action: params.action,
        from,
        to,
        before: page.numeric_cursor()?.map(|c| c as i64),
        limit: limit + 1,
    };
    let rows = app.with_store(move |store| store.audit(&query)).await?;
    let (entries, next_cursor) = split_page(rows, limit, |e| e.id.to_string());
    Ok(axum::Json(Page {
        items: entries.iter().map(AuditView::from).collect(),
        next_cursor,
    }))
}
