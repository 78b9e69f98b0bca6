//! The `stratbox` command from the outside: inspect, dry run, synthetic data,
//! and one clear error line (never a panic) for bad input.

use std::path::Path;

use serde_json::Value;
use stratbox_tests::{Run, fixture, plugin, stratbox};

/// `stratbox plugin run PLUGIN --candles FILE` with `more` options.
fn plugin_run<'a>(plugin: &'a Path, candles: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["plugin", "run", s(plugin), "--candles", s(candles)];
    args.extend_from_slice(more);
    args
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A failure: exit code 1 and exactly one line on stderr, no panic.
fn assert_one_line_error(run: &Run) -> &str {
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    // A panic of the host itself would print "thread '...' panicked".
    assert!(!run.stderr.contains("thread '"), "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line expected: {line}");
    assert!(line.starts_with("error: "), "{line}");
    line
}

fn synth(dir: &Path, count: &str, seed: &str) -> std::path::PathBuf {
    let out = dir.join(format!("candles-{count}-{seed}.csv"));
    let run = stratbox(
        &[
            "data",
            "synth",
            "--count",
            count,
            "--seed",
            seed,
            "--out",
            s(&out),
        ],
        dir,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    out
}

#[test]
fn inspect_prints_the_description() {
    let dir = tempfile::tempdir().unwrap();
    let run = stratbox(
        &["plugin", "inspect", s(&plugin("rsi-reversion"))],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let description: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(description["name"], "rsi-reversion");
    assert_eq!(description["version"], "1.0.0");
    assert_eq!(description["warmup"], 15);
    assert_eq!(
        description["params_schema"]["properties"]["period"]["minimum"],
        2
    );
    // What an optimisation given no ranges searches: the plugin's own
    // `x-search` ranges, not ten steps across its bounds (2..1000).
    assert_eq!(
        description["default_search"],
        serde_json::json!({ "period": "8..24:4", "oversold": "15..40:5", "overbought": "60..85:5" })
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn synth_is_reproducible_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read_to_string(synth(dir.path(), "500", "9")).unwrap();
    let again = dir.path().join("again.csv");
    let run = stratbox(
        &[
            "data",
            "synth",
            "--count",
            "500",
            "--seed",
            "9",
            "--out",
            s(&again),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0));
    assert_eq!(a, std::fs::read_to_string(&again).unwrap());
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines[0], "ts,open,high,low,close,volume");
    assert_eq!(lines.len(), 501);
    for row in &lines[1..] {
        let f: Vec<f64> = row.split(',').map(|x| x.parse().unwrap()).collect();
        assert!(f[2] >= f[1].max(f[4]) && f[3] <= f[1].min(f[4]), "{row}");
    }
    // Weekly candles from the default start (a Monday, off 1970's week
    // grid, which starts on a Thursday) are made.
    let weekly = dir.path().join("weekly.csv");
    let args = ["data", "synth", "--timeframe", "1w", "--count", "5"];
    let run = stratbox(&[&args[..], &["--out", s(&weekly)]].concat(), dir.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn dry_run_prints_decisions_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let candles = synth(dir.path(), "3000", "42");
    let params = dir.path().join("params.yaml");
    std::fs::write(&params, "fast: 5\nslow: 20\nsize:\n  quantity: 0.25\n").unwrap();
    let ema_cross = plugin("ema-cross");
    let run_with = |params: &str| {
        let args = ["plugin", "run", s(&ema_cross), "--candles", s(&candles)];
        stratbox(&[&args[..], &["--params", params]].concat(), dir.path())
    };
    let run = run_with(s(&params));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, decisions) = lines.split_last().unwrap();
    let summary = &summary["summary"];
    assert_eq!(summary["candles"], 3000);
    assert_eq!(
        summary["decisions"].as_u64().unwrap() as usize,
        decisions.len()
    );
    assert!(
        decisions.len() > 10,
        "a 5/20 crossover trades on 3000 candles"
    );
    for decision in decisions {
        // Always flat in a dry run: every decision is an entry of 0.25.
        let place = &decision["actions"][0]["place"];
        assert_eq!(place["side"], "buy");
        assert_eq!(place["quantity"], "0.25");
        assert!(decision["ts"].as_i64().unwrap() >= 1_704_067_200_000);
    }
    assert!(summary["mean_ns_per_call"].as_u64().unwrap() > 0);

    // The same parameters inline give the same decisions.
    let run_inline = run_with(r#"{"fast": 5, "slow": 20, "size": {"quantity": 0.25}}"#);
    assert_eq!(run_inline.code, Some(0), "{}", run_inline.stderr);
    let decisions_of = |stdout: &str| -> Vec<String> {
        let lines: Vec<&str> = stdout.lines().collect();
        lines[..lines.len() - 1]
            .iter()
            .map(|l| l.to_string())
            .collect()
    };
    assert_eq!(decisions_of(&run_inline.stdout), decisions_of(&run.stdout));
}

#[test]
fn dry_run_reads_binance_klines() {
    let dir = tempfile::tempdir().unwrap();
    let klines = dir.path().join("klines.csv");
    let mut text = String::new();
    for i in 0..40i64 {
        let open_time_us = (1_735_689_600_000 + i * 60_000) * 1000;
        let close = 100.0 + (i % 7) as f64;
        text.push_str(&format!(
            "{open_time_us},{close},{h},{l},{close},1.5,{ct},150.0,10,0.7,70.0,0\n",
            h = close + 1.0,
            l = close - 1.0,
            ct = open_time_us + 59_999_999
        ));
    }
    std::fs::write(&klines, text).unwrap();
    let run = stratbox(
        &[
            "plugin",
            "run",
            s(&plugin("rsi-reversion")),
            "--candles",
            s(&klines),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["candles"], 40);
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let candles = synth(dir.path(), "100", "1");
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(
        &bad_csv,
        "ts,open,high,low,close,volume\n1000,10,12,9,11,5\n2000,10,nope,9,11,5\n",
    )
    .unwrap();
    let hourly = dir.path().join("hourly.csv");
    std::fs::write(
        &hourly,
        "0,10,12,9,11,5\n3600000,10,12,9,11,5\n7200000,10,12,9,11,5\n",
    )
    .unwrap();
    let uneven = dir.path().join("uneven.csv");
    std::fs::write(
        &uneven,
        "0,10,12,9,11,5\n60000,10,12,9,11,5\n150000,10,12,9,11,5\n",
    )
    .unwrap();
    let bad_params = dir.path().join("bad.json");
    std::fs::write(&bad_params, r#"{"fast": 30, "slow": 10}"#).unwrap();

    let ema = plugin("ema-cross");
    let (wasi, looper, panicker) = (
        fixture("wasi-importer"),
        fixture("looper"),
        fixture("panicker"),
    );
    // A synthetic series with one option set.
    let synth_with = |option: &'static str, value: &'static str| {
        vec![
            "data", "synth", "--count", "9", "--out", "x.csv", option, value,
        ]
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            plugin_run(&ema, &bad_csv, &[]),
            "line 3: high `nope` is not a number",
        ),
        (
            plugin_run(&ema, &candles, &["--params", s(&bad_params)]),
            "/slow: must be greater than fast (30), got 10",
        ),
        // Candles of another timeframe than the strategy is told.
        (
            plugin_run(&ema, &candles, &["--timeframe", "1h"]),
            "at the candle of 2024-01-01T00:01:00.000Z: time 1704067260000 is 60000 ms after the previous candle, not a whole number of 1h candles",
        ),
        (
            plugin_run(&ema, &hourly, &["--timeframe", "1m"]),
            "no two candles are one 1m apart (the closest two are 1h apart): these are not 1m candles",
        ),
        (
            plugin_run(&ema, &uneven, &[]),
            "at the candle of 1970-01-01T00:02:30.000Z: time 150000 is 90000 ms after the previous candle, not a whole number of 1m candles",
        ),
        (
            plugin_run(&ema, Path::new("/nonexistent/c.csv"), &[]),
            "cannot read /nonexistent/c.csv",
        ),
        (
            vec!["plugin", "inspect", s(&candles)],
            "not a WebAssembly file",
        ),
        (
            vec!["plugin", "inspect", s(&wasi)],
            "wasi:filesystem/preopens@0.2.0",
        ),
        (plugin_run(&looper, &candles, &[]), "CPU budget"),
        (
            plugin_run(&panicker, &candles, &[]),
            "boom: indicator state corrupted",
        ),
        // What `data import` would refuse is refused before it is written.
        (
            vec![
                "data", "synth", "--symbol", "", "--count", "10", "--out", "x.csv",
            ],
            "--symbol: `` is not a symbol",
        ),
        (
            vec!["data", "synth", "--count", "0", "--out", "x.csv"],
            "--count must be at least 1",
        ),
        (
            synth_with("--start-price", "0.001"),
            "--start-price must be at least 0.01",
        ),
        (
            synth_with("--volatility", "-1"),
            "--volatility must be at least 0 and below 1",
        ),
        (
            synth_with("--start-ts", "1704067200001"),
            "--start-ts must be the open time of a 1m candle",
        ),
        (
            synth_with("--start-ts", "-60000"),
            "--start-ts must be between 1970 and 9999",
        ),
        (
            vec![
                "data",
                "synth",
                "--count",
                "18446744073709551615",
                "--out",
                "x.csv",
            ],
            "--count: 18446744073709551615 1m candles from --start-ts run past 9999",
        ),
        // A cause the message already shows is said once (below).
        (
            vec!["data", "list", "--data-dir", s(&candles)],
            "Not a directory (os error 20)",
        ),
    ];
    for (args, expected) in cases {
        let run = stratbox(&args, dir.path());
        let line = assert_one_line_error(&run);
        assert!(line.contains(expected), "{args:?}: {line}");
        assert_eq!(line.matches(expected).count(), 1, "said once: {line}");
    }
}

#[test]
fn live_runs_the_demo_bots_and_prints_events() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugins = plugin("ema-cross").parent().unwrap().to_path_buf();
    let bots = repo.join("config/bots");
    let live = |extra: &[&str]| {
        let mut args = vec!["live", "--bots", s(&bots), "--plugins-dir", s(&plugins)];
        args.extend_from_slice(extra);
        stratbox(&args, dir.path())
    };
    let run = live(&["--interval-ms", "5", "--seconds", "2"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created = events.iter().filter(|e| e["type"] == "bot.created").count();
    assert_eq!(created, 4, "one per config file");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "bot.state_changed" && e["data"]["to"] == "running")
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events arrive in sequence order"
    );
    // Each autostarted 1m bot processed candles in two seconds at 5 ms each.
    assert!(run.stderr.contains("ema-cross-btc"), "{}", run.stderr);

    // A bot to follow that no config names is a mistake, not silence.
    let run = live(&["--bot", "nope", "--seconds", "2"]);
    let line = assert_one_line_error(&run);
    assert!(line.contains("--bot nope: no such bot"), "{line}");
    assert!(
        line.contains("ema-cross-btc"),
        "names the known bots: {line}"
    );
    // Following one bot: its events and its line of the summary only.
    let run = live(&["--bot", "rules-btc", "--interval-ms", "5", "--seconds", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("rules-btc"), "{}", run.stderr);
    assert!(!run.stderr.contains("ema-cross-btc"), "{}", run.stderr);

    // A folder with no bot, or two files of one bot id, is said so.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = stratbox(&["live", "--bots", s(&empty)], dir.path());
    let line = assert_one_line_error(&run);
    assert!(line.contains("no bot configs (.yaml) in"), "{line}");
    let twice = dir.path().join("twice");
    std::fs::create_dir_all(&twice).unwrap();
    for name in ["a.yaml", "b.yaml"] {
        std::fs::copy(bots.join("rules-btc.yaml"), twice.join(name)).unwrap();
    }
    let args = ["live", "--bots", s(&twice), "--plugins-dir", s(&plugins)];
    let run = stratbox(&args, dir.path());
    let line = assert_one_line_error(&run);
    assert!(
        line.contains("a.yaml and ") && line.contains("b.yaml are both bot `rules-btc`"),
        "{line}"
    );
}
