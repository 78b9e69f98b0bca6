//! Kline streams for many feeds on few connections.
//!
//! [`KlineStreams`] serves one Binance deployment. Each subscription (a
//! symbol and timeframe, delivered to a [`KlineSink`]) joins a connection
//! with room for it (Binance allows 1,024 streams per connection). Each
//! connection is a task, the multiplexer, that owns its streams' state and
//! up to three reader tasks (the connection in use, its replacement while
//! it subscribes, the one it replaced while that is still read), each
//! reading one WebSocket:
//!
//! - Pings are answered at once with the ping's payload; a connection that
//!   is silent for [`StreamSettings::silence`] is taken for dead.
//! - A lost connection is opened again after an exponential backoff with
//!   jitter. Before [`StreamSettings::max_age`] (Binance closes connections
//!   at 24 h) and on a `serverShutdown` event, a second connection is opened
//!   beside the first. Once the second has every stream subscribed it takes
//!   over, and the first is still read for a second: a candle
//!   already on its way over the old connection when the new one subscribed
//!   is not lost, and candles from both are deduplicated by open time.
//! - Every stream delivers each closed candle once, in order. An update
//!   whose open time is past the next expected candle means candles were
//!   missed: they are fetched from REST before anything newer is delivered
//!   (newer updates wait meanwhile). What REST does not have either is a real
//!   gap, announced to the sink, never papered over.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::Endpoints;
use super::kline::{KlineUpdate, StreamMessage, parse_stream_message, stream_name};
use super::rest::{MAX_KLINES, RestClient, RestError};
use crate::domain::{Candle, Timeframe};

/// Where a stream's closed candles go (a live feed).
pub trait KlineSink: Send + Sync + 'static {
    /// The open time of the newest candle the sink has, if any.
    fn last_ts(&self) -> Option<i64>;
    /// The next closed candle, read off the socket (or REST) at `arrived`.
    fn deliver(&self, candle: Candle, arrived: Instant);
    /// No candle exists with an open time strictly between `after` and
    /// `before`: neither the stream nor REST history has one.
    fn gap(&self, after: i64, before: i64);
    /// False once no one reads the sink: its stream is then dropped.
    fn wanted(&self) -> bool;
}

/// How connections behave; the defaults follow Binance's documented limits.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Streams per connection (Binance: at most 1,024).
    pub max_streams: usize,
    /// A connection is replaced before it is this old (Binance: 24 h).
    pub max_age: Duration,
    /// No message (data or ping) for this long: the connection is dead.
    pub silence: Duration,
    /// First and longest wait before reconnecting (doubling, with jitter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Candles fetched from REST when a stream starts (its warm-up).
    pub warmup: u16,
    /// Most candles fetched to fill one gap: as many as a feed keeps (its
    /// history holds 100,000), so only what no bot could be given anyway
    /// is announced as a gap instead (69 days of 1m candles).
    pub max_fill: i64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            max_age: Duration::from_secs(23 * 3_600 + 30 * 60),
            silence: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            warmup: MAX_KLINES - 1,
            max_fill: 100_000,
        }
    }
}

/// Control messages (SUBSCRIBE and UNSUBSCRIBE) sent per second at most:
/// Binance drops a connection past 5 incoming messages per second, pongs
/// included.
const CONTROL_PER_SECOND: usize = 3;
/// Stream names per SUBSCRIBE message.
const NAMES_PER_REQUEST: usize = 200;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the connection replaced at a rollover is still read.
const ROLLOVER_OVERLAP: Duration = Duration::from_secs(1);
/// Times a fill asks REST again for candles that closed just before it.
const FILL_LAG_RETRIES: u32 = 3;
/// The first wait between those (then twice, three times as long).
const FILL_LAG_WAIT: Duration = Duration::from_millis(500);

struct Subscription {
    name: String,
    symbol: String,
    timeframe: Timeframe,
    sink: Arc<dyn KlineSink>,
}

struct Connection {
    control: mpsc::UnboundedSender<Subscription>,
    streams: Arc<AtomicUsize>,
}

/// The kline streams of one Binance deployment.
pub struct KlineStreams {
    endpoints: Endpoints,
    rest: Arc<RestClient>,
    settings: StreamSettings,
    connections: Mutex<Vec<Connection>>,
}

impl KlineStreams {
    pub fn new(endpoints: Endpoints, settings: StreamSettings) -> Self {
        Self {
            rest: RestClient::shared(&endpoints.rest),
            endpoints,
            settings,
            connections: Mutex::new(Vec::new()),
        }
    }

