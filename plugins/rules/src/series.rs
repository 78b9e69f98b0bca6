//! Evaluation: every distinct series in the rules gets one indicator, updated
//! once per candle; conditions are compiled to refer to series by index.

use stratbox_sdk::Candle;
use stratbox_sdk::indicators::{Atr, Bollinger, Ema, Highest, Lowest, Rsi, Sma};

use crate::language::{Comparison, Condition, Operand, PriceField, SeriesSpec};

/// A live indicator behind one [`SeriesSpec`].
enum Indicator {
    Price(PriceField),
    Sma(Sma),
    Ema(Ema),
    Rsi(Rsi),
    Atr(Atr),
    /// Channels exclude the current candle: `value` is read before `update`.
    Highest(Highest),
    Lowest(Lowest),
    BollingerUpper(Bollinger),
    BollingerLower(Bollinger),
}

impl Indicator {
    fn new(spec: &SeriesSpec) -> Self {
        match *spec {
            SeriesSpec::Price(field) => Indicator::Price(field),
            SeriesSpec::Sma(n) => Indicator::Sma(Sma::new(n as usize)),
            SeriesSpec::Ema(n) => Indicator::Ema(Ema::new(n as usize)),
            SeriesSpec::Rsi(n) => Indicator::Rsi(Rsi::new(n as usize)),
            SeriesSpec::Atr(n) => Indicator::Atr(Atr::new(n as usize)),
            SeriesSpec::Highest(n) => Indicator::Highest(Highest::new(n as usize)),
            SeriesSpec::Lowest(n) => Indicator::Lowest(Lowest::new(n as usize)),
            SeriesSpec::BollingerUpper(b) => {
                Indicator::BollingerUpper(Bollinger::new(b.period as usize, b.k))
            }
            SeriesSpec::BollingerLower(b) => {
                Indicator::BollingerLower(Bollinger::new(b.period as usize, b.k))
            }
        }
    }

    /// Candles needed before the value is meaningful.
    fn warmup(spec: &SeriesSpec) -> u32 {
        match *spec {
            SeriesSpec::Price(_) => 1,
            SeriesSpec::Sma(n) | SeriesSpec::Ema(n) | SeriesSpec::Atr(n) => n,
            SeriesSpec::Rsi(n) | SeriesSpec::Highest(n) | SeriesSpec::Lowest(n) => n + 1,
            SeriesSpec::BollingerUpper(b) | SeriesSpec::BollingerLower(b) => b.period,
        }
    }

    fn update(&mut self, candle: &Candle) -> Option<f64> {
        match self {
            Indicator::Price(field) => Some(match field {
                PriceField::Open => candle.open,
                PriceField::High => candle.high,
                PriceField::Low => candle.low,
                PriceField::Close => candle.close,
                PriceField::Volume => candle.volume,
            }),
            Indicator::Sma(sma) => sma.update(candle.close),
            Indicator::Ema(ema) => ema.update(candle.close),
            Indicator::Rsi(rsi) => rsi.update(candle.close),
            Indicator::Atr(atr) => atr.update(candle.high, candle.low, candle.close),
            Indicator::Highest(highest) => {
                let previous = highest.value();
                highest.update(candle.high);
                previous
            }
            Indicator::Lowest(lowest) => {
                let previous = lowest.value();
                lowest.update(candle.low);
                previous
            }
            Indicator::BollingerUpper(bands) => bands.update(candle.close).map(|b| b.upper),
            Indicator::BollingerLower(bands) => bands.update(candle.close).map(|b| b.lower),
        }
    }
}

/// A slot: one indicator with its current and previous reading.
struct Slot {
    spec: SeriesSpec,
    indicator: Indicator,
    current: Option<f64>,
    previous: Option<f64>,
}

/// An operand after compilation.
#[derive(Debug, Clone, Copy)]
pub enum CompiledOperand {
    Number(f64),
    Slot(usize),
}

/// A condition after compilation.
#[derive(Debug, Clone)]
pub enum CompiledCondition {
    All(Vec<CompiledCondition>),
    Any(Vec<CompiledCondition>),
    Not(Box<CompiledCondition>),
    Above(CompiledOperand, CompiledOperand),
    Below(CompiledOperand, CompiledOperand),
    CrossesAbove(CompiledOperand, CompiledOperand),
    CrossesBelow(CompiledOperand, CompiledOperand),
}

