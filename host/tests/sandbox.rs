//! Hostile and broken plugins: each is stopped or refused with an error that
//! says what happened, and the same runtime then still runs a good plugin.

mod support;

use serde_json::json;
use stratbox_host::plugin::contract::{self, PluginView};
use stratbox_host::plugin::{LoadError, PluginError, PluginLimits};
use support::{RUNTIME, closes, fixture_path, load, plugin_path};

/// The same runtime still loads and runs a good plugin.
fn runtime_still_works() {
    let plugin = load("ema-cross");
    let (mut instance, _) = plugin
        .start(
            &json!({ "fast": 2, "slow": 3 }),
            &support::btc_1m(),
            PluginLimits::default(),
            "after",
        )
        .expect("good plugin starts");
    let bot = PluginView::flat(1000.0);
    for candle in closes(&[10.0, 10.0, 10.0, 13.0]) {
        instance.on_candle(&candle, &bot).expect("good plugin runs");
    }
}

/// Start a fixture with default params and call on-candle once.
fn first_candle_error(fixture: &str, limits: PluginLimits) -> PluginError {
    first_candle_error_with_volume(fixture, limits, 1.0)
}

fn first_candle_error_with_volume(fixture: &str, limits: PluginLimits, volume: f64) -> PluginError {
    let plugin = RUNTIME
        .load_file(&fixture_path(fixture))
        .expect("fixture loads");
    let (mut instance, _) = plugin
        .start(&json!({}), &support::btc_1m(), limits, "hostile")
        .expect("fixture inits");
    let candle = &contract::Candle {
        volume,
        ..closes(&[100.0])[0]
    };
    let error = instance
        .on_candle(candle, &PluginView::flat(1000.0))
        .expect_err("the call must fail");
    // The instance is poisoned: the next call is refused, not re-entered.
    let again = instance
        .on_candle(candle, &PluginView::flat(1000.0))
        .unwrap_err();
    assert_eq!(again, PluginError::Poisoned(Box::new(error.clone())));
    error
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let limits = PluginLimits {
        fuel_per_call: 5_000_000,
        ..PluginLimits::default()
    };
    let error = first_candle_error("looper", limits);
    assert_eq!(
        error,
        PluginError::FuelExhausted {
            call: "on-candle",
            budget: 5_000_000
        }
    );
    assert!(error.to_string().contains("CPU budget"));
    runtime_still_works();
}

#[test]
fn an_infinite_loop_with_a_huge_budget_hits_the_wall_clock_deadline() {
    let limits = PluginLimits {
        fuel_per_call: 10_000_000_000,
        wall_clock_ms: 50,
        ..PluginLimits::default()
    };
    let started = std::time::Instant::now();
    let error = first_candle_error("looper", limits);
    assert_eq!(
        error,
        PluginError::DeadlineExceeded {
            call: "on-candle",
            limit_ms: 50
        }
    );
    // Generous bound: the point is that it stops, not how fast.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    runtime_still_works();
}

#[test]
fn a_memory_grower_is_stopped_at_the_cap() {
    let limits = PluginLimits {
        memory_bytes: 16 * 1024 * 1024,
        ..PluginLimits::default()
    };
    match first_candle_error("memory-grower", limits) {
        PluginError::MemoryExceeded {
            call,
            cap_bytes,
            desired_bytes,
        } => {
            assert_eq!(call, "on-candle");
            assert_eq!(cap_bytes, 16 * 1024 * 1024);
            assert!(desired_bytes > cap_bytes);
        }
        other => panic!("expected a memory overrun, got {other}"),
    }
    runtime_still_works();
}

#[test]
fn unbounded_recursion_is_a_trapped_stack_overflow() {
    assert_eq!(
        first_candle_error("recursion", PluginLimits::default()),
        PluginError::StackOverflow { call: "on-candle" }
    );
    runtime_still_works();
}

