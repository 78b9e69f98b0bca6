//! The resource limiter that enforces a bot's [`PluginLimits`] on a store
//! (the limits themselves are configuration, defined in `domain`).

pub use crate::domain::PluginLimits;

/// Enforces [`PluginLimits`] on a store and remembers why growth was denied,
/// so that the trap that follows can be reported as a memory overrun.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: PluginLimits,
    /// Set when memory growth was refused: (current bytes, desired bytes).
    pub(crate) memory_denied: Option<(usize, usize)>,
    /// Linear memory the instance holds, in bytes (what it was instantiated
    /// with plus every growth allowed since).
    pub(crate) memory_bytes: usize,
}

impl Limiter {
    pub(crate) fn new(limits: PluginLimits) -> Self {
        Self {
            limits,
            memory_denied: None,
            memory_bytes: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired as u64 <= self.limits.memory_bytes;
        if allowed {
            self.memory_bytes = self
                .memory_bytes
                .saturating_add(desired.saturating_sub(current));
        } else {
            self.memory_denied = Some((current, desired));
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.limits.table_elements as usize)
    }

    fn instances(&self) -> usize {
        self.limits.instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.instances as usize
    }

    fn memories(&self) -> usize {
        self.limits.instances as usize
    }
}
