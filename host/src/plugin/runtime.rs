//! The shared plugin runtime: one wasmtime engine for every plugin and bot,
//! and loading of plugin files into [`Plugin`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::cache::{ArtifactCache, CacheOutcome, sha256_hex};
use super::contract::{ALLOWED_IMPORTS, Market, Strategy, StrategyPre};
use super::error::{InitError, LoadError, ParamIssue};
use super::instance::{InstanceState, PluginInstance};
use super::limits::PluginLimits;
use super::schema;
use crate::domain::config::BotConfig;

/// Freed instance slots decommitted together.
const DECOMMIT_BATCH: usize = 32;
/// Bytes of a freed table zeroed in place instead of handed back to the
/// kernel.
const TABLE_KEEP_RESIDENT_BYTES: usize = 256 * 1024;
/// Bytes of a freed linear memory reset in place. Linux's `PAGEMAP_SCAN`
/// (kernel 6.7 and later) tells which pages the plugin wrote, and only those
/// are reset, so the next instance in the slot finds them resident instead
/// of faulting each one in again. A config PUT (swap in a new instance, free
/// the old) took 355 µs of server CPU against 378 µs with the whole memory
/// handed back; the validation alone 173 against 192 µs. Without the scan
/// every byte up to this bound would be zeroed, so a kernel too old for it
/// gets the hand-back.
const MEMORY_KEEP_RESIDENT_BYTES: usize = 8 * 1024 * 1024;
/// Freed slots kept warm: beyond this many (wasmtime's default is 100) a
/// new instance takes a freed slot back rather than an unused one, so what
/// freed slots keep resident stays near 16 x [`MEMORY_KEEP_RESIDENT_BYTES`]
/// at worst. A hot swap frees a slot the next instance of the same plugin
/// takes back, so a few serve a steady stream of swaps.
const WARM_SLOTS: u32 = 16;

/// Longest plugin description accepted.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Largest parameters document accepted.
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;
use super::schema_cost::MAX_PARAMS_DEPTH;

/// Told how long each strategy call (`on-candle`, `on-fill`) took; the
/// server feeds its metrics with it. Off by default: timing costs two clock
/// reads per call.
#[derive(Clone)]
pub struct CallObserver(pub Arc<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for CallObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallObserver")
    }
}

/// How the runtime is sized.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances that can exist at once (pooling allocator slots):
    /// the bots plus instances being hot-swapped in.
    pub max_instances: u32,
    /// Largest linear memory any instance may have; per-bot caps are
    /// checked against it.
    pub max_memory_bytes: u64,
    /// How often the epoch advances; the resolution of wall-clock deadlines.
    pub epoch_tick: Duration,
    /// Told the duration of every strategy call, if set.
    pub call_observer: Option<CallObserver>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 2_000,
            max_memory_bytes: 1 << 30,
            epoch_tick: Duration::from_millis(10),
            call_observer: None,
        }
    }
}

/// The engine every plugin runs on, plus the linker that offers the host's
/// imports and the optional compile cache. Cheap to share behind an `Arc`.
pub struct PluginRuntime {
    /// One engine for everything: compiled code and the instance pool are
    /// shared by all plugins and bots.
    engine: Engine,
    /// Offers exactly the contract's imports (the log function).
    linker: Linker<InstanceState>,
    cache: Option<ArtifactCache>,
    config: RuntimeConfig,
    /// Dropping this ends the epoch thread.
    _epoch_ticker: mpsc::Sender<()>,
}

/// What a plugin says about itself, plus where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub params_schema: Value,
    pub warmup: u32,
    /// SHA-256 of the file's bytes.
    pub content_hash: String,
}

/// A loaded, validated plugin: compiled code ready to instantiate, and its
/// compiled parameter schema. Shared by every bot that runs it.
pub struct Plugin {
    info: PluginInfo,
    validator: jsonschema::Validator,
    pre: StrategyPre<InstanceState>,
    engine: Engine,
    epoch_tick: Duration,
    cache_outcome: CacheOutcome,
    call_observer: Option<CallObserver>,
}