#[test]
fn overflowing_rusts_shadow_stack_is_a_trapped_memory_fault() {
    // Rust keeps address-taken locals on a shadow stack at the bottom of
    // linear memory; overflowing it runs below address 0 and faults.
    match first_candle_error_with_volume("recursion", PluginLimits::default(), 2.0) {
        PluginError::Trapped { call, reason } => {
            assert_eq!(call, "on-candle");
            assert!(reason.contains("out of bounds memory access"), "{reason}");
            assert!(!reason.contains('\n'), "one line: {reason}");
        }
        other => panic!("expected a memory fault, got {other}"),
    }
    runtime_still_works();
}

#[test]
fn a_panic_carries_its_message() {
    match first_candle_error("panicker", PluginLimits::default()) {
        PluginError::Panicked { call, message } => {
            assert_eq!(call, "on-candle");
            assert!(
                message.contains("boom: indicator state corrupted at ts 0"),
                "{message}"
            );
        }
        other => panic!("expected a panic, got {other}"),
    }
    runtime_still_works();
}

#[test]
fn a_wasi_filesystem_import_is_refused_at_load() {
    let error = RUNTIME
        .load_file(&fixture_path("wasi-importer"))
        .err()
        .expect("refused");
    match &error {
        LoadError::ForbiddenImport { name, .. } => {
            assert_eq!(name, "wasi:filesystem/preopens@0.2.0")
        }
        other => panic!("expected a forbidden import, got {other}"),
    }
    assert!(error.to_string().contains("wasi:filesystem/preopens"));
    runtime_still_works();
}

#[test]
fn a_remote_schema_ref_is_refused_at_load() {
    let error = RUNTIME
        .load_file(&fixture_path("remote-ref"))
        .err()
        .expect("refused");
    assert!(matches!(error, LoadError::Schema(_)), "{error}");
    assert!(error.to_string().contains("schemas.example.com"), "{error}");
    runtime_still_works();
}

#[test]
fn exports_that_do_not_match_the_contract_are_refused() {
    let error = RUNTIME
        .load_file(&fixture_path("wrong-exports"))
        .err()
        .expect("refused");
    assert!(matches!(error, LoadError::Contract(_)), "{error}");
    runtime_still_works();
}

#[test]
fn garbage_and_truncated_bytes_are_refused() {
    let garbage = b"this is not webassembly at all".to_vec();
    assert!(matches!(RUNTIME.load(&garbage), Err(LoadError::NotWasm)));
    assert!(matches!(RUNTIME.load(&[]), Err(LoadError::NotWasm)));

    let good = std::fs::read(plugin_path("ema-cross")).unwrap();
    for cut in [9, good.len() / 3, good.len() - 1] {
        let error = RUNTIME
            .load(&good[..cut])
            .err()
            .expect("truncated plugin refused");
        assert!(
            matches!(error, LoadError::Componentize(_) | LoadError::Compile(_)),
            "cut at {cut}: {error}"
        );
    }
    // A valid but empty core module: it exports nothing of the contract.
    let bare_module = b"\0asm\x01\0\0\0";
    let error = RUNTIME
        .load(bare_module)
        .err()
        .expect("empty module refused");
    assert!(matches!(error, LoadError::Contract(_)), "{error}");
    assert!(error.to_string().contains("describe"), "{error}");
    runtime_still_works();
}

#[test]
fn many_hostile_calls_leave_the_host_usable() {
    // Interleave failures with good work: nothing leaks into other instances.
    for _ in 0..5 {
        first_candle_error("panicker", PluginLimits::default());
        first_candle_error(
            "memory-grower",
            PluginLimits {
                memory_bytes: 8 * 1024 * 1024,
                ..PluginLimits::default()
            },
        );
        runtime_still_works();
    }
}

/// Start a fixture with default params and hand it a stretch of eight
/// candles in one call.
fn first_stretch_error(fixture: &str, limits: PluginLimits) -> PluginError {
    stretch_error(fixture, json!({}), limits)
}

