//! Crash points for the crash tests: with `STRATBOX_CRASH_AT=<point>` in
//! its environment, the process aborts when a runner reaches that point
//! (ended as a `kill -9` ends it: no destructor runs, nothing is flushed),
//! so a test can restart the host from exactly there. Without it, a point
//! costs one comparison.
//!
//! Points: `config-swapped` (a config change is in force in memory, not
//! yet committed), `command-committed` (a command's commit is durable, not
//! yet published or answered).

use std::sync::OnceLock;

/// The variable that names the point to crash at.
pub const CRASH_AT: &str = "STRATBOX_CRASH_AT";

/// Abort the process if `point` is the one `STRATBOX_CRASH_AT` names.
pub(crate) fn here(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT.get_or_init(|| std::env::var(CRASH_AT).ok()).as_deref() == Some(point) {
        tracing::error!(point, "crashing on purpose ({CRASH_AT})");
        std::process::abort();
    }
}
