//! Backtest jobs: backtests asked for over the API, run on a bounded pool
//! of worker threads of their own (never the API's or the strategies'),
//! with progress and cancellation, and kept in the data directory
//! (`backtests/ID.json` for the job, `backtests/ID.result.json` for the full
//! result as `stratbox backtest --json` writes it) so the history survives
//! restarts.
//!
//! Workers run at the idle priority (SCHED_IDLE on Linux): they get the
//! cores only when the live bots do not need them.
//!
//! A job is plain data: the bot config, the plugin's content hash, the data
//! set's name, content hash and range (and, for an optimisation, what to
//! search). Running the same job again gives a byte-identical result.
//!
//! An optimisation is a job too (`optimization` set): it runs its parameter
//! sets on every core from its worker (at the same idle priority), reports
//! progress as runs finish, and keeps the ranked runs (or the walk-forward
//! windows) as its result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use serde::{Deserialize, Serialize};

use crate::backtest::{self, BacktestError, BacktestOptions, EndOfRun, Progress};
use crate::data::{DataSetInfo, DataSetKey, DataSets};
use crate::domain::config::{BotConfig, ConfigIssue, join_issues};
use crate::domain::{CandleSeries, Timeframe, format_duration, format_instant};
use crate::live::{EventBus, EventData};
use crate::plugin::Plugin;

/// The folder of the data directory holding jobs and results.
const FOLDER: &str = "backtests";

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// What a job was made from: enough to run it again exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub state: JobState,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub config: BotConfig,
    pub plugin_name: String,
    pub plugin_version: String,
    pub plugin_hash: String,
    /// `SYMBOL/TIMEFRAME`.
    pub data: String,
    pub data_hash: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub end_of_run: EndOfRun,
    pub error: Option<String>,
    /// How far a job that failed or was cancelled got, 0 to 1 (records
    /// kept before this was recorded read 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<f64>,
    /// Headline figures of a finished run (of an optimisation: its best;
    /// of a walk-forward: its out-of-sample runs, one after another).
    pub headline: Option<Headline>,
    /// Set when the job is an optimisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimization: Option<OptimizationSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Headline {
    pub candles: usize,
    pub total_return_pct: f64,
    pub sharpe: Option<f64>,
    pub max_drawdown_pct: f64,
    pub trades: usize,
    /// An optimisation's best parameters and their score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_params: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_score: Option<f64>,
    /// A backtest's first candle's open time and its last candle's close
    /// time (ms): what it ran on, which a range past the data's end
    /// shortens. (Absent from records of earlier versions.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran: Option<(i64, i64)>,
}

impl JobRecord {
    /// The progress of a job that has ended: 1 once done, else how far it
    /// got before it failed or was cancelled.
    pub fn final_progress(&self) -> f64 {
        match self.state {
            JobState::Done => 1.0,
            _ => self.reached.unwrap_or(0.0),
        }
    }
}

impl Headline {
    fn of(result: &backtest::BacktestResult) -> Self {
        let metrics = &result.metrics;
        Self {
            candles: result.candles,
            total_return_pct: metrics.total_return_pct,
            sharpe: metrics.sharpe,
            max_drawdown_pct: metrics.max_drawdown_pct,
            trades: metrics.trades,
            best_params: None,
            best_score: None,
            ran: Some((result.start_ts, result.end_ts)),
        }
    }
}

/// What an optimisation searches (checked before it is queued).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OptimizationSpec {
    /// Parameter ranges by name (`MIN..MAX[:STEP]` or `A,B,C`): those
    /// asked for, or with none asked for, the plugin's default search as it
    /// was when the job was queued (the ranges its schema gives with
    /// `x-search`, else every parameter it bounds or enumerates). Empty
    /// (the job searches that default as it runs) in a job queued before
    /// searches were recorded, or when an enum value of the default cannot
    /// be written as a range.
    pub params: std::collections::BTreeMap<String, String>,
    /// `grid` (every combination), or `random` or `tpe` (model-based) with
    /// `trials` and `seed`.
    pub sampler: SamplerSpec,
    /// What runs are ranked by: an objective or a weighted mix
    /// (`sharpe=1,max-drawdown=0.05`).
    pub objective: String,
    /// Runs with fewer round trips are not ranked.
    pub min_trades: usize,
    /// Walk forward through the data instead of one optimisation over it.
    pub walk_forward: Option<WalkForwardSpec>,
}

