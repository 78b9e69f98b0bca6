//! Parameter optimisation: many backtests of one strategy over the same
//! candles, each with other parameters, on every core, ranked by an
//! objective. Parameter ranges come from the plugin's parameter schema
//! (its `x-search` keywords, else its bounds and enums) unless given; sets
//! are a full grid, a seeded random sample, or proposed one at a time by a
//! model of the runs so far ([`super::tpe`]). Grid and random runs are deterministic: the same
//! ranges, sampler and seed give the same sets, and each backtest is
//! byte-identical whatever thread ran it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::backtest::{self, BacktestOptions};
use crate::domain::Candle;
use crate::domain::config::BotConfig;
use crate::engine::metrics::Metrics;
use crate::plugin::Plugin;

use super::jobs::SamplerSpec;
use super::tpe::{Tpe, TpeSpec};

/// Values a grid takes per parameter when its range comes from a schema.
const DEFAULT_STEPS: u32 = 10;

/// The values one parameter may take.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamRange {
    /// Integers from `min` to `max` (inclusive) by `step`.
    Int { min: i64, max: i64, step: i64 },
    /// Numbers from `min` to `max` (inclusive) by `step`.
    Number { min: f64, max: f64, step: f64 },
    /// One of these values.
    Choice(Vec<Value>),
}

/// Values one parameter's range may hold: more than any search a person
/// means, few enough to list (a wider range would be listed in memory).
pub const MAX_RANGE_VALUES: u64 = 10_000;

