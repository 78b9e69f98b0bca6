//! The plugin registry: plugins known by the name and version their
//! `describe` returns.
//!
//! Filled by scanning a folder of `.wasm` files at start and by uploads
//! through the API. A bot config names a plugin by name and optionally a version;
//! without a version the highest one wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::LoadError;
use super::runtime::{Plugin, PluginRuntime};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no plugin named `{name}`{}", known_list(.known))]
    UnknownPlugin { name: String, known: Vec<String> },
    #[error("plugin `{name}` has no version {version} (available: {})", .available.join(", "))]
    UnknownVersion {
        name: String,
        version: String,
        available: Vec<String>,
    },
    #[error("`{0}` is not a semantic version")]
    BadVersion(String),
    #[error(
        "plugin {name} {version} is already registered with different content: a new build needs a new version (the VERSION its describe answers)"
    )]
    Conflict { name: String, version: String },
    #[error("cannot read plugin folder {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (no plugins are registered)".to_string()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

#[derive(Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, BTreeMap<semver::Version, Arc<Plugin>>>,
}

impl PluginRegistry {
    /// Load every `.wasm` file in `dir` (not recursive). Files that fail to
    /// load are returned with their error, and the rest still register.
    pub fn scan(
        runtime: &PluginRuntime,
        dir: &Path,
    ) -> Result<(Self, Vec<(PathBuf, LoadError)>), RegistryError> {
        let io = |error| RegistryError::Io {
            path: dir.display().to_string(),
            error,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect();
        files.sort();
        let mut registry = Self::default();
        let mut failures = Vec::new();
        for path in files {
            match runtime.load_file(&path) {
                Ok(plugin) => {
                    if let Err(err) = registry.insert(Arc::new(plugin)) {
                        tracing::warn!(path = %path.display(), %err, "plugin not registered");
                    }
                }
                Err(err) => failures.push((path, err)),
            }
        }
        Ok((registry, failures))
    }

    /// Why `plugin` could not be registered, if it could not.
    pub fn conflicts_with(&self, plugin: &Plugin) -> Option<RegistryError> {
        let info = plugin.info();
        let existing = self.plugins.get(&info.name)?.get(&info.version)?;
        (existing.info().content_hash != info.content_hash).then(|| RegistryError::Conflict {
            name: info.name.clone(),
            version: info.version.to_string(),
        })
    }

    /// Register a plugin: true when it is new. Registering the same content
    /// twice is a no-op (false).
    pub fn insert(&mut self, plugin: Arc<Plugin>) -> Result<bool, RegistryError> {
        let info = plugin.info();
        let versions = self.plugins.entry(info.name.clone()).or_default();
        if let Some(existing) = versions.get(&info.version) {
            if existing.info().content_hash == info.content_hash {
                return Ok(false);
            }
            return Err(RegistryError::Conflict {
                name: info.name.clone(),
                version: info.version.to_string(),
            });
        }
        versions.insert(info.version.clone(), plugin);
        Ok(true)
    }

    /// Find a plugin by name and, optionally, exact version.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<Arc<Plugin>, RegistryError> {
        let Some(versions) = self.plugins.get(name) else {
            return Err(RegistryError::UnknownPlugin {
                name: name.to_string(),
                known: self.plugins.keys().cloned().collect(),
            });
        };
        let found = match version {
            None => versions.values().next_back(),
            Some(text) => {
                let wanted = semver::Version::parse(text)
                    .map_err(|_| RegistryError::BadVersion(text.to_string()))?;
                versions.get(&wanted)
            }
        };
        found.cloned().ok_or_else(|| RegistryError::UnknownVersion {
            name: name.to_string(),
            version: version.unwrap_or_default().to_string(),
            available: versions.keys().map(ToString::to_string).collect(),
        })
    }

    /// The plugin a bot config names; a failure is an issue at
    /// `/strategy/plugin` (or `/strategy/version`).
    pub fn resolve_for(
        &self,
        config: &crate::domain::config::BotConfig,
    ) -> Result<Arc<Plugin>, crate::domain::config::ConfigIssue> {
        let strategy = &config.strategy;
        self.resolve(&strategy.plugin, strategy.version.as_deref())
            .map_err(|error| crate::domain::config::ConfigIssue {
                pointer: match error {
                    RegistryError::UnknownVersion { .. } | RegistryError::BadVersion(_) => {
                        "/strategy/version".into()
                    }
                    _ => "/strategy/plugin".into(),
                },
                message: error.to_string(),
            })
    }

    /// Every problem of a refused `config`: its own `issues` (from
    /// [`BotConfig::check`](crate::domain::config::BotConfig::check)) and
    /// the parameters its plugin's schema refuses, or why the plugin does
    /// not resolve; so one answer names everything to fix.
    pub fn every_issue(
        &self,
        config: &crate::domain::config::BotConfig,
        mut issues: Vec<crate::domain::config::ConfigIssue>,
    ) -> Vec<crate::domain::config::ConfigIssue> {
        match self.resolve_for(config) {
            Ok(plugin) => issues.extend(super::in_bot_config(
                plugin.validate_params(&config.strategy.params),
            )),
            Err(unresolved) => issues.push(unresolved),
        }
        issues.dedup();
        issues
    }

    /// Unregister every version of a plugin; what was removed.
    pub fn remove(&mut self, name: &str) -> Vec<Arc<Plugin>> {
        self.plugins
            .remove(name)
            .map(|versions| versions.into_values().collect())
            .unwrap_or_default()
    }

    /// Every registered plugin, by name then version.
    pub fn list(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values().flat_map(|versions| versions.values())
    }
}
