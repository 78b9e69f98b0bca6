//! `Idempotency-Key` on the POSTs that create things (bots, orders,
//! strategies): a retried request with the same key, from the same token,
//! to the same route, gets the first answer back instead of acting twice.
//!
//! The first request's body is hashed: the same key with a different body
//! is refused (422), and a retry that arrives while the first is still
//! running is refused (409) rather than run twice. Answers are kept for
//! [`KEEP_FOR`], at most [`CAPACITY`] of them, in memory: they do not
//! outlive the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::auth::Caller;
use super::openapi::WASM_BODY_LIMIT;
use super::problem::ApiError;

pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
pub const CAPACITY: usize = 10_000;
const MAX_KEY_LEN: usize = 200;

#[derive(Clone)]
enum Entry {
    InFlight {
        body_hash: [u8; 32],
    },
    Done {
        body_hash: [u8; 32],
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        at: Instant,
    },
}

#[derive(Default)]
pub struct IdempotencyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl IdempotencyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prune(entries: &mut HashMap<String, Entry>) {
        entries.retain(|_, entry| match entry {
            Entry::InFlight { .. } => true,
            Entry::Done { at, .. } => at.elapsed() < KEEP_FOR,
        });
        if entries.len() >= CAPACITY {
            // Still full of fresh answers: drop the oldest.
            let oldest = entries
                .iter()
                .filter_map(|(key, entry)| match entry {
                    Entry::Done { at, .. } => Some((key.clone(), *at)),
                    Entry::InFlight { .. } => None,
                })
                .min_by_key(|(_, at)| *at)
                .map(|(key, _)| key);
            if let Some(key) = oldest {
                entries.remove(&key);
            }
        }
    }
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
    let scope = format!(
        "{token}|{}|{}|{key}",
        request.method(),
        request.uri().path()
    );
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, WASM_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the body is larger than this route accepts",
            )
            .into_response();
        }
    };
    let body_hash: [u8; 32] = Sha256::digest(&bytes).into();
    {
        let mut entries = app.idempotency.lock();
        match entries.get(&scope) {
            Some(Entry::Done {
                body_hash: first,
                status,
                headers,
                body,
                ..
            }) => {
                if *first != body_hash {
                    return reused_key().into_response();
                }
                let mut response = (*status, body.clone()).into_response();
                *response.headers_mut() = headers.clone();
                response
                    .headers_mut()
                    .insert("idempotent-replayed", "true".parse().expect("header"));
                return response;
            }
            Some(Entry::InFlight { body_hash: first }) => {
                if *first != body_hash {
                    return reused_key().into_response();
                }
                return ApiError::conflict(
                    "a request with this Idempotency-Key is still being processed",
                )
                .into_response();
            }
            None => {
                IdempotencyCache::prune(&mut entries);
                entries.insert(scope.clone(), Entry::InFlight { body_hash });
            }
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    {
        let mut entries = app.idempotency.lock();
        if parts.status.is_server_error() {
            // Not an answer worth repeating: a retry may run again.
            entries.remove(&scope);
        } else {
            entries.insert(
                scope,
                Entry::Done {
                    body_hash,
                    status: parts.status,
                    headers: parts.headers.clone(),
                    body: body.clone(),
                    at: Instant::now(),
                },
            );
        }
    }
    Response::from_parts(parts, Body::from(body))
}

fn reused_key() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "this Idempotency-Key was used with a different body",
    )
}
