//! Plugin log lines: to tracing, tagged with plugin and bot, rate-limited.
//!
//! Each instance has a token bucket (a burst of [`BURST`] lines, refilled at
//! [`LINES_PER_SECOND`]); lines over the budget are counted and dropped, and
//! the count is reported with the next line that passes. Lines are cut at
//! [`MAX_LINE_BYTES`] and kept on one line (control characters, newlines
//! included, become spaces), so a plugin cannot forge log lines of its own. The bucket runs on wall time: logging is not part of a
//! strategy's decisions, so this does not touch determinism.
//!
//! The SDK's panic hook sends the panic message as an error line starting
//! with [`PANIC_PREFIX`]; it is not logged but kept, whatever the rate limit,
//! so the trap that follows carries it.

use std::sync::Arc;
use std::time::Instant;

use super::contract::LogLevel;

pub const BURST: f64 = 50.0;
pub const LINES_PER_SECOND: f64 = 10.0;
pub const MAX_LINE_BYTES: usize = 2048;
pub const PANIC_PREFIX: &str = "panic: ";

pub(crate) struct PluginLog {
    plugin: Arc<str>,
    bot: Arc<str>,
    tokens: f64,
    refilled_at: Instant,
    dropped: u64,
    /// The panic message of the current call, if the plugin panicked.
    pub(crate) panic_message: Option<String>,
}

impl PluginLog {
    pub(crate) fn new(plugin: Arc<str>, bot: Arc<str>) -> Self {
        Self {
            plugin,
            bot,
            tokens: BURST,
            refilled_at: Instant::now(),
            dropped: 0,
            panic_message: None,
        }
    }

    pub(crate) fn write(&mut self, level: LogLevel, mut message: String) {
        if let Some(panic) = message.strip_prefix(PANIC_PREFIX) {
            // Not logged: it travels in the error of the trap that follows.
            self.panic_message = Some(one_line(panic));
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * LINES_PER_SECOND).min(BURST);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return;
        }
        self.tokens -= 1.0;
        message = one_line(&message);
        // Said only when lines were dropped since the last one that passed
        // (a field that is `None` is not recorded).
        let dropped = Some(std::mem::take(&mut self.dropped)).filter(|&count| count > 0);
        let (plugin, bot) = (&*self.plugin, &*self.bot);
        match level {
            LogLevel::Trace => tracing::trace!(plugin, bot, dropped, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, bot, dropped, "{message}"),
            LogLevel::Info => tracing::info!(plugin, bot, dropped, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, bot, dropped, "{message}"),
            LogLevel::Error => tracing::error!(plugin, bot, dropped, "{message}"),
        }
    }

    /// Lines dropped since the last one that passed.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// `message` cut to [`MAX_LINE_BYTES`], on one line.
fn one_line(message: &str) -> String {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(flat)
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_burst() {
        let mut log = PluginLog::new("p".into(), "b".into());
        for i in 0..10_000 {
            log.write(LogLevel::Info, format!("line {i}"));
        }
        // The burst passes; almost everything else is dropped (a few lines may
        // be refilled while the loop runs).
        assert!(
            log.dropped() >= 10_000 - BURST as u64 - 20,
            "{}",
            log.dropped()
        );
    }

    #[test]
    fn a_line_reaches_the_log_book_as_the_plugin_wrote_it() {
        use tracing_subscriber::prelude::*;
        let book = crate::live::LogBook::default();
        let sunk = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = sunk.clone();
        book.attach_sink(Box::new(move |line: &crate::live::LogLine| {
            into.lock().unwrap().push(line.message.clone())
        }));
        let subscriber = tracing_subscriber::registry().with(book);
        tracing::subscriber::with_default(subscriber, || {
            let mut log = PluginLog::new("p 0.1.0".into(), "b".into());
            log.write(LogLevel::Info, "entry at 99.63".into());
            // Past the burst, lines are dropped; the next one to pass says
            // how many.
            for i in 0..BURST as usize + 5 {
                log.write(LogLevel::Info, format!("line {i}"));
            }
            log.tokens = 1.0;
            log.write(LogLevel::Info, "after the flood".into());
        });
        let lines = sunk.lock().unwrap().clone();
        assert_eq!(lines[0], "entry at 99.63");
        let last = lines.last().unwrap();
        assert!(last.starts_with("after the flood dropped="), "{lines:?}");
        assert!(!last.ends_with("dropped=0"), "{last}");
    }

    #[test]
    fn lines_stay_one_line() {
        assert_eq!(
            one_line("ok\n2026-01-01 ERROR forged\r\tline"),
            "ok 2026-01-01 ERROR forged  line"
        );
        let mut log = PluginLog::new("p".into(), "b".into());
        log.write(LogLevel::Error, format!("{PANIC_PREFIX}multi\nline"));
        assert_eq!(log.panic_message.as_deref(), Some("multi line"));
    }

    #[test]
    fn panic_lines_are_kept_and_long_lines_cut() {
        let mut log = PluginLog::new("p".into(), "b".into());
        log.write(LogLevel::Error, format!("{PANIC_PREFIX}boom"));
        assert_eq!(log.panic_message.as_deref(), Some("boom"));
        assert_eq!(
            truncate("é".repeat(MAX_LINE_BYTES)).len(),
            MAX_LINE_BYTES + 3
        );
    }
}
