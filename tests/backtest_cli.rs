//! `stratbox backtest` from the outside: the summary, the JSON result, the
//! HTML report, and one clear error line for a bad config.

use std::path::Path;

use serde_json::Value;
use stratbox_tests::{Run, plugin, stratbox};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `stratbox COMMAND --bot BOT --candles CANDLES` on the example plugins,
/// then `extra`.
fn on_bot(command: &str, bot: &Path, candles: &Path, extra: &[&str], dir: &Path) -> Run {
    let plugins = plugin("ema-cross").parent().unwrap().to_path_buf();
    let mut args = vec![
        command,
        "--bot",
        s(bot),
        "--candles",
        s(candles),
        "--plugins-dir",
        s(&plugins),
    ];
    args.extend_from_slice(extra);
    stratbox(&args, dir)
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
            "20160",
            "--seed",
            "42",
            "--out",
            s(&candles),
        ],
        dir.path(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let bot = repo().join("config/bots/rules-btc.yaml");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    for out in [&a, &b] {
        let run = on_bot("backtest", &bot, &candles, &["--json", s(out)], dir.path());
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
        "daily_equity",
        "risk",
        "metrics",
    ] {
        assert!(!result[key].is_null(), "result lacks {key}");
    }
    assert_eq!(result["candles"], 20160);
    assert_eq!(result["config"]["id"], "rules-btc");

    // The report: one page that needs nothing from anywhere.
    let report = dir.path().join("report.html");
    let run = on_bot(
        "backtest",
        &bot,
        &candles,
        &["--report", s(&report)],
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
    // Each number column of the trade table has one number of decimals:
    // quantity, entry and exit price (the most a row needs), fees (4), PnL (2).
    let table = &html[html.find("<h2>Trades (").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let rows: Vec<Vec<&str>> = table
        .split("<tr><td>")
        .skip(1)
        .map(|row| {
            row.split("</td>")
                .map(|cell| cell.rsplit('>').next().unwrap())
                .collect()
        })
        .collect();
    let start = &table[..table.len().min(600)];
    assert!(rows.len() > 1, "{start}");
    let decimals = |cell: &str| cell.split_once('.').map_or(0, |(_, digits)| digits.len());
    for column in 2..=6 {
        let places: std::collections::BTreeSet<usize> =
            rows.iter().map(|row| decimals(row[column])).collect();
        assert_eq!(places.len(), 1, "column {column}: {places:?}\n{start}");
    }
    assert_eq!(
        decimals(rows[0][3]),
        decimals(rows[0][4]),
        "both prices alike"
    );
    assert_eq!((decimals(rows[0][5]), decimals(rows[0][6])), (4, 2));
    // The days it covers, both included: two weeks of minutes from
    // January 1st end with the 14th.
    assert!(
        html.contains("on BTCUSDT 1m, 2024-01-01 to 2024-01-14, 20160 candles"),
        "{}",
        &html[..html.len().min(2000)]
    );
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
            // Parameters the strategy refuses are the config's, at their
            // place in it, as the API says them.
            "/strategy/params/slow: must be greater than fast (12), got 6",
        ),
    ] {
        std::fs::write(&bad, text.replace(needle, replacement)).unwrap();
        let run = on_bot("backtest", &bad, &candles, &[], dir.path());
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let line = run.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains(expected), "{line}");
        assert!(
            line.contains("bad.yaml is not a valid bot config"),
            "{line}"
        );
    }
}

#[test]
fn a_plugin_file_of_another_strategy_than_the_config_names_gets_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let candles = synthetic_candles(dir.path());
    let bot = repo().join("config/bots/ema-cross-btc.yaml");
    let with_plugin = |name: &str| {
        let file = plugin(name);
        on_bot(
            "backtest",
            &bot,
            &candles,
            &["--plugin", s(&file)],
            dir.path(),
        )
    };
    let run = with_plugin("rsi-reversion");
    assert!(
        run.stderr.contains(
            "is the plugin `rsi-reversion`, the config names `ema-cross`: running the file"
        ),
        "{}",
        run.stderr
    );
    let run = with_plugin("ema-cross");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
}

