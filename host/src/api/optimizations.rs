//! /optimizations: parameter optimisations as jobs (see
//! `research::optimization_job`) on the backtest workers: checked whole
//! before they are queued (each problem at its pointer), progress and
//! completion on the `backtests` channel, the ranked runs (or walk-forward
//! windows) kept as the result, and any ranked set turned into a bot config
//! in one call.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::Role;
use super::backtests::{
    config_of, get_one, job_of_kind, job_request, list, queue, remove, report, result,
    result_of_kind,
};
use super::bots::PAGE_QUERY;
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::openapi::Endpoint;
use super::problem::ApiError;
use super::views::{BacktestView, Page};
use crate::backtest::EndOfRun;
use crate::domain::config::{BotConfig, ConfigIssue, pointer_token};
use crate::domain::patterns::MAX_BOT_ID_CHARS;
use crate::plugin::Plugin;
use crate::research::optimization_job::spec_space;
use crate::research::optimize::{ParamRange, Ranking, SearchSpace, space_issues, written_exactly};
use crate::research::walk_forward::{Scheme, parse_span};
use crate::research::{OptimizationSpec, SamplerSpec, WalkForwardSpec};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(
            "/optimizations",
            "Optimise a bot config's (or a bot's) strategy parameters over a data set, or walk forward: 202 with the queued job",
            Role::Operator,
            post(submit),
        )
        .json_body::<OptimizationRequest>()
        .status(202)
        .returns::<BacktestView>(),
        Endpoint::get(
            "/optimizations",
            "Every optimisation, newest first, with its best set",
            Role::Viewer,
            get(list::<true>),
        )
        .query(PAGE_QUERY)
        .returns::<Page<BacktestView>>(),
        Endpoint::get(
            "/optimizations/{id}",
            "An optimisation: state, progress, what it searches and, once done, its best set",
            Role::Viewer,
            get(get_one::<true>),
        )
        .returns::<BacktestView>(),
        Endpoint::get(
            "/optimizations/{id}/result",
            "A finished optimisation's runs, ranked best first, each with its parameters and metrics (or its walk-forward windows)",
            Role::Viewer,
            get(result::<true>),
        )
        .returns_media("application/json"),
        Endpoint::get(
            "/optimizations/{id}/report",
            "A finished optimisation's report: one self-contained HTML page with the parameter surface and the ranked runs, or the walk-forward windows",
            Role::Viewer,
            get(report::<true>),
        )
        .returns_media("text/html"),
        Endpoint::get(
            "/optimizations/{id}/config",
            "The optimised bot config: the job's config with the parameters of the run ranked `rank` (default 1; of a walk-forward, the last window's best), under an id and name of its own, ready for POST /bots",
            Role::Viewer,
            get(config),
        )
        .query(&[("rank", "the run's rank, 1 for the best (default 1)")])
        .returns::<BotConfig>(),
        Endpoint::delete(
            "/optimizations/{id}",
            "Cancel a queued or running optimisation, or delete a finished one",
            Role::Operator,
            delete(remove::<true>),
        )
        .status(204),
    ]
}

/// An optimisation to run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimizationRequest {
    /// A bot config, as for `POST /bots` (`id` and `name` may be left out).
    pub config: Option<Value>,
    /// Or the id of a bot whose config in force is optimised.
    pub bot_id: Option<String>,
    /// The data set, `SYMBOL/TIMEFRAME`.
    pub data: String,
    /// First candle's open time, inclusive: a string holding an RFC 3339
    /// time, a YYYY-MM-DD date or epoch ms (`"1704067200000"`).
    pub from: Option<String>,
    /// Candles opening before this time (as `from`; a date takes in that
    /// whole day).
    pub to: Option<String>,
    /// Parameter ranges by name: `MIN..MAX[:STEP]` or `A,B,C`. Empty or
    /// left out: the ranges the plugin's schema gives with `x-search`, else
    /// every parameter it bounds or enumerates.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `{"kind": "grid"}` (every combination, the default),
    /// `{"kind": "random", "trials": 100, "seed": 42}`, or
    /// `{"kind": "tpe", "trials": 100, "seed": 42}` (each set drawn by a
    /// model of the runs finished so far).
    pub sampler: Option<SamplerSpec>,
    /// What runs are ranked by: sharpe (default), sortino, calmar,
    /// total-return, profit-factor, max-drawdown, or a weighted mix such as
    /// `sharpe=1,max-drawdown=0.05`.
    pub objective: Option<String>,
    /// Runs with fewer round trips are not ranked (default 1).
    pub min_trades: Option<usize>,
    /// Walk forward instead of one optimisation over the whole range.
    pub walk_forward: Option<WalkForwardRequest>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WalkForwardRequest {
    pub scheme: Scheme,
    /// Training window, e.g. `90d`, `12h`, `4w`.
    pub train: String,
    /// Test window (the step of the walk), e.g. `30d`.
    pub test: String,
}

