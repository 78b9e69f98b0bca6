//! /tokens (admin): list, create (the token is shown once) and revoke.
//! The same as `stratbox token create|list|revoke`. And /me: who the caller
//! is and every operation its role allows, read off the route table, so a
//! client shows the controls the server will accept and never guesses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use schemars::JsonSchema;
use serde::Deserialize;

use super::auth::Role;
use super::bots::{PAGE_QUERY, PageQuery, page_by_offset};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{Page, TokenCreated, TokenView};
use super::{AppState, off_the_workers};
use crate::domain::config::ConfigIssue;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(
            "/me",
            "The caller: token id and name, role, and every operation the role allows",
            Role::Viewer,
            get(me),
        )
        .returns::<MeView>(),
        Endpoint::get(
            "/tokens",
            "Every token (never its text)",
            Role::Admin,
            get(list),
        )
        .query(PAGE_QUERY)
        .returns::<Page<TokenView>>(),
        Endpoint::post(
            "/tokens",
            "Create a token; its text is in this answer only",
            Role::Admin,
            post(create),
        )
        .json_body::<NewToken>()
        .status(201)
        .returns::<TokenCreated>(),
        Endpoint::delete(
            "/tokens/{id}",
            "Revoke a token, at once",
            Role::Admin,
            delete(revoke),
        )
        .status(204),
    ]
}

/// Who is calling, and what it may do.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct MeView {
    pub token_id: String,
    pub name: String,
    /// viewer, operator or admin.
    pub role: Role,
    /// Every operation this role may call, as `METHOD /path` of the
    /// OpenAPI document (`POST /api/v1/bots/{id}/start`).
    pub allowed: Vec<String>,
}

/// Each operation of the route table with the role it needs.
fn operations() -> &'static [(Role, String)] {
    static OPERATIONS: std::sync::OnceLock<Vec<(Role, String)>> = std::sync::OnceLock::new();
    OPERATIONS.get_or_init(|| {
        super::endpoints()
            .iter()
            .map(|endpoint| {
                let role = match endpoint.access {
                    super::openapi::Access::Open => Role::Viewer,
                    super::openapi::Access::Role(role)
                    | super::openapi::Access::Handshake(role) => role,
                };
                (
                    role,
                    format!("{} /api/v1{}", endpoint.method, endpoint.path),
                )
            })
            .collect()
    })
}

async fn me(axum::Extension(caller): axum::Extension<super::auth::Caller>) -> axum::Json<MeView> {
    let allowed = operations()
        .iter()
        .filter(|(role, _)| *role <= caller.role)
        .map(|(_, operation)| operation.clone())
        .collect();
    axum::Json(MeView {
        token_id: caller.token_id,
        name: caller.name,
        role: caller.role,
        allowed,
    })
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: Role,
    /// Who or what uses it; shown in the audit log.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
}

async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<TokenView>>, ApiError> {
    let tokens = {
        let app = app.clone();
        off_the_workers(move || app.auth.list()).await?
    };
    let views = tokens.iter().map(TokenView::from).collect();
    Ok(axum::Json(page_by_offset(views, &query)?))
}

async fn create(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<NewToken>,
) -> Result<Response, ApiError> {
    let name = super::auth::token_name(&request.name).map_err(|rule| {
        ApiError::invalid(vec![ConfigIssue {
            pointer: "/name".into(),
            message: rule.into(),
        }])
    })?;
    let (record, token) = {
        let (app, name) = (app.clone(), name.clone());
        off_the_workers(move || app.auth.create(&name, request.role)).await?
    };
    let body = TokenCreated {
        info: TokenView::from(&record),
        token,
    };
    let note = AuditNote::made(&record.id, format!("{name} ({})", record.role.as_str()));
    Ok(note.on((StatusCode::CREATED, axum::Json(body)).into_response()))
}

async fn revoke(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = {
        let (app, id) = (app.clone(), id.clone());
        off_the_workers(move || app.auth.revoke(&id)).await?
    };
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no active token `{id}`")))
    }
}
