//! Bot configuration: what a bot trades, with which strategy, money, fees,
//! instrument rules, risk rules and plugin limits.
//!
//! Read from YAML or JSON. Unknown fields are refused and named; decimal
//! fields take a number or a string. The JSON Schema generated from these
//! types is committed as `schemas/bot.schema.json` (a test checks it does not
//! drift) and is what the API validates against, so every error can point
//! at its field.

use std::path::PathBuf;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::decimal::{decimal_schema, optional_decimal_schema};
use super::patterns;
use super::{InstrumentRules, PluginLimits};

/// Largest starting capital accepted (10^15), so that money arithmetic stays
/// far inside a decimal's range.
const MAX_CAPITAL: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// One bot: one symbol, one timeframe, one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// Unique id: lowercase letters, digits and '-', 1 to 64 characters.
    #[schemars(regex(pattern = patterns::BOT_ID))]
    pub id: String,
    /// Display name: one line of text.
    #[schemars(length(min = 1, max = 200), regex(pattern = patterns::ONE_LINE))]
    pub name: String,
    pub strategy: StrategyRef,
    pub market: MarketConfig,
    #[serde(default)]
    pub mode: Mode,
    pub capital: Capital,
    #[serde(default)]
    pub fees: Fees,
    #[serde(default)]
    pub execution: Execution,
    #[serde(default)]
    pub instrument: InstrumentRules,
    #[serde(default)]
    pub risk: RiskConfig,
    #[serde(default)]
    pub limits: PluginLimits,
    /// Start the bot when it is created.
    #[serde(default)]
    pub autostart: bool,
    /// The exchange account a live bot trades on (ignored by paper bots):
    /// where its credentials are. Without it, a live bot reads them from
    /// the environment (`STRATBOX_BINANCE_API_KEY` with
    /// `STRATBOX_BINANCE_API_SECRET` or `STRATBOX_BINANCE_PRIVATE_KEY_FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountConfig>,
    /// What the bot does when the host restarts while it runs; by default
    /// paper bots resume and live bots stay stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_restart: Option<OnRestart>,
}

/// Where a live bot's exchange credentials are. The config names only the
/// file: the key and secret never enter a config, the store or an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A YAML file with `api_key` and either `api_secret` (HMAC) or
    /// `private_key_file` (an Ed25519 PEM file); on a server, relative to
    /// its secrets folder (`secrets_dir`) and inside it.
    #[schemars(length(min = 1, max = 200))]
    pub credentials_file: PathBuf,
}

/// What a running bot does when the host restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnRestart {
    /// Run again (paused bots stay paused).
    Resume,
    /// Come back stopped.
    Stop,
}

/// Which plugin runs the bot, and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyRef {
    /// Plugin name, as its `describe` reports it.
    #[schemars(regex(pattern = patterns::PLUGIN_NAME))]
    pub plugin: String,
    /// Exact plugin version; the highest registered one when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Parameters, validated against the plugin's own schema.
    #[serde(default = "empty_object")]
    pub params: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// Exchange symbol, e.g. BTCUSDT.
    #[schemars(regex(pattern = patterns::SYMBOL))]
    pub symbol: String,
    /// Candle timeframe: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d or 1w.
    #[schemars(regex(pattern = patterns::TIMEFRAME))]
    pub timeframe: String,
    #[serde(default)]
    pub feed: FeedConfig,
}