impl PluginRuntime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            // Deterministic execution: same inputs, same outputs, anywhere. (Threads,
            // the other source of non-determinism, are not compiled in.)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            // Deterministic CPU budget per call, plus a wall-clock backstop.
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 * 1024);
        // A pool of pre-reserved instance slots makes instantiation cheap and
        // bounds what all plugins together can hold.
        let mut pool = PoolingAllocationConfig::default();
        let instances = config.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances)
            .total_tables(instances.saturating_mul(2))
            .max_memory_size(config.max_memory_bytes as usize)
            .table_elements(PluginLimits::default().table_elements as usize * 10)
            // A hot swap or a reset frees an instance's slot. Decommitting
            // each one at once costs a TLB shootdown across every core;
            // batching them keeps instance churn cheap.
            .decommit_batch_size(DECOMMIT_BATCH)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES)
                .pagemap_scan(wasmtime::Enabled::Yes)
                .max_unused_warm_slots(WARM_SLOTS);
        }
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        Strategy::add_to_linker::<InstanceState, HasSelf<InstanceState>>(&mut linker, |state| {
            state
        })?;
        super::instance::link_next_candle(&mut linker)?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(ArtifactCache::new(dir).map_err(|err| {
                anyhow::anyhow!("cannot create plugin cache {}: {err}", dir.display())
            })?),
            None => None,
        };

        let (stop, stopped) = mpsc::channel::<()>();
        let ticking = engine.clone();
        let tick = config.epoch_tick;
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    ticking.increment_epoch();
                }
            })?;

        Ok(Self {
            engine,
            linker,
            cache,
            config,
            _epoch_ticker: stop,
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Drop the compiled artefact of the plugin with this content hash (a
    /// refused upload's, a deleted plugin's).
    pub fn forget_compiled(&self, content_hash: &str) {
        if let Some(cache) = &self.cache {
            cache.remove(content_hash);
        }
    }

    /// Drop every compiled artefact but those of `keep` (content hashes);
    /// how many went.
    pub fn prune_cache(&self, keep: &std::collections::HashSet<String>) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.retain(keep))
    }

    /// Load a plugin file.
    pub fn load_file(&self, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Io {
            path: path.display().to_string(),
            error,
        })?;
        self.load(&bytes)
    }

    /// Load a plugin from its bytes: a component, or a core module built
    /// with wit-bindgen (componentised here).
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let content_hash = sha256_hex(bytes);
        let (component, cache_outcome) = self.compile_cached(bytes, &content_hash)?;
        self.check_imports(&component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))?;
        let pre = StrategyPre::new(instance_pre)
            .map_err(|err| LoadError::Contract(format!("{err:#}")))?;

        let mut probe = PluginInstance::new(
            &self.engine,
            &pre,
            PluginLimits::default(),
            self.config.epoch_tick,
            "describe".into(),
            "-".into(),
            None,
        )
        .map_err(LoadError::Describe)?;
        let description = probe.describe().map_err(LoadError::Describe)?;
        let version = semver::Version::parse(&description.version).map_err(|err| {
            LoadError::BadDescription(format!(
                "version `{}` is not semantic versioning: {err}",
                description.version
            ))
        })?;
        if description.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(LoadError::BadDescription(format!(
                "the description is {} bytes, more than the {MAX_DESCRIPTION_BYTES} allowed",
                description.description.len()
            )));
        }
        if !is_plugin_name(&description.name) {
            return Err(LoadError::BadDescription(format!(
                "name `{}` must be 1-64 characters of a-z, 0-9 and '-'",
                description.name
            )));
        }
        let (params_schema, validator) = schema::compile(&description.params_schema)?;
        Ok(Plugin {
            info: PluginInfo {
                name: description.name,
                version,
                description: description.description,
                params_schema,
                warmup: description.warmup,
                content_hash,
            },
            validator,
            pre,
            engine: self.engine.clone(),
            epoch_tick: self.config.epoch_tick,
            cache_outcome,
            call_observer: self.config.call_observer.clone(),
        })
    }

    fn compile_cached(
        &self,
        bytes: &[u8],
        key: &str,
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let Some(cache) = &self.cache else {
            return Ok((self.compile(bytes)?, CacheOutcome::Disabled));
        };
        let rejected = match cache.load(&self.engine, key) {
            Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
            Ok(None) => None,
            Err(reason) => {
                tracing::warn!(key, %reason, "plugin cache entry refused; recompiling");
                Some(reason)
            }
        };
        let component = self.compile(bytes)?;
        if let Err(reason) = cache.store(key, &component) {
            tracing::warn!(key, %reason, "plugin cache not written");
        }
        let outcome = rejected.map_or(CacheOutcome::Compiled, CacheOutcome::Rejected);
        Ok((component, outcome))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        let component_bytes = if wasmparser::Parser::is_component(bytes) {
            std::borrow::Cow::Borrowed(bytes)
        } else if wasmparser::Parser::is_core_wasm(bytes) {
            std::borrow::Cow::Owned(componentize(bytes)?)
        } else {
            return Err(LoadError::NotWasm);
        };
        Component::new(&self.engine, &component_bytes)
            .map_err(|err| LoadError::Compile(format!("{err:#}")))
    }

    /// Refuse imports outside the contract (WASI files, sockets, clocks...)
    /// with the offending name, before the linker's less specific error.
    fn check_imports(&self, component: &Component) -> Result<(), LoadError> {
        for (name, _) in component.component_type().imports(&self.engine) {
            if !ALLOWED_IMPORTS.contains(&name) {
                return Err(LoadError::ForbiddenImport {
                    name: name.to_string(),
                    allowed: ALLOWED_IMPORTS
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" and "),
                });
            }
        }
        Ok(())
    }
}

