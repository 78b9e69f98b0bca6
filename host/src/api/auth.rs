//! Bearer tokens and roles.
//!
//! A token is 32 random bytes (from the thread-local CSPRNG, seeded by the
//! OS) shown once, as `sbx_` and 64 hex digits. The
//! store keeps only its SHA-256 (a token is long and random, so a fast hash
//! is right; a password hash would only slow every request). Active tokens
//! are cached by hash; the digest found is compared again in constant time.
//! Revocation updates the cache at once and tells every open stream (see
//! [`Auth::revocations`]), so a revoked token's WebSockets and SSE streams
//! end too. `STRATBOX_ADMIN_TOKEN`, when set, is accepted as an admin token
//! without being stored; it must be at least [`MIN_ENV_TOKEN_CHARS`] long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Store, StoreError, StoreResult, TokenRecord};

/// Shortest `STRATBOX_ADMIN_TOKEN` accepted: a guessable admin token would
/// be worse than none.
pub const MIN_ENV_TOKEN_CHARS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "STRATBOX_ADMIN_TOKEN is {0} characters long; it must have at least {MIN_ENV_TOKEN_CHARS} (generate one with `openssl rand -hex 32`)"
    )]
    WeakEnvToken(usize),
}

/// What a token may do; each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Control, config, emergency stop.
    Operator,
    /// Strategies, tokens, emergency reset.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling: attached to each authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

type Digest32 = [u8; 32];

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

pub struct Auth {
    store: Arc<dyn Store>,
    /// Active tokens by the SHA-256 of their text.
    active: RwLock<HashMap<Digest32, Caller>>,
    env_admin: Option<Digest32>,
    /// Bumped whenever a token stops being active: open streams check
    /// their own token then.
    revoked: tokio::sync::watch::Sender<u64>,
    /// Held by whatever writes the store and then the cache (create,
    /// revoke, reload), so a reload that read the store before a create
    /// cannot overwrite the cache after it and drop the new token.
    changes: Mutex<()>,
}

/// The token id `STRATBOX_ADMIN_TOKEN` appears under.
const ENV_ADMIN_ID: &str = "env-admin";

impl Auth {
    /// Load the active tokens; `env_admin` is accepted as an admin token too.
    pub fn load(store: Arc<dyn Store>, env_admin: Option<&str>) -> Result<Self, AuthError> {
        let env_admin = env_admin.filter(|t| !t.is_empty());
        if let Some(token) = env_admin
            && token.chars().count() < MIN_ENV_TOKEN_CHARS
        {
            return Err(AuthError::WeakEnvToken(token.chars().count()));
        }
        let active = Self::read_active(store.as_ref())?;
        Ok(Self {
            store,
            active: RwLock::new(active),
            env_admin: env_admin.map(digest),
            revoked: tokio::sync::watch::channel(0).0,
            changes: Mutex::new(()),
        })
    }

    /// Read the active tokens again (another process may have changed them).
    pub fn reload(&self) -> StoreResult<()> {
        let _changing = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let active = Self::read_active(self.store.as_ref())?;
        let mut current = self.active.write().unwrap_or_else(PoisonError::into_inner);
        let lost = current.keys().any(|hash| !active.contains_key(hash));
        *current = active;
        drop(current);
        if lost {
            self.revoked.send_modify(|generation| *generation += 1);
        }
        Ok(())
    }

    /// Changes when a token is revoked; streams then check their own with
    /// [`Auth::is_active`].
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Whether the token with this id may still be used.
    pub fn is_active(&self, token_id: &str) -> bool {
        token_id == ENV_ADMIN_ID && self.env_admin.is_some()
            || self
                .active
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .any(|caller| caller.token_id == token_id)
    }

    fn read_active(store: &dyn Store) -> StoreResult<HashMap<Digest32, Caller>> {
        let mut active = HashMap::new();
        for record in store.tokens()? {
            if record.revoked_at.is_some() {
                continue;
            }
            let (Ok(hash), Some(role)) = (
                Digest32::try_from(record.hash.as_slice()),
                Role::parse(&record.role),
            ) else {
                continue;
            };
            active.insert(
                hash,
                Caller {
                    token_id: record.id,
                    name: record.name,
                    role,
                },
            );
        }
        Ok(active)
    }

    /// Whether any token could log in (stored or from the environment).
    pub fn has_tokens(&self) -> bool {
        self.env_admin.is_some()
            || !self
                .active
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
    }

