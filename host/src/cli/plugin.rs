//! `stratbox plugin ...`: inspect a plugin and dry-run it on candles.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use stratbox_host::data::{check_series, closest_step, read_candles};
use stratbox_host::domain::{Timeframe, format_instant};
use stratbox_host::plugin::contract::{self, Action, Market, PluginView};
use stratbox_host::plugin::{PluginLimits, PluginRuntime};
use stratbox_host::research::optimize::{schema_search, written};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print a plugin's description as JSON, with the ranges an
    /// optimisation searches when given none (`default_search`).
    Inspect {
        /// The plugin (.wasm).
        file: PathBuf,
    },
    /// Feed every candle to a plugin with a flat position and print each
    /// non-empty decision as a JSON line, then a summary line.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin (.wasm).
    file: PathBuf,
    /// Candle CSV (ts,open,high,low,close,volume or Binance klines).
    #[arg(long)]
    candles: PathBuf,
    /// Strategy parameters: a JSON or YAML file, or inline JSON
    /// (`'{"fast": 5}'`). Defaults apply when omitted.
    #[arg(long, value_name = "FILE|JSON")]
    params: Option<String>,
    /// Symbol the strategy is told it trades.
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// Candle timeframe; when omitted, the time between the two closest
    /// candles. Every candle must open a whole number of them after the one
    /// before.
    #[arg(long)]
    timeframe: Option<Timeframe>,
    /// Cash and equity the bot view shows.
    #[arg(long, default_value_t = 10_000.0)]
    cash: f64,
}

pub fn run(
    command: PluginCommand,
    runtime: impl FnOnce() -> anyhow::Result<PluginRuntime>,
) -> anyhow::Result<()> {
    match command {
        PluginCommand::Inspect { file } => inspect(&runtime()?, &file),
        PluginCommand::Run(args) => dry_run(&runtime()?, args),
    }
}

fn inspect(runtime: &PluginRuntime, file: &Path) -> anyhow::Result<()> {
    let plugin = runtime
        .load_file(file)
        .with_context(|| format!("cannot load {}", file.display()))?;
    let info = plugin.info();
    let search = schema_search(&info.params_schema);
    super::optimize::warn_of_search_problems(&search);
    let description = json!({
        "name": info.name,
        "version": info.version.to_string(),
        "description": info.description,
        "params_schema": info.params_schema,
        "warmup": info.warmup,
        "content_hash": info.content_hash,
        "default_search": written(&search.space),
    });
    println!("{}", serde_json::to_string_pretty(&description)?);
    Ok(())
}

/// `--params`: inline JSON when it opens with `{`, else a file of JSON or
/// YAML (YAML is a superset of JSON, so one parser reads both).
fn read_params(given: Option<&str>) -> anyhow::Result<Value> {
    let Some(given) = given else {
        return Ok(json!({}));
    };
    if given.trim_start().starts_with('{') {
        return stratbox_host::domain::yaml::parse(given).context("--params is not a JSON object");
    }
    let text = std::fs::read_to_string(given).with_context(|| format!("cannot read {given}"))?;
    stratbox_host::domain::yaml::parse(&text)
        .with_context(|| format!("{given} is not JSON or YAML"))
}

fn dry_run(runtime: &PluginRuntime, args: RunArgs) -> anyhow::Result<()> {
    let plugin = runtime
        .load_file(&args.file)
        .with_context(|| format!("cannot load {}", args.file.display()))?;
    let params = read_params(args.params.as_deref())?;
    let candles = read_candles(&args.candles)?;
    // When not given: the timeframe no two candles are closer than.
    let inferred = || closest_step(&candles).and_then(Timeframe::from_millis);
    let Some(timeframe) = args.timeframe.or_else(inferred) else {
        bail!("cannot infer the timeframe from the candles; pass --timeframe");
    };
    // Candles of another timeframe than the strategy is told would make
    // every decision wrong without a word.
    if let Err((index, reason)) = check_series(&candles, timeframe) {
        bail!(
            "{} at the candle of {}: {reason}",
            args.candles.display(),
            format_instant(candles[index].ts)
        );
    }
    let market = Market::new(&args.symbol, &timeframe.to_string());
    let (mut instance, _warmup) = plugin
        .start(&params, &market, PluginLimits::default(), "dry-run")
        .context("the plugin did not start")?;

    let bot = PluginView::flat(args.cash);
    let mut candle = contract::Candle::of_bot_market();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut decisions, mut intents, mut cancels) = (0u64, 0u64, 0u64);
    let mut busy = std::time::Duration::ZERO;
    for c in &candles {
        candle.set_prices(c);
        let started = Instant::now();
        let actions = instance
            .on_candle(&candle, &bot)
            .with_context(|| format!("at the candle of {}", format_instant(c.ts)))?;
        busy += started.elapsed();
        if actions.is_empty() {
            continue;
        }
        decisions += 1;
        for action in &actions {
            match action {
                Action::Place(_) => intents += 1,
                Action::Cancel(_) => cancels += 1,
            }
        }
        let line = json!({
            "ts": c.ts,
            "actions": actions.iter().map(contract::action_to_json).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    }
    let summary = json!({
        "summary": {
            "candles": candles.len(),
            "decisions": decisions,
            "intents": intents,
            "cancels": cancels,
            "mean_ns_per_call": busy.as_nanos() as u64 / candles.len().max(1) as u64,
        }
    });
    writeln!(out, "{summary}")?;
    out.flush()?;
    Ok(())
}