// Read through `SamplerFields` (see its `Deserialize`); written and
// documented as the tagged enum it is.
/// How an optimisation picks its parameter sets: every set of its ranges
/// (`grid`), `trials` sets drawn at random (`random`, the same ones for the
/// same `seed`), or `trials` sets each drawn by a model of the runs so far
/// (`tpe`; which runs finish first shapes the model, so a seed does not
/// repeat it exactly).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SamplerSpec {
    Grid,
    Random {
        trials: usize,
        seed: u64,
    },
    /// Model-based (TPE): `trials` sets, each drawn from the runs so far.
    Tpe {
        trials: usize,
        seed: u64,
    },
}

/// A sampler as sent: its kind and the fields any kind may take. serde
/// reads an internally tagged enum's fields from a buffer whose path it
/// does not report, so a bad `seed` would be refused at `/sampler`; read
/// flat, a field's refusal names the field (a grid given `trials` or
/// `seed` is refused at the sampler). A field is absent or a value: `null`
/// is refused at the field, as the published schema says.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplerFields {
    kind: SamplerKind,
    #[serde(default, deserialize_with = "present")]
    trials: Option<usize>,
    #[serde(default, deserialize_with = "present")]
    seed: Option<u64>,
}

/// A field that is there: its value, never `null` (absent is the default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SamplerKind {
    Grid,
    Random,
    Tpe,
}

impl<'de> Deserialize<'de> for SamplerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let fields = SamplerFields::deserialize(deserializer)?;
        fn required<T, E: Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
            value.ok_or_else(|| E::missing_field(field))
        }
        match fields.kind {
            SamplerKind::Grid => match (fields.trials, fields.seed) {
                (None, None) => Ok(Self::Grid),
                _ => Err(D::Error::custom(
                    "the grid takes no `trials` or `seed`: it runs every set of its ranges",
                )),
            },
            SamplerKind::Random => Ok(Self::Random {
                trials: required(fields.trials, "trials")?,
                seed: required(fields.seed, "seed")?,
            }),
            SamplerKind::Tpe => Ok(Self::Tpe {
                trials: required(fields.trials, "trials")?,
                seed: required(fields.seed, "seed")?,
            }),
        }
    }
}

impl SamplerSpec {
    /// Why the trial count cannot be run, if it cannot: a sampled search
    /// makes 1 to [`super::optimization_job::MAX_SETS`] sets, the
    /// model-based one 1 to [`super::tpe::MAX_TRIALS`] (each of its draws
    /// weighs every run before it). The grid's size is its ranges'.
    pub fn trials_issue(&self) -> Option<String> {
        let (trials, most) = match self {
            Self::Grid => return None,
            Self::Random { trials, .. } => (*trials, super::optimization_job::MAX_SETS),
            Self::Tpe { trials, .. } => (*trials, super::tpe::MAX_TRIALS),
        };
        (!(1..=most).contains(&trials)).then(|| format!("must be between 1 and {most}"))
    }