impl ParamRange {
    /// How many values the range holds, without listing them.
    pub fn len(&self) -> u64 {
        match self {
            ParamRange::Int { min, max, step } => {
                let span = i128::from(*max) - i128::from(*min);
                if span < 0 {
                    return 0;
                }
                u64::try_from(span / i128::from((*step).max(1)) + 1).unwrap_or(u64::MAX)
            }
            // A hair of tolerance: (0.3 - 0.1) / 0.1 is 1.9999999999999998.
            // (Saturates: a float that large casts to u64::MAX.)
            ParamRange::Number { min, max, step } => {
                (((max - min) / step + 1e-9).floor().max(0.0) as u64).saturating_add(1)
            }
            ParamRange::Choice(values) => values.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value of the range, in order.
    pub fn values(&self) -> Vec<Value> {
        match self {
            // Stepped, not multiplied: `i * step` may overflow where every
            // value fits.
            ParamRange::Int { min, step, .. } => {
                std::iter::successors(Some(*min), |value| value.checked_add(*step))
                    .take(self.len() as usize)
                    .map(Value::from)
                    .collect()
            }
            ParamRange::Number { min, step, .. } => (0..self.len())
                .map(|i| {
                    // Rounded to the step's decimals, so 0.1 steps read 0.3, not 0.30000000000000004.
                    let value = min + i as f64 * step;
                    Value::from((value * 1e9).round() / 1e9)
                })
                .collect(),
            ParamRange::Choice(values) => values.clone(),
        }
    }

    /// `MIN..MAX[:STEP]` (integers when all are) or `A,B,C`, holding at
    /// most [`MAX_RANGE_VALUES`] values.
    pub fn parse(text: &str) -> Result<Self, String> {
        let range = Self::parse_unbounded(text)?;
        match range.len() {
            count if count > MAX_RANGE_VALUES => Err(format!(
                "`{text}` holds {} values, more than the {MAX_RANGE_VALUES} a range may: narrow it or raise the step",
                if count == u64::MAX {
                    "too many".to_string()
                } else {
                    count.to_string()
                }
            )),
            _ => Ok(range),
        }
    }

    fn parse_unbounded(text: &str) -> Result<Self, String> {
        if let Some((min, rest)) = text.split_once("..") {
            let (max, step) = rest
                .split_once(':')
                .map_or((rest, None), |(m, s)| (m, Some(s)));
            // Integers when all three are whole (`1..4:0.5` is a range of
            // numbers, `1..4:1.0` one of integers).
            let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let whole = |s: &str| {
                s.trim().parse::<i64>().ok().or_else(|| {
                    number(s)
                        .filter(|v| v.fract() == 0.0 && v.abs() < 9e15)
                        .map(|v| v as i64)
                })
            };
            let whole_step = step.map_or(Some(1), whole);
            let (whole_min, whole_max) = (min.trim().parse::<i64>(), max.trim().parse::<i64>());
            if let (Ok(min), Ok(max), Some(step)) = (whole_min, whole_max, whole_step) {
                if step <= 0 || max < min {
                    return Err(format!(
                        "`{text}`: expected MIN..MAX:STEP with MIN <= MAX and STEP > 0"
                    ));
                }
                return Ok(ParamRange::Int { min, max, step });
            }
            let (Some(min), Some(max)) = (number(min), number(max)) else {
                return Err(format!("`{text}` is not MIN..MAX[:STEP]"));
            };
            let step = match step {
                Some(step) => number(step).ok_or_else(|| format!("`{text}`: bad step"))?,
                None => (max - min) / f64::from(DEFAULT_STEPS - 1),
            };
            // A span too wide for a float has no finite step.
            if !step.is_finite() || step <= 0.0 || max < min {
                return Err(format!(
                    "`{text}`: expected MIN..MAX:STEP with MIN <= MAX and a finite STEP > 0"
                ));
            }
            return Ok(ParamRange::Number { min, max, step });
        }
        let values: Vec<Value> = text
            .split(',')
            .map(|item| {
                serde_json::from_str(item.trim()).unwrap_or_else(|_| Value::from(item.trim()))
            })
            .collect();
        Ok(ParamRange::Choice(values))
    }
}

/// The range in the syntax [`ParamRange::parse`] reads.
impl std::fmt::Display for ParamRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamRange::Int { min, max, step } => write!(f, "{min}..{max}:{step}"),
            ParamRange::Number { min, max, step } => {
                write!(
                    f,
                    "{}..{}:{}",
                    Value::from(*min),
                    Value::from(*max),
                    Value::from(*step)
                )
            }
            // A string bare where it reads back as itself, else quoted
            // (`"1"`, `"true"`); one holding a comma or `..` cannot be
            // written in this syntax.
            ParamRange::Choice(values) => {
                let items: Vec<String> = values
                    .iter()
                    .map(|value| match value {
                        Value::String(text)
                            if !text.is_empty()
                                && text.trim() == text
                                && serde_json::from_str::<Value>(text).is_err() =>
                        {
                            text.clone()
                        }
                        other => other.to_string(),
                    })
                    .collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// The parameters searched, by name.
pub type SearchSpace = BTreeMap<String, ParamRange>;

/// The schema keyword by which a plugin gives a parameter's default search:
/// a range in the syntax of `--param` (`"3..21:2"`, `"0.5..4:0.5"`,
/// `"a,b"`), or `false` to leave the parameter out of it. A schema's
/// bounds say what may run, rarely what is worth searching: a period
/// bounded 1..10000 searched in ten steps tries 1, 1112, 2223...
pub const SEARCH_KEYWORD: &str = "x-search";

/// A schema's default search: its parameters' ranges, and why a
/// parameter's [`SEARCH_KEYWORD`] was not used (it then falls back to the
/// bounds).
#[derive(Debug, Default, PartialEq)]
pub struct SchemaSearch {
    pub space: SearchSpace,
    /// Parameter name and what is wrong with its keyword.
    pub problems: Vec<(String, String)>,
}

/// Ranges for the top-level parameters of a schema: what a parameter's
/// [`SEARCH_KEYWORD`] says, else its minimum and maximum (about ten values
/// for an integer or a number) or its enum (also through a `$ref` to a
/// definition).
pub fn space_from_schema(schema: &Value) -> SearchSpace {
    schema_search(schema).space
}

/// Each parameter's range as `--param` and the API's `params` write it.
pub fn written(space: &SearchSpace) -> BTreeMap<String, String> {
    space
        .iter()
        .map(|(name, range)| (name.clone(), range.to_string()))
        .collect()
}

/// [`written`] if every range reads back as itself, else `None`: a choice
/// from a schema's `enum` may hold a value with a comma or `..`, which this
/// syntax cannot write.
pub fn written_exactly(space: &SearchSpace) -> Option<BTreeMap<String, String>> {
    let ranges = written(space);
    ranges
        .iter()
        .all(|(name, text)| ParamRange::parse(text).as_ref() == Ok(&space[name]))
        .then_some(ranges)
}

/// [`space_from_schema`], with the problems of the schema's search keywords.
pub fn schema_search(schema: &Value) -> SchemaSearch {
    let mut search = SchemaSearch::default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return search;
    };
    for (name, property) in properties {
        let property = resolve_ref(schema, property);
        let hint = properties[name]
            .get(SEARCH_KEYWORD)
            .or_else(|| property.get(SEARCH_KEYWORD));
        match hint.map(parse_hint) {
            Some(Ok(Some(range))) => {
                search.space.insert(name.clone(), range);
                continue;
            }
            Some(Ok(None)) => continue,
            Some(Err(problem)) => search.problems.push((name.clone(), problem)),
            None => {}
        }
        if let Some(range) = range_of_bounds(property) {
            search.space.insert(name.clone(), range);
        }
    }
    search
}

/// A [`SEARCH_KEYWORD`]'s range, or none for `false`.
fn parse_hint(hint: &Value) -> Result<Option<ParamRange>, String> {
    match hint {
        Value::Bool(false) => Ok(None),
        Value::String(text) => ParamRange::parse(text).map(Some),
        other => Err(format!(
            "`{SEARCH_KEYWORD}` is a range such as \"3..21:2\" or false, not {other}"
        )),
    }
}

/// A parameter's enum, or about ten values from its minimum to its maximum.
fn range_of_bounds(property: &Value) -> Option<ParamRange> {
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return Some(ParamRange::Choice(values.clone()));
    }
    let bound = |key: &str| property.get(key).and_then(Value::as_f64);
    let (min, max) = (bound("minimum")?, bound("maximum")?);
    // Bounds are the plugin's (untrusted): no overflow, no empty or
    // unending range.
    match property.get("type").and_then(Value::as_str) {
        Some("integer") if max.floor() >= min.ceil() => {
            let (min, max) = (min.ceil() as i64, max.floor() as i64);
            let span = i128::from(max) - i128::from(min);
            let step = i64::try_from(span / i128::from(DEFAULT_STEPS - 1)).unwrap_or(i64::MAX);
            Some(ParamRange::Int {
                min,
                max,
                step: step.max(1),
            })
        }
        Some("number") if max > min => {
            let step = (max - min) / f64::from(DEFAULT_STEPS - 1);
            step.is_finite()
                .then_some(ParamRange::Number { min, max, step })
        }
        _ => None,
    }
}

fn resolve_ref<'a>(schema: &'a Value, property: &'a Value) -> &'a Value {
    property
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|path| path.strip_prefix('#'))
        .and_then(|pointer| schema.pointer(pointer))
        .unwrap_or(property)
}

