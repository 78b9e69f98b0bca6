//! Market feeds: where live bots get candles.
//!
//! A feed appends candles to a shared, bounded history and bumps a watch
//! counter. Each bot reads the history from its own position, so a slow bot
//! never slows the feed or the other bots, and one that falls behind catches
//! up in order, never skipping or repeating a candle (unless it falls more
//! than the history's capacity behind, which it is told about).
//!
//! Bots whose feed definitions are identical (kind, symbol, timeframe, seed
//! or file, interval) share one feed: the [`FeedHub`] keys feeds by that
//! definition and a feed's task ends when its last bot lets go of it.
//!
//! Sources implement [`CandleSource`]: `synthetic` (seeded GBM, real time or
//! accelerated) and `replay` (a candle CSV at a set pace) are [`Paced`]
//! iterators. `binance` feeds start from REST history and are then fed by
//! the deployment's shared [`KlineStreams`] through a [`KlineSink`].
//! `stepped` feeds have no source: the caller publishes (tests).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::data::{SynthGenerator, SynthParams, read_candles};
use crate::domain::config::{BotConfig, FeedConfig};
use crate::domain::{Candle, Timeframe};
use crate::exchange::binance::{Endpoints, KlineSink, KlineStreams, StreamSettings};

/// Candles a feed keeps for readers that are behind and for warm-ups.
pub const HISTORY_CAPACITY: usize = 100_000;

/// A candle and when its feed published it (for decision latency).
#[derive(Debug, Clone, Copy)]
pub struct FeedCandle {
    pub candle: Candle,
    pub published_at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("unknown timeframe `{0}`")]
    Timeframe(String),
    #[error("cannot read replay file {path}: {reason}")]
    Replay { path: PathBuf, reason: String },
    #[error("candle at {ts} is not after the feed's last candle at {last}")]
    OutOfOrder { ts: i64, last: i64 },
    #[error("cannot start the Binance feed from {url}: {reason}")]
    Binance { url: String, reason: String },
    #[error("candle at {ts} is refused: {reason}")]
    Invalid {
        ts: i64,
        reason: crate::domain::CandleError,
    },
}

struct History {
    /// Sequence number (0-based) of `candles[0]`.
    base: u64,
    candles: VecDeque<FeedCandle>,
}

struct FeedShared {
    key: String,
    /// Candles kept in `history`.
    capacity: usize,
    history: RwLock<History>,
    /// Number of candles published so far; bots wait on changes.
    published: watch::Sender<u64>,
    /// Where published candles are also kept, across restarts.
    archive: Option<Arc<dyn CandleArchive>>,
}

/// Keeps feeds' recent candles across restarts of the host (the store), so
/// a feed resumes after its last candle and bots warm up on what they saw.
pub trait CandleArchive: Send + Sync + 'static {
    /// The last `limit` candles kept for `feed`, oldest first.
    fn recent(&self, feed: &str, limit: usize) -> Vec<Candle>;
    /// Keep `candle` of `feed`; must not block.
    fn keep(&self, feed: &str, candle: &Candle);
}

/// Candles a restarted feed takes back from its archive (the longest
/// warm-up a bot may need).
pub const ARCHIVED_CANDLES: usize = 1_000;

/// A reference to a running feed. Cloning is cheap; the feed lives as long
/// as any handle does.
#[derive(Clone)]
pub struct FeedHandle {
    shared: Arc<FeedShared>,
}

/// What a read found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Candles that had already left the history before they were read.
    pub skipped: u64,
}

