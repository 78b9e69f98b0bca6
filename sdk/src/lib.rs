//! The stratbox strategy SDK.
//!
//! Implement [`Strategy`] for a type, give it a typed parameter struct
//! (serde + schemars: the JSON Schema the plugin reports is derived from it),
//! and export it with [`export_strategy!`]. Build with
//! `cargo build --target wasm32-unknown-unknown --release`; the `.wasm` file
//! in `target/wasm32-unknown-unknown/release/` is the plugin.
//!
//! The same crate compiles natively too (the export macro expands to nothing
//! outside wasm), so a strategy can be unit-tested and benchmarked as plain
//! Rust.

pub mod indicators;
pub mod log;
mod params;
#[doc(hidden)]
pub mod runtime;
mod view;

/// Bindings generated from the WIT contract in `sdk/wit/`.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "batched-strategy",
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "stratbox_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::stratbox::strategy::types::{
    Action, Description, Fill, LogLevel, OpenOrder, OrderIntent, OrderKind, ParamError, Side,
};
pub use params::param_error;
pub use schemars;
pub use serde;
pub use view::{BotView, Candle};

/// A trading strategy.
///
/// The host creates one value per bot with [`Strategy::new`], then calls
/// [`Strategy::on_candle`] once per closed candle, in time order, and
/// [`Strategy::on_fill`] after each fill. The strategy decides; the host owns
/// cash, positions and orders and runs every intent through its risk engine.
pub trait Strategy: Sized + 'static {
    /// The parameters, deserialised from the bot config's `strategy.params`.
    /// Bounds and descriptions on this type become the plugin's JSON Schema;
    /// `Default` gives the values a bot gets when it omits a field.
    type Params: serde::de::DeserializeOwned + schemars::JsonSchema + Default;

    /// Registry name, e.g. `"ema-cross"`.
    const NAME: &'static str;
    /// Semantic version, e.g. `"1.0.0"`.
    const VERSION: &'static str;
    /// One or two sentences for people choosing a strategy.
    const DESCRIPTION: &'static str;

    /// Build the strategy. Check rules that span several fields here (the
    /// schema already enforced each field's own bounds) and report each
    /// violation with [`param_error`] and the field's JSON Pointer.
    fn new(params: Self::Params) -> Result<Self, Vec<ParamError>>;

    /// Candles this strategy needs to see before its decisions mean anything.
    fn warmup(&self) -> u32;

    /// Decide on one closed candle.
    fn on_candle(&mut self, candle: &Candle, bot: &BotView) -> Vec<Action>;

    /// Learn about a fill. The default ignores it.
    fn on_fill(&mut self, _fill: &Fill) {}
}

/// Export a [`Strategy`] as the plugin's implementation of the contract.
///
/// ```ignore
/// stratbox_sdk::export_strategy!(EmaCross);
/// ```
///
/// Expands to nothing when not compiling for WebAssembly, so the same crate
/// can be used natively in tests and benchmarks.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct StrategyExport;

            impl $crate::bindings::Guest for StrategyExport {
                fn describe() -> $crate::Description {
                    $crate::runtime::describe::<$strategy>()
                }
                fn init(
                    params: ::std::string::String,
                    markets: Vec<$crate::runtime::wire::Market>,
                ) -> Result<u32, Vec<$crate::ParamError>> {
                    $crate::runtime::init::<$strategy>(&params, &markets)
                }
                fn on_candle(
                    candle: $crate::runtime::wire::Candle,
                    bot: $crate::runtime::wire::BotView,
                ) -> Vec<$crate::Action> {
                    $crate::runtime::on_candle::<$strategy>(&candle, &bot)
                }
                fn on_stretch(bot: $crate::runtime::wire::BotView) -> Vec<$crate::Action> {
                    $crate::runtime::on_stretch::<$strategy>(bot)
                }
                fn on_fill(fill: $crate::Fill) {
                    $crate::runtime::on_fill::<$strategy>(&fill)
                }
            }

            $crate::bindings::__export_strategy_world!(StrategyExport with_types_in $crate::bindings);
        };
    };
}

impl OrderIntent {
    /// A market order for `quantity` base units.
    pub fn market(side: Side, quantity: f64) -> Self {
        Self {
            side,
            kind: OrderKind::Market,
            quantity,
            price: None,
            reduce_only: false,
            client_tag: String::new(),
        }
    }

    /// A limit order at `price`.
    pub fn limit(side: Side, quantity: f64, price: f64) -> Self {
        Self {
            kind: OrderKind::Limit,
            price: Some(price),
            ..Self::market(side, quantity)
        }
    }

    /// A stop order triggered at `price`.
    pub fn stop(side: Side, quantity: f64, price: f64) -> Self {
        Self {
            kind: OrderKind::Stop,
            price: Some(price),
            ..Self::market(side, quantity)
        }
    }

    /// Only allow this order to shrink the position.
    pub fn reduce_only(mut self) -> Self {
        self.reduce_only = true;
        self
    }

    /// Name the order so it can be cancelled and recognised in fills.
    pub fn tagged(mut self, tag: impl Into<String>) -> Self {
        self.client_tag = tag.into();
        self
    }
}

impl From<OrderIntent> for Action {
    fn from(intent: OrderIntent) -> Self {
        Action::Place(intent)
    }
}

/// The plugin's heap: dlmalloc, as std uses on wasm, but taking the free
/// end of the memory the module starts with before it grows that memory.
/// A plugin that allocates no more than that free end never grows its
/// memory, so the host can hand its instance slot to the next instance
/// without changing page protections (a TLB shootdown on every core).
#[cfg(all(feature = "heap", target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static HEAP: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
