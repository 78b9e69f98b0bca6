//! The layers every request passes: request ids kept only when well-formed
//! (`sanitize_request_id`), timing and counting (`observe`), authentication,
//! rate limiting and the audit log (`authenticate`), and the per-route role
//! check (`require_role`).
//!
//! Nothing an unauthenticated client sends creates lasting state beyond a
//! bounded, throttled audit row: failed authentications are limited per
//! peer address (past the limit they get 429 and are not audited), and an
//! audit row
//! keeps at most [`MAX_AUDIT_PATH`] characters of the path and a request id
//! only if it is short and plain.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{Caller, Role, bearer};
use super::problem::ApiError;
use super::ratelimit::{Allowance, Decision};
use super::{AppState, now_ms};
use crate::store::AuditEntry;

/// The 401's detail for a call without a token.
const NO_TOKEN: &str = "a bearer token is required: `Authorization: Bearer <token>`";

/// Paths anyone may call.
const OPEN_PATHS: &[&str] = &["/api/v1/health"];
/// Path characters an audit row keeps.
pub const MAX_AUDIT_PATH: usize = 256;
/// Longest client `X-Request-Id` kept (letters, digits, `.`, `_`, `-`).
pub const MAX_REQUEST_ID: usize = 64;

/// Drop a client's `X-Request-Id` unless it is short and plain; the next
/// layer then makes one of its own.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let plain = request.headers().get("x-request-id").map(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    if plain == Some(false) {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// At most `max` characters of `text`.
pub(super) fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
/// The WebSocket also takes its token in its first message.
const WEBSOCKET_PATH: &str = "/api/v1/ws";

/// Time the request, count it by route and status, log it, and answer
/// `X-Process-Time` (milliseconds).
pub async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.metrics.count_request(method.as_str(), &route, status);
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", elapsed.as_secs_f64() * 1000.0)) {
        response.headers_mut().insert("x-process-time", value);
    }
    tracing::debug!(target: "stratbox::api", %method, route, status, elapsed_us = elapsed.as_micros() as u64, "request");
    response
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// What the audit log says a path acts on: the resource id after the
/// collection name (`/api/v1/bots/a/stop` acts on `a`).
fn audit_target(path: &str) -> String {
    let mut segments = path.trim_start_matches("/api/v1/").split('/');
    let _collection = segments.next();
    segments.next().unwrap_or_default().to_string()
}

fn set_allowance(response: &mut Response, allowance: Allowance) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(allowance.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(allowance.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(allowance.reset_secs));
}

fn too_many_failures(retry_after: u64) -> Response {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-failures",
        format!("too many failed authentications from this address; retry in {retry_after} s"),
    );
    error.retry_after = Some(retry_after);
    error.into_response()
}

