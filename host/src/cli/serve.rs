//! `stratbox serve`: the host with its control API.
//!
//! Start-up, in order: settings (checked: a bad CORS origin or a short
//! `STRATBOX_ADMIN_TOKEN` is a clear start-up error), the store (a clear
//! error if the data directory or database is unusable), the plugin
//! registry (the plugins folder plus earlier uploads; the compile cache
//! keeps only their artefacts), the bots from the store (config, books,
//! orders, risk state as last committed), first-start seeding of bots and
//! presets from YAML (created through the manager like any bot), tokens,
//! then the HTTP server. It prints one JSON line with the address it bound
//! and runs until SIGINT or SIGTERM. The first start of an empty store on
//! a terminal prints a development admin token, once; otherwise it says
//! how to make a token.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use std::os::unix::fs::DirBuilderExt;
use stratbox_host::api::{self, App, AppState, Auth, Role, ServerSettings};
use stratbox_host::domain::config::{BotConfig, join_issues};
use stratbox_host::live::{BotManager, LiveVenues, LogBook};
use stratbox_host::persist::{self, StoreCandleArchive, StoreCommitLog};
use stratbox_host::plugin::{Plugin, PluginRegistry, PluginRuntime};
use stratbox_host::store::{PluginBlob, PresetRecord, PrunePolicy, SqliteStore, Store, Writer};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Server settings (YAML); defaults apply to whatever it leaves out.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to bind, e.g. 127.0.0.1:0 for a free port (overrides the settings).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (overrides the settings).
    #[arg(long, env = "STRATBOX_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Plugins folder (overrides the settings).
    #[arg(long, env = "STRATBOX_PLUGIN_DIR")]
    plugins_dir: Option<PathBuf>,
}

/// Where versions before the plugin table kept uploads, in the data
/// directory: imported into the store at start.
const LEGACY_UPLOADS: &str = "plugins";
/// Store key set once the YAML seed has been imported.
const SEEDED: &str = "seeded";
/// Store key set once a development token was offered.
const DEV_TOKEN_OFFERED: &str = "development_token_offered";

/// The server's settings: the `--config` file's, or the defaults, with the
/// command line's overrides.
pub fn settings(args: &ServeArgs) -> anyhow::Result<ServerSettings> {
    let mut settings = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut settings = ServerSettings::from_yaml(&text).map_err(|issues| {
                anyhow::anyhow!("{}: {}", path.display(), join_issues(&issues))
            })?;
            // Relative folders in the file are relative to the file.
            let base = path.parent().unwrap_or(Path::new("."));
            for dir in [
                &mut settings.bots_dir,
                &mut settings.presets_dir,
                &mut settings.ui_dir,
                &mut settings.feeds_dir,
            ]
            .into_iter()
            .flatten()
            {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
            settings
        }
        None => ServerSettings::default(),
    };
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        settings.data_dir = dir.clone();
    }
    if let Some(dir) = &args.plugins_dir {
        settings.plugins_dir = dir.clone();
    }
    Ok(settings)
}

