//! [`LogBook`]: the engine's and plugins' log lines, kept for the API and
//! published on the bus's `logs` channel.
//!
//! It is a `tracing` layer, so the code that logs does not know it exists:
//! plugin lines (already rate-limited per instance by the plugin runtime)
//! and engine lines carry `bot` and `plugin` fields, which become the
//! line's bot and component. Lines are kept in a bounded ring; the durable
//! store will keep them longer.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::bus::{Channel, EventBus};

/// Lines kept.
pub const LOG_CAPACITY: usize = 10_000;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Position in the book (rises by one per line).
    pub id: u64,
    /// Wall time, epoch ms.
    pub ts: i64,
    pub level: String,
    /// `plugin` for strategy lines, else the Rust module that logged.
    pub component: String,
    pub bot_id: Option<String>,
    pub plugin: Option<String>,
    pub message: String,
}

#[derive(Default)]
struct Lines {
    next_id: u64,
    ring: VecDeque<LogLine>,
}

/// Receives every line as it is written (the durable store).
pub type LogSink = Box<dyn Fn(&LogLine) + Send + Sync>;

/// Where log lines are kept; cheap to clone.
#[derive(Clone, Default)]
pub struct LogBook {
    lines: Arc<Mutex<Lines>>,
    bus: Arc<OnceLock<Arc<EventBus>>>,
    sink: Arc<OnceLock<LogSink>>,
}

/// What a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Lines at this level or more severe.
    pub level: Option<Level>,
    pub component: Option<String>,
    pub bot_id: Option<String>,
    /// Lines with a wall time at or after this (epoch ms).
    pub since: Option<i64>,
    /// Lines with an id below this (paging backwards).
    pub before_id: Option<u64>,
    pub limit: usize,
}

impl LogBook {
    /// Publish every line from now on to `bus` as well.
    pub fn attach(&self, bus: Arc<EventBus>) {
        let _ = self.bus.set(bus);
    }

    /// Hand every line from now on to `sink` as well.
    pub fn attach_sink(&self, sink: LogSink) {
        let _ = self.sink.set(sink);
    }

    /// Put back lines kept from an earlier run (oldest first); new lines
    /// are numbered after them.
    pub fn restore(&self, restored: Vec<LogLine>) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        for line in restored {
            lines.next_id = lines.next_id.max(line.id + 1);
            if lines.ring.len() == LOG_CAPACITY {
                lines.ring.pop_front();
            }
            lines.ring.push_back(line);
        }
    }

    pub fn push(&self, mut line: LogLine) {
        {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            line.id = lines.next_id;
            lines.next_id += 1;
            if lines.ring.len() == LOG_CAPACITY {
                lines.ring.pop_front();
            }
            lines.ring.push_back(line.clone());
        }
        if let Some(sink) = self.sink.get() {
            sink(&line);
        }
        if let Some(bus) = self.bus.get() {
            let bot = line.bot_id.clone();
            let data = serde_json::to_value(&line).unwrap_or_default();
            bus.publish(Channel::Logs, "log", bot.as_deref(), data);
        }
    }

    /// Matching lines, newest first.
    pub fn query(&self, query: &LogQuery) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .ring
            .iter()
            .rev()
            .filter(|l| query.before_id.is_none_or(|before| l.id < before))
            .filter(|l| {
                query.level.is_none_or(|level| {
                    l.level
                        .parse::<Level>()
                        .is_ok_and(|line_level| line_level <= level)
                })
            })
            .filter(|l| query.component.as_ref().is_none_or(|c| &l.component == c))
            .filter(|l| {
                query
                    .bot_id
                    .as_ref()
                    .is_none_or(|b| l.bot_id.as_ref() == Some(b))
            })
            .filter(|l| query.since.is_none_or(|since| l.ts >= since))
            .take(query.limit)
            .cloned()
            .collect()
    }
}

/// Collects a tracing event's message and the fields the book cares about.
#[derive(Default)]
struct LineVisitor {
    message: String,
    bot: Option<String>,
    plugin: Option<String>,
    extra: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "bot" => self.bot = Some(value.to_string()),
            "plugin" => self.plugin = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "bot" => self.bot = Some(format!("{value:?}").trim_matches('"').to_string()),
            "plugin" => self.plugin = Some(format!("{value:?}").trim_matches('"').to_string()),
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for LogBook {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let component = if visitor.plugin.is_some() {
            "plugin".to_string()
        } else {
            metadata.target().to_string()
        };
        let ts = super::wall_ms();
        self.push(LogLine {
            id: 0,
            ts,
            level: metadata.level().to_string(),
            component,
            bot_id: visitor.bot,
            plugin: visitor.plugin,
            message: visitor.message + &visitor.extra,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn captures_fields_and_filters() {
        let book = LogBook::default();
        let bus = Arc::new(EventBus::new(1));
        book.attach(bus.clone());
        let subscriber = tracing_subscriber::registry().with(book.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(plugin = "ema-cross 0.1.0", bot = "a", "too few candles");
            tracing::info!(bot = "b", "started");
            tracing::debug!("host detail");
        });
        let all = book.query(&LogQuery {
            limit: 10,
            ..LogQuery::default()
        });
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].component, "plugin");
        assert_eq!(all[2].bot_id.as_deref(), Some("a"));
        assert_eq!(all[2].message, "too few candles");
        let warnings = book.query(&LogQuery {
            level: Some(Level::WARN),
            limit: 10,
            ..LogQuery::default()
        });
        assert_eq!(warnings.len(), 1);
        let of_b = book.query(&LogQuery {
            bot_id: Some("b".into()),
            limit: 10,
            ..LogQuery::default()
        });
        assert_eq!(of_b[0].message, "started");
        assert_eq!(bus.next_seq(), 4, "every line was published");
    }
}