fn issue(pointer: &str, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// The search a request asks for, with every problem at its pointer; and
/// the ranges that parse, for the checks against the plugin (which can
/// find more problems).
fn spec_of(request: &OptimizationRequest) -> (OptimizationSpec, SearchSpace, Vec<ConfigIssue>) {
    let mut issues = Vec::new();
    let mut parsed = SearchSpace::new();
    for (name, range) in &request.params {
        match ParamRange::parse(range) {
            Ok(range) => {
                parsed.insert(name.clone(), range);
            }
            Err(message) => {
                issues.push(issue(&format!("/params/{}", pointer_token(name)), message));
            }
        }
    }
    let objective = request.objective.clone().unwrap_or_else(|| "sharpe".into());
    if let Err(message) = Ranking::parse(&objective) {
        issues.push(issue("/objective", message));
    }
    let sampler = request.sampler.clone().unwrap_or(SamplerSpec::Grid);
    if let Some(message) = sampler.trials_issue() {
        issues.push(issue("/sampler/trials", message));
    }
    let walk_forward = match &request.walk_forward {
        None => None,
        Some(walk) => {
            let train = parse_span(&walk.train)
                .map_err(|message| issues.push(issue("/walk_forward/train", message)));
            let test = parse_span(&walk.test)
                .map_err(|message| issues.push(issue("/walk_forward/test", message)));
            match (train, test) {
                (Ok(train_ms), Ok(test_ms)) => Some(WalkForwardSpec {
                    scheme: walk.scheme,
                    train_ms,
                    test_ms,
                }),
                _ => None,
            }
        }
    };
    let spec = OptimizationSpec {
        params: request.params.clone(),
        sampler,
        objective,
        min_trades: request.min_trades.unwrap_or(1),
        walk_forward,
    };
    (spec, parsed, issues)
}

async fn submit(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<OptimizationRequest>,
) -> Result<Response, ApiError> {
    // Every check that can run does, and all their problems come in one
    // answer: the search's own, the ranges that parse against the plugin
    // (known parameters, values its schema takes, a grid's size), then the
    // job's.
    let (mut spec, parsed, mut issues) = spec_of(&request);
    let resolved = config_of(&app, &request.config, &request.bot_id);
    if let Ok((config, plugin)) = &resolved {
        let (space, found) = searched(&spec, parsed, plugin, &config.strategy.params).await?;
        issues.extend(found);
        // The job records what it searches: given no ranges, the plugin's
        // default search, written as ranges are given (unless a value of
        // its cannot be: the job then searches the default as it runs).
        if spec.params.is_empty() {
            spec.params = written_exactly(&space).unwrap_or_default();
        }
    }
    let job = job_request(
        resolved,
        &request.data,
        (request.from.as_deref(), request.to.as_deref()),
        EndOfRun::default(),
    )
    .map_err(|found| issues.extend(found));
    match job {
        Ok(mut job) if issues.is_empty() => {
            job.optimization = Some(spec);
            queue(&app, job).await
        }
        _ => Err(ApiError::invalid(issues)),
    }
}

/// What the search covers against `plugin` (the ranges that parsed,
/// `parsed`, or none given, its schema's default search) and what is wrong
/// with it: unknown parameters, values its schema refuses, a grid too large.
async fn searched(
    spec: &OptimizationSpec,
    parsed: SearchSpace,
    plugin: &Arc<Plugin>,
    params: &Value,
) -> Result<(SearchSpace, Vec<ConfigIssue>), ApiError> {
    let space = if spec.params.is_empty() {
        match spec_space(spec, plugin) {
            Ok(space) => space,
            Err(message) => return Ok((SearchSpace::new(), vec![issue("/params", message)])),
        }
    } else {
        parsed
    };
    // Up to every value of every range through the schema: off the API's
    // threads.
    let (plugin, params, ranges) = (plugin.clone(), params.clone(), space.clone());
    let refused = tokio::task::spawn_blocking(move || space_issues(&ranges, &plugin, &params))
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let mut issues: Vec<ConfigIssue> = refused
        .into_iter()
        .map(|(name, message)| issue(&format!("/params/{}", pointer_token(&name)), message))
        .collect();
    if let Some(message) = spec.sampler.space_issue(&space) {
        issues.push(issue("/params", message));
    }
    Ok((space, issues))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RankQuery {
    /// 1 for the best ranked run (the default).
    pub rank: Option<usize>,
}

async fn config(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RankQuery>,
) -> Result<axum::Json<BotConfig>, ApiError> {
    let (record, _) = job_of_kind(&app, &id, true)?;
    let result: Value = serde_json::from_str(&result_of_kind(&app, &id, true)?)
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let rank = query.rank.unwrap_or(1);
    let params = match result.get("windows") {
        Some(windows) => windows
            .as_array()
            .and_then(|w| w.last())
            .map(|last| last["in_sample"]["params"].clone())
            .filter(|params| rank == 1 && params.is_object()),
        None => result["trials"]
            .as_array()
            .map(|trials| {
                trials
                    .iter()
                    .filter(|trial| !trial["score"].is_null())
                    .collect::<Vec<_>>()
            })
            .and_then(|ranked| {
                ranked
                    .get(rank.checked_sub(1)?)
                    .map(|t| t["params"].clone())
            }),
    }
    .ok_or_else(|| {
        ApiError::invalid(vec![issue(
            "/rank",
            format!("optimisation {id} has no ranked run {rank}"),
        )])
    })?;
    let mut config = record.config;
    config.strategy.params = params;
    // A bot of its own: the job's config names the bot it came from.
    let walk_forward = record
        .optimization
        .as_ref()
        .is_some_and(|spec| spec.walk_forward.is_some());
    config.id = optimized_bot_id(&record.plugin_name, &id, rank);
    config.name = if walk_forward {
        format!(
            "{} from walk-forward {id} (the last window's choice)",
            record.plugin_name
        )
    } else {
        format!(
            "{} from optimisation {id} (rank {rank})",
            record.plugin_name
        )
    };
    Ok(axum::Json(config))
}

/// The id a bot made of an optimisation's run takes: the plugin, the job's
/// number (its prefix says nothing a bot needs) and the rank, so the runs
/// of every job make bots of their own. The plugin's name (lowercase
/// letters, digits and '-', up to 64) is cut to keep the id a bot id: at
/// most [`MAX_BOT_ID_CHARS`], starting and ending with a letter or digit.
fn optimized_bot_id(plugin: &str, job_id: &str, rank: usize) -> String {
    let number = job_id.split_once('-').map_or(job_id, |(_, number)| number);
    let tail = format!("-{number}-{rank}");
    let room = MAX_BOT_ID_CHARS.saturating_sub(tail.len());
    let head = plugin.trim_start_matches('-');
    let head = head[..head.len().min(room)].trim_end_matches('-');
    let head = if head.is_empty() { "bot" } else { head };
    format!("{head}{tail}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optimised_bot_id_is_a_bot_id_whatever_the_plugin_is_called() {
        // The bot schema's own id pattern.
        let id_rule = jsonschema::validator_for(&serde_json::json!({
            "pattern": crate::domain::patterns::BOT_ID
        }))
        .unwrap();
        let is_bot_id = |id: &str| id_rule.is_valid(&serde_json::json!(id));
        let job = "opt-1796639490245-0000";
        assert_eq!(
            optimized_bot_id("ema-cross", job, 3),
            "ema-cross-1796639490245-0000-3"
        );
        for plugin in ["ema-cross", "-lead", &"p".repeat(64), &"-".repeat(64), "a-"] {
            let id = optimized_bot_id(plugin, job, 12);
            assert!(is_bot_id(&id), "{plugin}: {id}");
            assert!(id.ends_with("-1796639490245-0000-12"), "{id}");
        }
    }
}
