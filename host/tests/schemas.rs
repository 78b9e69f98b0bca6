//! The committed JSON Schemas and OpenAPI document in `schemas/` match the
//! Rust types they are generated from (the UI's typed client is generated
//! from `schemas/openapi.json`, so an API change the UI has not caught up
//! with fails here first). After changing a config or API type, regenerate
//! them with `make schemas`
//! (`STRATBOX_UPDATE_SCHEMAS=1 cargo test -p stratbox-host --test schemas`).

use std::path::PathBuf;

use stratbox_host::domain::config::BotConfig;
use stratbox_host::plugin::PluginLimits;

fn check(file: &str, schema: impl serde::Serialize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(file);
    let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("STRATBOX_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; regenerate the schemas", path.display()));
    assert!(
        committed == generated,
        "{} has drifted from the Rust types; regenerate with STRATBOX_UPDATE_SCHEMAS=1",
        path.display()
    );
}

#[test]
fn plugin_limits_schema_is_up_to_date() {
    check(
        "plugin-limits.schema.json",
        schemars::schema_for!(PluginLimits),
    );
}

#[test]
fn bot_config_schema_is_up_to_date() {
    check("bot.schema.json", schemars::schema_for!(BotConfig));
}

#[test]
fn server_settings_schema_is_up_to_date() {
    check(
        "settings.schema.json",
        schemars::schema_for!(stratbox_host::api::ServerSettings),
    );
}

#[test]
fn openapi_document_is_up_to_date() {
    check("openapi.json", stratbox_host::api::openapi_document());
}
