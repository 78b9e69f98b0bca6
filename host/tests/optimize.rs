//! Parameter optimisation: the known best set wins on a series built for
//! it, threads change nothing but the time, cancelling stops it, weighted
//! rankings add up, walk-forward windows see only their own candles, and
//! the model-based sampler gets near the grid's best in a fraction of its
//! runs.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize};

use rust_decimal::Decimal;
use serde_json::json;
use stratbox_host::backtest::{self, BacktestOptions};
use stratbox_host::data::{SynthParams, synthesize};
use stratbox_host::domain::Candle;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::research::optimize::{
    Objective, ParamRange, Ranking, SearchSpace, Sets, Study, grid, optimize,
};
use stratbox_host::research::tpe::TpeSpec;
use support::load;

fn config() -> BotConfig {
    BotConfig::from_yaml(
        "id: opt\nname: opt\nstrategy: { plugin: ema-cross, params: { fast: 12, slow: 26, size: { percent_of_equity: 50 } } }\nmarket: { symbol: BTCUSDT, timeframe: 1m }\ncapital: { quote: USDT, initial: 10000 }\n",
    )
    .unwrap()
}

/// Down from 200 to 101, then up to 300: the quickest EMAs turn long first
/// after the bottom and gain the most.
fn v_shape() -> Vec<Candle> {
    let closes: Vec<i64> = (0..100)
        .map(|i| 200 - i)
        .chain((0..=200).map(|i| 100 + i))
        .collect();
    let mut previous = closes[0];
    closes
        .iter()
        .enumerate()
        .map(|(i, &close)| {
            let (open, close) = (Decimal::from(previous), Decimal::from(close));
            previous = close.try_into().unwrap();
            Candle {
                ts: 1_704_067_200_000 + i as i64 * 60_000,
                open,
                high: open.max(close),
                low: open.min(close),
                close,
                volume: Decimal::ONE,
            }
        })
        .collect()
}

fn space(fast: &str, slow: &str) -> SearchSpace {
    [
        ("fast".to_string(), ParamRange::parse(fast).unwrap()),
        ("slow".to_string(), ParamRange::parse(slow).unwrap()),
    ]
    .into_iter()
    .collect()
}

#[test]
fn the_known_best_set_wins_on_a_series_built_for_it() {
    let (config, plugin, candles) = (config(), load("ema-cross"), v_shape());
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions::default(),
        ranking: Ranking::single(Objective::TotalReturn),
        min_trades: 0,
        threads: 2,
    };
    let sets = Sets::Fixed(grid(&space("2,4", "8,16,32")));
    assert_eq!(sets.len(), 6);
    let trials = optimize(&study, &sets, &AtomicUsize::new(0), &AtomicBool::new(false));
    assert_eq!(trials.len(), 6);
    assert_eq!(trials[0].params["fast"], 2);
    assert_eq!(trials[0].params["slow"], 8);
    // Clearly: ahead of the next by more than a percentage point.
    assert!(
        trials[0].score.unwrap() > trials[1].score.unwrap() + 1.0,
        "{trials:?}"
    );
    // The base parameters the set does not name are kept.
    assert_eq!(trials[0].params["size"], json!({ "percent_of_equity": 50 }));
}

#[test]
fn threads_change_nothing_but_the_time_and_the_ranking_is_right() {
    let (config, plugin) = (config(), load("ema-cross"));
    let candles = synthesize(&SynthParams::new(20_000, 9));
    let sets = Sets::Fixed(grid(&space("3..9:3", "20..60:20")));
    let study = |threads| Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions::default(),
        ranking: Ranking::single(Objective::Sharpe),
        min_trades: 1,
        threads,
    };
    let run = |threads| {
        let done = AtomicUsize::new(0);
        let trials = optimize(&study(threads), &sets, &done, &AtomicBool::new(false));
        assert_eq!(done.into_inner(), sets.len());
        trials
    };
    let (one, two) = (run(1), run(2));
    let summary = |trials: &[stratbox_host::research::optimize::Trial]| -> Vec<String> {
        trials
            .iter()
            .map(|t| format!("{} {:?}", t.params, t.score))
            .collect()
    };
    assert_eq!(summary(&one), summary(&two));
    // The winner is the best of the same backtests run one by one.
    let Sets::Fixed(fixed) = &sets else {
        unreachable!()
    };
    let best = fixed
        .iter()
        .filter_map(|set| {
            let mut config = config.clone();
            let mut params = config.strategy.params.as_object().unwrap().clone();
            params.extend(set.clone());
            config.strategy.params = params.into();
            let result =
                backtest::run(&config, &plugin, &candles, &BacktestOptions::default()).ok()?;
            (result.metrics.trades >= 1).then_some(result.metrics.sharpe?)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(one[0].score, Some(best));
}

#[test]
fn a_cancelled_study_stops_before_its_next_run() {
    let (config, plugin) = (config(), load("ema-cross"));
    let candles = synthesize(&SynthParams::new(2_000, 1));
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions::default(),
        ranking: Ranking::single(Objective::Sharpe),
        min_trades: 0,
        threads: 2,
    };
    let sets = Sets::Fixed(grid(&space("2..10:1", "20..40:5")));
    let done = AtomicUsize::new(0);
    let trials = optimize(&study, &sets, &done, &AtomicBool::new(true));
    assert!(trials.is_empty());
    assert_eq!(done.into_inner(), 0);
}