    /// The caller a presented token belongs to, if it is valid.
    pub fn verify(&self, presented: &str) -> Option<Caller> {
        let hash = digest(presented);
        if let Some(env) = &self.env_admin
            && bool::from(env.ct_eq(&hash))
        {
            return Some(Caller {
                token_id: ENV_ADMIN_ID.into(),
                name: "STRATBOX_ADMIN_TOKEN".into(),
                role: Role::Admin,
            });
        }
        let active = self.active.read().unwrap_or_else(PoisonError::into_inner);
        let (stored, caller) = active.get_key_value(&hash)?;
        bool::from(stored.ct_eq(&hash)).then(|| caller.clone())
    }

    /// Create a token; its text is returned here and never again. `name`
    /// is one that [`token_name`] accepted.
    pub fn create(&self, name: &str, role: Role) -> StoreResult<(TokenRecord, String)> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let text = format!("sbx_{}", hex(&secret));
        let mut id_bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut id_bytes);
        let hash = digest(&text);
        let record = TokenRecord {
            id: format!("tok_{}", hex(&id_bytes)),
            name: name.to_string(),
            role: role.as_str().to_string(),
            hash: hash.to_vec(),
            created_at: super::now_ms(),
            revoked_at: None,
        };
        let _changing = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        self.store.insert_token(&record)?;
        self.active
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                hash,
                Caller {
                    token_id: record.id.clone(),
                    name: record.name.clone(),
                    role,
                },
            );
        Ok((record, text))
    }

    /// Revoke a token; effective for the next request. False if unknown.
    pub fn revoke(&self, id: &str) -> StoreResult<bool> {
        let _changing = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let revoked = self.store.revoke_token(id, super::now_ms())?;
        if revoked {
            self.active
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, caller| caller.token_id != id);
            self.revoked.send_modify(|generation| *generation += 1);
        }
        Ok(revoked)
    }

    pub fn list(&self) -> StoreResult<Vec<TokenRecord>> {
        self.store.tokens()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The token of an `Authorization: Bearer ...` header value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// What a token's name must be: names are shown in lists and the audit
/// log, so one line of text.
pub const TOKEN_NAME_RULE: &str = "must be 1 to 100 characters, without control characters";

/// `name` trimmed, when it is a token name (the API and the CLI both ask).
pub fn token_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(TOKEN_NAME_RULE);
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_revoked_and_survive_reloading() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::SqliteStore::open(dir.path()).unwrap());
        let from_env = "from-env-0123456789abcdef0123456789";
        assert!(matches!(
            Auth::load(store.clone(), Some("short")),
            Err(AuthError::WeakEnvToken(5))
        ));
        let auth = Auth::load(store.clone(), Some(from_env)).unwrap();
        let revocations = auth.revocations();
        let (record, text) = auth.create("ci", Role::Operator).unwrap();
        assert!(text.starts_with("sbx_") && text.len() == 68);
        assert_eq!(auth.verify(&text).unwrap().role, Role::Operator);
        assert_eq!(auth.verify(from_env).unwrap().role, Role::Admin);
        assert!(auth.is_active(&record.id) && auth.is_active("env-admin"));
        assert!(auth.verify("sbx_wrong").is_none());
        let stored = &store.tokens().unwrap()[0];
        assert_ne!(stored.hash, text.as_bytes(), "only the hash is stored");

        let reloaded = Auth::load(store.clone(), None).unwrap();
        assert_eq!(reloaded.verify(&text).unwrap().name, "ci");
        assert!(reloaded.verify(from_env).is_none());
        assert!(auth.revoke(&record.id).unwrap());
        assert!(revocations.has_changed().unwrap(), "open streams are told");
        assert!(!auth.is_active(&record.id));
        // Another process revoked it: a reload tells the streams too.
        let reloaded_revocations = reloaded.revocations();
        reloaded.reload().unwrap();
        assert!(reloaded_revocations.has_changed().unwrap());
        assert!(!reloaded.revoke(&record.id).unwrap());
        assert!(reloaded.verify(&text).is_none(), "revoked at once");
    }

    #[test]
    fn a_reload_racing_a_create_keeps_the_new_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::SqliteStore::open(dir.path()).unwrap());
        let auth = Arc::new(Auth::load(store, None).unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reloader = {
            let (auth, done) = (auth.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    auth.reload().unwrap();
                }
            })
        };
        let lost = (0..200)
            .filter(|i| {
                let (_, text) = auth.create(&format!("t{i}"), Role::Viewer).unwrap();
                auth.verify(&text).is_none()
            })
            .count();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reloader.join().unwrap();
        assert_eq!(lost, 0, "tokens not usable right after their creation");
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
