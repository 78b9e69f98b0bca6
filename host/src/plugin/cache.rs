//! On-disk cache of compiled plugins, keyed by content hash.
//!
//! Loading a compiled artefact is `unsafe` in wasmtime: a corrupt file could
//! run arbitrary machine code. So every entry carries a SHA-256 of its
//! payload, checked before the payload is handed to wasmtime, and entries are
//! written to a temporary file and renamed into place, so a crash mid-write
//! never leaves a torn entry under the real name. A bad entry is deleted and
//! the plugin recompiled. wasmtime itself refuses artefacts from another
//! version or configuration, which also ends in a recompile.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Identifies the file format; bump when it changes.
const MAGIC: &[u8; 8] = b"SBXCWA01";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// How a plugin's compiled code was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache configured.
    Disabled,
    /// Compiled now; stored for next time.
    Compiled,
    /// Loaded from a valid cache entry.
    Hit,
    /// A cache entry existed but was refused (and replaced): the reason.
    Rejected(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ArtifactCache {
    pub(crate) fn new(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached component for `key`: `Ok(None)` when there is no entry,
    /// `Err(reason)` when the entry is bad (it has been deleted).
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Result<Option<Component>, String> {
        let path = self.entry_path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("cannot read cache entry: {err}")),
        };
        let verdict = Self::check(&bytes).and_then(|payload| {
            // SAFETY: the payload is exactly what `store` wrote from
            // `Component::serialize` (its checksum matches), and wasmtime
            // checks that it was produced by a compatible engine.
            unsafe { Component::deserialize(engine, payload) }
                .map_err(|err| format!("wasmtime refused the cache entry: {err}"))
        });
        match verdict {
            Ok(component) => Ok(Some(component)),
            Err(reason) => {
                let _ = fs::remove_file(&path);
                Err(reason)
            }
        }
    }

    fn check(bytes: &[u8]) -> Result<&[u8], String> {
        if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err("cache entry has no valid header".into());
        }
        let (expected, payload) = bytes[MAGIC.len()..].split_at(32);
        if Sha256::digest(payload).as_slice() != expected {
            return Err("cache entry checksum mismatch (corrupt file)".into());
        }
        Ok(payload)
    }

    /// Remove the entry of `key`, if there is one.
    pub(crate) fn remove(&self, key: &str) {
        let _ = fs::remove_file(self.entry_path(key));
    }

    /// Remove every entry (and leftover temporary file) whose key is not in
    /// `keep`; how many went.
    pub(crate) fn retain(&self, keep: &std::collections::HashSet<String>) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for path in entries.flatten().map(|entry| entry.path()) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let kept = name
                .strip_suffix(".cwasm")
                .is_some_and(|key| keep.contains(key));
            if !kept && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Store a compiled component atomically (temporary file + rename).
    pub(crate) fn store(&self, key: &str, component: &Component) -> Result<(), String> {
        let payload = component
            .serialize()
            .map_err(|err| format!("cannot serialise compiled plugin: {err}"))?;
        let temp = self.dir.join(format!(
            ".{key}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(&payload))?;
            file.write_all(&payload)?;
            file.sync_all()?;
            fs::rename(&temp, self.entry_path(key))
        };
        write().map_err(|err| {
            let _ = fs::remove_file(&temp);
            format!("cannot write cache entry: {err}")
        })
    }
}