/// A failure: exit code 1, one line on stderr, no panic; the line.
fn one_line_error(run: &stratbox_tests::Run) -> String {
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line expected: {line}");
    line.to_string()
}

/// 5,000 synthetic 1m candles from 2024-01-01T00:00Z, as `c.csv` in `dir`.
fn synthetic_candles(dir: &Path) -> std::path::PathBuf {
    let candles = dir.join("c.csv");
    let run = stratbox(
        &["data", "synth", "--count", "5000", "--out", s(&candles)],
        dir,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    candles
}

#[test]
fn optimize_ranks_the_sets_over_the_chosen_range_and_says_how_many_candles_each_run_had() {
    let dir = tempfile::tempdir().unwrap();
    let candles = synthetic_candles(dir.path());
    let bot = repo().join("config/bots/ema-cross-btc.yaml");
    // The synthetic candles start at 2024-01-01T00:00Z, one a minute: the
    // first 3,000 end before 02:00 on the 3rd.
    let optimize = |slow: &str, to: &str| {
        let args = ["--param", "fast=3,5", "--param", slow, "--to", to];
        on_bot(
            "optimize",
            &bot,
            &candles,
            &[&args[..], &["--threads", "2"]].concat(),
            dir.path(),
        )
    };
    let run = optimize("slow=20,30", "2024-01-03T02:00:00Z");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("rank"), "{}", run.stdout);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.contains(r#""fast""#))
            .count(),
        4,
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("4 runs of 3000 candles on 2 threads"),
        "{}",
        run.stderr
    );
    // A date there takes in that whole day: through January 2nd.
    let run = optimize("slow=20", "2024-01-02");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("runs of 2880 candles"),
        "{}",
        run.stderr
    );
    // One set: one run, on the one thread it needs.
    let args = ["--param", "fast=3", "--param", "slow=20", "--threads", "2"];
    let run = on_bot("optimize", &bot, &candles, &args, dir.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 run of 5000 candles on 1 thread in"),
        "{}",
        run.stderr
    );
    // A walk-forward whose windows are too short to rank any set fails,
    // saying so, rather than report a return of 0.
    let args = [
        "--param",
        "fast=3,5",
        "--param",
        "slow=20,30",
        "--min-trades",
        "5",
    ];
    let walk = [
        "--walk-forward",
        "rolling",
        "--train",
        "30m",
        "--test",
        "10m",
    ];
    let run = on_bot(
        "optimize",
        &bot,
        &candles,
        &[&args[..], &walk[..]].concat(),
        dir.path(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("no window ranked a set"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("out of sample compounded: none"),
        "{}",
        run.stdout
    );
}

#[test]
fn optimize_and_import_refuse_what_cannot_work_up_front_and_output_may_be_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let candles = synthetic_candles(dir.path());
    let bot = repo().join("config/bots/ema-cross-btc.yaml");

    // Every value of a range must be one the plugin's schema takes (fast:
    // an integer from 1 to 10,000), and a range is bounded before it is
    // listed: refused before any run, not 20,001 failed runs and exit 0.
    for (params, expected) in [
        (["fast=abc", "slow=30"], r#"--param fast: "abc" is refused"#),
        (["fast=0..3", "slow=30"], "--param fast: 0 is refused"),
        (["fast=2..4000000000", "slow=30"], "more than the 10000"),
        (["colour=1,2", "slow=30"], "has no parameter `colour`"),
        // Each range fine, their grid of 10^8 sets too large to list (it
        // was listed whole, gigabytes, before any run).
        (
            ["fast=1..10000", "slow=2..10001"],
            "the grid has more than 100000 sets",
        ),
        // Values the schema takes, but no set the strategy accepts (slow
        // must exceed fast): every run fails, and that is a failure.
        (
            ["fast=30,40", "slow=10,20"],
            "every run failed, the first with:",
        ),
    ] {
        let run = on_bot(
            "optimize",
            &bot,
            &candles,
            &["--param", params[0], "--param", params[1]],
            dir.path(),
        );
        let line = one_line_error(&run);
        assert!(line.contains(expected), "{params:?}: {line}");
    }
    // No ranges and none the plugin offers (the rules plugin leaves its
    // position size out of a default search): ranges are asked for.
    let rules = repo().join("config/bots/rules-btc.yaml");
    let run = on_bot("optimize", &rules, &candles, &[], dir.path());
    let line = one_line_error(&run);
    assert!(line.contains("gives no default search"), "{line}");
    // An objective weighed twice is a slip, refused as the option's value.
    let args = ["--param", "fast=3", "--objective", "sharpe,Sharpe=2"];
    let run = on_bot("optimize", &bot, &candles, &args, dir.path());
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("`Sharpe` is given twice"),
        "{}",
        run.stderr
    );
    // Each sampler bounds the sets it draws, and the grid draws none, as
    // the API says.
    for (sampler, option, value, expected) in [
        (
            "random",
            "--trials",
            "100001",
            "--trials: must be between 1 and 100000",
        ),
        (
            "tpe",
            "--trials",
            "2001",
            "--trials: must be between 1 and 2000",
        ),
        ("grid", "--trials", "5", "are for --sampler random or tpe"),
        ("grid", "--seed", "9", "are for --sampler random or tpe"),
    ] {
        let run = on_bot(
            "optimize",
            &bot,
            &candles,
            &["--param", "fast=2,3", "--sampler", sampler, option, value],
            dir.path(),
        );
        let line = one_line_error(&run);
        assert!(line.contains(expected), "{sampler} {option}: {line}");
    }
    // A training window is for a walk forward only.
    let run = on_bot(
        "optimize",
        &bot,
        &candles,
        &["--param", "fast=2,3", "--train", "2d"],
        dir.path(),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--walk-forward"), "{}", run.stderr);

    // 1m candles imported as 5m: refused at the file line of the first
    // candle that is not 5 minutes after the one before, said once.
    let data_dir = dir.path().join("data");
    let import = |timeframe: &str| {
        stratbox(
            &[
                "data",
                "import",
                s(&candles),
                "--symbol",
                "BTCUSDT",
                "--timeframe",
                timeframe,
                "--data-dir",
                s(&data_dir),
            ],
            dir.path(),
        )
    };
    let line = one_line_error(&import("5m"));
    assert!(line.contains("line 3: time"), "{line}");
    assert_eq!(line.matches("line 3").count(), 1, "{line}");
    let run = import("1m");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // An export runs through the candle at `--to`; a date there, through
    // the end of that day.
    let exported = |to: &str| {
        let args = ["data", "export", "BTCUSDT/1m", "--to", to, "--data-dir"];
        let run = stratbox(&[&args[..], &[s(&data_dir)]].concat(), dir.path());
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        run.stdout.lines().skip(1).count()
    };
    assert_eq!(exported("2024-01-02"), 2 * 1440);
    assert_eq!(exported("2024-01-02T00:00:00Z"), 1440 + 1);

    // A data set of another timeframe than the bot's, or a range it does
    // not hold, is refused saying what there is.
    let plugins = plugin("ema-cross").parent().unwrap().to_path_buf();
    let on_data = |bot: &Path, extra: &[&str]| {
        let mut args = vec!["backtest", "--bot", s(bot), "--data", "BTCUSDT/1m"];
        args.extend(["--data-dir", s(&data_dir), "--plugins-dir", s(&plugins)]);
        args.extend(extra);
        stratbox(&args, dir.path())
    };
    let breakout = repo().join("config/bots/breakout-sol.yaml");
    let line = one_line_error(&on_data(&breakout, &[]));
    assert!(
        line.contains("BTCUSDT/1m holds 1m candles, the bot trades 15m ones"),
        "{line}"
    );
    let line = one_line_error(&on_data(&bot, &["--from", "2030-01-01"]));
    assert!(
        line.contains("--from: no candle opens at or after it: BTCUSDT/1m holds candles from"),
        "{line}"
    );
    // A config of another symbol runs on the data set's, with a note.
    let eth = dir.path().join("eth.yaml");
    let text = std::fs::read_to_string(&bot).unwrap();
    std::fs::write(&eth, text.replace("symbol: BTCUSDT", "symbol: ETHUSDT")).unwrap();
    let run = on_data(&eth, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("note: the config trades ETHUSDT, BTCUSDT/1m holds BTCUSDT"),
        "{}",
        run.stderr
    );
    // A data set that is not there is said to be missing, before the
    // config's timeframe is held against its name.
    let mut args = vec!["backtest", "--bot", s(&breakout), "--data", "ADAUSDT/15m"];
    args.extend(["--data-dir", s(&data_dir), "--plugins-dir", s(&plugins)]);
    let line = one_line_error(&stratbox(&args, dir.path()));
    assert!(line.contains("no data set ADAUSDT/15m"), "{line}");
    // A plugins folder without a plugin is named.
    let no_plugins = dir.path().join("no-plugins");
    std::fs::create_dir_all(&no_plugins).unwrap();
    let mut args = vec!["backtest", "--bot", s(&bot), "--data", "BTCUSDT/1m"];
    args.extend(["--data-dir", s(&data_dir), "--plugins-dir", s(&no_plugins)]);
    let run = stratbox(&args, dir.path());
    let line = one_line_error(&run);
    assert!(
        line.contains("holds no plugin (.wasm) to run `ema-cross`"),
        "{line}"
    );
    // An optimisation is checked as a backtest is, before any run: its
    // range, and its walk-forward windows.
    let optimize = |extra: &[&str]| {
        let mut args = vec!["optimize", "--bot", s(&bot), "--data", "BTCUSDT/1m"];
        args.extend(["--param", "fast=5,8", "--data-dir", s(&data_dir)]);
        args.extend(["--plugins-dir", s(&plugins)]);
        args.extend(extra);
        stratbox(&args, dir.path())
    };
    let line = one_line_error(&optimize(&["--from", "2030-01-01"]));
    assert!(
        line.contains("--from: no candle opens at or after it"),
        "{line}"
    );
    let walk = [
        "--walk-forward",
        "rolling",
        "--train",
        "300d",
        "--test",
        "10d",
    ];
    let line = one_line_error(&optimize(&walk));
    assert!(
        line.contains("--walk-forward: the selected")
            && line.contains("no training window of 300.0 days"),
        "{line}"
    );

    // Without a cache directory of its own, a command keeps compiled
    // plugins in its data directory, not in `data/` under the working one.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run: Run = std::process::Command::new(stratbox_tests::binary())
        .args(["backtest", "--bot", s(&bot), "--data", "BTCUSDT/1m"])
        .args(["--data-dir", s(&data_dir), "--plugins-dir", s(&plugins)])
        .current_dir(&elsewhere)
        .env_remove("STRATBOX_CACHE_DIR")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let cached = std::fs::read_dir(data_dir.join("plugin-cache")).unwrap();
    assert!(cached.count() > 0, "the compiled plugin is cached");
    assert!(!elsewhere.join("data").exists());

    // Output piped into a reader that stops early (`| head`) ends the
    // command quietly, without a panic.
    let mut export = std::process::Command::new(stratbox_tests::binary())
        .args(["data", "export", "BTCUSDT/1m", "--data-dir", s(&data_dir)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(export.stdout.take());
    let ended = export.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
}