impl FeedHandle {
    fn new(key: String, capacity: usize, archive: Option<Arc<dyn CandleArchive>>) -> Self {
        let (published, _) = watch::channel(0);
        Self {
            shared: Arc::new(FeedShared {
                key,
                capacity,
                history: RwLock::new(History {
                    base: 0,
                    candles: VecDeque::new(),
                }),
                published,
                archive,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.shared.key
    }

    fn history(&self) -> std::sync::RwLockReadGuard<'_, History> {
        self.shared
            .history
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether two handles refer to the same running feed.
    pub fn same_feed(&self, other: &FeedHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Append a candle. Candles must be valid and come in time order.
    pub fn publish(&self, candle: Candle) -> Result<(), FeedError> {
        self.publish_at(candle, Instant::now())
    }

    /// Append a candle that reached the host at `arrived` (decision latency
    /// counts from there).
    pub fn publish_at(&self, candle: Candle, arrived: Instant) -> Result<(), FeedError> {
        candle.validate().map_err(|reason| FeedError::Invalid {
            ts: candle.ts,
            reason,
        })?;
        self.append(candle, arrived)?;
        if let Some(archive) = &self.shared.archive {
            archive.keep(&self.shared.key, &candle);
        }
        Ok(())
    }

    fn append(&self, candle: Candle, arrived: Instant) -> Result<(), FeedError> {
        let count = {
            let mut history = self
                .shared
                .history
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = history.candles.back()
                && candle.ts <= last.candle.ts
            {
                return Err(FeedError::OutOfOrder {
                    ts: candle.ts,
                    last: last.candle.ts,
                });
            }
            history.candles.push_back(FeedCandle {
                candle,
                published_at: arrived,
            });
            if history.candles.len() > self.shared.capacity {
                history.candles.pop_front();
                history.base += 1;
            }
            history.base + history.candles.len() as u64
        };
        self.shared.published.send_replace(count);
        Ok(())
    }

    /// Number of candles published so far.
    pub fn published(&self) -> u64 {
        *self.shared.published.borrow()
    }

    /// Wake-ups when candles are published.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.shared.published.subscribe()
    }

    /// Append candles from sequence number `next` on to `out`.
    /// Up to `limit` candles from sequence number `next` on, into `out`.
    pub fn read_from(&self, next: u64, limit: usize, out: &mut Vec<FeedCandle>) -> ReadOutcome {
        let history = self.history();
        let skipped = history.base.saturating_sub(next);
        let start = (next.max(history.base) - history.base) as usize;
        out.extend(
            history
                .candles
                .range(start.min(history.candles.len())..)
                .take(limit)
                .copied(),
        );
        ReadOutcome { skipped }
    }

    /// The sequence number of the first kept candle opening after `ts`
    /// (where a bot that last saw `ts` goes on); the published count when
    /// there is none.
    pub fn position_after(&self, ts: i64) -> u64 {
        let history = self.history();
        let index = history.candles.partition_point(|c| c.candle.ts <= ts);
        history.base + index as u64
    }

    /// The last `count` candles before sequence number `before`, oldest
    /// first: what a bot that will read from `before` on has already seen
    /// (its warm-up).
    pub fn recent_before(&self, before: u64, count: usize) -> Vec<Candle> {
        let history = self.history();
        let end = (before.saturating_sub(history.base) as usize).min(history.candles.len());
        let start = end.saturating_sub(count);
        history
            .candles
            .range(start..end)
            .map(|c| c.candle)
            .collect()
    }
}

/// The identity of a feed: everything that makes its candles what they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedKey {
    pub symbol: String,
    pub timeframe: String,
    pub source: FeedConfig,
}

impl FeedKey {
    pub fn of(config: &BotConfig) -> Self {
        // Binance feeds are one feed per deployment however their URLs are
        // spelled: the key holds the URLs resolved.
        let source = match Endpoints::of_feed(&config.market.feed) {
            Some(endpoints) => FeedConfig::Binance {
                network: Default::default(),
                rest_url: Some(endpoints.rest),
                stream_url: Some(endpoints.stream),
                ws_api_url: None,
            },
            None => config.market.feed.clone(),
        };
        Self {
            symbol: config.market.symbol.clone(),
            timeframe: config.market.timeframe.clone(),
            source,
        }
    }

    /// The name the feed's candles are archived under (stable across
    /// versions: the store keeps candles by it).
    pub fn archive_name(&self) -> String {
        let (symbol, timeframe) = (&self.symbol, &self.timeframe);
        if let Some(endpoints) = Endpoints::of_feed(&self.source) {
            return format!(
                "binance|{symbol}|{timeframe}|{}|{}",
                endpoints.rest, endpoints.stream
            );
        }
        match &self.source {
            FeedConfig::Synthetic { seed, interval_ms } => {
                format!("synthetic|{symbol}|{timeframe}|{seed}|{interval_ms:?}")
            }
            FeedConfig::Replay { file, interval_ms } => {
                format!(
                    "replay|{symbol}|{timeframe}|{}|{interval_ms:?}",
                    file.display()
                )
            }
            FeedConfig::Binance { .. } => unreachable!("named above"),
            FeedConfig::Stepped => format!("stepped|{symbol}|{timeframe}"),
        }
    }
}

/// A feed as the destination of a Binance kline stream.
struct FeedSink {
    feed: Weak<FeedShared>,
}

impl KlineSink for FeedSink {
    fn last_ts(&self) -> Option<i64> {
        let shared = self.feed.upgrade()?;
        FeedHandle { shared }
            .history()
            .candles
            .back()
            .map(|c| c.candle.ts)
    }

    fn deliver(&self, candle: Candle, arrived: Instant) {
        if let Some(shared) = self.feed.upgrade() {
            let handle = FeedHandle { shared };
            if let Err(err) = handle.publish_at(candle, arrived) {
                tracing::warn!(feed = handle.key(), %err, "candle dropped");
            }
        }
    }

    fn gap(&self, after: i64, before: i64) {
        if let Some(shared) = self.feed.upgrade() {
            // The bots see the jump in open times and announce it.
            tracing::warn!(
                feed = shared.key,
                after,
                before,
                "Binance has no candles in between (an exchange outage or older than the fill reaches)"
            );
        }
    }

    fn wanted(&self) -> bool {
        self.feed.strong_count() > 0
    }
}

/// Shares feeds between bots with identical feed definitions.
#[derive(Default)]
pub struct FeedHub {
    feeds: Mutex<HashMap<FeedKey, Weak<FeedShared>>>,
    /// Where feeds keep their candles across restarts, if anywhere.
    archive: Option<Arc<dyn CandleArchive>>,
    /// Replay files must lie under this folder, when set (the server's);
    /// without it (the CLI) a replay file is any file the user names.
    replay_dir: Option<PathBuf>,
    /// One set of kline streams per Binance deployment, shared by its feeds.
    binance: Mutex<HashMap<Endpoints, Arc<KlineStreams>>>,
    binance_settings: StreamSettings,
    /// When set (the server's), the only base URLs besides Binance's own
    /// that a Binance feed may name; without it (the CLI) any.
    binance_urls: Option<Vec<String>>,
}

/// Refused replay paths all get this one message, whether the file exists
/// or not, so the answer tells nothing about the rest of the machine.
const OUTSIDE_REPLAY_DIR: &str =
    "replay files must be relative paths (no `..`) to files inside the server's feeds folder";

/// Why a file named by a client is refused.
pub(crate) enum PathRefusal {
    /// Absolute, with `..`, or leading out of the folder (one answer for
    /// all, so it tells nothing about the rest of the machine).
    Outside,
    /// Inside, but no such file.
    Missing,
}

/// `file` inside `dir`: relative, no `..`, and no symbolic link leading out.
pub(crate) fn inside(dir: &Path, file: &Path) -> Result<PathBuf, PathRefusal> {
    let plain = file
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_)));
    if !plain || file.as_os_str().is_empty() {
        return Err(PathRefusal::Outside);
    }
    let root = dir.canonicalize().map_err(|_| PathRefusal::Outside)?;
    let resolved = root
        .join(file)
        .canonicalize()
        .map_err(|_| PathRefusal::Missing)?;
    if !resolved.starts_with(&root) || !resolved.is_file() {
        return Err(PathRefusal::Outside);
    }
    Ok(resolved)
}

