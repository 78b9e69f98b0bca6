//! `stratbox optimize`: run a bot's strategy over the same candles with
//! many parameter sets, on every core, and rank them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::Value;
use stratbox_host::backtest::BacktestOptions;
use stratbox_host::plugin::PluginRuntime;
use stratbox_host::research::optimize::{
    Objective, ParamRange, SearchSpace, Study, Trial, grid, optimize, random, space_from_schema,
};

use super::backtest::RunInput;

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    input: RunInput,
    /// A parameter to search, NAME=MIN..MAX[:STEP] or NAME=A,B,C (repeat
    /// for several). Without any, every parameter the plugin's schema bounds
    /// (about ten values each) or enumerates.
    #[arg(long = "param", value_name = "NAME=RANGE")]
    params: Vec<String>,
    #[arg(long, value_enum, default_value_t = Sampler::Grid)]
    sampler: Sampler,
    /// Sets drawn by the random sampler.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// Seed of the random sampler: the same seed draws the same sets.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Objective::Sharpe)]
    objective: Objective,
    /// Runs with fewer round trips are not ranked.
    #[arg(long, default_value_t = 1)]
    min_trades: usize,
    /// Backtests run at once (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Ranked sets printed.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Write every run (parameters, score, metrics), ranked, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sampler {
    /// Every combination.
    Grid,
    /// `--trials` sets drawn uniformly (seeded).
    Random,
}

fn space(args: &OptimizeArgs, schema: &Value) -> anyhow::Result<SearchSpace> {
    if args.params.is_empty() {
        let space = space_from_schema(schema);
        if space.is_empty() {
            bail!(
                "the plugin's schema bounds no parameter: give ranges with --param NAME=MIN..MAX:STEP"
            );
        }
        return Ok(space);
    }
    args.params
        .iter()
        .map(|param| {
            let (name, range) = param
                .split_once('=')
                .with_context(|| format!("`{param}` is not NAME=RANGE"))?;
            let range = ParamRange::parse(range).map_err(anyhow::Error::msg)?;
            Ok((name.trim().to_string(), range))
        })
        .collect()
}

pub fn run(args: OptimizeArgs, runtime: PluginRuntime) -> anyhow::Result<()> {
    let (config, plugin) = args.input.bot(&runtime)?;
    let candles = args.input.candles()?;
    let space = space(&args, &plugin.info().params_schema)?;
    let sets = match args.sampler {
        Sampler::Grid => grid(&space),
        Sampler::Random => random(&space, args.trials, args.seed),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions {
            from: args.input.from,
            to: args.input.to,
            ..BacktestOptions::default()
        },
        objective: args.objective,
        min_trades: args.min_trades,
        threads,
    };
    let (done, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    let bar = indicatif::ProgressBar::new(sets.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {per_sec}, about {eta} left",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let trials = std::thread::scope(|scope| {
        let study = &study;
        let running = scope.spawn(|| optimize(study, &sets, &done, &cancel));
        while !running.is_finished() {
            bar.set_position(done.load(Ordering::Relaxed) as u64);
            std::thread::sleep(Duration::from_millis(100));
        }
        running.join().expect("the optimisation finished")
    });
    bar.finish_and_clear();
    let took = started.elapsed();
    print_ranking(&trials, args.top, args.objective);
    eprintln!(
        "{} runs of {} candles on {threads} threads in {:.1} s ({:.0} ms per run)",
        trials.len(),
        candles.len(),
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 * threads as f64 / trials.len().max(1) as f64
    );
    if let Some(path) = &args.json {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &trials)?;
    }
    Ok(())
}

fn print_ranking(trials: &[Trial], top: usize, objective: Objective) {
    let name = serde_json::to_value(objective).unwrap_or_default();
    println!(
        "{:>4}  {:>10}  {:>9}  {:>8}  {:>6}  params",
        "rank",
        name.as_str().unwrap_or_default(),
        "return %",
        "max dd %",
        "trades"
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
            "({unranked} not ranked: {failed} refused or failed, the rest under --min-trades or without a defined {})",
            name.as_str().unwrap_or_default()
        );
    }
}