/// Check the bearer token, apply the token's rate limit, run the request,
/// and write every mutating call (refused ones too) to the audit log.
/// Tokens never reach a log line.
pub async fn authenticate(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if OPEN_PATHS.contains(&path.as_str()) || method == Method::OPTIONS {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let header_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| bearer(v).map(str::to_string));
    if path == WEBSOCKET_PATH && header_token.is_none() {
        // A browser: the socket handler asks for the token in the first message.
        return next.run(request).await;
    }
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let noted = |caller: Option<&Caller>, status: StatusCode, note: &AuditNote| AuditEntry {
        id: 0,
        ts: now_ms(),
        actor: caller.map_or_else(|| "anonymous".into(), |c| c.name.clone()),
        role: caller.map_or_else(String::new, |c| c.role.as_str().into()),
        action: clip(&format!("{method} {path}"), MAX_AUDIT_PATH),
        target: clip(
            note.target.as_deref().unwrap_or(&audit_target(&path)),
            MAX_AUDIT_PATH,
        ),
        status: status.as_u16(),
        remote: peer.map(|p| p.to_string()).unwrap_or_default(),
        request_id: request_id.clone(),
        detail: clip(&note.detail, MAX_AUDIT_PATH),
    };
    let entry = |caller: Option<&Caller>, status: StatusCode, detail: &str| {
        noted(caller, status, &AuditNote::detail(detail))
    };
    let refuse = |error: ApiError| {
        // A failure counts against the peer; past its quota its failures
        // get 429 and nothing more of them is written anywhere. (A valid
        // token from the same address still passes: an attacker cannot
        // lock operators out by failing on purpose.)
        let blocked = peer.and_then(|p| {
            let ip = p.ip();
            app.failed_auth
                .blocked(ip)
                .or_else(|| app.failed_auth.failed(ip))
        });
        if let Some(wait) = blocked {
            app.metrics.count_refused_auth();
            return too_many_failures(wait);
        }
        if is_mutating(&method) {
            app.audit
                .try_record(entry(None, error.status, &error.detail));
        }
        error.into_response()
    };
    let caller = match header_token {
        None => None,
        Some(None) => {
            return refuse(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        }
        Some(Some(token)) => match app.auth.verify(&token) {
            Some(caller) => Some(caller),
            None => {
                return refuse(ApiError::unauthorized(
                    "the bearer token is not valid: unknown, mistyped or revoked (a running server \
                     sees a token made with `stratbox token create` within 2 s)",
                ));
            }
        },
    };
    let Some(caller) = caller else {
        return refuse(ApiError::unauthorized(NO_TOKEN));
    };
    let allowance = match app.limiter.check(caller.role, &caller.token_id) {
        Decision::Unlimited => None,
        Decision::Allowed(allowance) => Some(allowance),
        Decision::Refused(allowance) => {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!(
                    "rate limit of the {} role reached; retry in {} s",
                    caller.role.as_str(),
                    allowance.reset_secs
                ),
            );
            error.retry_after = Some(allowance.reset_secs);
            if is_mutating(&method) {
                app.audit
                    .record(entry(Some(&caller), error.status, &error.detail))
                    .await;
            }
            let mut response = error.into_response();
            set_allowance(&mut response, allowance);
            return response;
        }
    };
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    if let Some(allowance) = allowance {
        set_allowance(&mut response, allowance);
    }
    if is_mutating(&method) {
        let note = response
            .extensions()
            .get::<AuditNote>()
            .cloned()
            .unwrap_or_default();
        app.audit
            .record(noted(Some(&caller), response.status(), &note))
            .await;
    }
    response
}

/// What a response tells the audit log beyond the method and path: the
/// thing a call made, when the path cannot name it (a new bot, job or
/// token), and what it did or why it was refused. Every problem answer
/// carries its detail.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub target: Option<String>,
    pub detail: String,
}

impl AuditNote {
    pub fn detail(detail: impl Into<String>) -> Self {
        Self {
            target: None,
            detail: detail.into(),
        }
    }

    /// A call that made `target`.
    pub fn made(target: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            detail: detail.into(),
        }
    }

    /// `response` carrying this note.
    pub fn on(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Refuse callers whose role is below the route's.
pub async fn require_role(State(required): State<Role>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return ApiError::unauthorized(NO_TOKEN).into_response();
    };
    if caller.role < required {
        return ApiError::forbidden(format!(
            "this needs the {} role; the token has {}",
            required.as_str(),
            caller.role.as_str()
        ))
        .into_response();
    }
    next.run(request).await
}

/// The path the client asked for, whole (a nested router sees only its
/// tail), clipped as the audit trail clips it.
fn asked_path(request: &Request) -> String {
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |original| original.path());
    clip(path, MAX_AUDIT_PATH)
}

pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route {}", asked_path(&request)))
}

pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            asked_path(&request)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_targets() {
        assert_eq!(audit_target("/api/v1/bots/a/stop"), "a");
        assert_eq!(audit_target("/api/v1/bots"), "");
        assert_eq!(audit_target("/api/v1/tokens/tok_1"), "tok_1");
    }
}
