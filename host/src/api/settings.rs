//! The server's own settings (`config/stratbox.yaml`): where it listens,
//! where its data, plugins and seed configs are, CORS origins, rate limits.
//! Every field has a default, so an empty file is a working server.

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
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            equity_full_days: 7,
            logs_days: 14,
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
        }
    }
}

impl ServerSettings {
    /// Parse the YAML settings file; issues carry JSON Pointers.
    pub fn from_yaml(text: &str) -> Result<Self, Vec<ConfigIssue>> {
        let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| {
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
        serde_path_to_error::deserialize(value).map_err(|e| {
            vec![ConfigIssue {
                pointer: crate::domain::config::pointer_of(e.path()),
                message: e.inner().to_string(),
            }]
        })
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
