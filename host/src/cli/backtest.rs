//! `stratbox backtest`: run a bot config over a candle file or data set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use stratbox_host::backtest::{self, BacktestError, BacktestOptions, BacktestResult, EndOfRun};
use stratbox_host::data::{DataSetError, DataSetKey, DataSets, read_candles};
use stratbox_host::domain::config::{BotConfig, ConfigIssue, join_issues};
use stratbox_host::domain::decimal::to_fixed;
use stratbox_host::domain::{CandleSeries, parse_instant, parse_until};
use stratbox_host::plugin::{InitError, Plugin, PluginRegistry, PluginRuntime, in_bot_config};
use stratbox_host::research::jobs::{AskedSpan, WalkForwardSpec};

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub input: RunInput,
    /// What to do with a position open at the end.
    #[arg(long, value_enum, default_value_t = EndOfRunArg::Value)]
    end_of_run: EndOfRunArg,
    /// Write the full result (config, trades, orders, equity curve, risk
    /// events, metrics) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a report (one self-contained HTML page: metrics, equity,
    /// drawdowns, monthly returns, trades, candles with fills) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// What a backtest (or an optimisation) runs: a bot config, its plugin and
/// candles, and the range of them.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("candle_source").required(true).args(["candles", "data"])))]
pub struct RunInput {
    /// Bot config (YAML or JSON).
    #[arg(long)]
    bot: PathBuf,
    /// Candle CSV (ts,open,high,low,close,volume or Binance klines).
    #[arg(long)]
    candles: Option<PathBuf>,
    /// A stored data set, SYMBOL/TIMEFRAME (see `stratbox data import`):
    /// loads without parsing text.
    #[arg(long)]
    data: Option<String>,
    /// Data directory holding the data sets.
    #[arg(long, env = "STRATBOX_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Use this plugin file instead of resolving the config's plugin by name.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Folder of plugins to resolve the config's plugin from.
    #[arg(long, env = "STRATBOX_PLUGIN_DIR", default_value = "target/plugins")]
    plugins_dir: PathBuf,
    /// First candle to use: RFC 3339 time, a date (YYYY-MM-DD), or epoch ms.
    #[arg(long, value_parser = parse_instant)]
    pub from: Option<i64>,
    /// Stop before this candle: RFC 3339 time or epoch ms; a date
    /// (YYYY-MM-DD) takes in that whole day.
    #[arg(long, value_parser = parse_until)]
    pub to: Option<i64>,
}