impl FeedHub {
    /// Feeds created from now on keep their candles in `archive` and resume
    /// from it.
    pub fn set_archive(&mut self, archive: Arc<dyn CandleArchive>) {
        self.archive = Some(archive);
    }

    /// Replay files must lie under `dir`.
    pub fn set_replay_dir(&mut self, dir: PathBuf) {
        self.replay_dir = Some(dir);
    }

    /// Binance feeds may name only these base URLs besides Binance's own.
    pub fn set_binance_urls(&mut self, urls: Vec<String>) {
        self.binance_urls = Some(
            urls.iter()
                .map(|url| url.trim_end_matches('/').to_string())
                .collect(),
        );
    }

    /// Refuse URL overrides the server does not allow.
    fn check_binance_urls(&self, urls: &[&Option<String>]) -> Result<(), FeedError> {
        let Some(allowed) = &self.binance_urls else {
            return Ok(());
        };
        for url in urls.iter().filter_map(|url| url.as_deref()) {
            if !allowed.iter().any(|ok| ok == url.trim_end_matches('/')) {
                return Err(FeedError::Binance {
                    url: url.to_string(),
                    reason: "this server connects only to Binance and to the URLs of its `binance_urls` setting".into(),
                });
            }
        }
        Ok(())
    }

    /// How Binance stream connections behave (tests shorten the timings).
    pub fn set_binance_settings(&mut self, settings: StreamSettings) {
        self.binance_settings = settings;
    }