/// Where a live bot's candles come from. (Backtests read a file instead.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedConfig {
    /// Seeded geometric Brownian motion candles, no network needed.
    Synthetic {
        #[serde(default = "default_seed")]
        seed: u64,
        /// Milliseconds between candles; the timeframe's length (real time)
        /// when omitted, e.g. 100 to run a 1m feed 600 times faster. At
        /// least 1: the feed never ends, so it is always paced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        interval_ms: Option<u64>,
    },
    /// A candle CSV replayed in order. On a server, `file` is relative to
    /// the server's feeds folder (`feeds_dir`) and must lie inside it.
    Replay {
        file: PathBuf,
        /// Milliseconds between candles; 0 replays as fast as the bots take them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval_ms: Option<u64>,
    },
    /// Binance spot klines: closed candles from the kline stream, gaps
    /// filled from REST history, a warm-up from REST at start.
    Binance {
        /// Which Binance: `testnet` (the default, so that a live bot never
        /// reaches a real account unless asked to), `market_data` (the live
        /// exchange's public data only: real prices for paper bots) or
        /// `live`.
        #[serde(default)]
        network: BinanceNetwork,
        /// REST base URL instead of the network's, e.g.
        /// `https://testnet.binance.vision` (no `/api`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            regex(pattern = patterns::HTTP_URL),
            length(max = 200)
        )]
        rest_url: Option<String>,
        /// WebSocket base URL instead of the network's, e.g.
        /// `wss://stream.testnet.binance.vision` (no `/ws` or `/stream`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = patterns::WS_URL), length(max = 200))]
        stream_url: Option<String>,
        /// WebSocket API URL instead of the network's (live bots' account
        /// events), e.g. `wss://ws-api.testnet.binance.vision/ws-api/v3`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = patterns::WS_URL), length(max = 200))]
        ws_api_url: Option<String>,
    },
    /// Candles pushed by the caller (tests).
    Stepped,
}

/// The Binance deployments a feed can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BinanceNetwork {
    /// Public market data only (`data-api.binance.vision`,
    /// `data-stream.binance.vision`): real prices, no account.
    MarketData,
    /// The live exchange (`api.binance.com`, `stream.binance.com`).
    Live,
    /// The spot testnet (`testnet.binance.vision`).
    #[default]
    Testnet,
}

fn default_seed() -> u64 {
    42
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig::Synthetic {
            seed: 42,
            interval_ms: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Simulated execution against the paper venue.
    #[default]
    Paper,
    /// Real orders on an exchange: a Binance feed's network (`testnet`,
    /// or `live` where the server allows a live account).
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capital {
    /// Quote asset, e.g. USDT.
    #[schemars(regex(pattern = patterns::ASSET))]
    pub quote: String,
    /// Starting cash in the quote asset (> 0).
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub initial: Decimal,
}

/// Fees in basis points of the fill's notional (10 bps = 0.1%).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Fees {
    /// Fee for fills of resting limit orders.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub maker_bps: Decimal,
    /// Fee for market and stop fills.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub taker_bps: Decimal,
}

impl Default for Fees {
    fn default() -> Self {
        Self {
            maker_bps: Decimal::new(10, 0),
            taker_bps: Decimal::new(10, 0),
        }
    }
}

/// How the paper venue fills strategy market orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FillTiming {
    /// At the next candle's open (realistic; the default).
    #[default]
    NextOpen,
    /// At the close of the candle that produced the signal (vectorbt,
    /// NautilusTrader on bars, backtrader's cheat-on-close).
    SignalClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Execution {
    /// Slippage against the taker, in basis points of the price.
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub slippage_bps: Decimal,
    pub fill_timing: FillTiming,
}

impl Default for Execution {
    fn default() -> Self {
        Self {
            slippage_bps: Decimal::ZERO,
            fill_timing: FillTiming::NextOpen,
        }
    }
}

/// What a rule does when it is breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskAction {
    /// Only orders that shrink the position (REDUCING).
    Reduce,
    /// No new orders (HALTED); cancels still pass.
    Halt,
    /// Engage the kill-switch: cancel everything, flatten, halt.
    Kill,
}

/// A percentage limit and what happens when it is breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PercentRule {
    /// Limit in percent (e.g. 10 for 10%).
    #[serde(deserialize_with = "crate::domain::decimal::plain")]
    #[schemars(schema_with = "decimal_schema")]
    pub limit_pct: Decimal,
    pub action: RiskAction,
}

/// A count limit and what happens when it is breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    #[schemars(range(min = 1))]
    pub limit: u32,
    pub action: RiskAction,
}

