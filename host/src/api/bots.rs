//! /bots: list, create (a config in JSON or YAML, or a preset with
//! overrides), get and delete.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::{Caller, Role};
use super::extract::{ApiPath, ApiQuery, Document, shape};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::{ApiError, FieldError};
use super::views::{BotDetail, BotSummary, Page, split_page};
use crate::domain::config::{BotConfig, ConfigIssue};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/bots",
            "Every bot with its state, equity and PnL",
            Role::Viewer,
            get(list),
        )
        .query(PAGE_QUERY)
        .returns::<Page<BotSummary>>(),
        Endpoint::post(
            "/bots",
            "Create a bot from a config (JSON or YAML) or from a preset with overrides",
            Role::Operator,
            post(create),
        )
        .document_body_with(create_body_schema)
        .idempotent()
        .status(201)
        .returns::<BotDetail>(),
        Endpoint::get(
            "/bots/{id}",
            "One bot, with its config",
            Role::Viewer,
            get(get_one),
        )
        .returns::<BotDetail>(),
        Endpoint::delete(
            "/bots/{id}",
            "Delete a stopped bot",
            Role::Operator,
            delete(remove),
        )
        .status(204),
    ]
}

pub const PAGE_QUERY: &[(&str, &str)] = &[
    ("limit", "items per page (1 to 1000, default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];

/// `limit` and `cursor` of a list request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(limit @ 1..=1000) => Ok(limit),
            Some(_) => Err(ApiError::malformed_at(
                "/limit",
                "limit must be between 1 and 1000",
            )),
        }
    }

    /// The cursor as a number (lists paged by id or offset).
    pub fn numeric_cursor(&self) -> Result<Option<u64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse().map_err(|_| {
                    ApiError::malformed_at("/cursor", "cursor is not one this list gave")
                })
            })
            .transpose()
    }
}

/// Page `items` (already in list order) by position: the cursor is the
/// offset of the next item.
pub fn page_by_offset<T>(items: Vec<T>, query: &PageQuery) -> Result<Page<T>, ApiError> {
    let limit = query.limit()?;
    let offset = query.numeric_cursor()?.unwrap_or(0) as usize;
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = offset + items.len();
    Ok(Page {
        items,
        next_cursor: (next < total).then(|| next.to_string()),
    })
}

/// A new bot from a preset: the preset's config with `overrides` merged in
/// (RFC 7396), validated as a whole.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromPreset {
    pub preset: String,
    /// Merged into the preset's config (RFC 7396).
    #[serde(default)]
    pub overrides: serde_json::Map<String, Value>,
}

/// The create body's schema: a bot config, or a preset with overrides.
fn create_body_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let config = generator.subschema_for::<BotConfig>();
    let preset = generator.subschema_for::<FromPreset>();
    schemars::json_schema!({ "anyOf": [config, preset] })
}

/// A page of `Page<BotSummary>`, each summary as its snapshot rendered it.
async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit()?;
    let after = query.cursor.clone().unwrap_or_default();
    let rows: Vec<_> = app
        .manager
        .list()
        .into_iter()
        .filter(|s| &*s.id > after.as_str())
        .take(limit + 1)
        .collect();
    let (rows, next_cursor) = split_page(rows, limit, |s| s.id.to_string());
    let items = rows.iter().map(|s| BotSummary::json_of(s)).collect();
    Ok(axum::Json(Page { items, next_cursor }).into_response())
}

/// Where a create body's config came from: given whole, or a preset with
/// overrides merged in.
enum ConfigOrigin {
    Given,
    Preset {
        name: String,
        preset: Value,
        overrides: Value,
    },
}

impl ConfigOrigin {
    /// A field error of the merged config, pointed into the create body:
    /// under `/overrides` when an override set that field (or one holding
    /// it), or when neither gave it (a missing field is the request's to
    /// supply); otherwise the preset gave it, so at `/preset`, naming the
    /// field.
    fn locate(&self, error: FieldError) -> FieldError {
        let ConfigOrigin::Preset {
            name,
            preset,
            overrides,
        } = self
        else {
            return error;
        };
        // `pointer("")` is the whole document: a problem of the whole stays
        // the preset's.
        let the_requests =
            overridden(overrides, &error.pointer) || preset.pointer(&error.pointer).is_none();
        if the_requests {
            return FieldError {
                pointer: format!("/overrides{}", error.pointer),
                ..error
            };
        }
        let field = if error.pointer.is_empty() {
            "/"
        } else {
            &error.pointer
        };
        FieldError {
            message: format!("preset `{name}` at {field}: {}", error.message),
            pointer: "/preset".into(),
        }
    }
}

/// Whether `overrides` sets the field at `pointer` or one that holds it.
fn overridden(overrides: &Value, pointer: &str) -> bool {
    let mut at = overrides;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match at {
            Value::Object(fields) => match fields.get(&token) {
                Some(value) => at = value,
                None => return false,
            },
            // A whole value replaced by the override holds the field.
            _ => return true,
        }
    }
    !pointer.is_empty()
}

/// The config document a create body describes, presets merged, and where
/// it came from.
async fn resolve_create(
    app: &AppState,
    document: Value,
) -> Result<(Value, ConfigOrigin), ApiError> {
    let is_preset = document
        .as_object()
        .is_some_and(|o| o.contains_key("preset"));
    if !is_preset {
        return Ok((document, ConfigOrigin::Given));
    }
    let request: FromPreset = shape(document)?;
    let preset = app
        .with_store(|store| store.presets())
        .await?
        .into_iter()
        .find(|p| p.name == request.preset)
        .ok_or_else(|| {
            ApiError::invalid(vec![ConfigIssue {
                pointer: "/preset".into(),
                message: format!("no preset named `{}`", request.preset),
            }])
        })?;
    let overrides = Value::Object(request.overrides);
    let mut merged = preset.config.clone();
    json_patch::merge(&mut merged, &overrides);
    let origin = ConfigOrigin::Preset {
        name: preset.name,
        preset: preset.config,
        overrides,
    };
    Ok((merged, origin))
}

async fn create(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    document: Document,
) -> Result<Response, ApiError> {
    let (document, origin) = resolve_create(&app, document.value).await?;
    // The bot the call is about, for the audit log, refused or not.
    let named = document
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let created = app
        .manager
        .create_from_document(&document, &caller.name)
        .await
        .map_err(ApiError::from);
    let snapshot = match created {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let error = error.relocate(|e| origin.locate(e));
            let note = AuditNote::made(named, error.detail.clone());
            return Ok(note.on(error.into_response()));
        }
    };
    let note = AuditNote::made(
        &*snapshot.id,
        format!("config v{}", snapshot.config_version),
    );
    Ok(note.on((StatusCode::CREATED, axum::Json(BotDetail::from(&*snapshot))).into_response()))
}

async fn get_one(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<BotDetail>, ApiError> {
    let snapshot = app
        .manager
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no bot `{id}`")))?;
    Ok(axum::Json(BotDetail::from(&*snapshot)))
}

async fn remove(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.manager.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