/// Why `space` cannot be searched with `plugin` from the bot's `params`,
/// by parameter name: a parameter the plugin does not have, or the first
/// value of the range its schema refuses. Each value is tried with the
/// bot's other parameters as they are, so a schema tying two searched
/// parameters together (`if`/`then`) could refuse a value that suits the
/// other's range; the example plugins check such ties in `init`, where a
/// refused set is a failed run.
pub fn space_issues(space: &SearchSpace, plugin: &Plugin, params: &Value) -> Vec<(String, String)> {
    let info = plugin.info();
    let mut found = Vec::new();
    for (name, range) in space {
        if info.params_schema["properties"].get(name).is_none() {
            found.push((
                name.clone(),
                format!("`{}` has no parameter `{name}`", info.name),
            ));
            continue;
        }
        let mut trial = Value::Object(params.as_object().cloned().unwrap_or_default());
        for value in range.values() {
            if let Some(set) = trial.as_object_mut() {
                set.insert(name.clone(), value.clone());
            }
            if let Some(issue) = plugin.validate_params(&trial).into_iter().next() {
                found.push((
                    name.clone(),
                    format!("{value} is refused: {}", issue.message),
                ));
                break;
            }
        }
    }
    found
}

/// The first run's error when every run failed: a study that ranked
/// nothing because nothing ran is a failure, not a result.
pub fn every_run_failed(trials: &[Trial]) -> Option<&str> {
    let first = trials.first()?.error.as_deref()?;
    trials.iter().all(|t| t.error.is_some()).then_some(first)
}

