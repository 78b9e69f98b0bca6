//! Shared test support: where the built plugins are, one runtime per test
//! binary, candle builders and a tiny position simulator.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use stratbox_host::plugin::contract::{Action, Candle, Market, OpenOrder, PluginView, Side};
use stratbox_host::plugin::{Plugin, PluginInstance, PluginRuntime, RuntimeConfig};

fn dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(default)
    })
}

/// The example plugins, built by `make plugins`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = dir("STRATBOX_PLUGIN_DIR", "target/plugins").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make plugins` first",
        path.display()
    );
    path
}

/// The hostile fixture plugins, built by `make fixtures`.
pub fn fixture_path(name: &str) -> PathBuf {
    let path = dir("STRATBOX_FIXTURE_DIR", "target/fixtures").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make fixtures` first",
        path.display()
    );
    path
}

/// One runtime for the whole test binary, as in the host.
pub static RUNTIME: LazyLock<PluginRuntime> = LazyLock::new(|| {
    PluginRuntime::new(RuntimeConfig {
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
});

pub fn load(name: &str) -> Arc<Plugin> {
    Arc::new(
        RUNTIME
            .load_file(&plugin_path(name))
            .expect("example plugin loads"),
    )
}

/// The market the tests' plugins trade.
pub fn btc_1m() -> Market {
    Market::new("BTCUSDT", "1m")
}

/// A candle with the given high, low and close (open = close).
pub fn hlc(ts: i64, high: f64, low: f64, close: f64) -> Candle {
    Candle {
        ts,
        open: close,
        high,
        low,
        close,
        volume: 1.0,
        ..Candle::of_bot_market()
    }
}

/// Candles from closes (high = low = close).
pub fn closes(values: &[f64]) -> Vec<Candle> {
    values
        .iter()
        .enumerate()
        .map(|(i, &c)| hlc(i as i64 * 60_000, c, c, c))
        .collect()
}

/// Drives a plugin instance like a bot would, in the simplest possible way:
/// market orders fill at the candle's close at once, resting orders are just
/// remembered. Enough to see a strategy's decisions with a position.
pub struct Harness {
    pub instance: PluginInstance,
    pub view: PluginView,
}

impl Harness {
    pub fn new(instance: PluginInstance, cash: f64) -> Self {
        Self {
            instance,
            view: PluginView::flat(cash),
        }
    }

    /// Feed one candle; return what the plugin decided.
    pub fn step(&mut self, candle: &Candle) -> Vec<Action> {
        let actions = self
            .instance
            .on_candle(candle, &self.view)
            .expect("plugin call succeeds");
        for action in &actions {
            match action {
                Action::Place(intent)
                    if intent.kind == stratbox_host::plugin::contract::OrderKind::Market =>
                {
                    let signed = match intent.side {
                        Side::Buy => intent.quantity,
                        Side::Sell => -intent.quantity,
                    };
                    let bot = &mut self.view.bot;
                    let before = bot.position_qty;
                    bot.position_qty = before + signed;
                    if before == 0.0 {
                        bot.position_avg_price = candle.close;
                    }
                    if bot.position_qty.abs() < 1e-12 {
                        bot.position_qty = 0.0;
                        bot.position_avg_price = 0.0;
                    }
                }
                Action::Place(intent) => self.view.open_orders.push(OpenOrder {
                    client_tag: intent.client_tag.clone(),
                    side: intent.side,
                    kind: intent.kind,
                    quantity: intent.quantity,
                    price: intent.price,
                }),
                Action::Cancel(tag) => self.view.open_orders.retain(|o| &o.client_tag != tag),
            }
        }
        let orders = std::mem::take(&mut self.view.open_orders);
        self.view = PluginView::new(self.view.bot, orders);
        actions
    }
}
