//! `stratbox token create|list|revoke`: API tokens in the store, the same
//! as the admin endpoints. A running server picks changes up within seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use stratbox_host::api::{Auth, Role};
use stratbox_host::store::SqliteStore;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// viewer, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who or what uses it.
        #[arg(long)]
        name: String,
        #[arg(long, env = "STRATBOX_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// List tokens (never their text).
    List {
        #[arg(long, env = "STRATBOX_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[arg(long, env = "STRATBOX_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "a role is viewer, operator or admin".to_string())
}

fn open(data_dir: &Path) -> anyhow::Result<Auth> {
    let store = Arc::new(SqliteStore::open(data_dir).context("cannot open the store")?);
    Ok(Auth::load(store, None)?)
}

pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            role,
            name,
            data_dir,
        } => {
            let (record, token) = open(&data_dir)?.create(&name, role)?;
            println!("{token}");
            eprintln!("created {} ({}, {})", record.id, record.name, record.role);
        }
        TokenCommand::List { data_dir } => {
            for record in open(&data_dir)?.list()? {
                let revoked = if record.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{revoked}", record.id, record.role, record.name);
            }
        }
        TokenCommand::Revoke { id, data_dir } => {
            if !open(&data_dir)?.revoke(&id)? {
                anyhow::bail!("no active token `{id}`");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
