//! A bot's config: read (JSON or YAML, with an ETag), replace (validated
//! against the bot schema, the plugin's parameter schema and its init, then
//! hot-swapped), validate without changing anything, version history and
//! rollback.
//!
//! The ETag is the config version (`"v3"`). `If-Match` on a PUT or rollback
//! makes it conditional (412 when another change came first): the bot's
//! runner compares it with the version in force when it takes the change,
//! so no lock is needed and bots never wait on each other. The runner
//! assigns the new version and commits it with its checkpoint before the
//! answer.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::{Caller, Role};
use super::bots::{PAGE_QUERY, PageQuery};
use super::extract::{ApiPath, ApiQuery, Document, JsonBody};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{
    BotStatus, ConfigApplied, ConfigVersionView, Page, ValidationPassed, split_page,
};
use crate::domain::config::BotConfig;
use crate::live::{BotSnapshot, ConfigChange, Outcome};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/bots/{id}/config",
            "The config in force (JSON, or YAML with Accept: application/yaml), with its ETag",
            Role::Viewer,
            get(read),
        )
        .returns::<BotConfig>(),
        Endpoint::put(
            "/bots/{id}/config",
            "Replace the config: validated, then hot-swapped between two candles",
            Role::Operator,
            put(replace),
        )
        .document_body::<BotConfig>()
        .conditional()
        .returns::<ConfigApplied>(),
        Endpoint::post(
            "/bots/{id}/config/validate",
            "Every check of a config change; nothing changes",
            Role::Operator,
            post(validate),
        )
        .document_body::<BotConfig>()
        .returns::<ValidationPassed>(),
        Endpoint::get(
            "/bots/{id}/config/versions",
            "Accepted configs, newest first",
            Role::Viewer,
            get(versions),
        )
        .query(PAGE_QUERY)
        .returns::<Page<ConfigVersionView>>(),
        Endpoint::post(
            "/bots/{id}/config/rollback",
            "Apply an earlier version's content as a new version",
            Role::Operator,
            post(rollback),
        )
        .json_body::<RollbackRequest>()
        .conditional()
        .returns::<ConfigApplied>(),
    ]
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub version: u64,
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{version}\"")).expect("an ETag is ASCII")
}

fn snapshot_of(app: &AppState, id: &str) -> Result<std::sync::Arc<BotSnapshot>, ApiError> {
    app.manager
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no bot `{id}`")))
}

fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml"))
}

async fn read(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = snapshot_of(&app, &id)?;
    let config = snapshot
        .config
        .as_ref()
        .ok_or_else(|| ApiError::not_found(format!("no bot `{id}`")))?;
    let mut response = if wants_yaml(&headers) {
        let text =
            serde_yaml::to_string(&**config).map_err(|e| ApiError::internal(e.to_string()))?;
        ([(header::CONTENT_TYPE, "application/yaml")], text).into_response()
    } else {
        axum::Json(&**config).into_response()
    };
    response
        .headers_mut()
        .insert(header::ETAG, etag(snapshot.config_version));
    Ok(response)
}

/// A config document for bot `id`: the path names the bot, so the body may
/// leave `id` out. The runner checks it whole.
fn config_for(id: &str, mut document: Value) -> Value {
    if let Some(object) = document.as_object_mut() {
        object
            .entry("id")
            .or_insert_with(|| Value::String(id.to_string()));
    }
    document
}

/// The versions `If-Match` accepts: None when absent or `*` (the change is
/// unconditional); otherwise the versions its `"vN"` tags name, weak or
/// strong, over every `If-Match` line (an entity tag of another form names
/// none, so nothing matches: 412). A header that is not a list of entity
/// tags (`v3` without its quotes, or nothing at all) is refused with 400,
/// not taken for a stale version. The runner compares the versions with the
/// one in force when it takes the change. A weak tag matches too, against
/// RFC 9110's strong comparison, on purpose: the tag names a config version,
/// not a byte sequence, and a proxy that compresses the answer (nginx's
/// gzip) weakens it, which would make every conditional change fail.
fn expected_versions(headers: &HeaderMap) -> Result<Option<Vec<u64>>, ApiError> {
    let lines = headers.get_all(header::IF_MATCH);
    if lines.iter().next().is_none() {
        return Ok(None);
    }
    let mut versions = Vec::new();
    let mut tags = 0;
    for line in lines {
        if line.as_bytes().trim_ascii() == b"*" {
            return Ok(None);
        }
        for opaque in opaque_tags(line.as_bytes())? {
            tags += 1;
            let version = std::str::from_utf8(opaque)
                .ok()
                .and_then(|text| text.strip_prefix('v'))
                .and_then(|digits| digits.parse::<u64>().ok());
            versions.extend(version);
        }
    }
    if tags == 0 {
        return Err(not_an_entity_tag(b""));
    }
    Ok(Some(versions))
}