/// Every combination of the space's values (the last parameter varies
/// fastest).
pub fn grid(space: &SearchSpace) -> Vec<Map<String, Value>> {
    let mut sets = vec![Map::new()];
    for (name, range) in space {
        let values = range.values();
        sets = sets
            .into_iter()
            .flat_map(|set| {
                values.iter().map(move |value| {
                    let mut set = set.clone();
                    set.insert(name.clone(), value.clone());
                    set
                })
            })
            .collect();
    }
    sets
}

/// `count` distinct sets drawn uniformly from the space's values, seeded
/// (every set of the space, shuffled, when it holds `count` or fewer).
pub fn random(space: &SearchSpace, count: usize, seed: u64) -> Vec<Map<String, Value>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<(&String, Vec<Value>)> = space
        .iter()
        .map(|(n, r)| (n, r.values()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let set_at = |picks: &[usize]| -> Map<String, Value> {
        values
            .iter()
            .zip(picks)
            .map(|((name, v), &pick)| ((*name).clone(), v[pick].clone()))
            .collect()
    };
    let size = values
        .iter()
        .try_fold(1usize, |size, (_, v)| size.checked_mul(v.len()));
    // A sample of half the space or more: the space itself, shuffled, cut
    // to `count` (all of it when `count` is larger).
    if let Some(size) = size
        && count.saturating_mul(2) >= size
    {
        let mut order: Vec<usize> = (0..size).collect();
        order.shuffle(&mut rng);
        order.truncate(count);
        return order
            .into_iter()
            .map(|mut index| {
                let mut picks = vec![0; values.len()];
                for (pick, (_, v)) in picks.iter_mut().zip(&values).rev() {
                    *pick = index % v.len();
                    index /= v.len();
                }
                set_at(&picks)
            })
            .collect();
    }
    // A smaller one: draws, each set once (a set drawn again is drawn anew).
    let mut drawn = std::collections::HashSet::with_capacity(count);
    let mut sets = Vec::with_capacity(count);
    while sets.len() < count {
        let picks: Vec<usize> = values
            .iter()
            .map(|(_, v)| rng.random_range(0..v.len()))
            .collect();
        if drawn.insert(picks.clone()) {
            sets.push(set_at(&picks));
        }
    }
    sets
}

/// Where a study's parameter sets come from.
#[derive(Debug, Clone)]
pub enum Sets {
    /// Known before the first run (a grid, a random sample).
    Fixed(Vec<Map<String, Value>>),
    /// Proposed one at a time from the runs finished so far; a fresh search
    /// for every study (every walk-forward window).
    Tpe(TpeSpec),
}

impl Sets {
    /// The sets `sampler` makes of `space`.
    pub fn of(sampler: &SamplerSpec, space: &SearchSpace) -> Self {
        match *sampler {
            SamplerSpec::Grid => Sets::Fixed(grid(space)),
            SamplerSpec::Random { trials, seed } => Sets::Fixed(random(space, trials, seed)),
            SamplerSpec::Tpe { trials, seed } => Sets::Tpe(TpeSpec {
                space: space.clone(),
                trials,
                seed,
            }),
        }
    }

    /// How many runs a study makes at most.
    pub fn len(&self) -> usize {
        match self {
            Sets::Fixed(sets) => sets.len(),
            Sets::Tpe(spec) => spec.sets(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A study's sets as its workers take them: numbered, and told their score.
trait SetSource: Sync {
    fn ask(&self) -> Option<(usize, Map<String, Value>)>;
    fn tell(&self, number: usize, score: Option<f64>);
}

struct FixedSource<'a> {
    sets: &'a [Map<String, Value>],
    next: AtomicUsize,
}

impl SetSource for FixedSource<'_> {
    fn ask(&self) -> Option<(usize, Map<String, Value>)> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        self.sets.get(number).map(|set| (number, set.clone()))
    }

    fn tell(&self, _: usize, _: Option<f64>) {}
}

impl SetSource for Tpe {
    fn ask(&self) -> Option<(usize, Map<String, Value>)> {
        Tpe::ask(self)
    }

    fn tell(&self, number: usize, score: Option<f64>) {
        Tpe::tell(self, number, score);
    }
}

/// What a run is ranked by (higher is better; drawdown counts negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Sharpe,
    Sortino,
    Calmar,
    TotalReturn,
    ProfitFactor,
    MaxDrawdown,
}

impl Objective {
    pub fn score(self, metrics: &Metrics) -> Option<f64> {
        let score = match self {
            Objective::Sharpe => metrics.sharpe?,
            Objective::Sortino => metrics.sortino?,
            Objective::Calmar => metrics.calmar?,
            Objective::TotalReturn => metrics.total_return_pct,
            Objective::ProfitFactor => metrics.profit_factor?,
            Objective::MaxDrawdown => -metrics.max_drawdown_pct,
        };
        score.is_finite().then_some(score)
    }
}

/// The largest weight a ranking's part takes (either sign): far beyond any
/// sensible mix, and far from where a weighted sum could leave f64's range.
pub const MAX_WEIGHT: f64 = 1_000_000.0;

/// What runs are ranked by: one objective, or a weighted sum of several
/// (`sharpe=1,max-drawdown=0.05`). A run whose any part is undefined is
/// not ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking(pub Vec<(Objective, f64)>);

impl Ranking {
    pub fn single(objective: Objective) -> Self {
        Self(vec![(objective, 1.0)])
    }

    /// `sharpe`, or `sharpe=0.7,calmar=0.3` (names as `--objective` takes
    /// them; a part without `=WEIGHT` weighs 1).
    pub fn parse(text: &str) -> Result<Self, String> {
        use clap::ValueEnum;
        let parts = text
            .split(',')
            .map(|part| {
                let (name, weight) = match part.split_once('=') {
                    Some((name, weight)) => (
                        name.trim(),
                        weight
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|w| w.is_finite())
                            .ok_or_else(|| format!("`{weight}` is not a weight"))
                            .and_then(|w| {
                                if w.abs() <= MAX_WEIGHT {
                                    Ok(w)
                                } else {
                                    Err(format!("`{weight}`: a weight is at most {MAX_WEIGHT} in size"))
                                }
                            })?,
                    ),
                    None => (part.trim(), 1.0),
                };
                let objective = Objective::from_str(name, true).map_err(|_| {
                    format!(
                        "`{name}` is not an objective (sharpe, sortino, calmar, total-return, profit-factor, max-drawdown)"
                    )
                })?;
                Ok((name, objective, weight))
            })
            .collect::<Result<Vec<(&str, Objective, f64)>, String>>()?;
        if parts.is_empty() {
            return Err("no objective given".into());
        }
        // A second weight for one objective is a slip, not a sum of both.
        for (index, (name, objective, _)) in parts.iter().enumerate() {
            if parts[..index]
                .iter()
                .any(|(_, earlier, _)| earlier == objective)
            {
                return Err(format!("`{name}` is given twice"));
            }
        }
        Ok(Self(
            parts
                .into_iter()
                .map(|(_, objective, weight)| (objective, weight))
                .collect(),
        ))
    }

    /// The weighted sum; none when a part is undefined or the sum leaves
    /// f64's range (weights near its limits).
    pub fn score(&self, metrics: &Metrics) -> Option<f64> {
        let sum: Option<f64> = self
            .0
            .iter()
            .map(|(objective, weight)| objective.score(metrics).map(|score| score * weight))
            .sum();
        sum.filter(|sum| sum.is_finite())
    }

    /// How it reads in a table header.
    pub fn name(&self) -> String {
        self.0
            .iter()
            .map(|(objective, weight)| {
                use clap::ValueEnum;
                let name = objective
                    .to_possible_value()
                    .map(|value| value.get_name().to_string())
                    .unwrap_or_default();
                if self.0.len() == 1 {
                    name
                } else {
                    format!("{name}={weight}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One parameter set's run.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The strategy parameters this run used (the base ones with the set's
    /// values over them).
    pub params: Value,
    /// The objective's value; none when the run failed, made fewer trades
    /// than asked, or the metric is undefined (no trades, no losses).
    pub score: Option<f64>,
    pub metrics: Option<Metrics>,
    pub error: Option<String>,
}

/// What to optimise.
pub struct Study<'a> {
    pub config: &'a BotConfig,
    pub plugin: &'a Plugin,
    pub candles: &'a [Candle],
    pub options: BacktestOptions,
    pub ranking: Ranking,
    /// Runs with fewer round trips are not ranked.
    pub min_trades: usize,
    /// Worker threads (at least 1).
    pub threads: usize,
}

/// Run the sets on `study.threads` threads, each taking the next set when
/// it is free; trials ranked best first (unranked ones last, in set order).
/// `done` counts finished runs; `cancel` stops the study before the next
/// run.
pub fn optimize(
    study: &Study<'_>,
    sets: &Sets,
    done: &AtomicUsize,
    cancel: &AtomicBool,
) -> Vec<Trial> {
    let tpe;
    let fixed;
    let source: &dyn SetSource = match sets {
        Sets::Fixed(sets) => {
            fixed = FixedSource {
                sets,
                next: AtomicUsize::new(0),
            };
            &fixed
        }
        Sets::Tpe(spec) => {
            tpe = Tpe::new(spec);
            &tpe
        }
    };
    let mut trials: Vec<Option<Trial>> = vec![None; sets.len()];
    let results = std::sync::Mutex::new(&mut trials);
    std::thread::scope(|scope| {
        for _ in 0..study.threads.max(1) {
            scope.spawn(|| {
                while !cancel.load(Ordering::Relaxed) {
                    let Some((number, set)) = source.ask() else {
                        return;
                    };
                    let trial = run_one(study, &set);
                    source.tell(number, trial.score);
                    if let Some(slot) = results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_mut(number)
                    {
                        *slot = Some(trial);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let mut trials: Vec<Trial> = trials.into_iter().flatten().collect();
    // Stable: ties keep set order, so the ranking is deterministic.
    trials.sort_by(|a, b| match (a.score, b.score) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    trials
}

/// Run `work` (runs counted in its first argument, stopped by its second)
/// on a thread of its own, telling `watch` the runs done every 100 ms until
/// it ends; `watch` answering true cancels it.
pub fn watched<T: Send>(
    work: impl FnOnce(&AtomicUsize, &AtomicBool) -> T + Send,
    mut watch: impl FnMut(usize) -> bool,
) -> T {
    let (done, cancel) = (AtomicUsize::new(0), AtomicBool::new(false));
    std::thread::scope(|scope| {
        let running = scope.spawn(|| work(&done, &cancel));
        while !running.is_finished() {
            if watch(done.load(Ordering::Relaxed)) {
                cancel.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        running.join().expect("the runs finished")
    })
}

pub(crate) fn run_one(study: &Study<'_>, set: &Map<String, Value>) -> Trial {
    let mut config = study.config.clone();
    let mut params = config
        .strategy
        .params
        .as_object()
        .cloned()
        .unwrap_or_default();
    params.extend(set.clone());
    config.strategy.params = Value::Object(params);
    let params = config.strategy.params.clone();
    match backtest::run(&config, study.plugin, study.candles, &study.options) {
        Ok(result) => {
            let score = (result.metrics.trades >= study.min_trades)
                .then(|| study.ranking.score(&result.metrics))
                .flatten();
            Trial {
                params,
                score,
                metrics: Some(result.metrics),
                error: None,
            }
        }
        Err(error) => Trial {
            params,
            score: None,
            metrics: None,
            error: Some(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ranking_weighs_each_objective_once() {
        let mix = Ranking::parse("sharpe=1, max-drawdown=0.05").unwrap();
        assert_eq!(
            mix.0,
            [(Objective::Sharpe, 1.0), (Objective::MaxDrawdown, 0.05)]
        );
        assert_eq!(
            Ranking::parse("sharpe=1,calmar,Sharpe=2").unwrap_err(),
            "`Sharpe` is given twice"
        );
        assert_eq!(
            Ranking::parse("sharpe,sharpe").unwrap_err(),
            "`sharpe` is given twice"
        );
    }

    #[test]
    fn ranges_parse_and_expand() {
        assert_eq!(
            ParamRange::parse("5..20:5").unwrap().values(),
            [json!(5), json!(10), json!(15), json!(20)]
        );
        assert_eq!(
            ParamRange::parse("0.1..0.3:0.1").unwrap().values(),
            [json!(0.1), json!(0.2), json!(0.3)]
        );
        assert_eq!(
            ParamRange::parse("sma,first_value").unwrap().values(),
            [json!("sma"), json!("first_value")]
        );
        // Whole bounds with a fractional step: a range of numbers.
        assert_eq!(
            ParamRange::parse("1..2:0.5").unwrap().values(),
            [json!(1.0), json!(1.5), json!(2.0)]
        );
        // A whole step written as a float still steps integers.
        assert_eq!(
            ParamRange::parse("1..4:1.0"),
            Ok(ParamRange::Int {
                min: 1,
                max: 4,
                step: 1
            })
        );
        assert!(ParamRange::parse("9..3").is_err());
        assert!(ParamRange::parse("1..5:0").is_err());
        // Too wide for a finite step.
        assert!(ParamRange::parse("-1e308..1e308").is_err());
        // Strings that read as other JSON are quoted, and read back as
        // strings.
        let choice = ParamRange::Choice(vec![
            json!("1"),
            json!("true"),
            json!("sma"),
            json!(2),
            json!(" x"),
        ]);
        assert_eq!(choice.to_string(), r#""1","true",sma,2," x""#);
        assert_eq!(ParamRange::parse(&choice.to_string()), Ok(choice));
    }

    #[test]
    fn a_study_failed_only_when_every_run_did() {
        let run = |error: Option<&str>| Trial {
            params: json!({}),
            score: None,
            metrics: None,
            error: error.map(str::to_string),
        };
        assert_eq!(
            every_run_failed(&[run(Some("a")), run(Some("b"))]),
            Some("a")
        );
        assert_eq!(every_run_failed(&[run(Some("a")), run(None)]), None);
        assert_eq!(every_run_failed(&[run(None), run(Some("b"))]), None);
        assert_eq!(every_run_failed(&[]), None);
    }

    #[test]
    fn ranges_are_bounded_before_they_are_listed() {
        assert_eq!(ParamRange::parse("1..10000").unwrap().len(), 10_000);
        for wide in [
            "1..10001",
            "0..4000000000",
            "-9223372036854775808..9223372036854775807",
            "0..1e300:1e-300",
            "0.0..1.0:0.00001",
        ] {
            let refused = ParamRange::parse(wide).unwrap_err();
            assert!(refused.contains("more than the 10000"), "{wide}: {refused}");
        }
        let wide_steps =
            ParamRange::parse("-6000000000000000000..6000000000000000000:6000000000000000000")
                .unwrap();
        assert_eq!(
            wide_steps.values(),
            [
                json!(-6000000000000000000i64),
                json!(0),
                json!(6000000000000000000i64)
            ]
        );
        let reversed = ParamRange::Int {
            min: 1,
            max: 0,
            step: 1,
        };
        assert_eq!((reversed.len(), reversed.values()), (0, vec![]));
        let top = ParamRange::parse("9223372036854775800..9223372036854775807:3").unwrap();
        assert_eq!(
            top.values(),
            [
                json!(9223372036854775800i64),
                json!(9223372036854775803i64),
                json!(9223372036854775806i64)
            ]
        );
    }

    #[test]
    fn search_keywords_choose_the_default_search() {
        let schema = json!({
            "$defs": { "Seed": { "enum": ["a", "b"], "type": "string" } },
            "properties": {
                "fast": { "type": "integer", "minimum": 1, "maximum": 10000, "x-search": "3..21:2" },
                "stop": { "type": "number", "minimum": 0.1, "maximum": 20, "x-search": "0.5..2:0.5" },
                "seed": { "$ref": "#/$defs/Seed", "x-search": "b" },
                "size": { "type": "number", "minimum": 0.01, "maximum": 100, "x-search": false },
                "slow": { "type": "integer", "minimum": 2, "maximum": 11, "x-search": 5 },
                "exit": { "type": "integer", "minimum": 1, "maximum": 10, "x-search": "9..3" }
            }
        });
        let search = schema_search(&schema);
        assert_eq!(
            search.space["fast"],
            ParamRange::Int {
                min: 3,
                max: 21,
                step: 2
            }
        );
        assert_eq!(search.space["fast"].values().len(), 10);
        let stops: Vec<Value> = search.space["stop"].values();
        assert_eq!(stops, vec![json!(0.5), json!(1.0), json!(1.5), json!(2.0)]);
        assert_eq!(search.space["seed"], ParamRange::Choice(vec![json!("b")]));
        assert!(!search.space.contains_key("size"), "false leaves it out");
        // A keyword that says nothing usable: named, and the bounds searched.
        assert_eq!(
            search.space["slow"],
            ParamRange::Int {
                min: 2,
                max: 11,
                step: 1
            }
        );
        assert_eq!(
            search.space["exit"],
            ParamRange::Int {
                min: 1,
                max: 10,
                step: 1
            }
        );
        let named: Vec<&str> = search
            .problems
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(named, vec!["exit", "slow"]);
        assert!(
            search.problems[0].1.contains("MIN <= MAX"),
            "{:?}",
            search.problems
        );
        assert!(
            search.problems[1].1.contains("not 5"),
            "{:?}",
            search.problems
        );
        assert_eq!(space_from_schema(&schema), search.space);
        // Bounds from an untrusted schema: no overflow, nothing unending,
        // nothing empty.
        let extreme = json!({ "properties": {
            "wide": { "type": "integer", "minimum": -1e19, "maximum": 1e19 },
            "huge": { "type": "number", "minimum": -1e308, "maximum": 1e308 },
            "none": { "type": "integer", "minimum": 1.5, "maximum": 1.7 }
        }});
        let space = space_from_schema(&extreme);
        assert_eq!(space.keys().collect::<Vec<_>>(), ["wide"]);
        assert_eq!(space["wide"].values().len(), 10);
        // Shown in the syntax it is read in.
        for range in search.space.values() {
            assert_eq!(ParamRange::parse(&range.to_string()).as_ref(), Ok(range));
        }
        assert_eq!(search.space["fast"].to_string(), "3..21:2");
        assert_eq!(written_exactly(&search.space), Some(written(&search.space)));
    }

    #[test]
    fn a_search_is_written_exactly_or_not_at_all() {
        let schema = json!({ "properties": {
            "fast": { "type": "integer", "minimum": 1, "maximum": 10 },
            "ratio": { "type": "number", "minimum": 0.1, "maximum": 0.9 },
            "mode": { "enum": ["skip", "peek", "1", true] }
        }});
        let space = space_from_schema(&schema);
        let ranges = written_exactly(&space).expect("every range reads back");
        assert_eq!(ranges["mode"], r#"skip,peek,"1",true"#);
        // Values this syntax cannot write: a comma splits, `..` reads as a
        // span, nothing at all reads as one empty string.
        for values in [json!(["a,b", "c"]), json!(["1..2", "x"]), json!([])] {
            let schema = json!({ "properties": { "mode": { "enum": values } } });
            let space = space_from_schema(&schema);
            assert_eq!(written_exactly(&space), None, "{values}");
        }
    }

    #[test]
    fn schemas_give_ranges_and_grids_cover_every_combination() {
        let schema = json!({
            "$defs": { "Seed": { "enum": ["a", "b"], "type": "string" } },
            "properties": {
                "fast": { "type": "integer", "minimum": 1, "maximum": 10 },
                "ratio": { "type": "number", "minimum": 0.0, "maximum": 0.9 },
                "seed": { "$ref": "#/$defs/Seed" },
                "size": { "type": "object" }
            }
        });
        let space = space_from_schema(&schema);
        assert_eq!(space.len(), 3);
        assert_eq!(space["fast"].values().len(), 10);
        assert_eq!(space["ratio"].values().len(), 10);
        let sets = grid(&space);
        assert_eq!(sets.len(), 200);
        let distinct: std::collections::BTreeSet<String> = sets
            .iter()
            .map(|s| Value::Object(s.clone()).to_string())
            .collect();
        assert_eq!(distinct.len(), 200);
        assert_eq!(random(&space, 7, 3), random(&space, 7, 3));
        assert_ne!(random(&space, 7, 3), random(&space, 7, 4));
        // Each set once: a sample of most of the space, and more trials
        // than the space holds (then the whole space).
        let distinct = |sets: &[Map<String, Value>]| {
            sets.iter()
                .map(|s| Value::Object(s.clone()).to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        let most = random(&space, 150, 1);
        assert_eq!((most.len(), distinct(&most)), (150, 150));
        let some = random(&space, 60, 1);
        assert_eq!((some.len(), distinct(&some)), (60, 60));
        let all = random(&space, 1_000, 1);
        assert_eq!((all.len(), distinct(&all)), (200, 200));
    }
}
