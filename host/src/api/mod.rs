//! The control API: axum HTTP and WebSocket over the live runtime and the
//! store, for the React control UI, scripts and operators.
//!
//! - `openapi`: the route table type and the OpenAPI document built from it;
//! - `problem`: every error as problem+json, mapped in one place;
//! - `extract`: body, path and query extractors that fail as problem+json;
//! - `auth`, `ratelimit`, `middleware`, `idempotency`: who may call, how
//!   often, the audit log, request ids and retried requests;
//! - `views`: the JSON shapes answered;
//! - one file per resource: `bots`, `control`, `config`, `monitoring`,
//!   `strategies`, `presets`, `market`, `system`, `tokens`, `events`,
//!   `metrics`.
//!
//! Invariant: no handler holds a lock across an await, and none waits on a
//! plugin call except through a bot's command channel (bounded by the
//! manager's timeout), so a busy or failing bot never stalls the API.

mod auth;
mod bots;
mod config;
mod control;
mod events;
mod extract;
mod idempotency;
mod market;
mod metrics;
mod middleware;
mod monitoring;
mod openapi;
mod presets;
mod problem;
mod ratelimit;
mod settings;
mod strategies;
mod system;
mod tokens;
mod views;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use auth::{Auth, Role};
pub use idempotency::IdempotencyCache;
pub use metrics::ApiMetrics;
pub use openapi::Endpoint;
pub use problem::{ApiError, Problem};
pub use ratelimit::TokenLimiter;
pub use ratelimit::{RateLimit, RateLimits};
pub use settings::{Retention, ServerSettings};

use crate::live::{BotManager, LogBook};
use crate::plugin::PluginRuntime;
use crate::store::Store;

/// The integer API revision: bumped on any incompatible change.
pub const API_REVISION: u32 = 1;

/// Wall time, epoch ms.
pub use crate::live::wall_ms as now_ms;

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
    pub limiter: ratelimit::TokenLimiter,
    pub logbook: LogBook,
    pub idempotency: idempotency::IdempotencyCache,
    pub metrics: metrics::ApiMetrics,
    pub settings: ServerSettings,
    pub started: Instant,
    pub started_at_ms: i64,
    /// Config changes (PUT, rollback) run one at a time, so that If-Match
    /// and version numbers cannot race.
    pub config_changes: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }

    /// Reload tokens from the store every `period`, so that tokens made or
    /// revoked with `stratbox token` (another process) take effect.
    pub fn spawn_token_refresh(&self, period: std::time::Duration) {
        let state = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                ticks.tick().await;
                if let Err(error) = state.auth.reload() {
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
    Router::new()
        .nest("/api/v1", api)
        .route(
            "/metrics",
            axum::routing::get(metrics::prometheus).layer(axum::middleware::from_fn_with_state(
                Role::Viewer,
                middleware::require_role,
            )),
        )
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(cors(&state.settings))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

fn cors(settings: &ServerSettings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
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
        ])
}

/// Serve until `shutdown` resolves; then stop accepting, finish requests.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