/// Risk rules. Pre-trade checks apply to every intent; the other rules are
/// evaluated after fills and on each candle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Largest value of one order, in quote.
    #[serde(default, deserialize_with = "crate::domain::decimal::plain_option")]
    #[schemars(schema_with = "optional_decimal_schema")]
    pub max_order_notional: Option<Decimal>,
    /// Largest value of the position after an order, in quote.
    #[serde(default, deserialize_with = "crate::domain::decimal::plain_option")]
    #[schemars(schema_with = "optional_decimal_schema")]
    pub max_position_notional: Option<Decimal>,
    /// Most resting orders at once.
    #[schemars(range(min = 1))]
    pub max_open_orders: u32,
    /// Most orders accepted per second of engine time.
    #[schemars(range(min = 1))]
    pub max_orders_per_second: u32,
    /// Drawdown from peak equity.
    pub max_drawdown: Option<PercentRule>,
    /// Loss since the start of the UTC day, in percent of that day's opening equity.
    pub daily_loss: Option<PercentRule>,
    /// Losing round trips in a row.
    pub max_consecutive_losses: Option<CountRule>,
    /// Candles without new entries after a losing round trip.
    pub cooldown_after_loss: u32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_notional: None,
            max_position_notional: None,
            max_open_orders: 20,
            max_orders_per_second: 10,
            max_drawdown: None,
            daily_loss: None,
            max_consecutive_losses: None,
            cooldown_after_loss: 0,
        }
    }
}

/// One reason a config is refused: a JSON Pointer into the document and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigIssue {
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The whole document (pointer "") needs no place named.
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// Issues as one line: `/a: message; /b: message`.
pub fn join_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn issue(pointer: &str, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// The bot schema, compiled once: bounds and patterns declared on the types
/// (`schemars` attributes) are enforced by validating against it, since
/// serde alone does not check them.
static BOT_SCHEMA: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
    let schema =
        serde_json::to_value(schemars::schema_for!(BotConfig)).expect("the bot schema is JSON");
    jsonschema::validator_for(&schema).expect("the bot schema compiles")
});

/// Ids the control API's paths take for themselves (`/bots/stop-all`): a
/// bot with one of these ids could not be addressed.
pub const RESERVED_IDS: [&str; 4] = ["start-all", "stop-all", "restart-all", "commands"];

impl BotConfig {
    /// Every way this config breaks the bot schema or a rule the schema
    /// cannot express. Empty when the config is usable.
    pub fn check(&self) -> Vec<ConfigIssue> {
        match serde_json::to_value(self) {
            Ok(document) => self.check_document(&document),
            Err(error) => vec![issue("", error.to_string())],
        }
    }

    /// [`BotConfig::check`] with the schema checked on `document`, the
    /// document this config was read from (so it is not written out again
    /// to be checked): what it leaves out takes defaults, which meet the
    /// schema. The document must meet the schema as sent: a form serde
    /// reads but the schema forbids (a mapping given as a list) is refused,
    /// where its config written out again would pass.
    pub fn check_document(&self, document: &Value) -> Vec<ConfigIssue> {
        let mut issues = super::schema_issues(&BOT_SCHEMA, document);
        if RESERVED_IDS.contains(&self.id.as_str()) {
            issues.push(issue(
                "/id",
                format!("`{}` is reserved by the control API's paths", self.id),
            ));
        }
        if self.mode == Mode::Live {
            match &self.market.feed {
                FeedConfig::Binance {
                    network: BinanceNetwork::MarketData,
                    ..
                } => issues.push(issue(
                    "/market/feed/network",
                    "`market_data` carries no orders: a live bot trades on `testnet` or `live`",
                )),
                FeedConfig::Binance { .. } => {}
                _ => issues.push(issue(
                    "/market/feed/kind",
                    "a live bot trades where its candles come from: use a `binance` feed",
                )),
            }
        }
        if self.capital.initial <= Decimal::ZERO || self.capital.initial > MAX_CAPITAL {
            issues.push(issue(
                "/capital/initial",
                "must be greater than 0 and at most 10^15",
            ));
        }
        for (pointer, value) in [
            ("/fees/maker_bps", self.fees.maker_bps),
            ("/fees/taker_bps", self.fees.taker_bps),
            ("/execution/slippage_bps", self.execution.slippage_bps),
        ] {
            if value.is_sign_negative() || value > Decimal::new(1000, 0) {
                issues.push(issue(pointer, "must be between 0 and 1000 basis points"));
            }
        }
        for (pointer, value) in [
            ("/instrument/tick_size", self.instrument.tick_size),
            ("/instrument/step_size", self.instrument.step_size),
        ] {
            if value <= Decimal::ZERO {
                issues.push(issue(pointer, "must be greater than 0"));
            }
        }
        if self.instrument.min_notional.is_sign_negative() {
            issues.push(issue("/instrument/min_notional", "must not be negative"));
        }
        for (pointer, value) in [
            ("/risk/max_order_notional", self.risk.max_order_notional),
            (
                "/risk/max_position_notional",
                self.risk.max_position_notional,
            ),
        ] {
            if value.is_some_and(|v| v <= Decimal::ZERO) {
                issues.push(issue(pointer, "must be greater than 0"));
            }
        }
        for (pointer, rule) in [
            ("/risk/max_drawdown/limit_pct", self.risk.max_drawdown),
            ("/risk/daily_loss/limit_pct", self.risk.daily_loss),
        ] {
            if let Some(rule) = rule
                && (rule.limit_pct <= Decimal::ZERO || rule.limit_pct > Decimal::ONE_HUNDRED)
            {
                issues.push(issue(pointer, "must be above 0 and at most 100"));
            }
        }
        if !self.strategy.params.is_object() {
            issues.push(issue("/strategy/params", "must be a mapping"));
        }
        issues
    }

