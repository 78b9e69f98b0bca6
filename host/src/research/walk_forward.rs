//! Walk-forward analysis: optimise on a training window, then run the best
//! set on the window right after it, which the optimisation never saw;
//! move on by one test window and do it again. Rolling windows keep their
//! length; anchored ones all start at the first candle. Test windows follow
//! each other without overlap, and every one starts where its training
//! window ends, so no decision is made with data from its future. Each
//! window's runs start flat and cold (the strategy warms up on the window's
//! own first candles), in-sample and out-of-sample alike.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use super::optimize::{Sets, Study, Trial, optimize, run_one};

/// How training windows grow.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// A training window of fixed length, moving with the test window.
    Rolling,
    /// Every training window starts at the first candle.
    Anchored,
}

/// What a length may be: a count and a unit (m for minutes, not months).
const SPAN_FORMS: &str = "a count and a unit, m (minutes), h, d or w, such as 90d, 12h or 4w";

/// `90d`, `12h`, `30m` (minutes) or `4w` in ms.
pub fn parse_span(text: &str) -> Result<i64, String> {
    let refused = || format!("`{text}` is not a length: {SPAN_FORMS}");
    // The unit is the last character, whatever its width in bytes.
    let unit = text.chars().last().ok_or_else(refused)?;
    let count = &text[..text.len() - unit.len_utf8()];
    let unit_ms = match unit {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 604_800_000,
        _ => return Err(refused()),
    };
    count
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && *n < 100_000)
        .map(|n| n * unit_ms)
        .ok_or_else(refused)
}

/// One step of a walk: open times, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub train_from: i64,
    pub train_to: i64,
    pub test_from: i64,
    pub test_to: i64,
}

/// The windows over candles opening from `first` up to `end` (exclusive):
/// training `train` ms, testing `test` ms, as many as fit whole.
pub fn windows(scheme: Scheme, first: i64, end: i64, train: i64, test: i64) -> Vec<Window> {
    if train <= 0 || test <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut test_from = first + train;
    while test_from + test <= end {
        out.push(Window {
            train_from: match scheme {
                Scheme::Rolling => test_from - train,
                Scheme::Anchored => first,
            },
            train_to: test_from,
            test_from,
            test_to: test_from + test,
        });
        test_from += test;
    }
    out
}

/// The return of holding each window's out-of-sample run in turn, in
/// percent: the windows' returns (in percent) compounded.
pub fn compounded_return_pct(returns_pct: impl IntoIterator<Item = f64>) -> f64 {
    let growth = returns_pct
        .into_iter()
        .fold(1.0, |growth, pct| growth * (1.0 + pct / 100.0));
    (growth - 1.0) * 100.0
}

/// Why a walk-forward found nothing, when no window ranked a set: no
/// out-of-sample run, so no return to report (0 % would be a lie).
pub fn nothing_ranked(windows: &[WindowResult]) -> Option<String> {
    windows
        .iter()
        .all(|window| window.in_sample.is_none())
        .then(|| {
            "no window ranked a set: in every training window each run failed, had no score \
             for the objective, or made fewer round trips than the minimum asked for \
             (longer training windows trade more)"
                .to_string()
        })
}

/// One window's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct WindowResult {
    pub window: Window,
    /// Runs made on the training window.
    pub runs: usize,
    /// The best ranked set on the training window, with its in-sample run;
    /// none when no set was ranked.
    pub in_sample: Option<Trial>,
    /// That set on the test window (scored whatever its trade count).
    pub out_of_sample: Option<Trial>,
}

/// Walk `study` through `windows`, trying `sets` on each training window.
/// `done` counts runs; `cancel` stops before the next run.
pub fn walk_forward(
    study: &Study<'_>,
    sets: &Sets,
    windows: &[Window],
    done: &AtomicUsize,
    cancel: &AtomicBool,
) -> Vec<WindowResult> {
    let slice = |from: i64, to: i64| {
        let start = study.candles.partition_point(|c| c.ts < from);
        let end = study.candles.partition_point(|c| c.ts < to);
        &study.candles[start..end]
    };
    let mut results = Vec::new();
    for window in windows {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let training = Study {
            candles: slice(window.train_from, window.train_to),
            ranking: study.ranking.clone(),
            options: study.options.clone(),
            ..*study
        };
        let trials = optimize(&training, sets, done, cancel);
        let runs = trials.len();
        let in_sample = trials
            .into_iter()
            .next()
            .filter(|trial| trial.score.is_some());
        let out_of_sample = in_sample.as_ref().map(|best| {
            let testing = Study {
                candles: slice(window.test_from, window.test_to),
                ranking: study.ranking.clone(),
                options: study.options.clone(),
                min_trades: 0,
                ..*study
            };
            let set = best.params.as_object().cloned().unwrap_or_default();
            run_one(&testing, &set)
        });
        results.push(WindowResult {
            window: *window,
            runs,
            in_sample,
            out_of_sample,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_windows_follow_each_other_after_their_training() {
        let day = 86_400_000;
        for scheme in [Scheme::Rolling, Scheme::Anchored] {
            let all = windows(scheme, 0, 100 * day, 30 * day, 10 * day);
            assert_eq!(all.len(), 7, "{scheme:?}");
            for pair in all.windows(2) {
                assert_eq!(pair[0].test_to, pair[1].test_from, "no gap, no overlap");
            }
            for window in &all {
                assert_eq!(window.train_to, window.test_from, "no look-ahead");
                assert!(window.train_from < window.train_to);
                match scheme {
                    Scheme::Rolling => assert_eq!(window.train_to - window.train_from, 30 * day),
                    Scheme::Anchored => assert_eq!(window.train_from, 0),
                }
            }
            assert_eq!(all[0].test_from, 30 * day);
            assert!(all[6].test_to <= 100 * day);
        }
        assert!(windows(Scheme::Rolling, 0, day, 2 * day, day).is_empty());
        assert!(windows(Scheme::Rolling, 0, day, 0, day).is_empty());
    }

    #[test]
    fn lengths_are_a_count_and_a_unit_and_anything_else_is_refused() {
        assert_eq!(parse_span("90d"), Ok(90 * 86_400_000));
        assert_eq!(parse_span("30m"), Ok(30 * 60_000));
        assert_eq!(parse_span("4w"), Ok(4 * 604_800_000));
        for text in [
            "", "d", "0d", "-1d", "9é", "é", "1dé", "100000d", "3M", "12",
        ] {
            let refused = parse_span(text).unwrap_err();
            assert!(refused.contains("is not a length"), "{text}: {refused}");
        }
    }
}