/// The distinct series used by the rules.
#[derive(Default)]
pub struct SeriesBank {
    slots: Vec<Slot>,
}

impl SeriesBank {
    pub fn compile(&mut self, condition: &Condition) -> CompiledCondition {
        let mut pair = |c: &Comparison| (self.operand(&c.left), self.operand(&c.right));
        match condition {
            Condition::All(items) => {
                CompiledCondition::All(items.iter().map(|c| self.compile(c)).collect())
            }
            Condition::Any(items) => {
                CompiledCondition::Any(items.iter().map(|c| self.compile(c)).collect())
            }
            Condition::Not(inner) => CompiledCondition::Not(Box::new(self.compile(inner))),
            Condition::Above(c) => {
                let (l, r) = pair(c);
                CompiledCondition::Above(l, r)
            }
            Condition::Below(c) => {
                let (l, r) = pair(c);
                CompiledCondition::Below(l, r)
            }
            Condition::CrossesAbove(c) => {
                let (l, r) = pair(c);
                CompiledCondition::CrossesAbove(l, r)
            }
            Condition::CrossesBelow(c) => {
                let (l, r) = pair(c);
                CompiledCondition::CrossesBelow(l, r)
            }
        }
    }

    fn operand(&mut self, operand: &Operand) -> CompiledOperand {
        match operand {
            Operand::Number(value) => CompiledOperand::Number(*value),
            Operand::Series(spec) => {
                let index = match self.slots.iter().position(|slot| &slot.spec == spec) {
                    Some(index) => index,
                    None => {
                        self.slots.push(Slot {
                            spec: spec.clone(),
                            indicator: Indicator::new(spec),
                            current: None,
                            previous: None,
                        });
                        self.slots.len() - 1
                    }
                };
                CompiledOperand::Slot(index)
            }
        }
    }

    /// The longest warm-up of any series, plus one candle for crosses.
    pub fn warmup(&self) -> u32 {
        self.slots
            .iter()
            .map(|slot| Indicator::warmup(&slot.spec) + 1)
            .max()
            .unwrap_or(1)
    }

    pub fn update(&mut self, candle: &Candle) {
        for slot in &mut self.slots {
            slot.previous = slot.current;
            slot.current = slot.indicator.update(candle);
        }
    }

    fn current(&self, operand: CompiledOperand) -> Option<f64> {
        match operand {
            CompiledOperand::Number(value) => Some(value),
            CompiledOperand::Slot(index) => self.slots[index].current,
        }
    }

    fn previous(&self, operand: CompiledOperand) -> Option<f64> {
        match operand {
            CompiledOperand::Number(value) => Some(value),
            CompiledOperand::Slot(index) => self.slots[index].previous,
        }
    }

    /// Whether the condition holds on the current candle. A series that is
    /// not warm yet makes its comparison false.
    pub fn evaluate(&self, condition: &CompiledCondition) -> bool {
        let now = |l, r| self.current(l).zip(self.current(r));
        let before = |l, r| self.previous(l).zip(self.previous(r));
        match condition {
            CompiledCondition::All(items) => items.iter().all(|c| self.evaluate(c)),
            CompiledCondition::Any(items) => items.iter().any(|c| self.evaluate(c)),
            CompiledCondition::Not(inner) => !self.evaluate(inner),
            CompiledCondition::Above(l, r) => now(*l, *r).is_some_and(|(l, r)| l > r),
            CompiledCondition::Below(l, r) => now(*l, *r).is_some_and(|(l, r)| l < r),
            CompiledCondition::CrossesAbove(l, r) => {
                matches!((before(*l, *r), now(*l, *r)), (Some((pl, pr)), Some((l, r))) if pl <= pr && l > r)
            }
            CompiledCondition::CrossesBelow(l, r) => {
                matches!((before(*l, *r), now(*l, *r)), (Some((pl, pr)), Some((l, r))) if pl >= pr && l < r)
            }
        }
    }
}
