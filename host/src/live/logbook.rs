//! [`LogBook`]: numbers the engine's and plugins' log lines, hands them to
//! a sink (the store, where the API reads them) and publishes them on the
//! bus's `logs` channel.
//!
//! It is a `tracing` layer, so the code that logs does not know it exists:
//! plugin lines (already rate-limited per instance by the plugin runtime)
//! and engine lines carry `bot` and `plugin` fields, which become the
//! line's bot and component.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::bus::EventBus;
use super::event::EventData;

/// One log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// Receives every line as it is written (the durable store).
pub type LogSink = Box<dyn Fn(&LogLine) + Send + Sync>;

/// Where log lines go; cheap to clone.
#[derive(Clone, Default)]
pub struct LogBook {
    /// The id of the next line.
    next_id: Arc<AtomicU64>,
    bus: Arc<OnceLock<Arc<EventBus>>>,
    sink: Arc<OnceLock<LogSink>>,
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

    /// Number new lines after `last_id`, the last line of an earlier run.
    pub fn continue_after(&self, last_id: u64) {
        self.next_id
            .fetch_max(last_id.saturating_add(1), Ordering::Relaxed);
    }

    pub fn push(&self, mut line: LogLine) {
        line.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(sink) = self.sink.get() {
            sink(&line);
        }
        if let Some(bus) = self.bus.get() {
            let bot: Option<Arc<str>> = line.bot_id.as_deref().map(Arc::from);
            bus.publish(bot.as_ref(), EventData::Log(Box::new(line)));
        }
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
    fn captures_fields_numbers_lines_and_publishes_them() {
        let book = LogBook::default();
        book.continue_after(41);
        let bus = Arc::new(EventBus::new(1));
        book.attach(bus.clone());
        let sunk = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = sunk.clone();
        book.attach_sink(Box::new(move |line: &LogLine| {
            into.lock().unwrap().push(line.clone())
        }));
        let subscriber = tracing_subscriber::registry().with(book.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(plugin = "ema-cross 0.1.0", bot = "a", "too few candles");
            tracing::info!(bot = "b", "started");
        });
        let lines = sunk.lock().unwrap().clone();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].id, lines[1].id),
            (42, 43),
            "numbered after the earlier run"
        );
        assert_eq!(lines[0].component, "plugin");
        assert_eq!(lines[0].bot_id.as_deref(), Some("a"));
        assert_eq!(lines[0].level, "WARN");
        assert_eq!(lines[0].message, "too few candles");
        assert_eq!(lines[1].bot_id.as_deref(), Some("b"));
        assert_eq!(bus.next_seq(), 3, "every line was published");
    }
}
