//! `Idempotency-Key` on the POSTs that create things (bots, orders,
//! strategies): a retried request with the same key, from the same token,
//! to the same method, path and query, gets the first answer back instead
//! of acting twice.
//!
//! The first request's body is hashed: the same key with a different body
//! is refused (422). A retry that arrives while the first is still running
//! is refused (409) rather than run twice; the "running" mark is released
//! when the first request ends in any way (answered, failed, its client
//! gone), so a key is never stuck. Answers are kept in the store (a retry
//! after a restart still gets the first one), for 24 hours, at most
//! `idempotency_entries` of them and `idempotency_bytes` of bodies in all;
//! 5xx answers are not kept (a retry may run again).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::auth::Caller;
use super::openapi::WASM_BODY_LIMIT;
use super::problem::ApiError;
use crate::store::{KeptAnswer, Store};

/// How long answers are kept.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
const MAX_KEY_LEN: usize = 200;
/// Answers larger than this are not kept (no creating route answers that
/// much).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

type Scope = [u8; 32];

/// Kept answers (in the store) and the requests still running.
pub struct IdempotencyCache {
    store: Arc<dyn Store>,
    in_flight: Arc<Mutex<HashSet<Scope>>>,
    max_entries: usize,
    max_bytes: usize,
}

/// Marks a scope as running until dropped.
struct Running {
    in_flight: Arc<Mutex<HashSet<Scope>>>,
    scope: Scope,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.scope);
    }
}

impl IdempotencyCache {
    pub fn new(store: Arc<dyn Store>, max_entries: usize, max_bytes: usize) -> Self {
        Self {
            store,
            in_flight: Arc::default(),
            max_entries,
            max_bytes,
        }
    }

    /// Mark `scope` as running; None if it already is.
    fn start(&self, scope: Scope) -> Option<Running> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.insert(scope).then(|| Running {
            in_flight: self.in_flight.clone(),
            scope,
        })
    }

    async fn kept(&self, scope: Scope) -> Result<Option<KeptAnswer>, ApiError> {
        let store = self.store.clone();
        super::off_the_workers(move || store.kept_answer(&scope)).await
    }

    async fn keep(&self, answer: KeptAnswer) {
        let (store, entries, bytes) = (self.store.clone(), self.max_entries, self.max_bytes);
        let kept = super::off_the_workers(move || store.keep_answer(&answer, entries, bytes)).await;
        if kept.is_err() {
            // The answer still goes out; a retry would run the request again.
            tracing::warn!("an idempotent answer was not kept");
        }
    }
}

fn replay(answer: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    // Built bare: the kept headers (its content type among them) are the
    // answer's own, and a body's default type would come out beside them.
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// The middleware: replay a kept answer, or run the request and keep its answer.
pub async fn replay_or_record(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or_default().to_string())
    else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return ApiError::malformed_at(
            "",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
        .into_response();
    }
    let token = request
        .extensions()
        .get::<Caller>()
        .map(|c| c.token_id.clone())
        .unwrap_or_default();
    let scope: Scope = {
        let mut hasher = Sha256::new();
        for part in [
            token.as_str(),
            request.method().as_str(),
            request.uri().path(),
            request.uri().query().unwrap_or_default(),
            key.as_str(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, WASM_BODY_LIMIT).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "the body is larger than this route accepts",
        )
        .into_response();
    };
    let body_hash: [u8; 32] = Sha256::digest(&bytes).into();
    let Some(running) = app.idempotency.start(scope) else {
        return ApiError::conflict("a request with this Idempotency-Key is still being processed")
            .into_response();
    };
    match app.idempotency.kept(scope).await {
        Ok(Some(answer)) if answer.body_hash != body_hash => return reused_key().into_response(),
        Ok(Some(answer)) => return replay(answer),
        Ok(None) => {}
        Err(error) => return error.into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, MAX_ANSWER_BYTES).await else {
        drop(running);
        return ApiError::internal("the answer was too large to keep").into_response();
    };
    if !parts.status.is_server_error() {
        app.idempotency
            .keep(KeptAnswer {
                scope,
                body_hash,
                status: parts.status.as_u16(),
                headers: header_pairs(&parts.headers),
                body: body.to_vec(),
                created_at: super::now_ms(),
            })
            .await;
    }
    drop(running);
    Response::from_parts(parts, Body::from(body))
}

fn reused_key() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "this Idempotency-Key was used with a different body",
    )
}