    /// Why this sampler cannot search `space`: a grid of more than
    /// [`super::optimization_job::MAX_SETS`] sets (a grid is listed whole
    /// before its first run).
    pub fn space_issue(&self, space: &super::optimize::SearchSpace) -> Option<String> {
        let most = super::optimization_job::MAX_SETS as u64;
        let sets = space
            .values()
            .try_fold(1u64, |count, range| count.checked_mul(range.len()));
        (matches!(self, Self::Grid) && sets.is_none_or(|count| count > most)).then(|| {
            format!(
                "the grid has more than {most} sets: narrow the ranges or use the random sampler"
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalkForwardSpec {
    pub scheme: super::walk_forward::Scheme,
    /// Training window, ms.
    pub train_ms: i64,
    /// Test window (the step), ms.
    pub test_ms: i64,
}

/// A job asked for.
pub struct JobRequest {
    pub config: BotConfig,
    pub plugin: Arc<Plugin>,
    pub data: DataSetKey,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub end_of_run: EndOfRun,
    /// Set to make the job an optimisation.
    pub optimization: Option<OptimizationSpec>,
}

impl JobRequest {
    /// What the job asks of its data set, checked before it is queued
    /// rather than after (see [`AskedSpan::unfit`]).
    fn asked_span(&self) -> AskedSpan<'_> {
        AskedSpan {
            data: &self.data,
            timeframe: &self.config.market.timeframe,
            from: self.from,
            to: self.to,
            walk: self
                .optimization
                .as_ref()
                .and_then(|spec| spec.walk_forward.as_ref()),
        }
    }
}

/// What a run asks of a data set: its name, the bot's timeframe, the range
/// and the walk-forward windows, if any. The API and the command line
/// check it alike, each problem at the pointer of the request field it
/// concerns (`/data`, `/from`, `/to`, `/walk_forward`).
pub struct AskedSpan<'a> {
    pub data: &'a DataSetKey,
    pub timeframe: &'a str,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub walk: Option<&'a WalkForwardSpec>,
}

impl AskedSpan<'_> {
    /// Why `info`'s candles cannot serve this run (nothing: they can): the
    /// data set's candles finer than the bot's timeframe, no candle in the
    /// range asked for, no walk-forward window in it.
    pub fn unfit(&self, info: &DataSetInfo) -> Vec<ConfigIssue> {
        let mut found = Vec::new();
        let mut issue = |pointer: &str, message: String| {
            found.push(ConfigIssue {
                pointer: pointer.into(),
                message,
            })
        };
        let step = info.timeframe.millis();
        let bot_timeframe = self.timeframe;
        // The engine times every candle by the bot's timeframe: a strategy of
        // 1m candles on 1h ones would decide on the wrong closes.
        if bot_timeframe
            .parse::<Timeframe>()
            .is_ok_and(|timeframe| timeframe.millis() != step)
        {
            issue(
                "/data",
                format!(
                    "{} holds {} candles, the bot trades {bot_timeframe} ones: use {}/{bot_timeframe} candles",
                    self.data, info.timeframe, info.symbol
                ),
            );
        }
        // The span a run covers: from the first candle at or after `from` to
        // one candle past the last before `to`.
        let (first, end) = (info.first_ts, info.last_ts + step);
        let candle_at_or_after = |ts: i64| first + (ts - first + step - 1).div_euclid(step) * step;
        let from = self.from.map_or(first, candle_at_or_after).max(first);
        let to = self.to.map_or(end, candle_at_or_after).min(end);
        let held = || {
            format!(
                "{} holds candles from {} to {}",
                self.data,
                format_instant(info.first_ts),
                format_instant(info.last_ts)
            )
        };
        if let (Some(asked_from), Some(asked_to)) = (self.from, self.to)
            && asked_to <= asked_from
        {
            issue("/to", "must be after `from`".into());
        } else if self.from.is_some_and(|asked| asked > info.last_ts) {
            issue(
                "/from",
                format!("no candle opens at or after it: {}", held()),
            );
        } else if self.to.is_some_and(|asked| asked <= info.first_ts) {
            issue("/to", format!("no candle opens before it: {}", held()));
        } else if let Some(walk) = self.walk
        // The first window needs a training and a test window whole.
        && from.saturating_add(walk.train_ms).saturating_add(walk.test_ms) > to
        {
            issue(
                "/walk_forward",
                format!(
                    "the selected {} of candles hold no training window of {} followed by a test window of {}",
                    format_duration(to - from),
                    format_duration(walk.train_ms),
                    format_duration(walk.test_ms)
                ),
            );
        }
        found
    }
}

/// What a finished job leaves.
enum Finished {
    Backtest(Box<backtest::BacktestResult>, String),
    Optimization(serde_json::Value, Headline, String),
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no backtest {0}")]
    NotFound(String),
    /// The job cannot run on its data set (each problem at the pointer of
    /// the request field it concerns).
    #[error("{}", join_issues(.0))]
    Unfit(Vec<ConfigIssue>),
    #[error(transparent)]
    DataSet(#[from] crate::data::DataSetError),
    #[error("backtest storage: {0}")]
    Io(#[from] std::io::Error),
}

struct Active {
    record: Mutex<JobRecord>,
    progress: Arc<Progress>,
}

/// The job queue, its workers and the jobs not yet finished.
pub struct BacktestJobs {
    dir: PathBuf,
    data_sets: DataSets,
    /// Where progress and completion are published, if anywhere.
    bus: Option<Arc<EventBus>>,
    active: Mutex<HashMap<String, Arc<Active>>>,
    queue: Mutex<mpsc::Sender<(Arc<Active>, Arc<Plugin>)>>,
}

impl BacktestJobs {
    /// Jobs kept in `data_dir`, run by `workers` threads, their progress
    /// and completion published on `bus`.
    pub fn start(data_dir: &Path, workers: usize, bus: Option<Arc<EventBus>>) -> Arc<Self> {
        let (queue, jobs) = mpsc::channel::<(Arc<Active>, Arc<Plugin>)>();
        let this = Arc::new(Self {
            dir: data_dir.join(FOLDER),
            data_sets: DataSets::new(data_dir),
            bus,
            active: Mutex::new(HashMap::new()),
            queue: Mutex::new(queue),
        });
        let jobs = Arc::new(Mutex::new(jobs));
        for worker in 0..workers.max(1) {
            let (jobs, owner) = (jobs.clone(), Arc::downgrade(&this));
            let spawned = std::thread::Builder::new()
                .name(format!("stratbox-backtest-{worker}"))
                .spawn(move || {
                    crate::scheduling::idle_thread();
                    loop {
                        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok((job, plugin)) = next else { return };
                        let Some(owner) = owner.upgrade() else { return };
                        owner.run(&job, &plugin);
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a backtest worker");
            }
        }
        this
    }

    /// Queue a job; its record as it stands.
    pub fn submit(&self, mut request: JobRequest) -> Result<JobRecord, JobError> {
        let info = self.data_sets.info(&request.data)?;
        // The data set names its market: a bot's strategy tried on another
        // symbol's candles is recorded, and reported, as trading that one.
        request.config.market.symbol.clone_from(&info.symbol);
        let unfit = request.asked_span().unfit(&info);
        if !unfit.is_empty() {
            return Err(JobError::Unfit(unfit));
        }
        static JOBS: AtomicU64 = AtomicU64::new(0);
        let created_ms = crate::live::wall_ms();
        let prefix = match request.optimization {
            Some(_) => OPTIMIZATION_PREFIX,
            None => BACKTEST_PREFIX,
        };
        let id = format!(
            "{prefix}{created_ms:013}-{:04}",
            JOBS.fetch_add(1, Ordering::Relaxed) % 10_000
        );
        let plugin_info = request.plugin.info();
        let record = JobRecord {
            id: id.clone(),
            state: JobState::Queued,
            created_ms,
            finished_ms: None,
            config: request.config,
            plugin_name: plugin_info.name.clone(),
            plugin_version: plugin_info.version.to_string(),
            plugin_hash: plugin_info.content_hash.clone(),
            data: request.data.to_string(),
            data_hash: info.content_hash,
            from: request.from,
            to: request.to,
            end_of_run: request.end_of_run,
            error: None,
            reached: None,
            headline: None,
            optimization: request.optimization,
        };
        std::fs::create_dir_all(&self.dir)?;
        self.save_record(&record)?;
        let active = Arc::new(Active {
            record: Mutex::new(record.clone()),
            progress: Arc::new(self.progress_for(&record)),
        });
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, active.clone());
        let _ = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send((active, request.plugin));
        Ok(record)
    }

    /// Progress that publishes each tenth of the way as an event.
    fn progress_for(&self, record: &JobRecord) -> Progress {
        let Some(bus) = self.bus.clone() else {
            return Progress::default();
        };
        let mut running = record.clone();
        running.state = JobState::Running;
        let last_tenth = AtomicU64::new(0);
        Progress::observed(move |fraction| {
            let tenth = (fraction * 10.0).floor() as u64;
            if (1..10).contains(&tenth) && last_tenth.fetch_max(tenth, Ordering::Relaxed) < tenth {
                bus.publish(
                    None,
                    EventData::BacktestProgress {
                        job: Box::new(running.clone()),
                        progress: fraction,
                    },
                );
            }
        })
    }

    fn run(&self, job: &Active, plugin: &Plugin) {
        let (record, options) = {
            let mut record = job.record.lock().unwrap_or_else(PoisonError::into_inner);
            if record.state != JobState::Queued {
                // Cancelled while it waited: already ended.
                return;
            }
            record.state = JobState::Running;
            let options = BacktestOptions {
                from: record.from,
                to: record.to,
                end_of_run: record.end_of_run,
                progress: Some(job.progress.clone()),
                ..BacktestOptions::default()
            };
            (record.clone(), options)
        };
        let outcome = DataSetKey::parse(&record.data)
            .and_then(|key| self.data_sets.open(&key))
            .map_err(|error| BacktestError::Data(error.to_string()))
            .and_then(|candles| match &record.optimization {
                // Many runs over the same candles: worth having them in memory.
                Some(spec) => super::optimization_job::run(
                    &record,
                    spec,
                    plugin,
                    &candles.to_vec(),
                    options,
                    &job.progress,
                )
                .map(|(result, headline)| {
                    let report = super::report::optimization::render(
                        &record.config.name,
                        &format!("{} {}", record.plugin_name, record.plugin_version),
                        &record.data,
                        &result,
                    );
                    Finished::Optimization(result, headline, report)
                }),
                None => {
                    let result = backtest::run(&record.config, plugin, &candles, &options)?;
                    let report = super::report::render(&result, &candles);
                    Ok(Finished::Backtest(Box::new(result), report))
                }
            });
        self.finish(job, outcome);
    }

    /// Keep what a finished job left: the result file (and a backtest's
    /// report), then the record.
    fn keep(&self, id: &str, finished: &Finished) -> std::io::Result<Headline> {
        let (result, report) = match finished {
            // Byte for byte what `stratbox backtest --json` writes.
            Finished::Backtest(result, report) => (
                serde_json::to_vec_pretty(result).map_err(std::io::Error::other)?,
                report,
            ),
            Finished::Optimization(result, _, report) => (
                serde_json::to_vec_pretty(result).map_err(std::io::Error::other)?,
                report,
            ),
        };
        let mut json = result;
        json.push(b'\n');
        write_whole(&self.result_path(id), &json)?;
        write_whole(&self.report_path(id), report.as_bytes())?;
        Ok(match finished {
            Finished::Backtest(result, _) => Headline::of(result),
            Finished::Optimization(_, headline, _) => headline.clone(),
        })
    }

    fn finish(&self, job: &Active, outcome: Result<Finished, BacktestError>) {
        let mut record = job.record.lock().unwrap_or_else(PoisonError::into_inner);
        self.end(&mut record, job, outcome);
    }

    /// End a job whose record the caller holds locked: keep what it left,
    /// save its record, publish its end, forget it as active.
    fn end(&self, record: &mut JobRecord, job: &Active, outcome: Result<Finished, BacktestError>) {
        record.finished_ms = Some(crate::live::wall_ms());
        record.reached = Some(job.progress.fraction());
        match outcome {
            Ok(finished) => match self.keep(&record.id, &finished) {
                Ok(headline) => {
                    record.state = JobState::Done;
                    record.headline = Some(headline);
                }
                Err(error) => {
                    record.state = JobState::Failed;
                    record.error = Some(format!("the result could not be kept: {error}"));
                }
            },
            Err(BacktestError::Cancelled) => record.state = JobState::Cancelled,
            Err(error) => {
                record.state = JobState::Failed;
                record.error = Some(error.to_string());
            }
        }
        if let Err(error) = self.save_record(record) {
            tracing::error!(job = %record.id, %error, "cannot keep a backtest job");
        }
        if let Some(bus) = &self.bus {
            bus.publish(None, EventData::BacktestFinished(Box::new(record.clone())));
        }
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&record.id);
    }

    /// A job's record and, while it runs, its progress (0 to 1; 1 once done).
    pub fn get(&self, id: &str) -> Result<(JobRecord, f64), JobError> {
        if let Some(active) = self.active_job(id) {
            let record = active
                .record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            return Ok((record, active.progress.fraction()));
        }
        let record = self.read_record(id)?;
        let progress = record.final_progress();
        Ok((record, progress))
    }

    /// The full result of a finished job, as JSON text.
    pub fn result(&self, id: &str) -> Result<Option<String>, JobError> {
        read_if_there(&self.result_path(checked_id(id)?))
    }

    /// Every job, newest first.
    pub fn list(&self) -> Result<Vec<(JobRecord, f64)>, JobError> {
        let mut ids: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let id = name.strip_suffix(".json")?;
                    (!id.ends_with(".result")).then(|| id.to_string())
                })
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids.iter().filter_map(|id| self.get(id).ok()).collect())
    }

    /// Cancel a queued job (at once) or a running one (it stops within a
    /// few thousand candles), or delete a finished one and its result.
    pub fn cancel_or_delete(&self, id: &str) -> Result<(), JobError> {
        if let Some(active) = self.active_job(id) {
            active.progress.cancel();
            let mut record = active.record.lock().unwrap_or_else(PoisonError::into_inner);
            if record.state == JobState::Queued {
                // Its worker will find it ended and pass over it.
                self.end(&mut record, &active, Err(BacktestError::Cancelled));
            }
            return Ok(());
        }
        let id = checked_id(id)?;
        self.read_record(id)?;
        let _ = std::fs::remove_file(self.result_path(id));
        let _ = std::fs::remove_file(self.report_path(id));
        std::fs::remove_file(self.record_path(id))?;
        Ok(())
    }

    fn active_job(&self, id: &str) -> Option<Arc<Active>> {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn result_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.result.json"))
    }

    fn report_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.report.html"))
    }

