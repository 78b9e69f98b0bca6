//! Command-line interface: the command tree and dispatch.

mod backtest;
mod data;
mod download;
mod live;
mod optimize;
mod plugin;
mod serve;
mod token;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use stratbox_host::api::ApiMetrics;
use stratbox_host::live::LogBook;
use stratbox_host::plugin::{PluginRuntime, RuntimeConfig};

/// The data directory a command uses unless told otherwise.
const DEFAULT_DATA_DIR: &str = "data";

#[derive(Debug, Parser)]
#[command(
    name = "stratbox",
    version,
    about = "Trading-bot host with WebAssembly strategies"
)]
pub struct Cli {
    /// Where compiled plugins are cached (default: `plugin-cache` in the
    /// command's data directory).
    #[arg(long, global = true, env = "STRATBOX_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile plugins every time instead of using the cache.
    #[arg(long, global = true)]
    no_cache: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and dry-run strategy plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Make and convert candle data.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Backtest a bot config over a candle file or data set.
    Backtest(backtest::BacktestArgs),
    /// Backtest a bot's strategy with many parameter sets (a grid, a seeded
    /// random sample or a model-based search) on every core and rank them.
    Optimize(optimize::OptimizeArgs),
    /// Run a folder of bot configs as live paper bots, printing their events.
    Live(live::LiveArgs),
    /// Run the host with its control API (HTTP + WebSocket).
    Serve(serve::ServeArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print the control API's OpenAPI 3.1 document (the UI's types are
    /// generated from it).
    Openapi {
        /// Write it here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

impl Cli {
    /// Whether the command prints to be read by another program (piped into
    /// `head`, say) rather than serving.
    pub fn prints(&self) -> bool {
        !matches!(self.command, Command::Serve(_))
    }
}

/// Run a command; `logbook` receives the log lines the server shows.
pub fn run(cli: Cli, logbook: LogBook) -> anyhow::Result<()> {
    // Compiled plugins are kept with the command's data unless told where.
    let runtime = |data_dir: &Path, max_instances, call_observer| {
        // The cache goes in the data directory: a file there is said as
        // what it is, not as a cache that cannot be made in it.
        let cached_there = cli.cache_dir.is_none() && !cli.no_cache;
        if cached_there && data_dir.exists() && !data_dir.is_dir() {
            anyhow::bail!(
                "cannot use data directory {}: it is a file, not a folder",
                data_dir.display()
            );
        }
        let cache_dir = cli
            .cache_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("plugin-cache"));
        let config = RuntimeConfig {
            cache_dir: (!cli.no_cache).then_some(cache_dir),
            max_instances,
            call_observer,
            ..RuntimeConfig::default()
        };
        PluginRuntime::new(config).context("cannot start the plugin runtime")
    };
    // A command runs at most one bot per config file; the server, many.
    let small = |data_dir: &Path| runtime(data_dir, 256, None);
    let default_data_dir = Path::new(DEFAULT_DATA_DIR);
    match cli.command {
        Command::Plugin(command) => plugin::run(command, || small(default_data_dir)),
        Command::Data(command) => data::run(command),
        Command::Backtest(args) => {
            let plugins = small(args.input.data_dir())?;
            backtest::run(args, plugins)
        }
        Command::Optimize(args) => {
            let plugins = small(args.input.data_dir())?;
            optimize::run(args, plugins)
        }
        Command::Live(args) => live::run(args, small(default_data_dir)?),
        Command::Serve(args) => {
            let settings = serve::settings(&args)?;
            // The server times every strategy call for its metrics.
            let metrics = ApiMetrics::default();
            let plugins = runtime(
                &settings.data_dir,
                2_000,
                Some(metrics.plugin_call_observer()),
            )?;
            serve::run(settings, plugins, logbook, metrics)
        }
        Command::Token(command) => token::run(command),
        Command::Openapi { out } => {
            let text = serde_json::to_string_pretty(stratbox_host::api::openapi_document())? + "\n";
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display())),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
    }
}
