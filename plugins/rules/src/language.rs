//! The rule language: plain serde types whose derived JSON Schema describes
//! every construct, bound and field name.

use schemars::JsonSchema;
use serde::Deserialize;
use stratbox_sdk::{ParamError, param_error};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// When flat, buy when this condition holds.
    pub entry: Condition,
    /// When long, sell everything when this condition holds.
    #[serde(default)]
    pub exit: Option<Condition>,
    /// Percent of equity to put into each entry.
    #[serde(default = "default_size_pct")]
    #[schemars(range(min = 0.01, max = 100), extend("x-search" = false))]
    pub size_pct: f64,
    /// Rest a stop order this many percent below the entry price.
    #[serde(default)]
    #[schemars(range(min = 0.01, max = 99))]
    pub stop_loss_pct: Option<f64>,
    /// Rest a limit order this many percent above the entry price.
    #[serde(default)]
    #[schemars(range(min = 0.01, max = 10000))]
    pub take_profit_pct: Option<f64>,
}

fn default_size_pct() -> f64 {
    90.0
}

impl Default for Params {
    /// An EMA(12)/EMA(26) crossover, so that `describe` has something to show.
    fn default() -> Self {
        let cross = |period_left, period_right| Comparison {
            left: Operand::Series(SeriesSpec::Ema(period_left)),
            right: Operand::Series(SeriesSpec::Ema(period_right)),
        };
        Self {
            entry: Condition::CrossesAbove(cross(12, 26)),
            exit: Some(Condition::CrossesBelow(cross(12, 26))),
            size_pct: default_size_pct(),
            stop_loss_pct: None,
            take_profit_pct: None,
        }
    }
}

/// A condition, evaluated on every candle. Each is a mapping with exactly one key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Every condition in the list holds.
    All(#[schemars(length(min = 1))] Vec<Condition>),
    /// At least one condition in the list holds.
    Any(#[schemars(length(min = 1))] Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// left > right on this candle.
    Above(Comparison),
    /// left < right on this candle.
    Below(Comparison),
    /// left was <= right on the previous candle and is > right now.
    CrossesAbove(Comparison),
    /// left was >= right on the previous candle and is < right now.
    CrossesBelow(Comparison),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub left: Operand,
    pub right: Operand,
}

/// A number, or a series computed from the candles.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Operand {
    Number(f64),
    Series(SeriesSpec),
}

/// A series computed from the candles. Periods are in candles.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SeriesSpec {
    /// A field of the current candle.
    Price(PriceField),
    /// Simple moving average of the close.
    Sma(#[schemars(range(min = 1, max = 10000))] u32),
    /// Exponential moving average of the close (seeded from the first close).
    Ema(#[schemars(range(min = 1, max = 10000))] u32),
    /// Wilder's RSI of the close, 0 to 100.
    Rsi(#[schemars(range(min = 2, max = 1000))] u32),
    /// Wilder's average true range.
    Atr(#[schemars(range(min = 1, max = 1000))] u32),
    /// Highest high of the previous n candles (not counting the current one).
    Highest(#[schemars(range(min = 1, max = 10000))] u32),
    /// Lowest low of the previous n candles (not counting the current one).
    Lowest(#[schemars(range(min = 1, max = 10000))] u32),
    /// Upper Bollinger band of the close.
    BollingerUpper(Bollinger),
    /// Lower Bollinger band of the close.
    BollingerLower(Bollinger),
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bollinger {
    #[schemars(range(min = 2, max = 10000))]
    pub period: u32,
    /// Width in standard deviations.
    #[serde(default = "default_band_width")]
    #[schemars(range(min = 0.1, max = 10))]
    pub k: f64,
}

fn default_band_width() -> f64 {
    2.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceField {
    Open,
    High,
    Low,
    Close,
    Volume,
}

impl Condition {
    /// Rules the schema cannot express: a comparison needs at least one
    /// series (two numbers are a constant, almost certainly a mistake).
    pub fn check(&self, path: &str, errors: &mut Vec<ParamError>) {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                let key = if matches!(self, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (index, item) in items.iter().enumerate() {
                    item.check(&format!("{path}/{key}/{index}"), errors);
                }
            }
            Condition::Not(inner) => inner.check(&format!("{path}/not"), errors),
            Condition::Above(c) | Condition::Below(c) => c.check(path, self.key(), errors),
            Condition::CrossesAbove(c) | Condition::CrossesBelow(c) => {
                c.check(path, self.key(), errors)
            }
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Condition::All(_) => "all",
            Condition::Any(_) => "any",
            Condition::Not(_) => "not",
            Condition::Above(_) => "above",
            Condition::Below(_) => "below",
            Condition::CrossesAbove(_) => "crosses_above",
            Condition::CrossesBelow(_) => "crosses_below",
        }
    }
}

impl Comparison {
    fn check(&self, path: &str, key: &str, errors: &mut Vec<ParamError>) {
        if let (Operand::Number(_), Operand::Number(_)) = (&self.left, &self.right) {
            errors.push(param_error(
                format!("{path}/{key}"),
                "compares two numbers; at least one side must be a price or an indicator",
            ));
        }
    }
}