fn stretch_error(fixture: &str, params: serde_json::Value, limits: PluginLimits) -> PluginError {
    let plugin = RUNTIME
        .load_file(&fixture_path(fixture))
        .expect("fixture loads");
    let (mut instance, _) = plugin
        .start(&params, &support::btc_1m(), limits, "hostile")
        .expect("fixture inits");
    assert!(instance.decides_stretches(), "{fixture} exports on-stretch");
    let stretch = contract::Stretch {
        bot: PluginView::flat(1000.0).bot,
        candles: closes(&[100.0; 8])
            .into_iter()
            .map(|candle| (candle, 1000.0))
            .collect(),
    };
    let failure = instance
        .on_candles(&stretch)
        .expect_err("the call must fail");
    // Each fails at the first candle but the peeker, which took them all.
    let expected = if params.get("mode").is_some() { 8 } else { 1 };
    assert_eq!(failure.candle, expected, "the candle it failed at");
    let again = instance.on_candles(&stretch).unwrap_err();
    assert_eq!(
        again.error,
        PluginError::Poisoned(Box::new(failure.error.clone()))
    );
    failure.error
}

#[test]
fn in_a_stretch_each_candle_gets_the_limits_of_a_call() {
    let limits = PluginLimits {
        fuel_per_call: 5_000_000,
        ..PluginLimits::default()
    };
    assert_eq!(
        first_stretch_error("looper", limits),
        PluginError::FuelExhausted {
            call: "on-candle",
            budget: 5_000_000
        }
    );
    let limits = PluginLimits {
        memory_bytes: 16 * 1024 * 1024,
        ..PluginLimits::default()
    };
    assert!(matches!(
        first_stretch_error("memory-grower", limits),
        PluginError::MemoryExceeded {
            call: "on-candle",
            ..
        }
    ));
    match first_stretch_error("panicker", PluginLimits::default()) {
        PluginError::Panicked { call, message } => {
            // Named as the author wrote it: the stretch is the SDK's.
            assert_eq!(call, "on-candle");
            // The first candle of the stretch was the one it panicked on.
            assert!(message.contains("corrupted at ts 0"), "{message}");
        }
        other => panic!("expected a panic, got {other}"),
    }
    runtime_still_works();
}

#[test]
fn a_stretch_answered_out_of_turn_is_a_contract_violation() {
    let cases = [
        (json!({}), "without taking a candle"),
        // Acting after learning the stretch is over would be look-ahead.
        (json!({ "mode": "peek" }), "after asking for a candle past"),
    ];
    for (params, expected) in cases {
        match stretch_error("stretch-skipper", params, PluginLimits::default()) {
            PluginError::Contract { call, reason } => {
                assert_eq!(call, "on-stretch");
                assert!(reason.contains(expected), "{reason}");
            }
            other => panic!("expected a contract violation, got {other}"),
        }
    }
    runtime_still_works();
}

#[test]
fn a_failure_in_a_stretch_names_its_candle() {
    // The panicker fails on the first candle with a price; hand it seven
    // candles without one first.
    let plugin = RUNTIME
        .load_file(&fixture_path("panicker"))
        .expect("fixture loads");
    let (mut instance, _) = plugin
        .start(
            &json!({}),
            &support::btc_1m(),
            PluginLimits::default(),
            "hostile",
        )
        .expect("fixture inits");
    let mut prices = [0.0; 10];
    prices[7] = 100.0;
    let stretch = contract::Stretch {
        bot: PluginView::flat(1000.0).bot,
        candles: closes(&prices)
            .into_iter()
            .map(|candle| (candle, 1000.0))
            .collect(),
    };
    let failure = instance.on_candles(&stretch).expect_err("it panics");
    assert_eq!(failure.candle, 8);
    assert!(
        failure.error.to_string().contains("corrupted at ts 420000"),
        "{}",
        failure.error
    );
}
