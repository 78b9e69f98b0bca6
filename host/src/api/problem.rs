//! Errors at the API edge, as RFC 9457 problem+json, mapped in one place.
//!
//! Every handler returns [`ApiError`]; the runtime's and the store's errors
//! turn into it here, so a status code is decided once per kind of failure.
//! A store failure is the only 500, and it carries no internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::config::ConfigIssue;
use crate::live::{CommandError, ManagerError};
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One validation failure: where (a JSON Pointer into the submitted
/// document) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

impl From<ConfigIssue> for FieldError {
    fn from(issue: ConfigIssue) -> Self {
        Self {
            pointer: issue.pointer,
            message: issue.message,
        }
    }
}

/// The problem+json body.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` for plain HTTP ones).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For a command refused in the bot's state: what it allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_commands: Option<Vec<String>>,
    /// For an order that filled before the strategy failed: the order as it
    /// stands (its fill stands too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<super::views::OrderView>>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub allowed_commands: Option<Vec<String>>,
    pub order: Option<Box<super::views::OrderView>>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

/// What a log line says of an error: its detail.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            allowed_commands: None,
            order: None,
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", detail)
    }

    /// 400 with the pointer of the bad part.
    pub fn malformed_at(pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut error = Self::bad_request(detail.clone());
        error.errors = vec![FieldError {
            pointer: pointer.into(),
            message: detail,
        }];
        error
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 422 with every issue and its pointer.
    pub fn invalid(issues: Vec<ConfigIssue>) -> Self {
        let detail = crate::domain::config::join_issues(&issues);
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail);
        error.errors = issues.into_iter().map(FieldError::from).collect();
        error
    }

    /// The same error with each field error moved by `relocate` (e.g. from
    /// a merged config into the request that made it); a validation
    /// error's detail follows.
    pub fn relocate(mut self, relocate: impl Fn(FieldError) -> FieldError) -> Self {
        self.errors = self.errors.into_iter().map(relocate).collect();
        if self.kind == "validation" {
            let issues: Vec<ConfigIssue> = self
                .errors
                .iter()
                .map(|error| ConfigIssue {
                    pointer: error.pointer.clone(),
                    message: error.message.clone(),
                })
                .collect();
            self.detail = crate::domain::config::join_issues(&issues);
        }
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The body. Texts are cut at [`MAX_DETAIL`] characters: a detail can
    /// quote what the client sent (an id of a path, a key), which the
    /// client already has.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://stratbox.dev/problems/{}", self.kind),
            title: title_of(self.kind, self.status).to_string(),
            status: self.status.as_u16(),
            detail: clipped(&self.detail),
            errors: self
                .errors
                .iter()
                .map(|error| FieldError {
                    pointer: clipped(&error.pointer),
                    message: clipped(&error.message),
                })
                .collect(),
            allowed_commands: self.allowed_commands.clone(),
            order: self.order.clone(),
        }
    }
}

/// The longest detail, field message or pointer a problem carries, in
/// characters.
pub const MAX_DETAIL: usize = 1_000;

/// `text`, or when longer than [`MAX_DETAIL`] characters its start and an
/// ellipsis, [`MAX_DETAIL`] characters in all.
fn clipped(text: &str) -> String {
    if text.chars().nth(MAX_DETAIL).is_none() {
        return text.to_string();
    }
    let mut cut = super::middleware::clip(text, MAX_DETAIL - 1);
    cut.push('…');
    cut
}

