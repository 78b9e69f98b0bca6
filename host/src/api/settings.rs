//! The server's own settings (`config/stratbox.yaml`): where it listens,
//! where its data, plugins and seed configs are, CORS origins, rate limits,
//! and the limits on what any client can make the server hold. Every field
//! has a default, so an empty file is a working server.

use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ratelimit::RateLimits;
use crate::domain::config::ConfigIssue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The store and uploaded plugins live here.
    pub data_dir: PathBuf,
    /// Plugins (`.wasm`) registered at start.
    pub plugins_dir: PathBuf,
    /// Bot configs (YAML) imported into the store on first start.
    pub bots_dir: Option<PathBuf>,
    /// Presets (YAML) imported into the store on first start.
    pub presets_dir: Option<PathBuf>,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    /// Seconds between WebSocket and SSE heartbeats.
    pub heartbeat_secs: u64,
    pub retention: Retention,
    /// `normal`: a commit survives the process being killed at any instant;
    /// `full`: it also survives a power loss (every commit waits for fsync).
    pub synchronous: crate::store::Synchronous,
    /// Replay feed files are read from here only (default: `feeds` in the
    /// data directory).
    pub feeds_dir: Option<PathBuf>,
    /// Base URLs a Binance feed may name in `rest_url` or `stream_url`
    /// besides Binance's own deployments (default: none, so that a client
    /// cannot make the server connect wherever it likes).
    pub binance_urls: Vec<String>,
    /// Live bots' credentials files are read from here only (default:
    /// `secrets` in the data directory).
    pub secrets_dir: Option<PathBuf>,
    /// Allow live bots on the live Binance exchange (`network: live`); off
    /// by default, so that only the testnet takes real orders.
    pub binance_live_account: bool,
    /// Threads strategy code runs on (default: 4 per core, at least 8).
    /// One per core plus one take every call; the rest take calls only
    /// while those are all held by strategies running 10 ms or longer
    /// (spinning to their limits).
    pub strategy_threads: Option<usize>,
    /// The built control UI, served at `/` (default `ui/dist`).
    pub ui_dir: Option<PathBuf>,
    pub limits: ServerLimits,
}

/// What one client, or every client together, can make the server hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// Open connections at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (also the longest a
    /// kept-alive connection may sit idle), seconds.
    pub header_read_timeout_secs: u64,
    /// Time a client has to send a request's body, seconds.
    pub body_read_timeout_secs: u64,
    /// Largest WebSocket message accepted before the client authenticated.
    pub ws_message_before_auth_bytes: usize,
    /// Largest WebSocket message accepted after it.
    pub ws_message_bytes: usize,
    /// WebSocket and SSE streams one token may hold open at once.
    pub streams_per_token: usize,
    /// Messages per second a WebSocket client may send (bursts of twice
    /// that); a client over it is told, then disconnected.
    pub ws_messages_per_second: u32,
    /// Failed authentications per peer address per minute before it gets
    /// 429 (with `Retry-After`).
    pub failed_auth_per_minute: u32,
    /// Longest a plugin upload may take to compile, seconds.
    pub upload_compile_secs: u64,
    /// Plugin uploads compiled at once; more wait their turn.
    pub concurrent_compiles: usize,
    /// Backtest jobs run at once (each on a thread of its own); more queue.
    pub backtest_workers: usize,
    /// Answers kept for `Idempotency-Key` retries: at most this many...
    pub idempotency_entries: usize,
    /// ...and at most this many bytes of them.
    pub idempotency_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            ws_message_before_auth_bytes: 4 * 1024,
            ws_message_bytes: 64 * 1024,
            streams_per_token: 32,
            ws_messages_per_second: 20,
            failed_auth_per_minute: 30,
            upload_compile_secs: 60,
            concurrent_compiles: 1,
            backtest_workers: 1,
            idempotency_entries: 10_000,
            idempotency_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How long records are kept in full (checked every ten minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Equity samples older than this many days (behind each bot's newest)
    /// are thinned to one per hour.
    pub equity_full_days: u32,
    /// Log lines older than this many days are deleted.
    pub logs_days: u32,
    /// Audit entries older than this many days are deleted.
    pub audit_days: u32,
    /// Each bot keeps its newest this many config versions (the one in
    /// force among them); older ones are deleted, and a rollback to one of
    /// them is answered 404.
    #[schemars(range(min = 1))]
    pub config_versions_kept: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            equity_full_days: 7,
            logs_days: 14,
            audit_days: 90,
            config_versions_kept: 1_000,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            plugins_dir: PathBuf::from("target/plugins"),
            bots_dir: None,
            presets_dir: None,
            cors_origins: vec!["http://localhost:5173".into()],
            rate_limits: RateLimits::default(),
            heartbeat_secs: 15,
            retention: Retention::default(),
            synchronous: crate::store::Synchronous::Normal,
            feeds_dir: None,
            binance_urls: Vec::new(),
            secrets_dir: None,
            binance_live_account: false,
            strategy_threads: None,
            ui_dir: None,
            limits: ServerLimits::default(),
        }
    }
}

impl ServerSettings {
    /// Where the built control UI is.
    pub fn ui_dir(&self) -> PathBuf {
        self.ui_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("ui/dist"))
    }

    /// Where replay feed files are read from.
    pub fn feeds_dir(&self) -> PathBuf {
        self.feeds_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("feeds"))
    }

    /// Where live bots' credentials files are read from.
    pub fn secrets_dir(&self) -> PathBuf {
        self.secrets_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets"))
    }

    /// Parse the YAML settings file; issues carry JSON Pointers.
    pub fn from_yaml(text: &str) -> Result<Self, Vec<ConfigIssue>> {
        let value = crate::domain::yaml::parse(text).map_err(|e| {
            vec![ConfigIssue {
                pointer: String::new(),
                message: e.to_string(),
            }]
        })?;
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value
        };
        crate::domain::config::shape_of(&value).map_err(|issue| vec![issue])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let settings = ServerSettings::from_yaml("").unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        let settings = ServerSettings::from_yaml(
            "listen: 127.0.0.1:0\nrate_limits: { viewer: { per_second: 0, burst: 0 } }\n",
        )
        .unwrap();
        assert_eq!(settings.listen.port(), 0);
        assert_eq!(settings.rate_limits.viewer.per_second, 0);
        let full = ServerSettings::from_yaml("synchronous: full\n").unwrap();
        assert_eq!(full.synchronous, crate::store::Synchronous::Full);
        let issues = ServerSettings::from_yaml("rate_limits: { viewr: {} }").unwrap_err();
        assert_eq!(issues[0].pointer, "/rate_limits/viewr");
    }
}
