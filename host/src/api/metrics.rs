//! Figures about the host: request counts, order and trade activity, the
//! process's resources, and the Prometheus text at `/metrics`.
//!
//! Activity is counted by a task that follows the event bus (orders and
//! trades channels), so the runners do nothing extra for it. Gauges of the
//! bots are read from their snapshots at scrape time.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rust_decimal::prelude::ToPrimitive;

use super::AppState;
use crate::live::{BotState, Channel, EventBus, EventData, Filter};
use crate::plugin::CallObserver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BotLabels {
    bot: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    quantile: String,
}

/// Orders and trades seen on the bus, by wall time.
#[derive(Default)]
struct Activity {
    orders_total: AtomicU64,
    fills_total: AtomicU64,
    trades_total: AtomicU64,
    /// Wall times (ms) of orders placed in the last minute.
    recent_orders: Mutex<VecDeque<i64>>,
    /// Midnight UTC of the current day, and the trades closed since.
    today: Mutex<(i64, u64)>,
}

/// What `/metrics/global` reports of the activity.
pub struct ActivitySummary {
    pub orders_last_minute: u64,
    pub trades_today: u64,
}

/// A reading of the process.
pub struct ProcessProbe {
    pub cpu_percent: f32,
    pub memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub threads: Option<usize>,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
}

pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    /// Calls refused because their peer failed to authenticate too often.
    refused_auth: Counter,
    /// Duration of every strategy call (on-candle, on-fill), seconds.
    plugin_calls: Histogram,
    activity: Arc<Activity>,
    system: Mutex<Option<sysinfo::System>>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            refused_auth: Counter::default(),
            // 1 µs to about 0.5 s.
            plugin_calls: Histogram::new(exponential_buckets(1e-6, 2.0, 20)),
            activity: Arc::new(Activity::default()),
            system: Mutex::new(sysinfo::System::new().ok()),
        }
    }
}

const DAY_MS: i64 = 86_400_000;

impl ApiMetrics {
    /// Count a request. Labels are bounded: a method outside HTTP's own
    /// set counts as `other`, a path no route matched as `unmatched`, so
    /// no client can grow the metrics with made-up names.
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// A call refused for its peer's failed authentications.
    pub fn count_refused_auth(&self) {
        self.refused_auth.inc();
    }

    /// What the plugin runtime calls after every strategy call.
    pub fn plugin_call_observer(&self) -> CallObserver {
        let histogram = self.plugin_calls.clone();
        CallObserver(Arc::new(move |elapsed| {
            histogram.observe(elapsed.as_secs_f64())
        }))
    }

    /// Follow the bus and count orders, fills and trades, until the bus closes.
    pub fn follow(&self, bus: &EventBus) -> tokio::task::JoinHandle<()> {
        let activity = self.activity.clone();
        let filter = Filter {
            channels: [Channel::Orders, Channel::Trades].into(),
            bots: Default::default(),
        };
        let subscription = bus.subscribe(filter, None);
        tokio::spawn(async move {
            let Ok(mut events) = subscription else { return };
            while let Some(event) = events.next().await {
                let now = super::now_ms();
                match &event.data {
                    EventData::OrderPlaced(_) => {
                        activity.orders_total.fetch_add(1, Ordering::Relaxed);
                        let mut recent = activity
                            .recent_orders
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        recent.push_back(now);
                        while recent.front().is_some_and(|t| *t < now - 60_000) {
                            recent.pop_front();
                        }
                    }
                    EventData::OrderFilled(_) => {
                        activity.fills_total.fetch_add(1, Ordering::Relaxed);
                    }
                    EventData::Trade(_) => {
                        activity.trades_total.fetch_add(1, Ordering::Relaxed);
                        let mut today = activity
                            .today
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let midnight = now - now.rem_euclid(DAY_MS);
                        if today.0 != midnight {
                            *today = (midnight, 0);
                        }
                        today.1 += 1;
                    }
                    _ => {}
                }
            }
        })
    }

