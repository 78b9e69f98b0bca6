//! /backtests: backtest jobs (see `research::jobs`). A job backtests a bot
//! config (given, or a running bot's) over a stored data set; it is checked
//! whole before it is queued (202), runs on the backtest workers, reports
//! its progress, can be cancelled, and keeps its full result.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::Role;
use super::bots::{PAGE_QUERY, PageQuery, page_by_offset};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::middleware::AuditNote;
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{BacktestView, Page};
use crate::backtest::EndOfRun;
use crate::data::DataSetKey;
use crate::domain::config::{BotConfig, ConfigIssue, nested_issues};
use crate::domain::{parse_instant, parse_until};
use crate::plugin::Plugin;
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
            get(list::<false>),
        )
        .query(PAGE_QUERY)
        .returns::<Page<BacktestView>>(),
        Endpoint::get(
            "/backtests/{id}",
            "A backtest job: state, progress and what it was made from",
            Role::Viewer,
            get(get_one::<false>),
        )
        .returns::<BacktestView>(),
        Endpoint::get(
            "/backtests/{id}/result",
            "A finished job's full result, as `stratbox backtest --json` writes it",
            Role::Viewer,
            get(result::<false>),
        )
        .returns_media("application/json"),
        Endpoint::get(
            "/backtests/{id}/report",
            "A finished job's report: one self-contained HTML page (metrics, equity, drawdowns, monthly returns, trades, candles with fills)",
            Role::Viewer,
            get(report::<false>),
        )
        .returns_media("text/html"),
        Endpoint::delete(
            "/backtests/{id}",
            "Cancel a queued or running job, or delete a finished one",
            Role::Operator,
            delete(remove::<false>),
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
    /// First candle's open time, inclusive: a string holding an RFC 3339
    /// time, a YYYY-MM-DD date or epoch ms (`"1704067200000"`).
    pub from: Option<String>,
    /// Candles opening before this time (as `from`; a date takes in that
    /// whole day).
    pub to: Option<String>,
    /// What to do with a position open at the end.
    #[serde(default)]
    pub end_of_run: EndOfRun,
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        match error {
            JobError::NotFound(_) => ApiError::not_found(error.to_string()),
            JobError::Unfit(issues) => ApiError::invalid(issues),
            JobError::DataSet(inner) => inner.into(),
            JobError::Io(_) => ApiError::internal(error.to_string()),
        }
    }
}

/// The config a request backtests (the one it gives, checked with its
/// plugin's parameters, or a bot's) and its plugin; every problem found.
pub(super) fn config_of(
    app: &AppState,
    config: &Option<Value>,
    bot_id: &Option<String>,
) -> Result<(BotConfig, Arc<Plugin>), Vec<ConfigIssue>> {
    let registry = app.manager.registry();
    let registry = registry
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = match (config, bot_id) {
        (Some(document), None) => {
            let mut document = document.clone();
            if let Some(object) = document.as_object_mut() {
                object.entry("id").or_insert_with(|| "backtest".into());
                object.entry("name").or_insert_with(|| "backtest".into());
            }
            let config =
                BotConfig::parse(&document).map_err(|issues| nested_issues("/config", issues))?;
            let issues = registry.every_issue(&config, config.check_document(&document));
            if !issues.is_empty() {
                return Err(nested_issues("/config", issues));
            }
            config
        }
        (None, Some(id)) => app
            .manager
            .get(id)
            .and_then(|snapshot| snapshot.config.as_deref().cloned())
            .ok_or_else(|| {
                vec![ConfigIssue {
                    pointer: "/bot_id".into(),
                    message: format!("no bot `{id}`"),
                }]
            })?,
        (Some(_), Some(_)) => {
            return Err(vec![ConfigIssue {
                pointer: "/bot_id".into(),
                message: "give `config` or `bot_id`, not both".into(),
            }]);
        }
        (None, None) => {
            return Err(vec![ConfigIssue {
                pointer: String::new(),
                message: "give `config` or `bot_id`".into(),
            }]);
        }
    };
    let plugin = registry
        .resolve_for(&config)
        .map_err(|issue| nested_issues("/config", vec![issue]))?;
    Ok((config, plugin))
}

/// What every job needs: the config (given or a bot's) and its plugin with
/// the parameters checked ([`config_of`]'s outcome), the data set and the
/// range; every problem at its pointer, together.
pub(super) fn job_request(
    resolved: Result<(BotConfig, Arc<Plugin>), Vec<ConfigIssue>>,
    data: &str,
    (from, to): (Option<&str>, Option<&str>),
    end_of_run: EndOfRun,
) -> Result<JobRequest, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let config = resolved.map_err(|found| issues.extend(found));
    let mut issue = |pointer: &str, message: String| {
        issues.push(ConfigIssue {
            pointer: pointer.into(),
            message,
        })
    };
    let data = DataSetKey::parse(data).map_err(|error| issue("/data", error.to_string()));
    // The range leaves `to` out; a date there takes in that whole day.
    let mut time = |pointer: &str, text: Option<&str>, parse: fn(&str) -> Result<i64, String>| {
        text.and_then(|text| parse(text).map_err(|m| issue(pointer, m)).ok())
    };
    let (from, to) = (
        time("/from", from, parse_instant),
        time("/to", to, parse_until),
    );
    match (config, data) {
        (Ok((config, plugin)), Ok(data)) if issues.is_empty() => Ok(JobRequest {
            config,
            plugin,
            data,
            from,
            to,
            end_of_run,
            optimization: None,
        }),
        _ => Err(issues),
    }
}

