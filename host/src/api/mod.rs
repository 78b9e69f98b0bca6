//! The control API: axum HTTP and WebSocket over the live runtime and the
//! store, for the React control UI, scripts and operators.
//!
//! - `openapi`: the route table type and the OpenAPI document built from it;
//! - `problem`: every error as problem+json, mapped in one place;
//! - `extract`: body, path and query extractors that fail as problem+json;
//! - `auth`, `ratelimit`, `middleware`, `idempotency`: who may call, how
//!   often, the audit log, request ids and retried requests;
//! - `server`: the accept loop and its connection limits and timeouts;
//! - `views`, `event_payload`: the JSON shapes answered and streamed;
//! - one file per resource: `bots`, `control`, `config`, `monitoring`,
//!   `strategies`, `presets`, `market`, `system`, `tokens`, `events`,
//!   `metrics`;
//! - `ui`: the control UI's built files at `/`.
//!
//! Invariant: no handler holds a lock across an await, and a handler is
//! parse, one manager call, one view: bots change only through their
//! runners, and strategy code never runs on the threads that serve the API.

mod audit;
mod auth;
mod backtests;
mod bots;
mod config;
mod control;
mod data;
mod event_payload;
mod events;
mod extract;
mod idempotency;
mod market;
mod metrics;
mod middleware;
mod monitoring;
mod openapi;
mod optimizations;
mod presets;
mod problem;
mod ratelimit;
mod server;
mod settings;
mod strategies;
mod system;
mod tokens;
mod ui;
mod views;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use auth::{Auth, AuthError, Role, token_name};
pub use event_payload::{Envelope, EventPayload, encode as encode_event};
pub use events::StreamSlots;
pub use idempotency::IdempotencyCache;
pub use metrics::ApiMetrics;
pub use openapi::Endpoint;
pub use problem::{ApiError, Problem};
pub use ratelimit::{FailedAuthLimiter, RateLimit, RateLimits, TokenLimiter};
pub use server::serve;
pub use settings::{Retention, ServerLimits, ServerSettings};
pub use system::openapi_document;

use crate::live::{BotManager, LogBook};
use crate::plugin::PluginRuntime;
use crate::store::Store;

/// How long answers to idempotent requests are kept, ms.
pub const IDEMPOTENCY_KEPT_MS: i64 = idempotency::KEEP_FOR.as_millis() as i64;

/// The integer API revision: bumped on any incompatible change.
pub const API_REVISION: u32 = 1;

/// Wall time, epoch ms.
pub use crate::live::wall_ms as now_ms;

/// Run a call that may block (the store, the token table) on a blocking
/// thread, off the async workers that serve the API.
pub(crate) async fn off_the_workers<R, E>(
    call: impl FnOnce() -> Result<R, E> + Send + 'static,
) -> Result<R, ApiError>
where
    R: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| ApiError::internal("a store call failed to finish"))?
        .map_err(Into::into)
}

/// Everything a handler can reach. Shared, immutable apart from what each
/// part guards itself.
pub struct App {
    /// The bots: commands go through their channels, reads come from snapshots.
    pub manager: Arc<BotManager>,
    /// The system of record for tokens, audit, config history and presets.
    pub store: Arc<dyn Store>,
    /// Compiles uploaded plugins.
    pub runtime: Arc<PluginRuntime>,
    pub auth: Auth,
    /// Where audit entries go.
    pub audit: audit::AuditTrail,
    /// The store's group-committing writer, which audit entries and log
    /// lines are queued to without waiting.
    pub writer: crate::store::Writer,
    pub limiter: ratelimit::TokenLimiter,
    /// Failed authentications per peer address.
    pub failed_auth: ratelimit::FailedAuthLimiter,
    pub logbook: LogBook,
    pub idempotency: idempotency::IdempotencyCache,
    pub metrics: metrics::ApiMetrics,
    pub settings: ServerSettings,
    /// Open WebSocket and SSE streams per token.
    pub streams: Arc<events::StreamSlots>,
    /// Plugin uploads compiling at once.
    pub compiles: Arc<tokio::sync::Semaphore>,
    /// Backtest jobs and their workers.
    pub backtests: Arc<crate::research::BacktestJobs>,
    pub started: Instant,
    pub started_at_ms: i64,
}