    pub fn rest(&self) -> &Arc<RestClient> {
        &self.rest
    }

    /// The newest closed candles of `symbol`: those after `after` when
    /// given, else the last [`StreamSettings::warmup`]; what a feed starts
    /// from before it subscribes.
    pub async fn recent(
        &self,
        symbol: &str,
        timeframe: Timeframe,
        after: Option<i64>,
    ) -> Result<Vec<Candle>, RestError> {
        let now = self.rest.server_time().await?;
        let start = after.map(|after| after + timeframe.millis());
        let rows = self
            .rest
            .klines(symbol, timeframe, start, None, self.settings.warmup + 1)
            .await?;
        Ok(in_order(
            rows.iter()
                .filter(|row| row.close_time() < now)
                .filter_map(|row| row.valid_candle()),
            i64::MIN,
            i64::MAX,
        ))
    }

    /// Deliver the closed candles of `symbol` on `timeframe` to `sink`
    /// until it is no longer wanted. Must be called inside a tokio runtime.
    pub fn subscribe(&self, symbol: &str, timeframe: Timeframe, sink: Arc<dyn KlineSink>) {
        let mut subscription = Subscription {
            name: stream_name(symbol, timeframe),
            symbol: symbol.to_ascii_uppercase(),
            timeframe,
            sink,
        };
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|connection| !connection.control.is_closed());
        for connection in connections.iter() {
            if connection.streams.load(Ordering::Acquire) >= self.settings.max_streams {
                continue;
            }
            connection.streams.fetch_add(1, Ordering::AcqRel);
            match connection.control.send(subscription) {
                Ok(()) => return,
                Err(returned) => {
                    connection.streams.fetch_sub(1, Ordering::AcqRel);
                    subscription = returned.0;
                }
            }
        }
        let (control, requests) = mpsc::unbounded_channel();
        let streams = Arc::new(AtomicUsize::new(1));
        let _ = control.send(subscription);
        let multiplexer = Multiplexer::new(
            self.endpoints.stream.clone(),
            self.rest.clone(),
            self.settings.clone(),
            streams.clone(),
        );
        tokio::spawn(multiplexer.run(requests));
        connections.push(Connection { control, streams });
    }

    /// Connections open or opening (for tests and metrics).
    pub fn connections(&self) -> usize {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|connection| !connection.control.is_closed());
        connections.len()
    }
}

/// What reader and fill tasks tell their multiplexer.
enum Incoming {
    Message {
        generation: u64,
        message: StreamMessage,
        arrived: Instant,
    },
    Closed {
        generation: u64,
        reason: String,
    },
    /// Every subscription this connection was opened with is acknowledged.
    Ready {
        generation: u64,
    },
    Filled {
        name: String,
        /// The [`StreamState::epoch`] the fill was asked for.
        epoch: u64,
        before: i64,
        candles: Vec<Candle>,
    },
}

