//! `stratbox backtest` from the outside: the summary, the JSON result, the
//! HTML report, and one clear error line for a bad config.

use std::path::Path;

use serde_json::Value;
use stratbox_tests::{plugin, stratbox};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn backtest_prints_a_summary_and_writes_identical_json() {
    let dir = tempfile::tempdir().unwrap();
    let candles = dir.path().join("c.csv");
    let run = stratbox(
        &[
            "data",
            "synth",
            "--count",
            "20000",
            "--seed",
            "42",
            "--out",
            s(&candles),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let plugins = plugin("ema-cross").parent().unwrap().to_path_buf();
    let bot = repo().join("config/bots/rules-btc.yaml");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for out in [&a, &b] {
        let run = stratbox(
            &[
                "backtest",
                "--bot",
                s(&bot),
                "--candles",
                s(&candles),
                "--plugins-dir",
                s(&plugins),
                "--json",
                s(out),
            ],
            dir.path(),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stdout.contains("total return %"), "{}", run.stdout);
        assert!(run.stdout.contains("rules 1.0.0"), "{}", run.stdout);
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a, b, "same input must give byte-identical JSON");
    let result: Value = serde_json::from_slice(&a).unwrap();
    for key in [
        "config",
        "trades",
        "orders",
        "fills",
        "equity_curve",
        "risk",
        "metrics",
    ] {
        assert!(!result[key].is_null(), "result lacks {key}");
    }
    assert_eq!(result["candles"], 20000);
    assert_eq!(result["config"]["id"], "rules-btc");

    // The report: one page that needs nothing from anywhere.
    let report = dir.path().join("report.html");
    let run = stratbox(
        &[
            "backtest",
            "--bot",
            s(&bot),
            "--candles",
            s(&candles),
            "--plugins-dir",
            s(&plugins),
            "--report",
            s(&report),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
    for part in [
        "Backtest: ",
        "Equity curve",
        "Drawdown",
        "Monthly returns",
        "Rolling Sharpe",
        "Trade PnL",
        "Candles with fills",
    ] {
        assert!(html.contains(part), "the report lacks {part}");
    }
    let trades = result["trades"].as_array().unwrap().len();
    assert!(html.contains(&format!("Trades ({trades} round trips")));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
}

#[test]
fn a_bad_config_is_one_line_with_its_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let candles = dir.path().join("c.csv");
    stratbox(
        &["data", "synth", "--count", "100", "--out", s(&candles)],
        dir.path(),
    );
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(repo().join("config/bots/ema-cross-btc.yaml")).unwrap();
    for (needle, replacement, expected) in [
        (
            "mode: paper",
            "mode: live",
            "/market/feed/kind: a live bot trades where its candles come from",
        ),
        (
            "autostart: true",
            "autostart: true\nbogus: 1",
            "unknown field `bogus`",
        ),
        (
            "slow: 26",
            "slow: 6",
            "/slow: must be greater than fast (12), got 6",
        ),
    ] {
        std::fs::write(&bad, text.replace(needle, replacement)).unwrap();
        let plugins = plugin("ema-cross").parent().unwrap().to_path_buf();
        let run = stratbox(
            &[
                "backtest",
                "--bot",
                s(&bad),
                "--candles",
                s(&candles),
                "--plugins-dir",
                s(&plugins),
            ],
            dir.path(),
        );
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains(expected), "{line}");
    }
}
