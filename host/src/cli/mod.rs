//! Command-line interface: the command tree and dispatch.

mod backtest;
mod data;
mod live;
mod plugin;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stratbox_host::plugin::{PluginRuntime, RuntimeConfig};

#[derive(Debug, Parser)]
#[command(
    name = "stratbox",
    version,
    about = "Trading-bot host with WebAssembly strategies"
)]
pub struct Cli {
    /// Where compiled plugins are cached.
    #[arg(
        long,
        global = true,
        env = "STRATBOX_CACHE_DIR",
        default_value = "data/plugin-cache"
    )]
    cache_dir: PathBuf,
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
    /// Backtest a bot config over a candle file.
    Backtest(backtest::BacktestArgs),
    /// Run a folder of bot configs as live paper bots, printing their events.
    Live(live::LiveArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = || {
        let config = RuntimeConfig {
            cache_dir: (!cli.no_cache).then(|| cli.cache_dir.clone()),
            // A command runs at most one bot per config file.
            max_instances: 256,
            ..RuntimeConfig::default()
        };
        PluginRuntime::new(config).context("cannot start the plugin runtime")
    };
    match cli.command {
        Command::Plugin(command) => plugin::run(command, runtime),
        Command::Data(command) => data::run(command),
        Command::Backtest(args) => backtest::run(args, runtime()?),
        Command::Live(args) => live::run(args, runtime()?),
    }
}
