//! Same plugin, same params, same candles: same outputs. And the compile
//! cache: a hit is used, a corrupt entry is detected and replaced.

mod support;

use serde_json::json;
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::plugin::contract::{self, Action};
use stratbox_host::plugin::{
    CacheOutcome, PluginLimits, PluginRegistry, PluginRuntime, RegistryError, RuntimeConfig,
};
use support::{Harness, RUNTIME, plugin_path};

fn synthetic_candles(count: usize) -> Vec<contract::Candle> {
    synthesize(&SynthParams::new(count, 7))
        .iter()
        .map(contract::Candle::from_domain)
        .collect()
}

fn run(
    runtime: &PluginRuntime,
    name: &str,
    params: &serde_json::Value,
    candles: &[contract::Candle],
) -> Vec<Vec<Action>> {
    let plugin = runtime.load_file(&plugin_path(name)).unwrap();
    let (instance, _) = plugin
        .start(params, &support::btc_1m(), PluginLimits::default(), "det")
        .unwrap();
    let mut harness = Harness::new(instance, 10_000.0);
    candles.iter().map(|c| harness.step(c)).collect()
}

#[test]
fn two_runs_give_identical_outputs() {
    let candles = synthetic_candles(5_000);
    let rules = json!({
        "entry": { "all": [
            { "crosses_above": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
            { "below": { "left": { "rsi": 14 }, "right": 70 } }
        ] },
        "exit": { "any": [
            { "crosses_below": { "left": { "ema": 9 }, "right": { "ema": 21 } } },
            { "above": { "left": { "price": "close" }, "right": { "bollinger_upper": { "period": 20 } } } }
        ] },
        "stop_loss_pct": 1,
        "take_profit_pct": 2
    });
    for (name, params) in [
        ("rules", rules),
        ("breakout", json!({})),
        ("ema-cross", json!({})),
    ] {
        let first = run(&RUNTIME, name, &params, &candles);
        let second = run(&RUNTIME, name, &params, &candles);
        let acted = first.iter().filter(|d| !d.is_empty()).count();
        assert!(
            acted > 5,
            "{name} should trade on 5000 candles, acted {acted} times"
        );
        assert_eq!(first, second, "{name} is not deterministic");
    }
}

#[test]
fn the_cache_is_used_and_a_corrupt_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let path = plugin_path("ema-cross");
    let first = runtime.load_file(&path).unwrap();
    assert_eq!(first.cache_outcome(), &CacheOutcome::Compiled);
    let second = runtime.load_file(&path).unwrap();
    assert_eq!(second.cache_outcome(), &CacheOutcome::Hit);

    // Flip one byte in the middle of the entry's payload.
    let entry = dir
        .path()
        .join(format!("{}.cwasm", first.info().content_hash));
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let third = runtime.load_file(&path).unwrap();
    match third.cache_outcome() {
        CacheOutcome::Rejected(reason) => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("corruption not detected: {other:?}"),
    }
    // Recompiled and rewritten: the next load hits again, and the plugin works
    // the same from the cache as freshly compiled.
    let fourth = runtime.load_file(&path).unwrap();
    assert_eq!(fourth.cache_outcome(), &CacheOutcome::Hit);
    let candles = synthetic_candles(2_000);
    assert_eq!(
        run(&runtime, "ema-cross", &json!({}), &candles),
        run(&RUNTIME, "ema-cross", &json!({}), &candles)
    );

    // A truncated entry is refused too.
    std::fs::write(&entry, &bytes[..10]).unwrap();
    assert!(matches!(
        runtime.load_file(&path).unwrap().cache_outcome(),
        CacheOutcome::Rejected(_)
    ));
}

#[test]
fn the_registry_resolves_by_name_and_version() {
    let dir = plugin_path("ema-cross").parent().unwrap().to_path_buf();
    let (registry, failures) = PluginRegistry::scan(&RUNTIME, &dir).unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let names: Vec<_> = registry.list().map(|p| p.info().name.clone()).collect();
    for name in ["breakout", "ema-cross", "rsi-reversion", "rules"] {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
    assert_eq!(
        registry
            .resolve("ema-cross", None)
            .unwrap()
            .info()
            .version
            .to_string(),
        "1.0.0"
    );
    assert!(registry.resolve("ema-cross", Some("1.0.0")).is_ok());
    assert!(matches!(
        registry.resolve("ema-cross", Some("2.0.0")),
        Err(RegistryError::UnknownVersion { .. })
    ));
    let unknown = registry.resolve("macd", None).err().unwrap();
    assert!(
        unknown.to_string().contains("known: breakout, ema-cross"),
        "{unknown}"
    );
}
