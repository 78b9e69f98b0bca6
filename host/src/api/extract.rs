//! Request extractors whose failures are problem+json: bodies (JSON, or a
//! config document in JSON or YAML), path parameters and query strings.
//!
//! axum's own extractors answer plain text; these wrap them so that every
//! refusal names the bad part: 400 for what cannot be parsed, 415 for a
//! wrong content type, 413 for a body over the route's limit, 422 with a
//! JSON Pointer for a well-formed document of the wrong shape.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::ApiError;

/// The media types a body can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Json,
    Yaml,
}

/// The `Content-Type`'s media type without its parameters, lower case.
fn essence(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

fn media_type(headers: &axum::http::HeaderMap) -> Option<MediaType> {
    match essence(headers)?.as_str() {
        "application/json" => Some(MediaType::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            Some(MediaType::Yaml)
        }
        _ => None,
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "the body is larger than this route accepts",
        )
    } else {
        ApiError::bad_request(format!("cannot read the body: {rejection}"))
    }
}

fn unsupported(accepted: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        format!("send the body as {accepted}"),
    )
}

/// Turn a parsed document into `T`; a wrong shape is a 422 naming the field.
pub fn shape<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    crate::domain::config::shape_of(&value).map_err(|issue| ApiError::invalid(vec![issue]))
}

/// A document sent as JSON or YAML (`Content-Type` says which).
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
}

impl<S: Send + Sync> FromRequest<S> for Document {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let media_type = media_type(request.headers())
            .ok_or_else(|| unsupported("application/json or application/yaml"))?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        let value = parse_document(&bytes, media_type)?;
        Ok(Self { value })
    }
}

/// Parse JSON or YAML text; a syntax error is a 400 with its position.
pub fn parse_document(bytes: &[u8], media_type: MediaType) -> Result<Value, ApiError> {
    match media_type {
        MediaType::Json => crate::domain::parse_json(bytes).map_err(|e| {
            let pointer = crate::domain::pointer_of_json_refusal(bytes);
            ApiError::malformed_at(&pointer, format!("malformed JSON: {e}"))
        }),
        MediaType::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("YAML must be UTF-8"))?;
            crate::domain::yaml::parse(text).map_err(|e| ApiError::malformed_at("", e.to_string()))
        }
    }
}

/// A JSON body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if media_type(request.headers()) != Some(MediaType::Json) {
            return Err(unsupported("application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        let value = parse_document(&bytes, MediaType::Json)?;
        shape(value).map(JsonBody)
    }
}

/// The media types a body of candles may have: CSV (ours or Binance's
/// klines) or Arrow IPC (Feather), told apart by the content itself.
pub const CANDLE_MEDIA_TYPES: &[&str] = &[
    "text/csv",
    "application/vnd.apache.arrow.file",
    "application/octet-stream",
];

/// A body of candles, as one of [`CANDLE_MEDIA_TYPES`].
#[derive(Debug, Clone)]
pub struct CandleBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for CandleBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let accepted = essence(request.headers())
            .is_some_and(|essence| CANDLE_MEDIA_TYPES.contains(&essence.as_str()));
        if !accepted {
            return Err(unsupported(&CANDLE_MEDIA_TYPES.join(", ")));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        Ok(Self(bytes))
    }
}

/// A JSON body that may be absent (a command's options).
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = media_type(request.headers()) == Some(MediaType::Json);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_error)?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(unsupported("application/json"));
        }
        let value = parse_document(&bytes, MediaType::Json)?;
        shape(value).map(OptionalJson)
    }
}

/// Path parameters; a value of the wrong form is a 404 (no such resource).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| match not_text(&rejection) {
                // Bytes that are no text are a malformed request, not an
                // id that names nothing.
                Some(key) => ApiError::bad_request(format!(
                    "the path's `{key}` is not UTF-8 text once percent-decoded"
                )),
                None => ApiError::not_found(path_refusal(&rejection)),
            })
    }
}

/// The path parameter whose percent-decoded bytes are not UTF-8, if any.
fn not_text(rejection: &PathRejection) -> Option<&str> {
    match rejection {
        PathRejection::FailedToDeserializePathParams(error) => match error.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => Some(key),
            _ => None,
        },
        _ => None,
    }
}

/// Why a path names nothing, in a user's words: which segment is not of
/// the form that resource's ids take.
fn path_refusal(rejection: &PathRejection) -> String {
    let PathRejection::FailedToDeserializePathParams(error) = rejection else {
        return rejection.body_text();
    };
    let (value, expected) = match error.kind() {
        ErrorKind::ParseErrorAtKey {
            value,
            expected_type,
            ..
        }
        | ErrorKind::ParseErrorAtIndex {
            value,
            expected_type,
            ..
        }
        | ErrorKind::ParseError {
            value,
            expected_type,
        } => (value, *expected_type),
        _ => return error.body_text(),
    };
    let whole = matches!(expected, "u8" | "u16" | "u32" | "u64" | "usize");
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    match (whole, digits) {
        (true, true) => format!("nothing here: `{value}` in the path is too large for an id"),
        (true, false) => {
            format!("nothing here: `{value}` in the path is not an id (ids here are whole numbers)")
        }
        _ => format!("nothing here: `{value}` in the path is not a valid {expected}"),
    }
}

/// A query string; a bad parameter is a 400 naming it.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Read as axum's `Query` does, but keep the failing parameter's
        // name: the answer points at it.
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let message = error.inner().to_string();
                let pointer = crate::domain::config::pointer_of_error(error.path(), &message);
                let message = format!("query parameter: {message}");
                ApiError::malformed_at(&pointer, message)
            })
    }
}
