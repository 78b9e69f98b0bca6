//! /backtests: backtest jobs (see `research::jobs`). A job backtests a bot
//! config (given, or a running bot's) over a stored data set; it is checked
//! whole before it is queued (202), runs on the backtest workers, reports
//! its progress, can be cancelled, and keeps its full result.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::Role;
use super::extract::{ApiPath, JsonBody};
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::system::rfc3339;
use super::views::{BacktestView, Page};
use crate::backtest::EndOfRun;
use crate::data::DataSetKey;
use crate::domain::config::{BotConfig, ConfigIssue};
use crate::research::{JobError, JobRequest};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(
            "/backtests",
            "Backtest a bot config (or a bot's) over a data set: 202 with the queued job",
            Role::Operator,
            post(submit),
        )
        .json_body::<BacktestRequest>()
        .status(202)
        .returns::<BacktestView>(),
        Endpoint::get(
            "/backtests",
            "Every backtest job, newest first, with its headline figures",
            Role::Viewer,
            get(list),
        )
        .returns::<Page<BacktestView>>(),
        Endpoint::get(
            "/backtests/{id}",
            "A backtest job: state, progress and what it was made from",
            Role::Viewer,
            get(get_one),
        )
        .returns::<BacktestView>(),
        Endpoint::get(
            "/backtests/{id}/result",
            "A finished job's full result, as `stratbox backtest --json` writes it",
            Role::Viewer,
            get(result),
        )
        .returns_media("application/json"),
        Endpoint::get(
            "/backtests/{id}/report",
            "A finished job's report: one self-contained HTML page (metrics, equity, drawdowns, monthly returns, trades, candles with fills)",
            Role::Viewer,
            get(report),
        )
        .returns_media("text/html"),
        Endpoint::delete(
            "/backtests/{id}",
            "Cancel a queued or running job, or delete a finished one",
            Role::Operator,
            delete(remove),
        )
        .status(204),
    ]
}

/// A backtest to run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// A bot config, as for `POST /bots` (`id` and `name` may be left out).
    pub config: Option<Value>,
    /// Or the id of a bot whose config in force is backtested.
    pub bot_id: Option<String>,
    /// The data set, `SYMBOL/TIMEFRAME`.
    pub data: String,
    /// First candle's open time (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Candles opening before this time (RFC 3339).
    pub to: Option<String>,
    /// What to do with a position open at the end.
    #[serde(default)]
    pub end_of_run: EndOfRun,
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::NotFound(_) => ApiError::not_found(error.to_string()),
            JobError::DataSet(inner) => inner.into(),
            JobError::Io(_) => ApiError::internal(error.to_string()),
        }
    }
}

/// Issues of a nested document, with pointers from the request's root.
fn under(prefix: &str, issues: Vec<ConfigIssue>) -> ApiError {
    ApiError::invalid(
        issues
            .into_iter()
            .map(|issue| ConfigIssue {
                pointer: format!("{prefix}{}", issue.pointer),
                message: issue.message,
            })
            .collect(),
    )
}

/// The config a request backtests: the one it gives, or a bot's.
fn config_of(app: &AppState, request: &BacktestRequest) -> Result<BotConfig, ApiError> {
    match (&request.config, &request.bot_id) {
        (Some(document), None) => {
            let mut document = document.clone();
            if let Some(object) = document.as_object_mut() {
                object.entry("id").or_insert_with(|| "backtest".into());
                object.entry("name").or_insert_with(|| "backtest".into());
            }
            BotConfig::from_value(document).map_err(|issues| under("/config", issues))
        }
        (None, Some(id)) => app
            .manager
            .get(id)
            .and_then(|snapshot| snapshot.config.as_deref().cloned())
            .ok_or_else(|| {
                ApiError::invalid(vec![ConfigIssue {
                    pointer: "/bot_id".into(),
                    message: format!("no bot `{id}`"),
                }])
            }),
        _ => Err(ApiError::invalid(vec![ConfigIssue {
            pointer: String::new(),
            message: "give either `config` or `bot_id`".into(),
        }])),
    }
}

async fn submit(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<BacktestRequest>,
) -> Result<Response, ApiError> {
    let config = config_of(&app, &request)?;
    let plugin = app
        .manager
        .registry()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .resolve_for(&config)
        .map_err(|issue| under("/config", vec![issue]))?;
    let params = plugin.validate_params(&config.strategy.params);
    if !params.is_empty() {
        return Err(under("/config/strategy/params", params));
    }
    let data = DataSetKey::parse(&request.data).map_err(|error| {
        ApiError::invalid(vec![ConfigIssue {
            pointer: "/data".into(),
            message: error.to_string(),
        }])
    })?;
    let job = JobRequest {
        config,
        plugin,
        data,
        from: rfc3339("from", request.from.as_deref())?,
        to: rfc3339("to", request.to.as_deref())?,
        end_of_run: request.end_of_run,
    };
    let jobs = app.backtests.clone();
    let record = tokio::task::spawn_blocking(move || jobs.submit(job))
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?
        .map_err(|error| match error {
            JobError::DataSet(crate::data::DataSetError::NotFound(key)) => {
                ApiError::invalid(vec![ConfigIssue {
                    pointer: "/data".into(),
                    message: format!("no data set {key}"),
                }])
            }
            other => other.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BacktestView::of(&record, 0.0)),
    )
        .into_response())
}

async fn list(State(app): State<AppState>) -> Result<axum::Json<Page<BacktestView>>, ApiError> {
    let jobs = app.backtests.clone();
    let records = tokio::task::spawn_blocking(move || jobs.list())
        .await
        .map_err(|error| ApiError::internal(error.to_string()))??;
    Ok(axum::Json(Page {
        items: records
            .iter()
            .map(|(r, p)| BacktestView::of(r, *p))
            .collect(),
        next_cursor: None,
    }))
}

async fn get_one(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<BacktestView>, ApiError> {
    let (record, progress) = app.backtests.get(&id)?;
    Ok(axum::Json(BacktestView::of(&record, progress)))
}

async fn result(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(text) = app.backtests.result(&id)? else {
        return Err(not_finished(&app, &id)?);
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Why a job has no result or report to show.
fn not_finished(app: &AppState, id: &str) -> Result<ApiError, ApiError> {
    let (record, _) = app.backtests.get(id)?;
    Ok(ApiError::conflict(format!(
        "backtest {id} has no result: it is {}",
        serde_json::to_value(record.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    )))
}

async fn report(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(html) = app.backtests.report(&id)? else {
        return Err(not_finished(&app, &id)?);
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page needs nothing but its own inline styles.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}

async fn remove(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.backtests.cancel_or_delete(&id)?;
    Ok(StatusCode::NO_CONTENT)
}