    /// The kline streams of one Binance deployment, created on first use.
    pub fn binance_streams(&self, endpoints: &Endpoints) -> Arc<KlineStreams> {
        let mut streams = self.binance.lock().unwrap_or_else(PoisonError::into_inner);
        streams
            .entry(endpoints.clone())
            .or_insert_with(|| {
                Arc::new(KlineStreams::new(
                    endpoints.clone(),
                    self.binance_settings.clone(),
                ))
            })
            .clone()
    }

    /// The closed candles a Binance feed starts from: after `last` (what it
    /// had before a restart) or the most recent ones.
    async fn binance_start(
        &self,
        endpoints: &Endpoints,
        key: &FeedKey,
        timeframe: Timeframe,
        last: Option<i64>,
    ) -> Result<(Arc<KlineStreams>, Vec<Candle>), FeedError> {
        let streams = self.binance_streams(endpoints);
        let candles = streams
            .recent(&key.symbol, timeframe, last)
            .await
            .map_err(|error| FeedError::Binance {
                url: endpoints.rest.clone(),
                reason: error.to_string(),
            })?;
        Ok((streams, candles))
    }

    fn running(&self, key: &FeedKey) -> Option<FeedHandle> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        feeds.retain(|_, feed| feed.strong_count() > 0);
        feeds
            .get(key)
            .and_then(Weak::upgrade)
            .map(|shared| FeedHandle { shared })
    }

    /// The candles of a replay feed, read off the async workers.
    async fn replay_candles(&self, file: &Path) -> Result<Vec<Candle>, FeedError> {
        let path = match &self.replay_dir {
            Some(dir) => inside(dir, file).map_err(|refusal| FeedError::Replay {
                path: file.to_path_buf(),
                reason: match refusal {
                    PathRefusal::Outside => OUTSIDE_REPLAY_DIR,
                    PathRefusal::Missing => "no such file in the server's feeds folder",
                }
                .into(),
            })?,
            None => file.to_path_buf(),
        };
        let shown = file.to_path_buf();
        tokio::task::spawn_blocking(move || read_candles(&path))
            .await
            .map_err(|error| FeedError::Replay {
                path: shown.clone(),
                reason: error.to_string(),
            })?
            .map_err(|error| FeedError::Replay {
                path: shown,
                reason: error.to_string(),
            })
    }

    /// The feed for this bot config, started if no bot uses it yet. Must be
    /// called inside a tokio runtime (sources run as tasks).
    pub async fn feed_for(&self, config: &BotConfig) -> Result<FeedHandle, FeedError> {
        if let FeedConfig::Binance {
            rest_url,
            stream_url,
            ws_api_url,
            ..
        } = &config.market.feed
        {
            self.check_binance_urls(&[rest_url, stream_url, ws_api_url])?;
        }
        let key = FeedKey::of(config);
        if let Some(handle) = self.running(&key) {
            return Ok(handle);
        }
        let timeframe: Timeframe = key
            .timeframe
            .parse()
            .map_err(|_| FeedError::Timeframe(key.timeframe.clone()))?;
        let replay = match &key.source {
            FeedConfig::Replay { file, .. } => Some(self.replay_candles(file).await?),
            _ => None,
        };
        let name = key.archive_name();
        let binance = match Endpoints::of_feed(&key.source) {
            Some(endpoints) => {
                let archived = self
                    .archive
                    .as_ref()
                    .and_then(|archive| archive.recent(&name, 1).last().map(|c| c.ts));
                match self
                    .binance_start(&endpoints, &key, timeframe, archived)
                    .await
                {
                    Ok(started) => Some(started),
                    // A feed that ran before (a restart) does not wait for
                    // REST: it subscribes, and its stream fills the gap from
                    // the archived candles once REST answers.
                    Err(error) if archived.is_some() => {
                        tracing::warn!(
                            feed = name,
                            %error,
                            "Binance REST unreachable: resuming from the stream, the gap is filled when REST answers"
                        );
                        Some((self.binance_streams(&endpoints), Vec::new()))
                    }
                    Err(error) => return Err(error),
                }
            }
            _ => None,
        };
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = feeds.get(&key).and_then(Weak::upgrade) {
            return Ok(FeedHandle { shared }); // another bot started it meanwhile
        }
        let handle = FeedHandle::new(name.clone(), HISTORY_CAPACITY, self.archive.clone());
        // What the feed published before a restart: history for warm-ups,
        // and where it resumes.
        let prior = self
            .archive
            .as_ref()
            .map(|archive| archive.recent(&name, ARCHIVED_CANDLES))
            .unwrap_or_default();
        for candle in &prior {
            let _ = handle.append(*candle, Instant::now());
        }
        let last = prior.last().copied();
        match (&key.source, replay) {
            (FeedConfig::Synthetic { seed, interval_ms }, _) => {
                let interval =
                    Duration::from_millis(interval_ms.unwrap_or(timeframe.millis() as u64));
                let now = super::wall_ms();
                let params = match last {
                    Some(last) => SynthParams {
                        timeframe,
                        start_ts: last.ts + timeframe.millis(),
                        start_price: crate::domain::decimal::to_f64(last.close),
                        ..SynthParams::new(0, *seed)
                    },
                    None => SynthParams {
                        timeframe,
                        start_ts: now - now.rem_euclid(timeframe.millis()),
                        ..SynthParams::new(0, *seed)
                    },
                };
                let mut generator = SynthGenerator::new(&params);
                let candles = std::iter::from_fn(move || Some(generator.next_candle()));
                spawn_source(&handle, Paced::new(candles, interval));
            }
            (FeedConfig::Binance { .. }, _) => {
                if let Some((streams, candles)) = binance {
                    for candle in candles {
                        if last.is_none_or(|last| candle.ts > last.ts)
                            && let Err(err) = handle.publish(candle)
                        {
                            tracing::warn!(feed = handle.key(), %err, "candle dropped");
                        }
                    }
                    let sink = FeedSink {
                        feed: Arc::downgrade(&handle.shared),
                    };
                    streams.subscribe(&key.symbol, timeframe, Arc::new(sink));
                }
            }
            (FeedConfig::Replay { interval_ms, .. }, Some(mut candles)) => {
                if let Some(last) = last {
                    candles.retain(|c| c.ts > last.ts);
                }
                let interval =
                    Duration::from_millis(interval_ms.unwrap_or(timeframe.millis() as u64));
                spawn_source(&handle, Paced::new(candles.into_iter(), interval));
            }
            _ => {}
        }
        feeds.insert(key, Arc::downgrade(&handle.shared));
        Ok(handle)
    }

    /// The last `count` candles of a running feed of `symbol` on
    /// `timeframe`, oldest first; None if no bot uses such a feed. With
    /// several such feeds (different seeds or files), the busiest one.
    pub fn recent(&self, symbol: &str, timeframe: &str, count: usize) -> Option<Vec<Candle>> {
        let feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        let handle = feeds
            .iter()
            .filter(|(key, _)| key.symbol == symbol && key.timeframe == timeframe)
            .filter_map(|(_, feed)| feed.upgrade().map(|shared| FeedHandle { shared }))
            .max_by_key(FeedHandle::published)?;
        drop(feeds);
        Some(handle.recent_before(handle.published(), count))
    }
}

