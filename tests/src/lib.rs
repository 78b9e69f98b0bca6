//! Black-box test support: run the built `stratbox` binary like a user would.

pub mod fake_binance;
pub mod fake_binance_trading;
pub mod server;

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn path_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(default)
    })
}

/// The binary under test (`make test` builds it and sets STRATBOX_BIN).
pub fn binary() -> PathBuf {
    let path = path_from_env("STRATBOX_BIN", "target/debug/stratbox");
    assert!(
        path.exists(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

pub fn plugin(name: &str) -> PathBuf {
    let path = path_from_env("STRATBOX_PLUGIN_DIR", "target/plugins").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make plugins` first",
        path.display()
    );
    path
}

pub fn fixture(name: &str) -> PathBuf {
    let path =
        path_from_env("STRATBOX_FIXTURE_DIR", "target/fixtures").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make fixtures` first",
        path.display()
    );
    path
}

/// What a finished command printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Run `stratbox ARGS` with a private cache directory.
pub fn stratbox(args: &[&str], cache: &std::path::Path) -> Run {
    Command::new(binary())
        .args(args)
        .env("STRATBOX_CACHE_DIR", cache)
        .env_remove("STRATBOX_LOG")
        .output()
        .expect("the binary runs")
        .into()
}