    /// Parse YAML (or JSON, which YAML includes) into a checked config.
    /// Every issue carries a JSON Pointer.
    pub fn from_yaml(text: &str) -> Result<Self, Vec<ConfigIssue>> {
        let value: Value =
            super::yaml::parse(text).map_err(|err| vec![issue("", err.to_string())])?;
        if omits_binance_network(&value) {
            tracing::warn!(
                bot = value.get("id").and_then(|id| id.as_str()).unwrap_or("?"),
                "a binance feed without `network` reads the testnet's candles (the default); \
                 set `network: market_data` for the real market's"
            );
        }
        Self::from_value(value)
    }

    /// Whether the bot runs again after a restart of the host, if it ran.
    pub fn resumes_on_restart(&self) -> bool {
        match self.on_restart {
            Some(choice) => choice == OnRestart::Resume,
            None => self.mode == Mode::Paper,
        }
    }

    /// Deserialise a config document: its shape only (the types and
    /// names of its fields). [`BotConfig::check_document`] (or
    /// [`BotConfig::check`]) checks the rest.
    pub fn parse(value: &Value) -> Result<Self, Vec<ConfigIssue>> {
        shape_of(value).map_err(|first| {
            // serde stops at the first problem; the schema names them all
            // (but not every one serde sees: a float for an integer).
            // serde's is kept unless the schema said something at its
            // pointer or below it (serde names a variant's unknown field
            // at the variant, the schema at the field), or found a list
            // where an object belongs above it (serde reads a struct from a
            // list, and names a field of it `/0`).
            let mut every = super::schema_issues(&BOT_SCHEMA, value);
            let below = |pointer: &str, above: &str| {
                pointer
                    .strip_prefix(above)
                    .is_some_and(|rest| rest.starts_with('/'))
            };
            let said = |issue: &ConfigIssue| {
                issue.pointer == first.pointer
                    || below(&issue.pointer, &first.pointer)
                    || (below(&first.pointer, &issue.pointer)
                        && issue.message.ends_with("is not an object")
                        && value.pointer(&issue.pointer).is_some_and(Value::is_array))
            };
            if !every.iter().any(said) {
                every.push(first);
            }
            every
        })
    }

    /// Deserialise and check a config document.
    pub fn from_value(value: Value) -> Result<Self, Vec<ConfigIssue>> {
        let config = Self::parse(&value)?;
        let issues = config.check_document(&value);
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(issues)
        }
    }
}

/// What a config change needs to know of the bot it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotCondition {
    pub stopped: bool,
    /// No position and no open order.
    pub flat: bool,
}

/// Why a config change cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRefusal {
    /// Never, as it stands.
    Invalid(Vec<ConfigIssue>),
    /// Not while the bot runs: these fields change only while it is stopped.
    NotHotSwappable(Vec<ConfigIssue>),
}