/// Where a feed's candles come from.
pub trait CandleSource: Send + 'static {
    /// The next candle, once it is due; `None` when the source is done.
    fn next(&mut self) -> impl Future<Output = Option<Candle>> + Send;
}

/// Candles from an iterator, one every `interval` (as fast as readers
/// allow for a zero interval).
pub struct Paced<I> {
    candles: I,
    ticker: Option<tokio::time::Interval>,
    emitted: u64,
}

impl<I: Iterator<Item = Candle> + Send + 'static> Paced<I> {
    pub fn new(candles: I, interval: Duration) -> Self {
        let ticker = (!interval.is_zero()).then(|| {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        Self {
            candles,
            ticker,
            emitted: 0,
        }
    }
}

impl<I: Iterator<Item = Candle> + Send + 'static> CandleSource for Paced<I> {
    async fn next(&mut self) -> Option<Candle> {
        match &mut self.ticker {
            Some(ticker) => {
                ticker.tick().await;
            }
            // Unpaced: let other tasks run now and then.
            None if self.emitted.is_multiple_of(256) => tokio::task::yield_now().await,
            None => {}
        }
        self.emitted += 1;
        self.candles.next()
    }
}

/// Publish what `source` yields until it is done or no one holds the feed.
fn spawn_source(handle: &FeedHandle, mut source: impl CandleSource) {
    let feed = Arc::downgrade(&handle.shared);
    tokio::spawn(async move {
        while let Some(candle) = source.next().await {
            let Some(shared) = feed.upgrade() else { return };
            let handle = FeedHandle { shared };
            if let Err(err) = handle.publish(candle) {
                tracing::warn!(feed = handle.key(), %err, "candle dropped");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn candle(ts: i64) -> Candle {
        let one = Decimal::ONE;
        Candle {
            ts,
            open: one,
            high: one,
            low: one,
            close: one,
            volume: one,
        }
    }

    #[test]
    fn readers_catch_up_in_order_and_learn_what_they_missed() {
        let feed = FeedHandle::new("test".into(), 3, None);
        for ts in 1..=5 {
            feed.publish(candle(ts)).unwrap();
        }
        assert_eq!(feed.published(), 5);
        let mut out = Vec::new();
        // Two candles left the history before this reader came.
        assert_eq!(feed.read_from(0, 10, &mut out), ReadOutcome { skipped: 2 });
        assert_eq!(
            out.iter().map(|c| c.candle.ts).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        out.clear();
        assert_eq!(feed.read_from(4, 10, &mut out), ReadOutcome { skipped: 0 });
        assert_eq!(out.iter().map(|c| c.candle.ts).collect::<Vec<_>>(), [5]);
        out.clear();
        feed.read_from(5, 10, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            feed.recent_before(5, 2)
                .iter()
                .map(|c| c.ts)
                .collect::<Vec<_>>(),
            [4, 5]
        );
        assert_eq!(
            feed.recent_before(4, 2)
                .iter()
                .map(|c| c.ts)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(feed.recent_before(2, 2).is_empty());
    }

    #[test]
    fn out_of_order_candles_are_refused() {
        let feed = FeedHandle::new("test".into(), 10, None);
        feed.publish(candle(10)).unwrap();
        assert!(matches!(
            feed.publish(candle(10)),
            Err(FeedError::OutOfOrder { ts: 10, last: 10 })
        ));
        assert!(matches!(
            feed.publish(candle(5)),
            Err(FeedError::OutOfOrder { .. })
        ));
        assert_eq!(feed.published(), 1);
    }
}