enum ReaderCommand {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// One WebSocket being read.
struct Reader {
    generation: u64,
    commands: mpsc::UnboundedSender<ReaderCommand>,
    task: JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One stream's delivery state.
struct StreamState {
    symbol: String,
    timeframe: Timeframe,
    sink: Arc<dyn KlineSink>,
    /// Open time of the newest candle delivered.
    last: Option<i64>,
    /// A REST fill is running; closed updates wait here meanwhile.
    filling: bool,
    waiting: Vec<(KlineUpdate, Instant)>,
    /// REST was asked for every candle before this open time.
    checked_before: i64,
    /// Which subscription of the stream this is (a stream dropped and
    /// subscribed again gets a new one): fills asked for an older one are
    /// ignored.
    epoch: u64,
}

struct Multiplexer {
    url: String,
    rest: Arc<RestClient>,
    settings: StreamSettings,
    count: Arc<AtomicUsize>,
    streams: HashMap<String, StreamState>,
    incoming: mpsc::UnboundedSender<Incoming>,
    inbox: mpsc::UnboundedReceiver<Incoming>,
    current: Option<Reader>,
    /// The replacement opened before a rollover, until all its
    /// subscriptions are acknowledged.
    next: Option<Reader>,
    /// The connection replaced at the last rollover, read until
    /// `retire_at` for what it had already been sent.
    retiring: Option<Reader>,
    retire_at: Option<tokio::time::Instant>,
    generation: u64,
    /// Numbers the streams' subscriptions ([`StreamState::epoch`]).
    epochs: u64,
    failures: u32,
    reconnect_at: Option<tokio::time::Instant>,
    rollover_at: Option<tokio::time::Instant>,
}

impl Multiplexer {
    fn new(
        stream_base: String,
        rest: Arc<RestClient>,
        settings: StreamSettings,
        count: Arc<AtomicUsize>,
    ) -> Self {
        let (incoming, inbox) = mpsc::unbounded_channel();
        Self {
            url: format!("{stream_base}/stream"),
            rest,
            settings,
            count,
            streams: HashMap::new(),
            incoming,
            inbox,
            current: None,
            next: None,
            retiring: None,
            retire_at: None,
            generation: 0,
            failures: 0,
            reconnect_at: None,
            rollover_at: None,
            epochs: 0,
        }
    }

    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Subscription>) {
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let reconnect_at = self.reconnect_at.unwrap_or_else(far);
            let rollover_at = match &self.current {
                Some(_) => self.rollover_at.unwrap_or_else(far),
                None => far(),
            };
            let retire_at = self.retire_at.unwrap_or_else(far);
            tokio::select! {
                request = requests.recv() => match request {
                    Some(subscription) => self.add(subscription),
                    None => return, // the streams' owner is gone
                },
                Some(incoming) = self.inbox.recv() => self.on_incoming(incoming),
                () = tokio::time::sleep_until(reconnect_at) => {
                    self.reconnect_at = None;
                    self.current = self.open();
                }
                () = tokio::time::sleep_until(retire_at) => {
                    self.retire_at = None;
                    self.retiring = None;
                }
                () = tokio::time::sleep_until(rollover_at) => {
                    if self.next.take().is_some() {
                        // The replacement never became ready: try again.
                        tracing::warn!(url = self.url, "replacement connection not ready in time");
                        self.rollover_at = Some(tokio::time::Instant::now() + self.settings.silence);
                    } else {
                        self.roll_over("the connection's age");
                    }
                }
            }
        }
    }