/// What changes between two configs of a bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDiff {
    /// The capital or the mode changed (only while stopped and flat).
    books: bool,
    /// The strategy, its parameters or its limits changed.
    strategy: bool,
    /// The mode or the account changed (only while stopped).
    venue: bool,
}

impl ConfigDiff {
    /// The books start again: a new capital, or paper to live and back
    /// (only while stopped and flat).
    pub fn restarts_books(&self) -> bool {
        self.books
    }

    /// A fresh strategy instance is needed: the plugin, its parameters or
    /// its limits changed, or the books start again. Otherwise only terms
    /// change (risk, fees, execution, instrument rules, names) and the
    /// instance, with its warm indicators, stays.
    pub fn needs_new_instance(&self) -> bool {
        self.strategy || self.books
    }

    /// The bot trades somewhere else: paper to live and back, or another
    /// account (a new exchange link).
    pub fn changes_venue(&self) -> bool {
        self.venue
    }
}

/// A field that may change only while the bot is stopped, and how to tell
/// that it changed.
type StoppedOnly = (&'static str, fn(&BotConfig, &BotConfig) -> bool);

/// The fields a running bot cannot change. Everything else (strategy
/// parameters and version, risk, limits, fees, execution, instrument rules,
/// names) is swapped in live, between two candles.
const STOPPED_ONLY: [StoppedOnly; 6] = [
    ("/market/symbol", |a, b| a.market.symbol != b.market.symbol),
    ("/market/timeframe", |a, b| {
        a.market.timeframe != b.market.timeframe
    }),
    ("/market/feed", |a, b| a.market.feed != b.market.feed),
    ("/mode", |a, b| a.mode != b.mode),
    ("/capital", |a, b| a.capital != b.capital),
    ("/account", |a, b| a.account != b.account),
];

impl BotConfig {
    /// Whether `new` may replace this config of a bot in `bot`'s condition,
    /// and what it changes. The one place that decides which fields may
    /// change when.
    pub fn change_to(
        &self,
        new: &BotConfig,
        bot: BotCondition,
    ) -> Result<ConfigDiff, ConfigRefusal> {
        let mut issues = Vec::new();
        if new.id != self.id {
            issues.push(issue(
                "/id",
                format!("a bot's id cannot change (it is `{}`)", self.id),
            ));
        }
        let market_changed = STOPPED_ONLY[..3]
            .iter()
            .any(|(_, changed)| changed(self, new));
        if bot.stopped && market_changed {
            issues.push(issue(
                "/market",
                "moving an existing bot to another market is not supported yet; create a new bot",
            ));
        }
        let capital = self.capital != new.capital;
        if bot.stopped && capital && !bot.flat {
            issues.push(issue(
                "/capital",
                "close the position and cancel pending orders before changing the capital",
            ));
        }
        let mode = self.mode != new.mode;
        if bot.stopped && mode && !bot.flat {
            issues.push(issue(
                "/mode",
                "close the position and cancel pending orders before switching between paper and live",
            ));
        }
        if bot.stopped && self.account != new.account && !bot.flat {
            issues.push(issue(
                "/account",
                "close the position and cancel pending orders before moving the bot to another account",
            ));
        }
        if !issues.is_empty() {
            return Err(ConfigRefusal::Invalid(issues));
        }
        if !bot.stopped {
            let fixed: Vec<ConfigIssue> = STOPPED_ONLY
                .iter()
                .filter(|(_, changed)| changed(self, new))
                .map(|(pointer, _)| issue(pointer, "can only change while the bot is stopped"))
                .collect();
            if !fixed.is_empty() {
                return Err(ConfigRefusal::NotHotSwappable(fixed));
            }
        }
        Ok(ConfigDiff {
            books: capital || mode,
            strategy: self.strategy != new.strategy || self.limits != new.limits,
            venue: mode || self.account != new.account,
        })
    }
}

/// Deserialise `value` as `T`; a wrong shape is one issue at the pointer of
/// the field concerned (for a missing field, the field's own pointer).
pub fn shape_of<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ConfigIssue> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let message = error.inner().to_string();
        issue(
            &pointer_of_error(error.path(), &message),
            super::serde_message::plain(&message),
        )
    })
}

