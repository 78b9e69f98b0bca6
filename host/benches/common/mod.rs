//! What more than one benchmark needs.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use stratbox_host::plugin::{PluginRegistry, PluginRuntime};

/// The allocator `stratbox` itself runs on (see `src/main.rs`): what a
/// benchmark measures in-process is then what the host does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The example plugins the benchmarks run (built by `make plugins`).
#[allow(dead_code)] // not every benchmark runs them
pub fn registry(runtime: &PluginRuntime) -> Arc<RwLock<PluginRegistry>> {
    let dir = std::env::var_os("STRATBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let mut registry = PluginRegistry::default();
    for name in ["ema-cross", "rules"] {
        let plugin = runtime
            .load_file(&dir.join(format!("{name}.wasm")))
            .expect("run `make plugins` first");
        registry.insert(Arc::new(plugin)).expect("register");
    }
    Arc::new(RwLock::new(registry))
}