    /// The HTML report of a finished job, if it has one.
    pub fn report(&self, id: &str) -> Result<Option<String>, JobError> {
        read_if_there(&self.report_path(checked_id(id)?))
    }

    fn save_record(&self, record: &JobRecord) -> Result<(), JobError> {
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        Ok(write_whole(&self.record_path(&record.id), &json)?)
    }

    fn read_record(&self, id: &str) -> Result<JobRecord, JobError> {
        let id = checked_id(id)?;
        let text = match std::fs::read_to_string(self.record_path(id)) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(JobError::NotFound(id.to_string()));
            }
            Err(error) => return Err(error.into()),
        };
        let mut record: JobRecord = serde_json::from_str(&text)
            .map_err(|error| std::io::Error::other(format!("backtest {id}: {error}")))?;
        // A job the host stopped in the middle of (a restart) did not finish.
        if matches!(record.state, JobState::Queued | JobState::Running) {
            record.state = JobState::Failed;
            record.error = Some("the host stopped before the job finished".into());
        }
        Ok(record)
    }
}

/// A file's text, or None when there is no such file.
fn read_if_there(path: &std::path::Path) -> Result<Option<String>, JobError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// How a job's id starts: it says what the job is.
const BACKTEST_PREFIX: &str = "bt-";
const OPTIMIZATION_PREFIX: &str = "opt-";