/// The pointer of a deserialisation error at `path` saying `message`: the
/// path's, or for a missing field, the field's own (serde names it in the
/// message, at the path of the mapping that lacks it).
pub fn pointer_of_error(path: &serde_path_to_error::Path, message: &str) -> String {
    let mut pointer = pointer_of(path);
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        pointer.push('/');
        pointer.push_str(&pointer_token(field));
    }
    pointer
}

/// Issues of a document nested at `prefix` (a pointer), with pointers from
/// the outer document's root.
pub fn nested_issues(prefix: &str, issues: Vec<ConfigIssue>) -> Vec<ConfigIssue> {
    issues
        .into_iter()
        .map(|issue| ConfigIssue {
            pointer: format!("{prefix}{}", issue.pointer),
            message: issue.message,
        })
        .collect()
}

/// `name` as one reference token of a JSON Pointer (RFC 6901: `~` and `/`
/// escaped).
pub fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A serde path as a JSON Pointer.
pub(crate) fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        let token = match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => pointer_token(key),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => continue,
        };
        pointer.push('/');
        pointer.push_str(&token);
    }
    pointer
}

/// A Binance feed that leaves `network` to its default (`testnet`): a file
/// written when the default was the real market's candles reads the
/// testnet's now, which its author should hear about.
fn omits_binance_network(document: &Value) -> bool {
    document
        .pointer("/market/feed/kind")
        .and_then(Value::as_str)
        == Some("binance")
        && document.pointer("/market/feed/network").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const MINIMAL: &str = "
id: demo
name: Demo
strategy: { plugin: ema-cross }
market: { symbol: BTCUSDT, timeframe: 1m }
capital: { quote: USDT, initial: 1000 }
";

    #[test]
    fn a_binance_feed_left_to_the_testnet_default_is_noticed() {
        let feed = |feed: &str| {
            let text = MINIMAL.replace(
                "timeframe: 1m }",
                &format!("timeframe: 1m, feed: {feed} }}"),
            );
            omits_binance_network(&crate::domain::yaml::parse(&text).unwrap())
        };
        assert!(feed("{ kind: binance }"));
        assert!(!feed("{ kind: binance, network: testnet }"));
        assert!(!feed("{ kind: binance, network: market_data }"));
        assert!(!feed("{ kind: synthetic }"));
        assert!(!omits_binance_network(
            &crate::domain::yaml::parse(MINIMAL).unwrap()
        ));
    }

    #[test]
    fn one_policy_says_what_a_change_needs_and_when_it_may_be_made() {
        let old = BotConfig::from_yaml(MINIMAL).unwrap();
        let with = |edit: fn(&mut BotConfig)| {
            let mut new = old.clone();
            edit(&mut new);
            new
        };
        let running = BotCondition {
            stopped: false,
            flat: false,
        };
        let stopped_flat = BotCondition {
            stopped: true,
            flat: true,
        };
        // Terms only: swapped live, the instance stays.
        let terms = with(|c| c.fees.taker_bps = dec!(5));
        let diff = old.change_to(&terms, running).unwrap();
        assert!(!diff.needs_new_instance() && !diff.restarts_books() && !diff.changes_venue());
        // New parameters or limits: live, with a fresh instance.
        let params = with(|c| c.strategy.params = serde_json::json!({ "fast": 3 }));
        assert!(
            old.change_to(&params, running)
                .unwrap()
                .needs_new_instance()
        );
        let limits = with(|c| c.limits.fuel_per_call /= 2);
        assert!(
            old.change_to(&limits, running)
                .unwrap()
                .needs_new_instance()
        );
        // Capital: only while stopped, and only when flat; the books restart.
        let capital = with(|c| c.capital.initial = dec!(2000));
        assert!(matches!(
            old.change_to(&capital, running),
            Err(ConfigRefusal::NotHotSwappable(issues)) if issues[0].pointer == "/capital"
        ));
        let not_flat = BotCondition {
            stopped: true,
            flat: false,
        };
        assert!(matches!(
            old.change_to(&capital, not_flat),
            Err(ConfigRefusal::Invalid(issues)) if issues[0].pointer == "/capital"
        ));
        let diff = old.change_to(&capital, stopped_flat).unwrap();
        assert!(diff.restarts_books() && diff.needs_new_instance() && !diff.changes_venue());
        // Another account: only while stopped, a new link, the same books.
        let account = with(|c| {
            c.account = Some(AccountConfig {
                credentials_file: "desk.yaml".into(),
            })
        });
        let diff = old.change_to(&account, stopped_flat).unwrap();
        assert!(diff.changes_venue() && !diff.restarts_books());
        // Never: another id, or another market.
        let market = with(|c| c.market.symbol = "ETHUSDT".into());
        assert!(matches!(
            old.change_to(&market, stopped_flat),
            Err(ConfigRefusal::Invalid(_))
        ));
        let id = with(|c| c.id = "other".into());
        assert!(matches!(
            old.change_to(&id, running),
            Err(ConfigRefusal::Invalid(issues)) if issues[0].pointer == "/id"
        ));
    }

    #[test]
    fn defaults_fill_the_rest() {
        let config = BotConfig::from_yaml(MINIMAL).unwrap();
        assert_eq!(config.mode, Mode::Paper);
        assert_eq!(config.fees.taker_bps, dec!(10));
        assert_eq!(config.risk.max_open_orders, 20);
        assert_eq!(config.strategy.params, serde_json::json!({}));
        assert_eq!(config.execution.fill_timing, FillTiming::NextOpen);
    }

    #[test]
    fn decimals_take_numbers_or_strings() {
        let text = MINIMAL.replace("initial: 1000", "initial: \"1000.123456789\"");
        assert_eq!(
            BotConfig::from_yaml(&text).unwrap().capital.initial,
            dec!(1000.123456789)
        );
        let text = format!("{MINIMAL}fees: {{ maker_bps: 2.5, taker_bps: \"7.5\" }}\n");
        let config = BotConfig::from_yaml(&text).unwrap();
        assert_eq!(
            (config.fees.maker_bps, config.fees.taker_bps),
            (dec!(2.5), dec!(7.5))
        );
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let text = format!("{MINIMAL}risk: {{ max_drawdwn: 5 }}\n");
        let issues = BotConfig::from_yaml(&text).unwrap_err();
        assert_eq!(issues[0].pointer, "/risk/max_drawdwn");
        assert!(
            issues[0].message.contains("unknown field `max_drawdwn`"),
            "{issues:?}"
        );
        // In a feed (a tagged variant), once, at the field.
        let feed = MINIMAL.replace(
            "timeframe: 1m }",
            "timeframe: 1m, feed: { kind: synthetic, sed: 1 } }",
        );
        let issues = BotConfig::from_yaml(&feed).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].pointer, "/market/feed/sed");
        assert_eq!(issues[0].message, "unknown field `sed`");
    }

    #[test]
    fn a_list_where_an_object_belongs_is_said_once_at_its_place() {
        for (document, pointer) in [
            (serde_json::json!([1, 2]), ""),
            (serde_json::json!([{ "id": "x" }]), ""),
        ] {
            let issues = BotConfig::parse(&document).unwrap_err();
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert_eq!(issues[0].pointer, pointer, "{issues:?}");
            assert!(
                issues[0].message.ends_with("is not an object"),
                "{issues:?}"
            );
        }
        let mut config = crate::domain::yaml::parse(MINIMAL).unwrap();
        config["market"] = serde_json::json!(["BTCUSDT"]);
        let issues = BotConfig::parse(&config).unwrap_err();
        let pointers: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(pointers, ["/market"], "{issues:?}");
    }

    #[test]
    fn schema_bounds_are_enforced() {
        let text =
            format!("{MINIMAL}risk: {{ max_open_orders: 0 }}\nlimits: {{ wall_clock_ms: 0 }}\n");
        let issues = BotConfig::from_yaml(&text).unwrap_err();
        let pointers: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert!(pointers.contains(&"/risk/max_open_orders"), "{issues:?}");
        assert!(pointers.contains(&"/limits/wall_clock_ms"), "{issues:?}");
        // Less memory than an SDK plugin starts with is refused here, not
        // when the instance cannot start.
        let small = format!("{MINIMAL}limits: {{ memory_bytes: 1500000 }}\n");
        let issues = BotConfig::from_yaml(&small).unwrap_err();
        assert_eq!(issues[0].pointer, "/limits/memory_bytes", "{issues:?}");
        let enough = format!("{MINIMAL}limits: {{ memory_bytes: 2097152 }}\n");
        assert!(BotConfig::from_yaml(&enough).is_ok());
        let bad_id = MINIMAL.replace("id: demo", "id: Not A Slug");
        assert_eq!(BotConfig::from_yaml(&bad_id).unwrap_err()[0].pointer, "/id");
        // A synthetic feed never ends: it is always paced.
        let paced = |interval: u32| {
            MINIMAL.replace(
                "timeframe: 1m }",
                &format!("timeframe: 1m, feed: {{ kind: synthetic, interval_ms: {interval} }} }}"),
            )
        };
        let issues = BotConfig::from_yaml(&paced(0)).unwrap_err();
        assert_eq!(issues[0].pointer, "/market/feed/interval_ms", "{issues:?}");
        assert!(BotConfig::from_yaml(&paced(1)).is_ok());
        // A choice of names says which names.
        let issues = BotConfig::from_yaml(&format!("{MINIMAL}mode: yolo\n")).unwrap_err();
        assert_eq!(issues[0].pointer, "/mode", "{issues:?}");
        assert_eq!(issues[0].message, r#""yolo" is not "paper", or "live""#);
        // A display name is one line of text.
        let issues =
            BotConfig::from_yaml(&MINIMAL.replace("name: Demo", r#"name: "a\nb""#)).unwrap_err();
        assert_eq!(issues[0].pointer, "/name", "{issues:?}");
        assert!(issues[0].message.contains("one line of text"), "{issues:?}");
    }

    #[test]
    fn live_mode_needs_a_binance_network_that_takes_orders() {
        let text = format!("{MINIMAL}mode: live\nfees: {{ taker_bps: -1 }}\n");
        let issues = BotConfig::from_yaml(&text).unwrap_err();
        let pointers: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(pointers, ["/market/feed/kind", "/fees/taker_bps"]);
        assert!(issues[0].message.contains("binance"), "{issues:?}");

        let on = |network: &str| {
            MINIMAL.replace(
                "timeframe: 1m }",
                &format!("timeframe: 1m, feed: {{ kind: binance, network: {network} }} }}"),
            ) + "mode: live\n"
        };
        let issues = BotConfig::from_yaml(&on("market_data")).unwrap_err();
        assert_eq!(issues[0].pointer, "/market/feed/network");
        let testnet = BotConfig::from_yaml(&on("testnet")).expect("live on the testnet");
        assert_eq!(testnet.mode, Mode::Live);
        // Paper to live is one field.
        let paper = BotConfig::from_yaml(&on("testnet").replace("mode: live\n", "")).unwrap();
        assert_eq!(
            BotConfig {
                mode: Mode::Live,
                ..paper
            },
            testnet
        );
        // A live bot that names no network trades on the testnet.
        let unnamed = MINIMAL.replace(
            "timeframe: 1m }",
            "timeframe: 1m, feed: { kind: binance } }",
        ) + "mode: live\n";
        let unnamed = BotConfig::from_yaml(&unnamed).expect("live, network unnamed");
        let endpoints = crate::exchange::binance::Endpoints::of_feed(&unnamed.market.feed)
            .expect("a binance feed");
        assert_eq!(endpoints.rest, "https://testnet.binance.vision");
        assert_eq!(
            crate::exchange::binance::ws_api_of_feed(&unnamed.market.feed).as_deref(),
            Some("wss://ws-api.testnet.binance.vision/ws-api/v3")
        );
    }

    #[test]
    fn ids_the_api_paths_take_are_refused() {
        for id in RESERVED_IDS {
            let text = MINIMAL.replacen("id: demo", &format!("id: {id}"), 1);
            let issues = BotConfig::from_yaml(&text).unwrap_err();
            assert_eq!(issues[0].pointer, "/id", "{id}");
            assert!(issues[0].message.contains("reserved"), "{id}");
        }
    }
}