    fn add(&mut self, subscription: Subscription) {
        let Subscription {
            name,
            symbol,
            timeframe,
            sink,
        } = subscription;
        let last = sink.last_ts();
        self.epochs += 1;
        let replaced = self.streams.insert(
            name.clone(),
            StreamState {
                symbol,
                timeframe,
                sink,
                last,
                filling: false,
                waiting: Vec::new(),
                checked_before: i64::MIN,
                epoch: self.epochs,
            },
        );
        if replaced.is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel); // the old sink's place
            return;
        }
        match &self.current {
            Some(_) => self.tell_readers(|| ReaderCommand::Subscribe(vec![name.clone()])),
            None if self.reconnect_at.is_none() => self.current = self.open(),
            None => {} // reconnecting: the new connection subscribes it
        }
    }

    fn tell_readers(&self, command: impl Fn() -> ReaderCommand) {
        for reader in [&self.current, &self.next].into_iter().flatten() {
            let _ = reader.commands.send(command());
        }
    }

    /// A new connection subscribed to every stream; none without streams.
    fn open(&mut self) -> Option<Reader> {
        if self.streams.is_empty() {
            return None;
        }
        self.generation += 1;
        self.rollover_at = Some(tokio::time::Instant::now() + self.settings.max_age);
        let (commands, requests) = mpsc::unbounded_channel();
        let names: Vec<String> = self.streams.keys().cloned().collect();
        let task = tokio::spawn(read(
            self.generation,
            self.url.clone(),
            names,
            requests,
            self.incoming.clone(),
            self.settings.silence,
        ));
        Some(Reader {
            generation: self.generation,
            commands,
            task,
        })
    }

    /// Open the replacement connection beside the current one.
    fn roll_over(&mut self, why: &str) {
        if self.next.is_some() || self.current.is_none() {
            return;
        }
        tracing::info!(
            url = self.url,
            why,
            "opening a replacement stream connection"
        );
        self.next = self.open();
        // If the replacement is not ready by then, it is dropped and
        // another one tried.
        self.rollover_at = Some(tokio::time::Instant::now() + self.settings.silence);
    }

    fn backoff(&self) -> Duration {
        let doubled = self
            .settings
            .backoff_min
            .saturating_mul(1 << self.failures.min(16))
            .min(self.settings.backoff_max);
        doubled.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }

    fn generation_of(reader: &Option<Reader>) -> Option<u64> {
        reader.as_ref().map(|reader| reader.generation)
    }

    fn on_incoming(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Message {
                generation,
                message,
                arrived,
            } => {
                let from_current = Self::generation_of(&self.current) == Some(generation);
                let read = from_current
                    || Self::generation_of(&self.next) == Some(generation)
                    || Self::generation_of(&self.retiring) == Some(generation);
                if !read {
                    return; // a connection already let go
                }
                match message {
                    // Two connections deliver around a rollover; a candle
                    // seen on both is delivered once.
                    StreamMessage::Kline { stream, update } => {
                        self.failures = 0;
                        self.on_update(&stream, update, arrived);
                    }
                    StreamMessage::ServerShutdown if from_current => {
                        self.roll_over("the server's serverShutdown event")
                    }
                    StreamMessage::Reply {
                        error: Some(error), ..
                    } => tracing::warn!(url = self.url, error, "subscription refused"),
                    _ => {}
                }
            }
            Incoming::Ready { generation } => {
                if Self::generation_of(&self.next) == Some(generation) {
                    tracing::info!(url = self.url, "switched to the replacement connection");
                    self.retiring = std::mem::replace(&mut self.current, self.next.take());
                    self.retire_at = Some(tokio::time::Instant::now() + ROLLOVER_OVERLAP);
                    self.rollover_at = Some(tokio::time::Instant::now() + self.settings.max_age);
                }
            }
            Incoming::Closed { generation, reason } => {
                if Self::generation_of(&self.next) == Some(generation) {
                    tracing::warn!(url = self.url, reason, "replacement connection failed");
                    self.next = None;
                } else if Self::generation_of(&self.current) == Some(generation) {
                    tracing::warn!(url = self.url, reason, "stream connection lost");
                    self.current = self.next.take();
                    match self.current {
                        Some(_) => {
                            self.rollover_at =
                                Some(tokio::time::Instant::now() + self.settings.max_age);
                        }
                        None => {
                            self.failures += 1;
                            self.reconnect_at = Some(tokio::time::Instant::now() + self.backoff());
                        }
                    }
                }
            }
            Incoming::Filled {
                name,
                epoch,
                before,
                candles,
            } => self.on_filled(&name, epoch, before, candles),
        }
    }

    fn drop_stream(&mut self, name: &str) {
        if self.streams.remove(name).is_none() {
            return;
        }
        self.count.fetch_sub(1, Ordering::AcqRel);
        if self.streams.is_empty() {
            // Nothing to read: close, and open again on the next subscription.
            self.current = None;
            self.next = None;
            self.retiring = None;
            self.retire_at = None;
            self.reconnect_at = None;
        } else {
            self.tell_readers(|| ReaderCommand::Unsubscribe(vec![name.to_string()]));
        }
    }

    fn on_update(&mut self, name: &str, update: KlineUpdate, arrived: Instant) {
        let Some(state) = self.streams.get_mut(name) else {
            return;
        };
        if !state.sink.wanted() {
            self.drop_stream(name);
            return;
        }
        if state.filling {
            if update.closed {
                state.waiting.push((update, arrived));
            }
            return;
        }
        // Every candle before this update's is closed: any of them not
        // delivered yet and not yet asked of REST is fetched first.
        let before = update.candle.ts;
        let expected = state.last.map(|last| last + state.timeframe.millis());
        let missing = expected.is_none_or(|next| before > next && before > state.checked_before);
        if missing {
            state.filling = true;
            if update.closed {
                state.waiting.push((update, arrived));
            }
            self.fill(name, expected, before);
            return;
        }
        if update.closed {
            deliver(state, update.candle, arrived);
        }
    }

    /// Fetch `name`'s candles from `from` (or the warm-up) up to `before`,
    /// retrying until REST answers or the stream is no longer wanted.
    fn fill(&self, name: &str, from: Option<i64>, before: i64) {
        let Some(state) = self.streams.get(name) else {
            return;
        };
        let (rest, incoming) = (self.rest.clone(), self.incoming.clone());
        let (symbol, timeframe, sink) = (state.symbol.clone(), state.timeframe, state.sink.clone());
        let (warmup, max_fill, epoch) = (self.settings.warmup, self.settings.max_fill, state.epoch);
        let name = name.to_string();
        tokio::spawn(async move {
            let newest = before - timeframe.millis();
            let (mut wait, mut lagging) = (Duration::from_secs(1), 0);
            loop {
                let fetched =
                    fetch_before(&rest, &symbol, timeframe, from, before, warmup, max_fill).await;
                match fetched {
                    // REST reads from a database that can lag the stream by
                    // a moment: a candle that closed just now and is not
                    // there yet is asked for again before it counts as
                    // missing.
                    Ok(candles)
                        if lagging < FILL_LAG_RETRIES
                            && candles.last().is_none_or(|last| last.ts < newest) =>
                    {
                        lagging += 1;
                        tokio::time::sleep(FILL_LAG_WAIT * lagging).await;
                    }
                    Ok(candles) => {
                        let _ = incoming.send(Incoming::Filled {
                            name,
                            epoch,
                            before,
                            candles,
                        });
                        return;
                    }
                    Err(error) if sink.wanted() => {
                        tracing::warn!(stream = name, %error, "cannot fetch missing candles; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                    Err(_) => return,
                }
            }
        });
    }

    fn on_filled(&mut self, name: &str, epoch: u64, before: i64, candles: Vec<Candle>) {
        let Some(state) = self.streams.get_mut(name) else {
            return;
        };
        if state.epoch != epoch {
            return; // asked for a subscription of the stream since replaced
        }
        let now = Instant::now();
        for candle in candles {
            deliver(state, candle, now);
        }
        state.checked_before = state.checked_before.max(before);
        state.filling = false;
        for (update, arrived) in std::mem::take(&mut state.waiting) {
            self.on_update(name, update, arrived);
        }
    }
}

/// Hand `candle` to the sink unless it has it, announcing a jump.
fn deliver(state: &mut StreamState, candle: Candle, arrived: Instant) {
    if let Some(last) = state.last {
        if candle.ts <= last {
            return;
        }
        if candle.ts > last + state.timeframe.millis() {
            state.sink.gap(last, candle.ts);
        }
    }
    state.sink.deliver(candle, arrived);
    state.last = Some(candle.ts);
}

/// The closed candles of `symbol` before `before`: from `from` on (at most
/// `max_fill` of them, the newest), or the last `warmup` without `from`.
async fn fetch_before(
    rest: &RestClient,
    symbol: &str,
    timeframe: Timeframe,
    from: Option<i64>,
    before: i64,
    warmup: u16,
    max_fill: i64,
) -> Result<Vec<Candle>, RestError> {
    let step = timeframe.millis();
    let Some(from) = from else {
        let rows = rest
            .klines(symbol, timeframe, None, Some(before - 1), warmup)
            .await?;
        return Ok(in_order(
            rows.iter().filter_map(|row| row.valid_candle()),
            i64::MIN,
            before,
        ));
    };
    let mut start = from.max(before - max_fill.saturating_mul(step));
    let mut candles = Vec::new();
    while start < before {
        let rows = rest
            .klines(symbol, timeframe, Some(start), Some(before - 1), MAX_KLINES)
            .await?;
        let page = in_order(
            rows.iter().filter_map(|row| row.valid_candle()),
            start,
            before,
        );
        let Some(last) = page.last() else { break };
        start = last.ts + step;
        candles.extend(page);
    }
    Ok(candles)
}

/// The candles opening in `[from, before)`, in order, each once (whatever
/// order a server sent them in).
fn in_order(candles: impl Iterator<Item = Candle>, from: i64, before: i64) -> Vec<Candle> {
    let mut kept: Vec<Candle> = candles
        .filter(|candle| candle.ts >= from && candle.ts < before)
        .collect();
    kept.sort_by_key(|candle| candle.ts);
    kept.dedup_by_key(|candle| candle.ts);
    kept
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Subscription changes waiting to be sent, and when the last control
/// messages went: at most [`CONTROL_PER_SECOND`] a second, each carrying
/// up to [`NAMES_PER_REQUEST`] streams, so that a thousand new streams take
/// a few messages and reading never waits on them.
struct ControlQueue {
    subscribe: Vec<String>,
    unsubscribe: Vec<String>,
    sent: VecDeque<Instant>,
    next_id: u64,
    /// Requests sent and not answered yet.
    unanswered: std::collections::HashSet<u64>,
}

impl ControlQueue {
    fn add(&mut self, command: ReaderCommand) {
        match command {
            ReaderCommand::Subscribe(names) => {
                self.unsubscribe.retain(|name| !names.contains(name));
                self.subscribe.extend(names);
            }
            ReaderCommand::Unsubscribe(names) => {
                self.subscribe.retain(|name| !names.contains(name));
                self.unsubscribe.extend(names);
            }
        }
    }

    /// When the next message may go, if one is waiting.
    fn due(&mut self) -> Option<tokio::time::Instant> {
        if self.subscribe.is_empty() && self.unsubscribe.is_empty() {
            return None;
        }
        while self
            .sent
            .front()
            .is_some_and(|at| at.elapsed() >= Duration::from_secs(1))
        {
            self.sent.pop_front();
        }
        let at = if self.sent.len() < CONTROL_PER_SECOND {
            Instant::now()
        } else {
            self.sent[0] + Duration::from_secs(1)
        };
        Some(at.into())
    }

    /// Send one waiting message.
    async fn send_one(&mut self, socket: &mut Socket) -> Result<(), String> {
        let (method, names) = if self.unsubscribe.is_empty() {
            ("SUBSCRIBE", &mut self.subscribe)
        } else {
            ("UNSUBSCRIBE", &mut self.unsubscribe)
        };
        let chunk: Vec<String> = names.drain(..names.len().min(NAMES_PER_REQUEST)).collect();
        self.next_id += 1;
        self.unanswered.insert(self.next_id);
        let request = serde_json::json!({"method": method, "params": chunk, "id": self.next_id});
        self.sent.push_back(Instant::now());
        socket
            .send(Message::text(request.to_string()))
            .await
            .map_err(|error| format!("cannot send {method}: {error}"))
    }
}

/// Read one connection until it fails, falls silent or is let go of.
async fn read(
    generation: u64,
    url: String,
    names: Vec<String>,
    mut commands: mpsc::UnboundedReceiver<ReaderCommand>,
    out: mpsc::UnboundedSender<Incoming>,
    silence: Duration,
) {
    let reason = match connect_and_read(generation, &url, names, &mut commands, &out, silence).await
    {
        Ok(()) => return, // let go of by the multiplexer
        Err(reason) => reason,
    };
    let _ = out.send(Incoming::Closed { generation, reason });
}

async fn connect_and_read(
    generation: u64,
    url: &str,
    names: Vec<String>,
    commands: &mut mpsc::UnboundedReceiver<ReaderCommand>,
    out: &mpsc::UnboundedSender<Incoming>,
    silence: Duration,
) -> Result<(), String> {
    let (mut socket, _) =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(error)) => return Err(format!("cannot connect: {error}")),
            Err(_) => return Err("cannot connect: timed out".into()),
        };
    let mut queue = ControlQueue {
        subscribe: names,
        unsubscribe: Vec::new(),
        sent: VecDeque::new(),
        next_id: 0,
        unanswered: Default::default(),
    };
    let far = || tokio::time::Instant::now() + Duration::from_secs(3_600);
    let mut ready = false;
    loop {
        // Ready once every stream it was opened with is subscribed: a
        // rollover switches over only then.
        if !ready && queue.subscribe.is_empty() && queue.unanswered.is_empty() {
            ready = true;
            let _ = out.send(Incoming::Ready { generation });
        }
        let due = queue.due();
        tokio::select! {
            command = commands.recv() => match command {
                None => return Ok(()),
                Some(command) => {
                    queue.add(command);
                    while let Ok(more) = commands.try_recv() {
                        queue.add(more);
                    }
                }
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(far)), if due.is_some() => {
                queue.send_one(&mut socket).await?;
            }
            read = tokio::time::timeout(silence, socket.next()) => {
                let message = match read {
                    Err(_) => return Err(format!("silent for {} s", silence.as_secs_f64())),
                    Ok(None) => return Err("closed by the server".into()),
                    Ok(Some(Err(error))) => return Err(error.to_string()),
                    Ok(Some(Ok(message))) => message,
                };
                let arrived = Instant::now();
                match message {
                    Message::Text(text) => match parse_stream_message(&text) {
                        Ok(message) => {
                            if let StreamMessage::Reply { id, .. } = &message {
                                queue.unanswered.remove(id);
                            }
                            let _ = out.send(Incoming::Message { generation, message, arrived });
                            // Let the multiplexer take it now: tokio runs the
                            // task a send wakes only once this one yields, and
                            // a burst of klines could be read in full first.
                            tokio::task::yield_now().await;
                        }
                        Err(error) => tracing::debug!(%error, "unreadable stream message"),
                    },
                    // The pong is queued by the protocol layer: send it now.
                    Message::Ping(_) => socket.flush().await.map_err(|error| error.to_string())?,
                    Message::Close(frame) => {
                        return Err(format!("closed by the server: {frame:?}"));
                    }
                    _ => {}
                }
            }
        }
    }
}