/// Queue `job` (202 with its view).
pub(super) async fn queue(app: &AppState, job: JobRequest) -> Result<Response, ApiError> {
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
    let note = AuditNote::made(&record.id, format!("queued on {}", record.data));
    Ok(note.on((
        StatusCode::ACCEPTED,
        axum::Json(BacktestView::of(&record, 0.0)),
    )
        .into_response()))
}

async fn submit(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<BacktestRequest>,
) -> Result<Response, ApiError> {
    let job = job_request(
        config_of(&app, &request.config, &request.bot_id),
        &request.data,
        (request.from.as_deref(), request.to.as_deref()),
        request.end_of_run,
    )
    .map_err(ApiError::invalid)?;
    queue(&app, job).await
}

/// The jobs of one kind (optimisations or not), newest first, a page.
async fn list_kind(
    app: &AppState,
    optimizations: bool,
    query: &PageQuery,
) -> Result<axum::Json<Page<BacktestView>>, ApiError> {
    query.limit()?;
    let jobs = app.backtests.clone();
    let records = tokio::task::spawn_blocking(move || jobs.list())
        .await
        .map_err(|error| ApiError::internal(error.to_string()))??;
    let views: Vec<BacktestView> = records
        .iter()
        .filter(|(record, _)| record.optimization.is_some() == optimizations)
        .map(|(record, progress)| BacktestView::of(record, *progress))
        .collect();
    Ok(axum::Json(page_by_offset(views, query)?))
}

/// A job of one kind and its progress; any other id is not found.
pub(super) fn job_of_kind(
    app: &AppState,
    id: &str,
    optimization: bool,
) -> Result<(crate::research::JobRecord, f64), ApiError> {
    let kind = if optimization {
        "optimization"
    } else {
        "backtest"
    };
    match app.backtests.get(id) {
        Ok(found) if found.0.optimization.is_some() == optimization => Ok(found),
        Ok(_) | Err(JobError::NotFound(_)) => Err(ApiError::not_found(format!("no {kind} {id}"))),
        Err(error) => Err(error.into()),
    }
}

/// A finished job's result text, or why there is none.
pub(super) fn result_of_kind(
    app: &AppState,
    id: &str,
    optimization: bool,
) -> Result<String, ApiError> {
    let (record, _) = job_of_kind(app, id, optimization)?;
    app.backtests
        .result(id)?
        .ok_or_else(|| not_finished(&record, "result"))
}

/// 409: a job has no `what` (result, report) yet, and why.
fn not_finished(record: &crate::research::JobRecord, what: &str) -> ApiError {
    let state = serde_json::to_value(record.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    ApiError::conflict(format!("{} has no {what}: it is {state}", record.id))
}

/// Cancel or delete a job of one kind.
fn remove_of_kind(app: &AppState, id: &str, optimization: bool) -> Result<(), ApiError> {
    job_of_kind(app, id, optimization)?;
    Ok(app.backtests.cancel_or_delete(id)?)
}

// The handlers of both job resources: `OPTIMIZATIONS` picks /optimizations
// (true) or /backtests (false).

pub(super) async fn list<const OPTIMIZATIONS: bool>(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<BacktestView>>, ApiError> {
    list_kind(&app, OPTIMIZATIONS, &query).await
}

pub(super) async fn get_one<const OPTIMIZATIONS: bool>(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<BacktestView>, ApiError> {
    let (record, progress) = job_of_kind(&app, &id, OPTIMIZATIONS)?;
    Ok(axum::Json(BacktestView::of(&record, progress)))
}

pub(super) async fn result<const OPTIMIZATIONS: bool>(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let text = result_of_kind(&app, &id, OPTIMIZATIONS)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

pub(super) async fn report<const OPTIMIZATIONS: bool>(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    report_of_kind(&app, &id, OPTIMIZATIONS)
}

pub(super) async fn remove<const OPTIMIZATIONS: bool>(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    remove_of_kind(&app, &id, OPTIMIZATIONS)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A finished job's HTML report, allowed nothing but its inline styles.
fn report_of_kind(app: &AppState, id: &str, optimization: bool) -> Result<Response, ApiError> {
    let (record, _) = job_of_kind(app, id, optimization)?;
    let Some(html) = app.backtests.report(id)? else {
        return Err(not_finished(&record, "report"));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page needs nothing but its own inline styles.
            (
                header::CONTENT_SECURITY_POLICY,
                crate::research::report::REPORT_POLICY,
            ),
        ],
        html,
    )
        .into_response())
}