#[test]
fn walk_forward_windows_see_only_their_own_candles() {
    use stratbox_host::research::walk_forward::{Scheme, walk_forward, windows};
    let (config, plugin) = (config(), load("ema-cross"));
    let candles = synthesize(&SynthParams::new(3_000, 4));
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions::default(),
        ranking: Ranking::parse("total-return=1,max-drawdown=0.5").unwrap(),
        min_trades: 1,
        threads: 2,
    };
    let sets = Sets::Fixed(grid(&space("2..6:2", "10..30:10")));
    let (first, step) = (candles[0].ts, 60_000);
    for scheme in [Scheme::Rolling, Scheme::Anchored] {
        let plan = windows(
            scheme,
            first,
            first + 3_000 * step,
            1_000 * step,
            500 * step,
        );
        assert_eq!(plan.len(), 4);
        let done = AtomicUsize::new(0);
        let results = walk_forward(&study, &sets, &plan, &done, &AtomicBool::new(false));
        assert_eq!(done.into_inner(), 4 * sets.len());
        for (result, window) in results.iter().zip(&plan) {
            let slice = |from: i64, to: i64| -> Vec<Candle> {
                candles
                    .iter()
                    .filter(|c| c.ts >= from && c.ts < to)
                    .copied()
                    .collect()
            };
            // In sample: the same ranking as an optimisation of the
            // training candles alone.
            let training = slice(window.train_from, window.train_to);
            let alone = optimize(
                &Study {
                    candles: &training,
                    ranking: study.ranking.clone(),
                    options: BacktestOptions::default(),
                    ..study
                },
                &sets,
                &AtomicUsize::new(0),
                &AtomicBool::new(false),
            );
            let best = result.in_sample.as_ref().expect("a ranked set");
            assert_eq!(best.params, alone[0].params);
            assert_eq!(best.score, alone[0].score);
            // Out of sample: that set backtested on the test candles alone.
            let mut tested = config.clone();
            tested.strategy.params = best.params.clone();
            let outcome = backtest::run(
                &tested,
                &plugin,
                &slice(window.test_from, window.test_to),
                &BacktestOptions::default(),
            )
            .unwrap();
            let out = result.out_of_sample.as_ref().unwrap();
            assert_eq!(out.metrics.as_ref(), Some(&outcome.metrics));
            assert_eq!(out.score, study.ranking.score(&outcome.metrics));
        }
    }
}

#[test]
fn a_weighted_ranking_sums_its_parts() {
    let ranking = Ranking::parse("sharpe=2, max-drawdown=0.5").unwrap();
    let candles = synthesize(&SynthParams::new(5_000, 2));
    let result = backtest::run(
        &config(),
        &load("ema-cross"),
        &candles,
        &BacktestOptions::default(),
    )
    .unwrap();
    let metrics = &result.metrics;
    assert_eq!(
        ranking.score(metrics),
        Some(2.0 * metrics.sharpe.unwrap() - 0.5 * metrics.max_drawdown_pct)
    );
    // Weights near f64's limits would sum to infinity, which JSON writes as
    // null: a run "best" with no score. They are refused.
    let huge = Ranking::parse("sharpe=1e308,max-drawdown=1e308").unwrap_err();
    assert!(huge.contains("at most 1000000"), "{huge}");
    assert!(Ranking::parse("sharpe=-1000000").is_ok());
    assert!(Ranking::parse("sharpe=x").is_err());
    assert!(Ranking::parse("alpha").is_err());
    assert_eq!(
        Ranking::parse("calmar").unwrap(),
        Ranking::single(Objective::Calmar)
    );
}

#[test]
fn the_model_based_sampler_gets_near_the_grid_best_in_a_fifth_of_its_runs() {
    let (config, plugin) = (config(), load("ema-cross"));
    let candles = synthesize(&SynthParams::new(20_000, 4));
    let space = space("2..16:1", "20..200:10");
    let study = Study {
        config: &config,
        plugin: &plugin,
        candles: &candles,
        options: BacktestOptions::default(),
        ranking: Ranking::single(Objective::TotalReturn),
        min_trades: 1,
        threads: 2,
    };
    let (done, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    let everything = optimize(&study, &Sets::Fixed(grid(&space)), &done, &cancel);
    assert_eq!(everything.len(), 15 * 19);
    let scores: Vec<f64> = everything.iter().filter_map(|t| t.score).collect();
    let tpe = Sets::Tpe(TpeSpec {
        space: space.clone(),
        trials: 57,
        seed: 3,
    });
    // One thread: the sets then depend on the seed alone.
    let done = AtomicUsize::new(0);
    let one = Study {
        threads: 1,
        ..study
    };
    let searched = optimize(&one, &tpe, &done, &cancel);
    assert_eq!(done.into_inner(), 57);
    let distinct: std::collections::BTreeSet<String> =
        searched.iter().map(|t| t.params.to_string()).collect();
    assert_eq!(distinct.len(), 57, "no set run twice");
    // Its best is among the grid's best tenth.
    let best = searched[0].score.unwrap();
    let better = scores.iter().filter(|score| **score > best).count();
    assert!(
        better < scores.len() / 10,
        "{better} of {} grid runs beat the model's best {best}",
        scores.len()
    );
}