/// The short summary of a kind of problem (RFC 9457: the same for every
/// problem of that type), which a client may show as its heading; an
/// unlisted kind falls back to the status's reason phrase.
fn title_of(kind: &str, status: StatusCode) -> &'static str {
    match kind {
        "validation" => "Not accepted",
        "malformed" => "Malformed request",
        "not-found" => "Not found",
        "command-not-allowed" => "Not allowed in this state",
        "not-hot-swappable" => "Only while stopped",
        "order-refused" => "Order refused",
        "precondition-failed" => "Changed meanwhile",
        "emergency-engaged" => "Emergency stop engaged",
        "strategy-failed" => "Strategy failed",
        "interrupted" => "Interrupted",
        "unavailable" => "Try again",
        "unauthorized" => "Sign-in needed",
        "forbidden" => "Not permitted",
        "rate-limited" => "Too many requests",
        "too-large" => "Too large",
        "too-many-streams" => "Too many streams",
        "too-many-failures" => "Too many failed sign-ins",
        "busy" => "Busy",
        "idempotency-key-reused" => "Idempotency key reused",
        "unsupported-media-type" => "Unsupported media type",
        "method-not-allowed" => "Method not allowed",
        "internal" => "Server error",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        super::middleware::AuditNote::detail(self.detail).on(response)
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        let detail = error.to_string();
        match error {
            CommandError::NotAllowed { allowed, .. } => {
                let mut api = Self::new(StatusCode::CONFLICT, "command-not-allowed", detail);
                api.allowed_commands = Some(allowed.iter().map(|c| c.to_string()).collect());
                api
            }
            CommandError::Invalid(issues) => Self::invalid(issues),
            CommandError::NotHotSwappable(issues) => {
                let mut api = Self::new(StatusCode::CONFLICT, "not-hot-swappable", detail);
                api.errors = issues.into_iter().map(FieldError::from).collect();
                api
            }
            CommandError::OrderRefused(rejection) => {
                // The field the check weighed (the quantity for a value
                // or cash limit, the price for a tick or a stop through the
                // market), or the whole order.
                let issue = ConfigIssue {
                    pointer: crate::engine::refused_field(&rejection.check).into(),
                    message: format!("{}: {}", rejection.check, rejection.message),
                };
                // The detail leads with what happened, then says the error
                // as the list does (`lead: pointer: message`), so a client
                // shows the lead and the list without saying it twice.
                let detail = format!("the order was refused: {issue}");
                let mut api = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "order-refused", detail);
                api.errors = vec![FieldError::from(issue)];
                api
            }
            CommandError::VersionMismatch { .. } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                detail,
            ),
            CommandError::NoSuchOrder(_) => Self::not_found(detail),
            CommandError::EmergencyEngaged => {
                Self::new(StatusCode::CONFLICT, "emergency-engaged", detail)
            }
            CommandError::StrategyFailed { order, .. } => {
                let mut api = Self::new(StatusCode::CONFLICT, "strategy-failed", detail);
                api.order = order.map(|order| Box::new(super::views::OrderView::from(&*order)));
                api
            }
            CommandError::Interrupted => Self::new(StatusCode::CONFLICT, "interrupted", detail),
            CommandError::Gone => Self::new(StatusCode::NOT_FOUND, "not-found", detail),
            CommandError::Timeout(_) | CommandError::NotStored(_) => {
                tracing::warn!(%detail, "a command was not carried out");
                let mut api = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
                api.retry_after = Some(1);
                api
            }
        }
    }
}

impl From<ManagerError> for ApiError {
    fn from(error: ManagerError) -> Self {
        match error {
            ManagerError::NotFound(_) => Self::not_found(error.to_string()),
            // The id is the field to change.
            ManagerError::Exists(_) => {
                let mut conflict = Self::conflict(error.to_string());
                conflict.errors = vec![FieldError {
                    pointer: "/id".into(),
                    message: "is taken by another bot".into(),
                }];
                conflict
            }
            ManagerError::Command(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if let StoreError::Pool(_) = error {
            // Every connection busy: the store is slow, not failing.
            tracing::warn!(%error, "the store is busy");
            let mut api = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is busy; nothing was done, try again",
            );
            api.retry_after = Some(1);
            return api;
        }
        tracing::error!(%error, "store failure");
        Self::internal("the store failed; the change was not made")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_to_the_limit_on_a_character() {
        let long = "é".repeat(5_000);
        let problem =
            ApiError::malformed_at(&format!("/{long}"), format!("duplicate key `{long}`"))
                .problem();
        for text in [
            &problem.detail,
            &problem.errors[0].pointer,
            &problem.errors[0].message,
        ] {
            assert_eq!(text.chars().count(), MAX_DETAIL);
            assert!(text.ends_with("é…"), "{text:.20}");
        }
        let exact = "x".repeat(MAX_DETAIL);
        assert_eq!(ApiError::bad_request(exact.clone()).problem().detail, exact);
    }

    #[test]
    fn a_problem_is_titled_by_its_kind_not_its_status() {
        let refused = ApiError::invalid(vec![ConfigIssue {
            pointer: "/capital/initial".into(),
            message: "must be greater than 0".into(),
        }])
        .problem();
        assert_eq!(refused.title, "Not accepted");
        assert_eq!(refused.kind, "https://stratbox.dev/problems/validation");
        // Two kinds on one status keep their own titles.
        let swap = ApiError::new(StatusCode::CONFLICT, "not-hot-swappable", "x").problem();
        let state = ApiError::new(StatusCode::CONFLICT, "command-not-allowed", "x").problem();
        assert_eq!(swap.title, "Only while stopped");
        assert_eq!(state.title, "Not allowed in this state");
        // A kind without a title of its own says its status.
        let other = ApiError::conflict("a request with this key is running").problem();
        assert_eq!(other.title, "Conflict");
    }
}
