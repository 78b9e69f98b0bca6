//! `stratbox live`: run the bot configs of a folder as paper bots on their
//! (synthetic or replay) feeds and print their events as JSON lines (the
//! same envelopes the WebSocket and SSE send, filtered the same way), until
//! Ctrl-C or the given number of seconds. The control API serves the same
//! bots; this is the runtime on its own.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use stratbox_host::api::encode_event;
use stratbox_host::domain::config::{BotConfig, FeedConfig, join_issues};
use stratbox_host::domain::decimal::to_fixed;
use stratbox_host::live::{BotManager, Channel, EventBus, Filter};
use stratbox_host::plugin::{PluginRegistry, PluginRuntime};

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Folder of bot configs (YAML).
    #[arg(long, default_value = "config/bots")]
    bots: PathBuf,
    /// Folder of plugins.
    #[arg(long, env = "STRATBOX_PLUGIN_DIR", default_value = "target/plugins")]
    plugins_dir: PathBuf,
    /// Milliseconds between synthetic candles (overrides the configs; the
    /// timeframe's real length when 0).
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Channels to print (comma-separated: bots, signals, orders,
    /// positions, trades, risk, logs, system, backtests; empty = all).
    #[arg(long, value_delimiter = ',', default_value = "bots,trades,risk,system")]
    channels: Vec<String>,
    /// Only these bots' events (repeatable; none = every bot).
    #[arg(long = "bot")]
    only: Vec<String>,
}

pub fn run(args: LiveArgs, runtime: PluginRuntime) -> anyhow::Result<()> {
    let mut channels = std::collections::BTreeSet::new();
    for name in args.channels.iter().filter(|n| !n.is_empty()) {
        let channel: Channel = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| anyhow::anyhow!("--channels: unknown channel `{name}`"))?;
        channels.insert(channel);
    }
    let filter = Filter {
        channels,
        bots: args.only.iter().cloned().collect(),
    };
    let (registry, failures) = PluginRegistry::scan(&runtime, &args.plugins_dir)?;
    for (path, error) in failures {
        tracing::warn!(path = %path.display(), %error, "plugin not loaded");
    }
    let mut configs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.bots)
        .with_context(|| format!("cannot read {}", args.bots.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no bot configs (.yaml) in {}", args.bots.display());
    }
    // Which file each bot id came from.
    let mut read_from = std::collections::HashMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let mut config = BotConfig::from_yaml(&text)
            .map_err(|issues| anyhow::anyhow!("{}: {}", file.display(), join_issues(&issues)))?;
        if let Some(earlier) = read_from.insert(config.id.clone(), file.clone()) {
            anyhow::bail!(
                "{} and {} are both bot `{}`: give each bot an id of its own",
                earlier.display(),
                file.display(),
                config.id
            );
        }
        if let FeedConfig::Synthetic { interval_ms, .. } = &mut config.market.feed
            && args.interval_ms > 0
        {
            *interval_ms = Some(args.interval_ms);
        }
        configs.push(config);
    }
    if let Some(unknown) = args
        .only
        .iter()
        .find(|id| !configs.iter().any(|config| &config.id == *id))
    {
        let known: Vec<&str> = configs.iter().map(|config| config.id.as_str()).collect();
        anyhow::bail!(
            "--bot {unknown}: no such bot in {} (known: {})",
            args.bots.display(),
            known.join(", ")
        );
    }
    let tokio = stratbox_host::live::runtime()?;
    tokio.block_on(async move {
        let bus = Arc::new(EventBus::new(1));
        let manager = BotManager::new(Arc::new(RwLock::new(registry)), bus.clone());
        let mut events = bus.subscribe(filter, None)?;
        for config in configs {
            let id = config.id.clone();
            manager
                .create(config, "cli")
                .await
                .with_context(|| format!("bot {id}"))?;
        }
        let printer = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                println!("{}", encode_event(&event));
            }
        });
        let limit = async {
            if args.seconds == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = limit => {}
        }
        manager.stop_all().await;
        // The bots whose events were asked for (all, without `--bot`).
        let shown = manager
            .list()
            .into_iter()
            .filter(|snapshot| args.only.is_empty() || args.only.contains(&snapshot.id.to_string()));
        for snapshot in shown {
            eprintln!(
                "{:<20} {:<8} candles {:>6}  equity {:>12}  realized before fees {:>10}  fees {:>10}",
                snapshot.id,
                snapshot.state.name(),
                snapshot.candles_processed,
                to_fixed(snapshot.equity, 2),
                to_fixed(snapshot.realized_pnl, 2),
                to_fixed(snapshot.fees_paid, 2)
            );
        }
        printer.abort();
        anyhow::Ok(())
    })
}