/// The YAML files of a folder, sorted.
fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Import the YAML bots and presets the store does not have yet (first
/// start only): bots are created through the manager, like any bot.
async fn seed(
    store: &dyn Store,
    manager: &BotManager,
    settings: &ServerSettings,
) -> anyhow::Result<()> {
    if store.meta(SEEDED)?.is_some() {
        return Ok(());
    }
    let now = api::now_ms();
    if let Some(dir) = &settings.bots_dir {
        for file in yaml_files(dir)? {
            let text = std::fs::read_to_string(&file)?;
            let config = BotConfig::from_yaml(&text).map_err(|issues| {
                anyhow::anyhow!("{}: {}", file.display(), join_issues(&issues))
            })?;
            if manager.get(&config.id).is_some() {
                continue;
            }
            manager
                .create(config, "seed")
                .await
                .with_context(|| format!("{}", file.display()))?;
        }
    }
    if let Some(dir) = &settings.presets_dir {
        for file in yaml_files(dir)? {
            let text = std::fs::read_to_string(&file)?;
            let config = stratbox_host::domain::yaml::parse(&text)
                .with_context(|| format!("{} is not YAML", file.display()))?;
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            store.put_preset(&PresetRecord {
                name,
                config,
                updated_at: now,
            })?;
        }
    }
    store.set_meta(SEEDED, &now.to_string())?;
    Ok(())
}

/// The plugins folder's plugins, then every upload the store keeps.
fn registry(
    runtime: &PluginRuntime,
    settings: &ServerSettings,
    store: &dyn Store,
) -> PluginRegistry {
    let mut registry = PluginRegistry::default();
    let mut register = |plugin: Arc<Plugin>| {
        if let Err(error) = registry.insert(plugin) {
            tracing::warn!(%error, "plugin not registered");
        }
    };
    if settings.plugins_dir.is_dir() {
        match PluginRegistry::scan(runtime, &settings.plugins_dir) {
            Ok((found, failures)) => {
                for (path, error) in failures {
                    tracing::warn!(path = %path.display(), %error, "plugin not loaded");
                }
                found.list().cloned().for_each(&mut register);
            }
            Err(error) => tracing::warn!(%error, "plugins folder not read"),
        }
    }
    import_legacy_uploads(runtime, &settings.data_dir.join(LEGACY_UPLOADS), store);
    match store.plugin_blobs() {
        Ok(blobs) => {
            for blob in blobs {
                match runtime.load(&blob.bytes) {
                    Ok(plugin) => register(Arc::new(plugin)),
                    Err(error) => {
                        tracing::warn!(hash = %blob.content_hash, %error, "stored plugin not loaded");
                    }
                }
            }
        }
        Err(error) => tracing::error!(%error, "stored plugins not read"),
    }
    registry
}

/// Uploads an earlier version kept as files: into the store (the files
/// stay where they are).
fn import_legacy_uploads(runtime: &PluginRuntime, dir: &Path, store: &dyn Store) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let imported = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let plugin = runtime.load(&bytes).map_err(|e| e.to_string())?;
                let info = plugin.info();
                store
                    .put_plugin_blob(&PluginBlob {
                        content_hash: info.content_hash.clone(),
                        name: info.name.clone(),
                        version: info.version.to_string(),
                        bytes,
                        uploaded_at: api::now_ms(),
                    })
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = imported {
            tracing::warn!(path = %path.display(), %error, "earlier upload not imported");
        }
    }
}

/// Prune old records now and every ten minutes.
fn spawn_retention(store: Arc<dyn Store>, retention: api::Retention) {
    const DAY_MS: i64 = 86_400_000;
    let days = |n: u32| i64::from(n).saturating_mul(DAY_MS);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(600));
        loop {
            ticks.tick().await;
            let store = store.clone();
            let policy = PrunePolicy {
                equity_full_ms: days(retention.equity_full_days),
                logs_ms: days(retention.logs_days),
                audit_ms: days(retention.audit_days),
                config_versions_kept: retention.config_versions_kept,
                idempotency_ms: api::IDEMPOTENCY_KEPT_MS,
                now: api::now_ms(),
            };
            let pruned = tokio::task::spawn_blocking(move || store.prune(&policy)).await;
            match pruned {
                Ok(Ok(rows)) if rows > 0 => tracing::info!(rows, "old records pruned"),
                Ok(Err(error)) => tracing::warn!(%error, "records not pruned"),
                _ => {}
            }
        }
    });
}

/// Forget peers that stopped failing to authenticate, every minute.
fn spawn_forget_idle_peers(state: AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            state.failed_auth.forget_idle();
        }
    });
}

