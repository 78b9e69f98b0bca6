//! /presets: named starting points for new bots (`POST /bots` with
//! `{"preset": name, "overrides": {...}}`), stored like bots and seeded
//! from config/presets/ on first start.
//!
//! A preset is a bot config that may leave out `id` and `name`; it is
//! validated as a bot config with those filled in, so a preset that cannot
//! make a bot is refused with pointers into it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::auth::Role;
use super::bots::{PAGE_QUERY, PageQuery, page_by_offset};
use super::extract::{ApiPath, ApiQuery, Document};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{Page, PresetView};
use super::{AppState, now_ms};
use crate::domain::config::{BotConfig, ConfigIssue};
use crate::plugin::PluginRegistry;
use crate::store::PresetRecord;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/presets", "Every preset", Role::Viewer, get(list))
            .query(PAGE_QUERY)
            .returns::<Page<PresetView>>(),
        Endpoint::get("/presets/{name}", "One preset", Role::Viewer, get(get_one))
            .returns::<PresetView>(),
        Endpoint::put(
            "/presets/{name}",
            "Create or replace a preset (validated as a bot config)",
            Role::Operator,
            axum::routing::put(put_one),
        )
        .document_body::<Value>()
        .returns::<PresetView>(),
        Endpoint::delete(
            "/presets/{name}",
            "Remove a preset (bots made from it keep their configs)",
            Role::Operator,
            axum::routing::delete(delete_one),
        )
        .status(204),
    ]
}

/// Every problem of a preset document, as a bot config without id and
/// name, its plugin and parameters included (`registry`).
fn check_preset(document: &Value, registry: &PluginRegistry) -> Vec<ConfigIssue> {
    let Some(object) = document.as_object() else {
        return vec![ConfigIssue {
            pointer: String::new(),
            message: "a preset is a mapping of bot config fields".into(),
        }];
    };
    let mut filled = object.clone();
    filled
        .entry("id")
        .or_insert_with(|| Value::String("preset-check".into()));
    filled
        .entry("name")
        .or_insert_with(|| Value::String("preset check".into()));
    match BotConfig::from_value(Value::Object(filled)) {
        Ok(config) => registry.every_issue(&config, Vec::new()),
        Err(issues) => issues,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<PresetView>>, ApiError> {
    let presets = app.with_store(|store| store.presets()).await?;
    let views = presets.iter().map(PresetView::from).collect();
    Ok(axum::Json(page_by_offset(views, &query)?))
}

async fn get_one(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<axum::Json<PresetView>, ApiError> {
    let preset = app
        .with_store(|store| store.presets())
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no preset `{name}`")))?;
    Ok(axum::Json(PresetView::from(&preset)))
}

async fn put_one(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    document: Document,
) -> Result<Response, ApiError> {
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "a preset's name (the path's last part) is 1 to 64 lowercase letters, digits and '-'",
        ));
    }
    let issues = {
        let registry = app.manager.registry().read();
        check_preset(
            &document.value,
            &registry.unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    };
    if !issues.is_empty() {
        return Err(ApiError::invalid(issues));
    }
    let record = PresetRecord {
        name,
        config: document.value,
        updated_at: now_ms(),
    };
    let (record, existed) = app
        .with_store(move |store| {
            let existed = store.presets()?.iter().any(|p| p.name == record.name);
            store.put_preset(&record)?;
            Ok((record, existed))
        })
        .await?;
    let note = AuditNote::detail(if existed { "replaced" } else { "created" });
    Ok(note.on(axum::Json(PresetView::from(&record)).into_response()))
}

async fn delete_one(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = {
        let name = name.clone();
        app.with_store(move |store| store.delete_preset(&name))
            .await?
    };
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no preset `{name}`")))
    }
}
