//! `stratbox token create|list|revoke`: API tokens in the store, the same
//! as the admin endpoints. A running server picks changes up within seconds.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use stratbox_host::api::{Auth, Role};
use stratbox_host::store::SqliteStore;

use super::data::DataDirArg;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// viewer, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who or what uses it (one line, 1 to 100 characters).
        #[arg(long, value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List tokens (never their text).
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id (`token list` shows them).
        id: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "a role is viewer, operator or admin".to_string())
}

fn parse_name(text: &str) -> Result<String, String> {
    stratbox_host::api::token_name(text).map_err(|rule| format!("a token name {rule}"))
}

/// The token store of `data_dir`.
fn open(data_dir: &Path) -> anyhow::Result<Auth> {
    let store = Arc::new(SqliteStore::open(data_dir).context("cannot open the store")?);
    Ok(Auth::load(store, None)?)
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, name, data } => {
            // A new store is said so: a token made in the wrong directory
            // is one no server reads.
            let new = !has_store(&data.data_dir);
            let (record, token) = open(&data.data_dir)?.create(&name, role)?;
            println!("{token}");
            eprintln!(
                "created {} ({}, {}) in {} store of the data directory {}",
                record.id,
                record.name,
                record.role,
                if new { "a new" } else { "the" },
                absolute(&data.data_dir).display()
            );
        }
        TokenCommand::List { data } => {
            existing(&data.data_dir)?;
            let records = open(&data.data_dir)?.list()?;
            if records.is_empty() {
                eprintln!("no tokens in {}", absolute(&data.data_dir).display());
            }
            for record in records {
                let revoked = if record.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{revoked}", record.id, record.role, record.name);
            }
        }
        TokenCommand::Revoke { id, data } => {
            existing(&data.data_dir)?;
            if !open(&data.data_dir)?.revoke(&id)? {
                anyhow::bail!("no active token `{id}`");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

/// `dir` as an absolute path, for messages.
fn absolute(dir: &Path) -> std::path::PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// An error unless `dir` is a data directory holding a store. Only a token
/// being created may start a new store: listing or revoking where there
/// is none is a mistyped path, not an empty list.
fn existing(dir: &Path) -> anyhow::Result<()> {
    if !has_store(dir) {
        anyhow::bail!("no data directory {}", absolute(dir).display());
    }
    Ok(())
}

fn has_store(dir: &Path) -> bool {
    dir.join(stratbox_host::store::DATABASE_FILE).is_file()
}
