//! `stratbox optimize`: run a bot's strategy over the same candles with
//! many parameter sets, on every core, and rank them; or walk forward,
//! optimising on each training window and testing on the next.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;
use stratbox_host::backtest::BacktestOptions;
use stratbox_host::plugin::PluginRuntime;
use stratbox_host::research::optimization_job::search_space;
use stratbox_host::research::optimize::{
    Ranking, SchemaSearch, SearchSpace, Sets, Study, Trial, every_run_failed, optimize,
    space_issues, watched,
};
use stratbox_host::research::walk_forward::{
    Scheme, WindowResult, compounded_return_pct, nothing_ranked, parse_span, walk_forward, windows,
};
use stratbox_host::research::{SamplerSpec, WalkForwardSpec};

use super::backtest::RunInput;

/// `--trials` and `--seed` when not given (the options' help says them
/// too). Options rather than clap defaults: the grid refuses them given.
const DEFAULT_TRIALS: usize = 100;
const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Args)]
// `--min-trades -1` is a value to refuse, not an unknown option.
#[command(allow_negative_numbers = true)]
pub struct OptimizeArgs {
    #[command(flatten)]
    pub input: RunInput,
    /// A parameter to search, NAME=MIN..MAX[:STEP] or NAME=A,B,C (repeat
    /// for several). Without any, the ranges the plugin's schema gives with
    /// `x-search` (`stratbox plugin inspect` shows them), else every
    /// parameter it bounds (about ten values each) or enumerates.
    #[arg(long = "param", value_name = "NAME=RANGE")]
    params: Vec<String>,
    /// How the sets are chosen.
    #[arg(long, value_enum, default_value_t = Sampler::Grid)]
    sampler: Sampler,
    /// Sets drawn by the random (at most 100,000) and the model-based
    /// sampler (at most 2,000) [default: 100].
    #[arg(long, value_name = "N")]
    trials: Option<usize>,
    /// Seed of the random and the model-based sampler: the same seed draws
    /// the same sets (the model-based one only on one thread) [default: 42].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// What runs are ranked by: sharpe, sortino, calmar, total-return,
    /// profit-factor or max-drawdown, or a weighted mix such as
    /// `sharpe=1,max-drawdown=0.05`.
    #[arg(long, default_value = "sharpe", value_parser = Ranking::parse)]
    objective: Ranking,
    /// Runs with fewer round trips are not ranked.
    #[arg(long, default_value_t = 1)]
    min_trades: usize,
    /// Backtests run at once (default: one per core).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    threads: Option<usize>,
    /// Ranked sets printed (at least 1).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    top: u16,
    /// Write every run (parameters, score, metrics), ranked, as JSON (with
    /// --walk-forward: every window).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Walk forward instead: optimise on each training window (`--train`)
    /// and run the best set on the test window after it (`--test`).
    #[arg(long, value_enum, requires_all = ["train", "test"])]
    walk_forward: Option<Scheme>,
    /// Training window (with --walk-forward): a length such as 90d, 12h or
    /// 4w (m is minutes).
    #[arg(long, value_parser = parse_span, requires = "walk_forward")]
    train: Option<i64>,
    /// Test window, the step of the walk (with --walk-forward): a length
    /// such as 30d.
    #[arg(long, value_parser = parse_span, requires = "walk_forward")]
    test: Option<i64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sampler {
    /// Every combination.
    Grid,
    /// `--trials` distinct sets drawn uniformly (seeded; at most the
    /// whole space).
    Random,
    /// `--trials` sets, each drawn by a model of the runs finished so far
    /// (TPE); workers never wait for each other.
    Tpe,
}

/// The sampler the options ask for, checked before anything is loaded.
fn sampler(args: &OptimizeArgs) -> anyhow::Result<SamplerSpec> {
    let trials = args.trials.unwrap_or(DEFAULT_TRIALS);
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    let sampler = match args.sampler {
        Sampler::Grid if args.trials.is_some() || args.seed.is_some() => {
            bail!(
                "--trials and --seed are for --sampler random or tpe: the grid runs every combination"
            )
        }
        Sampler::Grid => SamplerSpec::Grid,
        Sampler::Random => SamplerSpec::Random { trials, seed },
        Sampler::Tpe => SamplerSpec::Tpe { trials, seed },
    };
    if let Some(message) = sampler.trials_issue() {
        bail!("--trials: {message}");
    }
    Ok(sampler)
}

/// The `--param` ranges, or none given, the plugin's default search (a
/// problem with one of its `x-search` keywords is a warning: that
/// parameter's bounds are searched).
fn space(args: &OptimizeArgs, schema: &Value) -> anyhow::Result<SearchSpace> {
    let mut given = std::collections::BTreeMap::new();
    for param in &args.params {
        let (name, range) = param
            .split_once('=')
            .with_context(|| format!("`{param}` is not NAME=RANGE"))?;
        if given
            .insert(name.trim().to_string(), range.to_string())
            .is_some()
        {
            bail!("--param {}: given twice", name.trim());
        }
    }
    let search = search_space(&given, schema, "ranges with --param NAME=MIN..MAX:STEP")
        .map_err(anyhow::Error::msg)?;
    warn_of_search_problems(&search);
    Ok(search.space)
}

/// Warn of a plugin's broken `x-search` keywords (the search goes on, over
/// those parameters' bounds).
pub(super) fn warn_of_search_problems(search: &SchemaSearch) {
    for (name, problem) in &search.problems {
        eprintln!("warning: parameter `{name}`: {problem}; its bounds are searched instead");
    }
}

pub fn run(args: OptimizeArgs, runtime: PluginRuntime) -> anyhow::Result<()> {
    let sampler = sampler(&args)?;
    let walk = match (args.walk_forward, args.train, args.test) {
        (Some(scheme), Some(train_ms), Some(test_ms)) => Some(WalkForwardSpec {
            scheme,
            train_ms,
            test_ms,
        }),
        _ => None,
    };
    let (config, plugin) = args.input.bot(&runtime, walk.as_ref())?;
    // Many runs over the same candles: worth having them in memory.
    let candles = args.input.candles()?.to_vec();
    let space = space(&args, &plugin.info().params_schema)?;
    if let Some(message) = sampler.space_issue(&space) {
        bail!("{message}");
    }
    let refused = space_issues(&space, &plugin, &config.strategy.params);
    if !refused.is_empty() {
        let lines: Vec<String> = refused
            .iter()
            .map(|(name, message)| format!("--param {name}: {message}"))
            .collect();
        bail!("{}", lines.join("; "));
    }
    let sets = Sets::of(&sampler, &space);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions {
            from: args.input.from,
            to: args.input.to,
            ..BacktestOptions::default()
        },
        ranking: args.objective.clone(),
        min_trades: args.min_trades,
        threads,
    };
    if let Some(WalkForwardSpec {
        scheme,
        train_ms: train,
        test_ms: test,
    }) = walk
    {
        let (Some(first), Some(last)) = (candles.first(), candles.last()) else {
            bail!("no candles to walk through");
        };
        let step = config
            .market
            .timeframe
            .parse::<stratbox_host::domain::Timeframe>()
            .map_or(60_000, |t| t.millis());
        let from = args.input.from.unwrap_or(first.ts).max(first.ts);
        let to = args.input.to.unwrap_or(last.ts + step).min(last.ts + step);
        let plan = windows(scheme, from, to, train, test);
        if plan.is_empty() {
            bail!("the candles do not hold one training window and one test window");
        }
        let study = Study {
            options: BacktestOptions::default(),
            ..study
        };
        let total = plan.len() * sets.len();
        let results = with_progress(total, |done, cancel| {
            walk_forward(&study, &sets, &plan, done, cancel)
        });
        print_walk(&results, &args.objective);
        if let Some(path) = &args.json {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            serde_json::to_writer_pretty(std::io::BufWriter::new(file), &results)?;
        }
        if let Some(why) = nothing_ranked(&results) {
            bail!("{why}");
        }
        return Ok(());
    }
    let started = Instant::now();
    let trials = with_progress(sets.len(), |done, cancel| {
        optimize(&study, &sets, done, cancel)
    });
    let took = started.elapsed();
    if let Some(error) = every_run_failed(&trials) {
        bail!("every run failed, the first with: {error}");
    }
    print_ranking(&trials, usize::from(args.top), &args.objective);
    let in_range = study.options.window(&candles).len();
    // Runs share the threads: each took about the time over the runs one
    // thread made.
    let (runs, busy) = (trials.len().max(1), threads.min(trials.len()).max(1));
    eprintln!(
        "{} {} of {in_range} candles on {busy} {} in {:.1} s ({:.0} ms per run)",
        trials.len(),
        if trials.len() == 1 { "run" } else { "runs" },
        if busy == 1 { "thread" } else { "threads" },
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 * busy as f64 / runs as f64
    );
    if let Some(path) = &args.json {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &trials)?;
    }
    Ok(())
}