/// `id` when it is a job id: ids name files, so only what this module
/// makes is accepted.
fn checked_id(id: &str) -> Result<&str, JobError> {
    let well_formed = id.len() <= 40
        && [BACKTEST_PREFIX, OPTIMIZATION_PREFIX]
            .iter()
            .filter_map(|prefix| id.strip_prefix(prefix))
            .any(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '-'));
    if well_formed {
        Ok(id)
    } else {
        Err(JobError::NotFound(id.to_string()))
    }
}

/// Write `bytes` to `path` whole: a temporary file renamed over it.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SamplerSpec;

    #[derive(Debug, serde::Deserialize)]
    struct Asked {
        #[allow(dead_code)]
        sampler: SamplerSpec,
    }

    #[test]
    fn a_sampler_is_read_as_written_and_refused_at_its_field() {
        for sampler in [
            SamplerSpec::Grid,
            SamplerSpec::Random { trials: 5, seed: 7 },
            SamplerSpec::Tpe { trials: 9, seed: 1 },
        ] {
            let written = serde_json::to_value(&sampler).unwrap();
            assert_eq!(
                serde_json::from_value::<SamplerSpec>(written).unwrap(),
                sampler
            );
        }
        for (sampler, pointer) in [
            (
                json!({ "kind": "random", "trials": 5, "seed": "x" }),
                "/sampler/seed",
            ),
            (
                json!({ "kind": "tpe", "trials": -1, "seed": 1 }),
                "/sampler/trials",
            ),
            (json!({ "kind": "tpe", "trials": 5 }), "/sampler/seed"),
            (json!({ "kind": "random", "seed": 5 }), "/sampler/trials"),
            (json!({ "kind": "grid", "trials": 5 }), "/sampler"),
            (json!({ "kind": "grid", "trials": null }), "/sampler/trials"),
            (
                json!({ "kind": "random", "trials": 5, "seed": null }),
                "/sampler/seed",
            ),
            (json!({ "kind": "lucky" }), "/sampler/kind"),
            (json!({ "trials": 5, "seed": 1 }), "/sampler/kind"),
        ] {
            let refused = crate::domain::config::shape_of::<Asked>(&json!({ "sampler": sampler }))
                .unwrap_err();
            assert_eq!(refused.pointer, pointer, "{sampler}: {}", refused.message);
        }
        let misspelt = json!({ "sampler": { "kind": "random", "trials": 5, "seed": 1, "sed": 2 } });
        let refused = crate::domain::config::shape_of::<Asked>(&misspelt).unwrap_err();
        assert!(refused.message.contains("`sed`"), "{}", refused.message);
    }

    #[test]
    fn a_grid_is_bounded_before_it_is_listed() {
        use super::super::optimize::{ParamRange, SearchSpace};
        let wide = |max| ParamRange::Int {
            min: 1,
            max,
            step: 1,
        };
        let space = |max| SearchSpace::from([("a".into(), wide(max)), ("b".into(), wide(1_000))]);
        assert_eq!(SamplerSpec::Grid.space_issue(&space(100)), None);
        let refused = SamplerSpec::Grid.space_issue(&space(101)).unwrap();
        assert!(refused.contains("more than 100000 sets"), "{refused}");
        // Sampled, a wide space is fine: only the trials are drawn.
        let random = SamplerSpec::Random {
            trials: 10,
            seed: 1,
        };
        assert_eq!(random.space_issue(&space(i64::MAX)), None);
        // A count past u64 is refused, not wrapped.
        let huge = SearchSpace::from_iter((0..5).map(|i| (format!("p{i}"), wide(i64::MAX))));
        assert!(SamplerSpec::Grid.space_issue(&huge).is_some());
    }

    #[test]
    fn each_sampler_bounds_its_trials() {
        let random = |trials| SamplerSpec::Random { trials, seed: 1 };
        let tpe = |trials| SamplerSpec::Tpe { trials, seed: 1 };
        assert_eq!(SamplerSpec::Grid.trials_issue(), None);
        assert_eq!(random(100_000).trials_issue(), None);
        assert_eq!(
            random(100_001).trials_issue().as_deref(),
            Some("must be between 1 and 100000")
        );
        assert_eq!(
            random(0).trials_issue().as_deref(),
            Some("must be between 1 and 100000")
        );
        assert_eq!(tpe(2_000).trials_issue(), None);
        assert_eq!(
            tpe(2_001).trials_issue().as_deref(),
            Some("must be between 1 and 2000")
        );
    }
}
