//! What can go wrong with a plugin, typed so that callers can react (poison
//! an instance, answer 422, refuse an upload) and people can read it.

use super::schema::SchemaError;
use crate::domain::config::join_issues;

/// A failed call into a plugin instance. After any of these the instance is
/// poisoned: every later call answers [`PluginError::Poisoned`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("plugin ran out of its CPU budget of {budget} fuel in {call}")]
    FuelExhausted { call: &'static str, budget: u64 },
    #[error("plugin exceeded its wall-clock deadline of {limit_ms} ms in {call}")]
    DeadlineExceeded { call: &'static str, limit_ms: u64 },
    #[error(
        "plugin exceeded its memory cap of {cap_bytes} bytes in {call} (tried to grow to {desired_bytes} bytes)"
    )]
    MemoryExceeded {
        call: &'static str,
        cap_bytes: u64,
        desired_bytes: u64,
    },
    #[error("plugin overflowed its stack in {call}")]
    StackOverflow { call: &'static str },
    #[error("plugin panicked in {call}: {message}")]
    Panicked { call: &'static str, message: String },
    #[error("plugin trapped in {call}: {reason}")]
    Trapped { call: &'static str, reason: String },
    #[error("the host stopped the plugin in {call} (the bot is being killed or removed)")]
    Interrupted { call: &'static str },
    #[error("plugin broke the contract in {call}: {reason}")]
    Contract { call: &'static str, reason: String },
    #[error("plugin instance is unusable after an earlier failure: {0}")]
    Poisoned(Box<PluginError>),
    #[error("cannot create a plugin instance: {0}")]
    Instantiate(String),
}

/// One invalid parameter: a JSON Pointer into the parameters document and
/// what is wrong there (the same shape as a config issue).
pub type ParamIssue = crate::domain::config::ConfigIssue;

/// Parameter issues as issues of the bot config holding the parameters.
pub fn in_bot_config(issues: Vec<ParamIssue>) -> Vec<crate::domain::config::ConfigIssue> {
    crate::domain::config::nested_issues("/strategy/params", issues)
}

/// Why a strategy could not be initialised with some parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// The parameters are wrong: each issue names its field.
    #[error("invalid parameters: {}", join_issues(.0))]
    Params(Vec<ParamIssue>),
    /// The plugin failed while initialising.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Why a file is not a loadable plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly file (expected a component or a core module)")]
    NotWasm,
    #[error("core module is not a stratbox plugin: {0}")]
    Componentize(String),
    #[error("WebAssembly does not compile: {0}")]
    Compile(String),
    #[error(
        "plugin imports `{name}`, which the host does not offer (a strategy may import only {allowed})"
    )]
    ForbiddenImport { name: String, allowed: String },
    #[error("plugin does not implement the stratbox strategy contract: {0}")]
    Contract(String),
    #[error("plugin failed in describe: {0}")]
    Describe(PluginError),
    #[error("plugin description is invalid: {0}")]
    BadDescription(String),
    #[error("plugin parameter schema is refused: {0}")]
    Schema(SchemaError),
    #[error("cannot read plugin {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl From<SchemaError> for LoadError {
    fn from(error: SchemaError) -> Self {
        LoadError::Schema(error)
    }
}