/// A development admin token on the first start of an empty store, shown
/// once and only to a person at a terminal; otherwise how to make one.
fn offer_development_token(store: &dyn Store, auth: &Auth) -> anyhow::Result<Option<String>> {
    if auth.has_tokens() {
        return Ok(None);
    }
    let first_time = store.meta(DEV_TOKEN_OFFERED)?.is_none();
    if !(first_time && std::io::stdout().is_terminal()) {
        eprintln!(
            "stratbox: no API token exists; make one with `stratbox token create --role admin --name NAME` \
             (same --data-dir), or set STRATBOX_ADMIN_TOKEN (at least 32 characters)"
        );
        return Ok(None);
    }
    let token = auth.create("development", Role::Admin)?.1;
    store.set_meta(DEV_TOKEN_OFFERED, &api::now_ms().to_string())?;
    Ok(Some(token))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

pub fn run(
    settings: ServerSettings,
    runtime: PluginRuntime,
    logbook: LogBook,
    metrics: api::ApiMetrics,
) -> anyhow::Result<()> {
    api::cors(&settings)
        .map(drop)
        .map_err(|error| anyhow::anyhow!("settings: {error}"))?;
    let env_admin = std::env::var("STRATBOX_ADMIN_TOKEN").ok();
    let sqlite =
        SqliteStore::open_with(&settings.data_dir, settings.synchronous).context("cannot start")?;
    let (writer, writer_thread) =
        Writer::start(&sqlite, stratbox_host::live::strategy_jobs_in_flight)
            .context("cannot start")?;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let auth = Auth::load(store.clone(), env_admin.as_deref()).context("cannot start")?;
    let registry = registry(&runtime, &settings, store.as_ref());
    let registered: HashSet<String> = registry
        .list()
        .map(|plugin| plugin.info().content_hash.clone())
        .collect();
    let pruned = runtime.prune_cache(&registered);
    if pruned > 0 {
        tracing::info!(pruned, "compiled artefacts of unregistered plugins removed");
    }
    let feeds_dir = settings.feeds_dir();
    std::fs::create_dir_all(&feeds_dir)
        .with_context(|| format!("cannot create the feeds folder {}", feeds_dir.display()))?;
    let secrets_dir = settings.secrets_dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&secrets_dir)
        .with_context(|| format!("cannot create the secrets folder {}", secrets_dir.display()))?;
    let tokio = stratbox_host::live::runtime()?;
    let served = tokio.block_on(async move {
        let bus = Arc::new(persist::event_bus(&store, writer.clone())?);
        logbook.attach(bus.clone());
        persist::persist_logs(store.as_ref(), &logbook, writer.clone())?;
        let threads = settings
            .strategy_threads
            .unwrap_or_else(stratbox_host::live::default_max_threads);
        let manager = Arc::new(
            BotManager::new(Arc::new(RwLock::new(registry)), bus.clone())
                .with_candle_archive(Arc::new(StoreCandleArchive::new(
                    store.clone(),
                    writer.clone(),
                )))
                .with_commit_log(Arc::new(StoreCommitLog::new(writer.clone())))
                .with_replay_dir(feeds_dir)
                .with_binance_urls(settings.binance_urls.clone())
                .with_live_venues(
                    LiveVenues::default()
                        .with_secrets_dir(secrets_dir)
                        .allow_live_account(settings.binance_live_account),
                )
                .with_strategy_threads(threads)?
                .with_emergency_engaged(persist::emergency_engaged(store.as_ref())?),
        );
        for (bot, error) in persist::restore_bots(store.as_ref(), &manager).await? {
            // One broken bot must not keep the others down.
            tracing::error!(%bot, "bot not restored: {error}");
            eprintln!("stratbox: bot {bot} not restored: {error}");
        }
        seed(store.as_ref(), &manager, &settings)
            .await
            .context("cannot import the seed configs")?;
        let development_token = offer_development_token(store.as_ref(), &auth)?;
        metrics.follow(&bus);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let address = listener.local_addr()?;
        let state = AppState::new(App::new(
            manager.clone(),
            store.clone(),
            Arc::new(runtime),
            auth,
            logbook,
            metrics,
            settings,
            writer,
        ));
        state.spawn_token_refresh(Duration::from_secs(1));
        spawn_retention(store.clone(), state.settings.retention);
        spawn_forget_idle_peers(state.clone());
        println!(
            "{}",
            json!({ "event": "listening", "address": address.to_string(), "url": format!("http://{address}/api/v1") })
        );
        if let Some(token) = &development_token {
            println!("{}", json!({ "event": "development_token", "role": "admin", "token": token }));
            eprintln!("stratbox: a development admin token was created (shown once): {token}");
        }
        let ui_dir = state.settings.ui_dir();
        if ui_dir.join("index.html").is_file() {
            eprintln!("stratbox: dashboard at http://{address}/ (Ctrl-C to stop)");
        } else {
            eprintln!(
                "stratbox: serving http://{address}/api/v1 (Ctrl-C to stop); no dashboard in {} (build it with `make ui`, or point `ui_dir` in the settings at a built one)",
                ui_dir.display()
            );
        }
        api::serve(state, listener, shutdown_signal()).await?;
        // Bots are not stopped: what they committed is their state, and
        // each comes back as its `on_restart` says.
        eprintln!("stratbox: stopped");
        anyhow::Ok(())
    });
    // Every runner is gone with the runtime: the writer finishes what was queued.
    drop(tokio);
    writer_thread.shutdown();
    served
}
