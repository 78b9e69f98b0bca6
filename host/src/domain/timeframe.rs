//! Candle timeframes, named as Binance names its kline intervals.

use std::fmt;
use std::str::FromStr;

/// A candle length such as `1m`, `4h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeframe {
    millis: i64,
}

/// The names accepted, with their length in minutes.
const NAMED: &[(&str, i64)] = &[
    ("1m", 1),
    ("3m", 3),
    ("5m", 5),
    ("15m", 15),
    ("30m", 30),
    ("1h", 60),
    ("2h", 120),
    ("4h", 240),
    ("6h", 360),
    ("8h", 480),
    ("12h", 720),
    ("1d", 1440),
    ("3d", 4320),
    ("1w", 10080),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown timeframe `{0}` (expected one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w)"
)]
pub struct TimeframeError(String);

impl Timeframe {
    /// Length of one candle in milliseconds.
    pub fn millis(self) -> i64 {
        self.millis
    }

    /// The timeframe whose candles are `millis` apart, if it has a name.
    pub fn from_millis(millis: i64) -> Option<Self> {
        NAMED
            .iter()
            .any(|&(_, minutes)| minutes * 60_000 == millis)
            .then_some(Self { millis })
    }

    pub fn name(self) -> &'static str {
        NAMED
            .iter()
            .find(|&&(_, minutes)| minutes * 60_000 == self.millis)
            .map(|&(name, _)| name)
            .expect("a Timeframe is only built from a named length")
    }
}

impl FromStr for Timeframe {
    type Err = TimeframeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NAMED
            .iter()
            .find(|&&(name, _)| name == text)
            .map(|&(_, minutes)| Self {
                millis: minutes * 60_000,
            })
            .ok_or_else(|| TimeframeError(text.to_string()))
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A timeframe travels as its name (`"1m"`).
impl serde::Serialize for Timeframe {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Timeframe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let tf: Timeframe = "4h".parse().unwrap();
        assert_eq!(tf.millis(), 4 * 3_600_000);
        assert_eq!(tf.to_string(), "4h");
        assert_eq!(Timeframe::from_millis(60_000).unwrap().name(), "1m");
        assert!("7m".parse::<Timeframe>().is_err());
        assert!(Timeframe::from_millis(7 * 60_000).is_none());
    }
}
