//! /strategies: the registered plugins; upload a new one (validated and
//! compiled before it is accepted); delete one no bot uses.
//!
//! An upload is compiled on a thread of its own within a time budget
//! (`upload_compile_secs`) and with a bounded number of compiles at once
//! (`concurrent_compiles`); it is stored only once it is accepted (kept in
//! the store by its SHA-256, committed before the upload is acknowledged,
//! registered again when the host starts). The compile cache keeps
//! artefacts of registered plugins only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use super::AppState;
use super::auth::Role;
use super::bots::{PAGE_QUERY, PageQuery, page_by_offset};
use super::extract::{ApiPath, ApiQuery};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{Page, StrategyView};
use crate::domain::config::ConfigIssue;
use crate::plugin::Plugin;
use crate::research::optimize::{schema_search, written};
use crate::store::PluginBlob;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get("/strategies", "Registered plugins: name, version, description, parameter schema, content hash, bots using them", Role::Viewer, get(list))
            .query(PAGE_QUERY)
            .returns::<Page<StrategyView>>(),
        Endpoint::get("/strategies/{name}", "The newest version of a plugin", Role::Viewer, get(get_one))
            .returns::<StrategyView>(),
        Endpoint::post("/strategies", "Upload a plugin (.wasm as application/wasm, or multipart with a `file` part): 201, or 200 when the same bytes were already there", Role::Admin, post(upload))
            .wasm_body()
            .idempotent()
            .status(201)
            .returns::<StrategyView>(),
        Endpoint::delete("/strategies/{name}", "Unregister every version of a plugin no bot uses", Role::Admin, delete(remove))
            .status(204),
    ]
}

fn view(app: &AppState, plugin: &Plugin) -> StrategyView {
    let info = plugin.info();
    let search = schema_search(&info.params_schema);
    StrategyView {
        name: info.name.clone(),
        version: info.version.to_string(),
        description: info.description.clone(),
        params_schema: info.params_schema.clone(),
        warmup: info.warmup,
        content_hash: info.content_hash.clone(),
        default_search: written(&search.space),
        search_problems: search.problems.into_iter().collect(),
        bots: app.manager.bots_using(&info.name),
    }
}

async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<StrategyView>>, ApiError> {
    let plugins: Vec<Arc<Plugin>> = app
        .manager
        .registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .list()
        .cloned()
        .collect();
    let views = plugins.iter().map(|p| view(&app, p)).collect();
    Ok(axum::Json(page_by_offset(views, &query)?))
}

async fn get_one(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<axum::Json<StrategyView>, ApiError> {
    let plugin = app
        .manager
        .registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .resolve(&name, None)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(axum::Json(view(&app, &plugin)))
}

/// The plugin bytes of an upload: the raw body, or the `file` part.
async fn upload_bytes(request: Request) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "the plugin is larger than uploads accept",
        )
    };
    if content_type.starts_with("application/wasm")
        || content_type.starts_with("application/octet-stream")
    {
        return Bytes::from_request(request, &())
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            });
    }
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        while let Some(field) = multipart.next_field().await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            _ => ApiError::bad_request(e.body_text()),
        })? {
            if field.name() == Some("file") {
                return field.bytes().await.map_err(|e| match e.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                    _ => ApiError::bad_request(e.body_text()),
                });
            }
        }
        return Err(ApiError::malformed_at(
            "/file",
            "the multipart body has no `file` part",
        ));
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "send the plugin as application/wasm or multipart/form-data",
    ))
}

fn refused(message: String) -> ApiError {
    ApiError::invalid(vec![ConfigIssue {
        pointer: String::new(),
        message,
    }])
}

/// Compile and load `bytes` on a thread of its own, within the budget; a
/// compile that overruns it is abandoned (it finishes in the background,
/// still holding its compile slot, and its artefact is not kept).
async fn compile(app: &AppState, bytes: Bytes) -> Result<Arc<Plugin>, ApiError> {
    let budget = Duration::from_secs(app.settings.limits.upload_compile_secs.max(1));
    let busy = || {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "other uploads are compiling; try again shortly",
        );
        error.retry_after = Some(5);
        error
    };
    let permit = tokio::time::timeout(budget, app.compiles.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let runtime = app.runtime.clone();
    let abandoned = Arc::new(AtomicBool::new(false));
    let (done, outcome) = tokio::sync::oneshot::channel();
    let gave_up = abandoned.clone();
    std::thread::Builder::new()
        .name("stratbox-compile".into())
        .spawn(move || {
            let loaded = runtime.load(&bytes);
            if gave_up.load(Ordering::Acquire) || loaded.is_err() {
                runtime.forget_compiled(&crate::plugin::content_hash(&bytes));
            }
            drop(permit);
            let _ = done.send(loaded);
        })
        .map_err(|error| ApiError::internal(format!("cannot start the compiler: {error}")))?;
    match tokio::time::timeout(budget, outcome).await {
        Ok(Ok(loaded)) => loaded
            .map(Arc::new)
            .map_err(|error| refused(error.to_string())),
        Ok(Err(_)) => Err(ApiError::internal("the plugin compiler stopped")),
        Err(_) => {
            abandoned.store(true, Ordering::Release);
            Err(refused(format!(
                "the plugin took longer than {} s to compile",
                budget.as_secs()
            )))
        }
    }
}

async fn upload(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let bytes = upload_bytes(request).await?;
    let plugin = compile(&app, bytes.clone()).await?;
    let registry = app.manager.registry().clone();
    let conflict = registry
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .conflicts_with(&plugin);
    if let Some(error) = conflict {
        app.runtime.forget_compiled(&plugin.info().content_hash);
        return Err(ApiError::conflict(error.to_string()));
    }
    // Stored before it is registered or acknowledged; only when accepted.
    let info = plugin.info();
    let blob = PluginBlob {
        content_hash: info.content_hash.clone(),
        name: info.name.clone(),
        version: info.version.to_string(),
        bytes: bytes.to_vec(),
        uploaded_at: super::now_ms(),
    };
    app.with_store(move |store| store.put_plugin_blob(&blob))
        .await?;
    let inserted = registry
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(plugin.clone());
    let status = match inserted {
        Ok(true) => StatusCode::CREATED,
        // The same bytes again: nothing changed.
        Ok(false) => StatusCode::OK,
        Err(error) => {
            // Another upload of the same name and version won the race.
            let hash = plugin.info().content_hash.clone();
            let _ = app
                .with_store(move |store| store.delete_plugin_blob(&hash))
                .await;
            return Err(ApiError::conflict(error.to_string()));
        }
    };
    let info = plugin.info();
    let note = AuditNote::made(
        &info.name,
        format!("version {}, sha256 {}", info.version, info.content_hash),
    );
    Ok(note.on((status, axum::Json(view(&app, &plugin))).into_response()))
}

async fn remove(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let users = app.manager.bots_using(&name);
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "plugin `{name}` is used by {}",
            users.join(", ")
        )));
    }
    let removed = app
        .manager
        .registry()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&name);
    if removed.is_empty() {
        return Err(ApiError::not_found(format!("no plugin named `{name}`")));
    }
    // Uploaded versions are forgotten by the store too (plugins of the
    // plugins folder have no blob there and come back on the next start),
    // and their compiled artefacts by the cache.
    for plugin in removed {
        let hash = plugin.info().content_hash.clone();
        app.runtime.forget_compiled(&hash);
        if let Err(error) = app
            .with_store(move |store| store.delete_plugin_blob(&hash))
            .await
        {
            tracing::warn!(%error, plugin = %name, "upload not removed from the store");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