    pub fn activity(&self) -> ActivitySummary {
        let now = super::now_ms();
        let orders_last_minute = {
            let recent = self.activity.recent_orders.lock().expect("activity lock");
            recent.iter().filter(|t| **t >= now - 60_000).count() as u64
        };
        let trades_today = {
            let today = self.activity.today.lock().expect("activity lock");
            if today.0 == now - now.rem_euclid(DAY_MS) {
                today.1
            } else {
                0
            }
        };
        ActivitySummary {
            orders_last_minute,
            trades_today,
        }
    }

    /// CPU (since the previous probe), memory and threads of this process,
    /// and the disk holding `data_dir`.
    pub fn probe_process(&self, data_dir: &Path) -> ProcessProbe {
        let mut probe = ProcessProbe {
            cpu_percent: 0.0,
            memory_bytes: 0,
            virtual_memory_bytes: 0,
            threads: None,
            disk_total_bytes: None,
            disk_available_bytes: None,
        };
        if let (Ok(pid), Some(system)) = (
            sysinfo::get_current_pid(),
            self.system.lock().expect("system lock").as_mut(),
        ) {
            system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
            if let Some(process) = system.process(pid) {
                probe.cpu_percent = process.cpu_usage();
                probe.memory_bytes = process.memory();
                probe.virtual_memory_bytes = process.virtual_memory();
                probe.threads = process.tasks().map(|t| t.len());
            }
        }
        let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        if let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() {
            // The disk whose mount point is the longest prefix of the data dir.
            if let Some(disk) = disks
                .iter()
                .filter(|d| data_dir.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len())
            {
                probe.disk_total_bytes = Some(disk.total_space());
                probe.disk_available_bytes = Some(disk.available_space());
            }
        }
        probe
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn prometheus(State(app): State<AppState>) -> impl IntoResponse {
    let mut registry = Registry::with_prefix("stratbox");
    registry.register(
        "api_refused_auth_failures",
        "Calls refused because their address failed to authenticate too often",
        app.metrics.refused_auth.clone(),
    );
    registry.register(
        "api_requests",
        "API requests by method, route and status",
        app.metrics.requests.clone(),
    );
    let bots_by_state = Family::<StateLabels, Gauge>::default();
    let equity = Family::<BotLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let snapshots = app.manager.list();
    for state in [
        BotState::Stopped,
        BotState::Running,
        BotState::Paused,
        BotState::Killed,
        BotState::Error,
    ] {
        let name = super::views::state_name(&state);
        let count = snapshots.iter().filter(|s| s.state == state).count();
        bots_by_state
            .get_or_create(&StateLabels { state: name })
            .set(count as i64);
    }
    for snapshot in &snapshots {
        equity
            .get_or_create(&BotLabels {
                bot: snapshot.id.to_string(),
            })
            .set(snapshot.equity.to_f64().unwrap_or(f64::NAN));
    }
    registry.register("bots", "Bots by state", bots_by_state);
    registry.register("bot_equity", "Equity of each bot (quote asset)", equity);
    let activity = &app.metrics.activity;
    let counter = |value: &AtomicU64| {
        let counter = Counter::<u64>::default();
        counter.inc_by(value.load(Ordering::Relaxed));
        counter
    };
    registry.register(
        "orders_placed",
        "Orders placed since start",
        counter(&activity.orders_total),
    );
    registry.register("fills", "Fills since start", counter(&activity.fills_total));
    registry.register(
        "trades",
        "Round trips closed since start",
        counter(&activity.trades_total),
    );
    let latency = Family::<QuantileLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let histogram = app.manager.latency();
    for quantile in [0.5, 0.9, 0.99] {
        if let Some(micros) = histogram.percentile(quantile) {
            latency
                .get_or_create(&QuantileLabels {
                    quantile: quantile.to_string(),
                })
                .set(micros as f64 / 1e6);
        }
    }
    registry.register(
        "plugin_call_seconds",
        "Duration of each strategy call (on-candle, on-fill) inside the sandbox",
        app.metrics.plugin_calls.clone(),
    );
    registry.register(
        "decision_latency_seconds",
        "From a candle's publication to the end of the plugin's decision on it, by quantile",
        latency,
    );
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(%error, "metrics not encoded");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
