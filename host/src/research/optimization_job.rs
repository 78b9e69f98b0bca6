//! An optimisation run as a job: its parameter sets on every core (threads
//! spawned from the job's worker, so at its idle priority), progress as
//! runs finish, cancellation between runs, and the result kept as JSON:
//! the ranked runs, or the walk-forward windows.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::jobs::{Headline, JobRecord, OptimizationSpec};
use super::optimize::{
    ParamRange, Ranking, SchemaSearch, SearchSpace, Sets, Study, Trial, every_run_failed, optimize,
    schema_search, watched,
};
use super::walk_forward::{
    WindowResult, compounded_return_pct, nothing_ranked, walk_forward, windows,
};
use crate::backtest::{BacktestError, BacktestOptions, Progress};
use crate::domain::Candle;
use crate::engine::metrics::Metrics;
use crate::plugin::Plugin;

/// The most parameter sets one optimisation may run.
pub const MAX_SETS: usize = 100_000;

/// What a search covers: the ranges `given` by name, or with none given,
/// the default search of the plugin's `schema` (with the problems of its
/// `x-search` keywords); `how` says how to give ranges when it has none.
pub fn search_space(
    given: &BTreeMap<String, String>,
    schema: &Value,
    how: &str,
) -> Result<SchemaSearch, String> {
    if given.is_empty() {
        let search = schema_search(schema);
        if search.space.is_empty() {
            return Err(format!(
                "the plugin's schema gives no default search (no `x-search` range, bound or enum): give {how}"
            ));
        }
        return Ok(search);
    }
    let space = given
        .iter()
        .map(|(name, range)| Ok((name.clone(), ParamRange::parse(range)?)))
        .collect::<Result<SearchSpace, String>>()?;
    Ok(SchemaSearch {
        space,
        problems: Vec::new(),
    })
}

/// What `spec` searches over for `plugin`.
pub fn spec_space(spec: &OptimizationSpec, plugin: &Plugin) -> Result<SearchSpace, String> {
    search_space(
        &spec.params,
        &plugin.info().params_schema,
        "`params` ranges",
    )
    .map(|search| search.space)
}

/// Run `spec` for `record` over `candles`; the result and its headline.
pub fn run(
    record: &JobRecord,
    spec: &OptimizationSpec,
    plugin: &Plugin,
    candles: &[Candle],
    options: BacktestOptions,
    progress: &Progress,
) -> Result<(Value, Headline), BacktestError> {
    let space = spec_space(spec, plugin).map_err(BacktestError::Data)?;
    let ranking = Ranking::parse(&spec.objective).map_err(BacktestError::Data)?;
    let sets = Sets::of(&spec.sampler, &space);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let in_range = &candles[options.window(candles)];
    if in_range.is_empty() {
        let held = candles
            .first()
            .zip(candles.last())
            .map(|(a, b)| (a.ts, b.ts));
        return Err(BacktestError::NoCandles { held });
    }
    let study = Study {
        config: &record.config,
        plugin,
        candles: in_range,
        options: BacktestOptions {
            end_of_run: options.end_of_run,
            ..BacktestOptions::default()
        },
        ranking: ranking.clone(),
        min_trades: spec.min_trades,
        threads,
    };
    let plan = spec.walk_forward.as_ref().map(|walk| {
        let step = in_range
            .windows(2)
            .map(|pair| pair[1].ts - pair[0].ts)
            .min()
            .unwrap_or(60_000);
        let (first, last) = (in_range[0].ts, in_range[in_range.len() - 1].ts);
        windows(walk.scheme, first, last + step, walk.train_ms, walk.test_ms)
    });
    if plan.as_ref().is_some_and(Vec::is_empty) {
        return Err(BacktestError::Data(
            "the candles do not hold one training window and one test window".into(),
        ));
    }
    let total = sets.len() * plan.as_ref().map_or(1, Vec::len);
    let result = watched(
        |done, cancel| match &plan {
            Some(plan) => Err(walk_forward(&study, &sets, plan, done, cancel)),
            None => Ok(optimize(&study, &sets, done, cancel)),
        },
        |done| {
            progress.set(done as u64, total as u64);
            progress.is_cancelled()
        },
    );
    if progress.is_cancelled() {
        return Err(BacktestError::Cancelled);
    }
    let name = ranking.name();
    // (A walk-forward window keeps only its best run: its failures show as
    // windows without one.)
    let failed = match &result {
        Ok(trials) => every_run_failed(trials)
            .map(|error| format!("every run failed, the first with: {error}")),
        Err(windows) => nothing_ranked(windows),
    };
    if let Some(why) = failed {
        return Err(BacktestError::Data(why));
    }
    Ok(match result {
        Ok(trials) => {
            let headline = headline(trials.first(), in_range.len());
            (
                json!({ "ranking": name, "sets": sets.len(), "trials": trials }),
                headline,
            )
        }
        Err(windows) => {
            let headline = walk_headline(&windows, in_range.len());
            (
                json!({ "ranking": name, "sets": sets.len(), "windows": windows }),
                headline,
            )
        }
    })
}

/// The headline of a walk-forward: what its out-of-sample runs made, one
/// after the other (their returns compounded, the deepest drawdown of one,
/// their trades; no Sharpe ratio spans them), and the set the last
/// training window chose, the one to trade next.
fn walk_headline(windows: &[WindowResult], candles: usize) -> Headline {
    let outside: Vec<&Metrics> = windows
        .iter()
        .filter_map(|window| window.out_of_sample.as_ref()?.metrics.as_ref())
        .collect();
    let chosen = windows
        .last()
        .and_then(|window| window.in_sample.as_ref())
        .filter(|trial| trial.score.is_some());
    Headline {
        candles,
        total_return_pct: compounded_return_pct(outside.iter().map(|m| m.total_return_pct)),
        sharpe: None,
        max_drawdown_pct: outside
            .iter()
            .map(|m| m.max_drawdown_pct)
            .fold(0.0, f64::max),
        trades: outside.iter().map(|m| m.trades).sum(),
        best_params: chosen.map(|trial| trial.params.clone()),
        best_score: chosen.and_then(|trial| trial.score),
        ran: None,
    }
}

/// The headline of an optimisation: its best ranked run.
fn headline(best: Option<&Trial>, candles: usize) -> Headline {
    let best = best.filter(|trial| trial.score.is_some());
    let metrics = best.and_then(|trial| trial.metrics.as_ref());
    Headline {
        candles,
        total_return_pct: metrics.map_or(0.0, |m| m.total_return_pct),
        sharpe: metrics.and_then(|m| m.sharpe),
        max_drawdown_pct: metrics.map_or(0.0, |m| m.max_drawdown_pct),
        trades: metrics.map_or(0, |m| m.trades),
        best_params: best.map(|trial| trial.params.clone()),
        best_score: best.and_then(|trial| trial.score),
        ran: None,
    }
}