/// The opaque parts of a list of entity tags (RFC 9110: `"..."` or
/// `W/"..."`, commas between, empty elements ignored).
fn opaque_tags(list: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let is_etagc = |byte: u8| byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80;
    let mut tags = Vec::new();
    let mut rest = list.trim_ascii_start();
    loop {
        while let [b',', tail @ ..] = rest {
            rest = tail.trim_ascii_start();
        }
        if rest.is_empty() {
            return Ok(tags);
        }
        let element = rest;
        let unquoted = rest.strip_prefix(b"W/").unwrap_or(rest);
        let opaque = unquoted.strip_prefix(b"\"").and_then(|body| {
            let end = body.iter().position(|&byte| byte == b'"')?;
            rest = body[end + 1..].trim_ascii_start();
            Some(&body[..end])
        });
        match opaque {
            Some(opaque)
                if opaque.iter().all(|&byte| is_etagc(byte))
                    && matches!(rest.first(), None | Some(b',')) =>
            {
                tags.push(opaque)
            }
            _ => return Err(not_an_entity_tag(element)),
        }
    }
}

/// 400 for an `If-Match` element that is not an entity tag.
fn not_an_entity_tag(element: &[u8]) -> ApiError {
    let shown = element
        .split(|&byte| byte == b',')
        .next()
        .unwrap_or_default();
    ApiError::bad_request(format!(
        "If-Match: `{}` is not an entity tag; send the ETag as it was given, e.g. \"v3\"",
        String::from_utf8_lossy(shown.trim_ascii())
    ))
}

/// Hand a new config to the bot's runner; the answer carries the version
/// it committed.
async fn apply(
    app: &AppState,
    id: &str,
    document: Value,
    headers: &HeaderMap,
    actor: &str,
) -> Result<Response, ApiError> {
    let change = ConfigChange {
        document,
        expected_versions: expected_versions(headers)?,
        actor: actor.to_string(),
        dry_run: false,
    };
    let reply = app.manager.reconfigure(id, change).await?;
    let (version, note) = match reply.outcome {
        Outcome::ConfigApplied { version } => (version, format!("config v{version}")),
        // The config in force, sent again: no new version.
        _ => {
            let version = reply.snapshot.config_version;
            let note = format!("nothing to do: config v{version} is already in force");
            (version, note)
        }
    };
    let mut response = axum::Json(ConfigApplied {
        version,
        config: reply.snapshot.config.clone(),
        status: BotStatus::from(&*reply.snapshot),
    })
    .into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(AuditNote::detail(note).on(response))
}

async fn replace(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    document: Document,
) -> Result<Response, ApiError> {
    let document = config_for(&id, document.value);
    apply(&app, &id, document, &headers, &caller.name).await
}

async fn validate(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    document: Document,
) -> Result<axum::Json<ValidationPassed>, ApiError> {
    let change = ConfigChange {
        document: config_for(&id, document.value),
        expected_versions: None,
        actor: caller.name,
        dry_run: true,
    };
    app.manager.reconfigure(&id, change).await?;
    Ok(axum::Json(ValidationPassed { valid: true }))
}

async fn versions(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<ConfigVersionView>>, ApiError> {
    snapshot_of(&app, &id)?;
    let limit = query.limit()?;
    let before = query.numeric_cursor()?;
    let rows = app
        .with_store(move |store| store.config_versions(&id, before, limit + 1))
        .await?;
    let (versions, next_cursor) = split_page(rows, limit, |v| v.version.to_string());
    Ok(axum::Json(Page {
        items: versions.iter().map(ConfigVersionView::from).collect(),
        next_cursor,
    }))
}

async fn rollback(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RollbackRequest>,
) -> Result<Response, ApiError> {
    let version = {
        let id = id.clone();
        app.with_store(move |store| store.config_version(&id, request.version))
            .await?
    }
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "bot `{id}` has no config version {}",
            request.version
        ))
    })?;
    let document = config_for(&id, version.config);
    apply(&app, &id, document, &headers, &caller.name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let expected = |lines: &[&[u8]]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append(header::IF_MATCH, HeaderValue::from_bytes(line).unwrap());
            }
            expected_versions(&headers)
        };
        assert_eq!(expected(&[]).unwrap(), None, "absent: unconditional");
        assert_eq!(expected(&[b"\"v3\""]).unwrap(), Some(vec![3]));
        assert_eq!(expected(&[b"\"v1\", W/\"v4\""]).unwrap(), Some(vec![1, 4]));
        assert_eq!(expected(&[b"*"]).unwrap(), None);
        // Empty list elements are ignored; every line counts.
        assert_eq!(expected(&[b", \"v1\",,\"v2\","]).unwrap(), Some(vec![1, 2]));
        assert_eq!(expected(&[b"\"v1\"", b"\"v7\""]).unwrap(), Some(vec![1, 7]));
        // Entity tags of another form (a comma or a byte past ASCII inside
        // one included) match nothing.
        assert_eq!(
            expected(&[b"\"abc\", \"v\", \"a,b\", \"v1\xe9\""]).unwrap(),
            Some(vec![]),
            "tags of another form match nothing"
        );
        for malformed in [
            &b"v5"[..],
            b"\"v5",
            b"\"v1\", v2",
            b"W/v3",
            b"w/\"v3\"",
            b"\"v\"1\"",
            b"\"v 1\"",
            b"",
            b" , ",
        ] {
            let refused = expected(&[malformed]).unwrap_err();
            let shown = String::from_utf8_lossy(malformed);
            assert_eq!(
                refused.status,
                axum::http::StatusCode::BAD_REQUEST,
                "{shown}"
            );
            assert!(refused.detail.contains("is not an entity tag"), "{shown}");
        }
    }
}