/// Turn a core module carrying wit-bindgen's component-type section into a
/// component.
///
/// The bytes are untrusted: they are fully validated first, because the
/// componentiser assumes well-formed input (it has been seen to panic on a
/// truncated custom section). A panic that still escapes it is caught and
/// reported as a refusal, never allowed to unwind into the host.
fn componentize(module: &[u8]) -> Result<Vec<u8>, LoadError> {
    wasmparser::Validator::new()
        .validate_all(module)
        .map_err(|err| LoadError::Componentize(format!("invalid core module: {err}")))?;
    let encode = || {
        wit_component::ComponentEncoder::default()
            .module(module)
            .and_then(|encoder| encoder.validate(true).encode())
    };
    match std::panic::catch_unwind(encode) {
        Ok(result) => result.map_err(|err| LoadError::Componentize(format!("{err:#}"))),
        Err(_) => Err(LoadError::Componentize(
            "the componentiser could not process this module (malformed metadata)".into(),
        )),
    }
}

fn is_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn cache_outcome(&self) -> &CacheOutcome {
        &self.cache_outcome
    }

    /// Check parameters against the plugin's schema only.
    pub fn validate_params(&self, params: &Value) -> Vec<ParamIssue> {
        schema::issues(&self.validator, params)
    }

    /// A fresh, uninitialised instance for `bot`.
    pub fn instantiate(
        &self,
        limits: PluginLimits,
        bot: &str,
    ) -> Result<PluginInstance, super::PluginError> {
        PluginInstance::new(
            &self.engine,
            &self.pre,
            limits,
            self.epoch_tick,
            Arc::from(self.info.name.as_str()),
            Arc::from(bot),
            self.call_observer.clone(),
        )
    }

    /// Validate `params` (size and depth, the schema, then the plugin's own
    /// checks in `init`) and return an instance initialised for `market`
    /// with the warm-up it needs.
    pub fn start(
        &self,
        params: &Value,
        market: &Market,
        limits: PluginLimits,
        bot: &str,
    ) -> Result<(PluginInstance, u32), InitError> {
        let size = params.to_string().len();
        if size > MAX_PARAMS_BYTES || super::schema_cost::depth(params) > MAX_PARAMS_DEPTH {
            return Err(InitError::Params(vec![ParamIssue {
                pointer: String::new(),
                message: format!(
                    "parameters may be at most {MAX_PARAMS_BYTES} bytes and {MAX_PARAMS_DEPTH} levels deep"
                ),
            }]));
        }
        let issues = self.validate_params(params);
        if !issues.is_empty() {
            return Err(InitError::Params(issues));
        }
        let mut instance = self.instantiate(limits, bot)?;
        let warmup = instance.init(params, market)?;
        Ok((instance, warmup))
    }

    /// [`Plugin::start`] with a bot's parameters, market and limits.
    pub fn start_bot(&self, config: &BotConfig) -> Result<(PluginInstance, u32), InitError> {
        let market = Market::new(&config.market.symbol, &config.market.timeframe);
        self.start(&config.strategy.params, &market, config.limits, &config.id)
    }
}