/// Run `work` with a progress bar (on a terminal) over `total` runs.
fn with_progress<T: Send>(
    total: usize,
    work: impl FnOnce(&AtomicUsize, &AtomicBool) -> T + Send,
) -> T {
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {per_sec}, about {eta} left",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let result = watched(work, |done| {
        bar.set_position(done as u64);
        false
    });
    bar.finish_and_clear();
    result
}

/// Each window: its ranges, the best set in sample, and how it did out of
/// sample.
fn print_walk(results: &[WindowResult], ranking: &Ranking) {
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let score = |trial: &Option<Trial>| {
        trial
            .as_ref()
            .and_then(|t| t.score)
            .map_or("n/a".into(), |s| format!("{s:.4}"))
    };
    let returns = |trial: &Option<Trial>| {
        trial
            .as_ref()
            .and_then(|t| t.metrics.as_ref())
            .map_or("n/a".into(), |m| format!("{:.2}", m.total_return_pct))
    };
    println!(
        "{:>3}  {:<16}  {:<16}  {:<16}  {:>10}  {:>10}  {:>9}  {:>9}  best params",
        "win", "train from", "test from", "test to", "in-sample", "out", "in ret %", "out ret %"
    );
    for (index, result) in results.iter().enumerate() {
        let params = result
            .in_sample
            .as_ref()
            .map_or("(no set ranked)".into(), |t| t.params.to_string());
        println!(
            "{:>3}  {:<16}  {:<16}  {:<16}  {:>10}  {:>10}  {:>9}  {:>9}  {params}",
            index + 1,
            date(result.window.train_from),
            date(result.window.test_from),
            date(result.window.test_to),
            score(&result.in_sample),
            score(&result.out_of_sample),
            returns(&result.in_sample),
            returns(&result.out_of_sample),
        );
    }
    let out: Vec<f64> = results
        .iter()
        .filter_map(|r| r.out_of_sample.as_ref()?.metrics.as_ref())
        .map(|m| m.total_return_pct)
        .collect();
    // No out-of-sample run at all is not a return of 0.
    let compounded = if out.is_empty() {
        "none (no test window has a run)".to_string()
    } else {
        format!("{:.2}%", compounded_return_pct(out))
    };
    println!(
        "{} windows, ranked by {}; out of sample compounded: {compounded}",
        results.len(),
        ranking.name(),
    );
}

fn print_ranking(trials: &[Trial], top: usize, ranking: &Ranking) {
    let name = ranking.name();
    println!(
        "{:>4}  {:>10}  {:>9}  {:>8}  {:>6}  params",
        "rank", name, "return %", "max dd %", "trades"
    );
    for (rank, trial) in trials
        .iter()
        .filter(|t| t.score.is_some())
        .take(top)
        .enumerate()
    {
        let metrics = trial.metrics.as_ref().expect("a ranked run has metrics");
        println!(
            "{:>4}  {:>10.4}  {:>9.2}  {:>8.2}  {:>6}  {}",
            rank + 1,
            trial.score.unwrap_or_default(),
            metrics.total_return_pct,
            metrics.max_drawdown_pct,
            metrics.trades,
            trial.params
        );
    }
    let unranked = trials.iter().filter(|t| t.score.is_none()).count();
    if unranked > 0 {
        let failed = trials.iter().filter(|t| t.error.is_some()).count();
        println!(
            "({unranked} not ranked: {failed} refused or failed, the rest under --min-trades or without a defined {name})"
        );
    }
}