impl App {
    /// Run `call` on the store from a blocking thread: a call that waits
    /// for a busy database (a pooled connection, a lock) never holds up
    /// an async worker, and with it `/health`, the streams and the
    /// emergency stop.
    pub async fn with_store<R: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> crate::store::StoreResult<R> + Send + 'static,
    ) -> Result<R, ApiError> {
        let store = self.store.clone();
        off_the_workers(move || call(store.as_ref())).await
    }

    /// Wait until what was queued to the writer so far (audit entries of
    /// calls already answered, log lines already written) is stored, so
    /// that a read of the store that follows shows it.
    pub async fn settle_queued_writes(&self) {
        if let Err(error) = self.writer.flush().await {
            tracing::error!(%error, "queued records not written");
        }
    }

    /// Everything a handler can reach, with the limits of `settings`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        manager: Arc<BotManager>,
        store: Arc<dyn Store>,
        runtime: Arc<PluginRuntime>,
        auth: Auth,
        logbook: LogBook,
        metrics: metrics::ApiMetrics,
        settings: ServerSettings,
        writer: crate::store::Writer,
    ) -> Self {
        let limits = settings.limits;
        Self {
            audit: audit::AuditTrail::new(writer.clone()),
            writer,
            limiter: ratelimit::TokenLimiter::new(settings.rate_limits),
            failed_auth: ratelimit::FailedAuthLimiter::new(limits.failed_auth_per_minute),
            idempotency: idempotency::IdempotencyCache::new(
                store.clone(),
                limits.idempotency_entries,
                limits.idempotency_bytes,
            ),
            streams: Arc::default(),
            backtests: crate::research::BacktestJobs::start(
                &settings.data_dir,
                limits.backtest_workers,
                Some(manager.bus().clone()),
            ),
            compiles: Arc::new(tokio::sync::Semaphore::new(
                limits.concurrent_compiles.max(1),
            )),
            manager,
            store,
            runtime,
            auth,
            logbook,
            metrics,
            settings,
            started: Instant::now(),
            started_at_ms: now_ms(),
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }

    /// Reload tokens from the store every `period`, so that tokens made or
    /// revoked with `stratbox token` (another process) take effect (and
    /// a revoked token's streams end).
    pub fn spawn_token_refresh(&self, period: std::time::Duration) {
        let state = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                let reloading = state.clone();
                let reloaded = off_the_workers(move || reloading.auth.reload()).await;
                if let Err(error) = reloaded {
                    tracing::warn!(%error, "tokens not reloaded");
                }
            }
        });
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// Every endpoint below /api/v1.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = Vec::new();
    all.extend(system::endpoints());
    all.extend(bots::endpoints());
    all.extend(control::endpoints());
    all.extend(config::endpoints());
    all.extend(monitoring::endpoints());
    all.extend(strategies::endpoints());
    all.extend(presets::endpoints());
    all.extend(data::endpoints());
    all.extend(backtests::endpoints());
    all.extend(optimizations::endpoints());
    all.extend(market::endpoints());
    all.extend(tokens::endpoints());
    all.extend(events::endpoints());
    all
}

/// The whole HTTP service.
pub fn router(state: AppState) -> Router {
    let mut api = Router::new();
    for endpoint in endpoints() {
        let mut handler = endpoint
            .handler
            .layer(DefaultBodyLimit::max(endpoint.body_limit));
        if endpoint.idempotent {
            handler = handler.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                idempotency::replay_or_record,
            ));
        }
        if let openapi::Access::Role(role) = endpoint.access {
            handler = handler.layer(axum::middleware::from_fn_with_state(
                role,
                middleware::require_role,
            ));
        }
        api = api.route(endpoint.path, handler);
    }
    let api = api
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed);
    let request_id = HeaderName::from_static("x-request-id");
    let body_timeout =
        std::time::Duration::from_secs(state.settings.limits.body_read_timeout_secs.max(1));
    let cors = cors(&state.settings).unwrap_or_else(|error| {
        // `serve` refuses bad origins at start (with this same function); a
        // router built from unchecked settings allows no origin rather
        // than panic.
        tracing::error!(%error, "CORS settings refused");
        CorsLayer::new()
    });
    // A path under /api that no route takes (another version, a typo) is
    // the API's 404, behind its authentication like every API path: not
    // the dashboard's page, and no map of the routes for anonymous callers.
    let unknown_api = axum::routing::any(middleware::not_found);
    let protected = Router::new()
        .nest("/api/v1", api)
        .route("/api", unknown_api.clone())
        .route("/api/", unknown_api.clone())
        .route("/api/{*rest}", unknown_api)
        .route(
            "/metrics",
            axum::routing::get(metrics::prometheus).layer(axum::middleware::from_fn_with_state(
                Role::Viewer,
                middleware::require_role,
            )),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    Router::new()
        .merge(protected)
        .merge(ui::service(&state.settings.ui_dir()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(cors)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(middleware::sanitize_request_id))
        .with_state(state)
}

/// The CORS layer of the settings' origins; an origin that is not one is
/// an error naming it. `*` alone allows any origin (no credentials are
/// involved: tokens travel in headers the page sets itself).
pub fn cors(settings: &ServerSettings) -> Result<CorsLayer, String> {
    let origins = &settings.cors_origins;
    let allow = if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            return Err("cors_origins: `*` allows every origin; list no other with it".into());
        }
        AllowOrigin::any()
    } else {
        let mut values = Vec::new();
        for (index, origin) in origins.iter().enumerate() {
            let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            });
            let value = HeaderValue::from_str(origin).ok().filter(|_| valid).ok_or_else(|| {
                format!(
                    "cors_origins/{index}: `{origin}` is not an origin (scheme://host[:port], e.g. http://localhost:5173)"
                )
            })?;
            values.push(value);
        }
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::ACCEPT,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-process-time"),
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
        ]))
}