impl RunInput {
    /// The data directory: its data sets, and the plugin cache.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The bot config and the plugin it runs; a data set is checked to
    /// serve the run (and, for an optimisation, its walk-forward windows)
    /// before anything runs. (Candles from a CSV file are read whole
    /// later.)
    pub fn bot(
        &self,
        runtime: &PluginRuntime,
        walk: Option<&WalkForwardSpec>,
    ) -> anyhow::Result<(BotConfig, Arc<Plugin>)> {
        let text = std::fs::read_to_string(&self.bot)
            .with_context(|| format!("cannot read {}", self.bot.display()))?;
        let mut config =
            BotConfig::from_yaml(&text).map_err(|issues| self.invalid_config(&issues))?;
        // (Before the data set's check, which says it in the API's words.)
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            bail!("--from must be before --to");
        }
        // A data set names its market: the strategy is tried on it, and
        // the result and report say so.
        if let Some(name) = &self.data {
            let key = DataSetKey::parse(name)?;
            self.check_fit(&key, &config, walk)?;
            if key.symbol != config.market.symbol {
                eprintln!(
                    "stratbox: note: the config trades {}, {name} holds {}: running it on {}",
                    config.market.symbol, key.symbol, key.symbol
                );
            }
            config.market.symbol = key.symbol;
        }
        let plugin = match &self.plugin {
            Some(file) => {
                let plugin = runtime
                    .load_file(file)
                    .with_context(|| format!("cannot load {}", file.display()))?;
                // The file wins, but a config that names another strategy
                // is most likely a mistake: say so.
                let named = &config.strategy.plugin;
                if plugin.info().name != *named {
                    eprintln!(
                        "stratbox: note: {} is the plugin `{}`, the config names `{named}`: running the file",
                        file.display(),
                        plugin.info().name
                    );
                }
                Arc::new(plugin)
            }
            None => {
                let (registry, failures) = PluginRegistry::scan(runtime, &self.plugins_dir)?;
                for (path, error) in &failures {
                    tracing::warn!(path = %path.display(), %error, "plugin not loaded");
                }
                if registry.list().next().is_none() {
                    let dir = self.plugins_dir.display();
                    let plugin = &config.strategy.plugin;
                    match failures.first() {
                        Some((path, error)) => bail!(
                            "{dir} holds no plugin that loads to run `{plugin}`; {} does not: {error}",
                            path.display()
                        ),
                        None => bail!(
                            "{dir} holds no plugin (.wasm) to run `{plugin}`: give --plugins-dir or --plugin FILE"
                        ),
                    }
                }
                registry.resolve(&config.strategy.plugin, config.strategy.version.as_deref())?
            }
        };
        Ok((config, plugin))
    }

    /// Refuse a run the data set `key` cannot serve before anything runs,
    /// as the API does: a data set that does not exist or of another
    /// timeframe, no candle in `--from`..`--to`, no walk-forward window in
    /// them.
    fn check_fit(
        &self,
        key: &DataSetKey,
        config: &BotConfig,
        walk: Option<&WalkForwardSpec>,
    ) -> anyhow::Result<()> {
        let info = DataSets::new(&self.data_dir)
            .info(key)
            .map_err(|error| self.data_set_error(error))?;
        let span = AskedSpan {
            data: key,
            timeframe: &config.market.timeframe,
            from: self.from,
            to: self.to,
            walk,
        };
        let issues = span.unfit(&info);
        if !issues.is_empty() {
            // Each at the option it concerns: `/walk_forward` is
            // `--walk-forward`.
            let lines: Vec<String> = issues
                .iter()
                .map(|issue| {
                    let option = issue.pointer.trim_start_matches('/').replace('_', "-");
                    format!("--{option}: {}", issue.message)
                })
                .collect();
            bail!("{}", lines.join("; "));
        }
        Ok(())
    }

    /// The bot config's problems, each at its pointer.
    fn invalid_config(&self, issues: &[ConfigIssue]) -> anyhow::Error {
        let path = self.bot.display();
        anyhow::anyhow!("{path} is not a valid bot config: {}", join_issues(issues))
    }

    /// A run's error as the user reads it: parameters the strategy refused
    /// are the bot config's problems, at their place in it.
    pub fn run_error(&self, error: BacktestError) -> anyhow::Error {
        match error {
            BacktestError::Params(InitError::Params(issues)) => {
                self.invalid_config(&in_bot_config(issues))
            }
            other => other.into(),
        }
    }

    /// A data set error, with the data directory it was looked for in.
    fn data_set_error(&self, error: DataSetError) -> anyhow::Error {
        let dir = std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        anyhow::anyhow!("{error} (data directory {})", dir.display())
    }

    /// The candles: a data set read where it lies (mapped, never copied
    /// whole), or a CSV file's in memory.
    pub fn candles(&self) -> anyhow::Result<Box<dyn CandleSeries>> {
        Ok(match (&self.data, &self.candles) {
            (Some(name), _) => Box::new(
                DataSets::new(&self.data_dir)
                    .open(&DataSetKey::parse(name)?)
                    .map_err(|error| self.data_set_error(error))?,
            ),
            (None, Some(file)) => Box::new(read_candles(file)?),
            (None, None) => bail!("give --candles FILE or --data SYMBOL/TIMEFRAME"),
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EndOfRunArg {
    /// Value the position at the last close (the API's `value_at_last_close`).
    #[value(alias = "value_at_last_close")]
    Value,
    /// Sell it with a final market order (the API's `close_at_market`).
    #[value(alias = "close_at_market")]
    Close,
}

pub fn run(args: BacktestArgs, runtime: PluginRuntime) -> anyhow::Result<()> {
    let (config, plugin) = args.input.bot(&runtime, None)?;
    let loading = Instant::now();
    let candles = args.input.candles()?;
    let loaded = loading.elapsed();
    let options = BacktestOptions {
        from: args.input.from,
        to: args.input.to,
        end_of_run: match args.end_of_run {
            EndOfRunArg::Value => EndOfRun::ValueAtLastClose,
            EndOfRunArg::Close => EndOfRun::CloseAtMarket,
        },
        ..BacktestOptions::default()
    };
    let running = Instant::now();
    let result = backtest::run(&config, &plugin, &*candles, &options)
        .map_err(|error| args.input.run_error(error))?;
    let ran = running.elapsed();
    if let Some(path) = &args.json {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut out, &result)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    if let Some(path) = &args.report {
        std::fs::write(
            path,
            stratbox_host::research::report::render(&result, &*candles),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    print_summary(&result);
    // A data set is mapped and read as the backtest goes; a file is parsed.
    let how = if args.input.data.is_some() {
        "opened"
    } else {
        "loaded"
    };
    eprintln!(
        "{} candles {how} in {:.0} ms; {} backtested in {:.0} ms ({:.0} candles/s)",
        candles.len(),
        loaded.as_secs_f64() * 1e3,
        result.candles,
        ran.as_secs_f64() * 1e3,
        result.candles as f64 / ran.as_secs_f64().max(1e-9)
    );
    Ok(())
}

fn print_summary(result: &BacktestResult) {
    let m = &result.metrics;
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"));
    let rows = [
        ("bot", result.config.id.clone()),
        (
            "strategy",
            format!("{} {}", result.plugin.name, result.plugin.version),
        ),
        ("candles", result.candles.to_string()),
        ("initial equity", to_fixed(m.initial_equity, 2)),
        ("final equity", to_fixed(m.final_equity, 2)),
        ("total return %", format!("{:.2}", m.total_return_pct)),
        ("CAGR %", opt(m.cagr_pct, 2)),
        ("Sharpe", opt(m.sharpe, 2)),
        ("Sortino", opt(m.sortino, 2)),
        ("Calmar", opt(m.calmar, 2)),
        ("max drawdown %", format!("{:.2}", m.max_drawdown_pct)),
        (
            "max drawdown duration h",
            format!("{:.1}", m.max_drawdown_duration_ms as f64 / 3.6e6),
        ),
        ("trades", m.trades.to_string()),
        ("win rate %", opt(m.win_rate_pct, 1)),
        ("profit factor", opt(m.profit_factor, 2)),
        (
            "expectancy",
            m.expectancy.map_or("n/a".into(), |e| to_fixed(e, 4)),
        ),
        ("exposure %", format!("{:.1}", m.exposure_pct)),
        ("fees", to_fixed(m.fees, 4)),
        ("refused orders", result.rejections.len().to_string()),
        ("risk violations", result.risk.violations.len().to_string()),
    ];
    for (name, value) in rows {
        println!("{name:<26}{value:>20}");
    }
}
