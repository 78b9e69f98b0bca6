//! Inline SVG charts for the reports: plain strings, no script, fixed
//! sizes (the page scales them). Pixels are floats; the figures they show
//! come from exact decimals and are labelled with the values.

use std::fmt::Write as _;

pub const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

pub const BLUE: &str = "#0969da";
pub const GREEN: &str = "#1a7f37";
pub const RED: &str = "#cf222e";
/// Grid and label colours for an SVG seen on its own; in a report page the
/// classes `rule` and `label` take the page theme's colours instead.
const GRID: &str = "#d0d7de";
const INK: &str = "#57606a";

/// A plotting area of `height` pixels over `[x0, x1] x [y0, y1]`.
struct Frame {
    height: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn new(height: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Self {
        // A margin around the data that does not cross zero: a series
        // that never goes below (or above) zero is not drawn as if it did.
        let pad = ((y1 - y0).abs() * 0.05).max(1e-9);
        let (y0, y1) = if y1 > y0 {
            let low = if y0 >= 0.0 {
                (y0 - pad).max(0.0)
            } else {
                y0 - pad
            };
            let high = if y1 <= 0.0 {
                (y1 + pad).min(0.0)
            } else {
                y1 + pad
            };
            (low, high)
        } else {
            (y0 - 1.0, y0 + 1.0)
        };
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        Self {
            height,
            x0,
            x1,
            y0,
            y1,
        }
    }

    fn x(&self, value: f64) -> f64 {
        LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        TOP + (self.y1 - value) / (self.y1 - self.y0) * (self.height - TOP - BOTTOM)
    }

    fn open(&self, label: &str) -> String {
        format!(
            r#"<svg viewBox="0 0 {WIDTH} {h}" width="100%" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">"#,
            h = self.height
        )
    }

    /// Horizontal grid lines with value labels, and time labels below.
    fn axes(&self, out: &mut String, y_label: &dyn Fn(f64) -> String, time_axis: bool) {
        for i in 0..=4 {
            let value = self.y0 + (self.y1 - self.y0) * i as f64 / 4.0;
            let y = self.y(value);
            let _ = write!(
                out,
                r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{GRID}" class="rule"/><text x="{}" y="{:.1}" text-anchor="end" fill="{INK}" class="label">{}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                escape(&y_label(value))
            );
        }
        if time_axis {
            for i in 0..=5 {
                let value = self.x0 + (self.x1 - self.x0) * i as f64 / 5.0;
                let anchor = match i {
                    0 => "start",
                    5 => "end",
                    _ => "middle",
                };
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" fill="{INK}" class="label">{}</text>"#,
                    self.x(value),
                    self.height - 8.0,
                    date(value as i64)
                );
            }
        }
    }
}

/// `YYYY-MM-DD` of epoch ms.
pub fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// A time series as a line (`fill`: shaded down to zero, for drawdowns).
pub fn line_chart(
    label: &str,
    points: &[(i64, f64)],
    height: f64,
    color: &str,
    fill: bool,
    y_label: &dyn Fn(f64) -> String,
) -> String {
    if points.len() < 2 {
        return empty(label);
    }
    let (lo, hi) = bounds(points.iter().map(|p| p.1));
    let (lo, hi) = if fill {
        (lo.min(0.0), hi.max(0.0))
    } else {
        (lo, hi)
    };
    let frame = Frame::new(
        height,
        (points[0].0 as f64, points[points.len() - 1].0 as f64),
        (lo, hi),
    );
    let mut out = frame.open(label);
    frame.axes(&mut out, y_label, true);
    let path: String = points
        .iter()
        .filter(|p| p.1.is_finite())
        .enumerate()
        .map(|(i, (x, y))| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                frame.x(*x as f64),
                frame.y(*y)
            )
        })
        .collect();
    if fill {
        let zero = frame.y(0.0);
        let _ = write!(
            out,
            r#"<path d="{path}L{:.1},{zero:.1}L{:.1},{zero:.1}Z" fill="{color}" fill-opacity="0.25" stroke="none"/>"#,
            frame.x(points[points.len() - 1].0 as f64),
            frame.x(points[0].0 as f64),
        );
    }
    let _ = write!(
        out,
        r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>"#
    );
    out
}

/// Bars of how many values fall in each of `bins` equal ranges; bars of
/// ranges above zero green, below red.
pub fn histogram(
    label: &str,
    values: &[f64],
    bins: usize,
    x_label: &dyn Fn(f64) -> String,
) -> String {
    if values.is_empty() {
        return empty(label);
    }
    let (lo, hi) = bounds(values.iter().copied());
    let width = ((hi - lo) / bins as f64).max(1e-12);
    let mut counts = vec![0usize; bins];
    for value in values {
        let bin = (((value - lo) / width) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1) as f64;
    let frame = Frame::new(220.0, (lo, lo + width * bins as f64), (0.0, top));
    let mut out = frame.open(label);
    frame.axes(&mut out, &|v| format!("{v:.0}"), false);
    for (bin, count) in counts.iter().enumerate() {
        let start = lo + width * bin as f64;
        let (x0, x1) = (frame.x(start), frame.x(start + width));
        let (y, base) = (frame.y(*count as f64), frame.y(0.0));
        let color = if start + width / 2.0 >= 0.0 {
            GREEN
        } else {
            RED
        };
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.8"><title>{} to {}: {count}</title></rect>"#,
            x0 + 1.0,
            (x1 - x0 - 2.0).max(1.0),
            (base - y).max(0.0),
            escape(&x_label(start)),
            escape(&x_label(start + width)),
        );
    }
    for i in 0..=4 {
        let value = lo + width * bins as f64 * i as f64 / 4.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{INK}" class="label">{}</text>"#,
            frame.x(value),
            frame.height - 8.0,
            escape(&x_label(value))
        );
    }
    out.push_str("</svg>");
    out
}

/// One OHLC bar of the price chart.
#[derive(Debug, Clone, Copy)]
pub struct Bar {
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// The fills of one side within one bar, marked on the price chart.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// The bar's open time.
    pub ts: i64,
    /// The fills' mean price.
    pub price: f64,
    pub buy: bool,
    pub fills: usize,
}

/// Candles with buys (green, pointing up) and sells (red, pointing down).
pub fn candles(label: &str, bars: &[Bar], marks: &[Mark]) -> String {
    if bars.is_empty() {
        return empty(label);
    }
    let (lo, hi) = bounds(bars.iter().flat_map(|b| [b.low, b.high]));
    let step = if bars.len() > 1 {
        (bars[bars.len() - 1].ts - bars[0].ts) as f64 / (bars.len() - 1) as f64
    } else {
        1.0
    };
    let frame = Frame::new(
        340.0,
        (bars[0].ts as f64, bars[bars.len() - 1].ts as f64 + step),
        (lo, hi),
    );
    let mut out = frame.open(label);
    frame.axes(&mut out, &|v| format!("{v:.2}"), true);
    let body = ((frame.x(step) - frame.x(0.0)) * 0.7).max(1.0);
    for bar in bars {
        let x = frame.x(bar.ts as f64 + step / 2.0);
        let color = if bar.close >= bar.open { GREEN } else { RED };
        let (top, bottom) = (bar.open.max(bar.close), bar.open.min(bar.close));
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}"/><rect x="{:.1}" y="{:.1}" width="{body:.1}" height="{:.1}" fill="{color}"/>"#,
            frame.y(bar.high),
            frame.y(bar.low),
            x - body / 2.0,
            frame.y(top),
            (frame.y(bottom) - frame.y(top)).max(0.8),
        );
    }
    // Buys point up from below their bar, sells down from above it, so
    // the candles stay visible; the mean price is in the mark's title.
    for mark in marks {
        let x = frame.x(mark.ts as f64 + step / 2.0);
        let bar = bars.iter().find(|bar| bar.ts == mark.ts);
        let (points, color) = if mark.buy {
            let y = frame.y(bar.map_or(mark.price, |bar| bar.low)) + 2.0;
            (
                format!(
                    "{x:.1},{y:.1} {:.1},{:.1} {:.1},{:.1}",
                    x - 3.5,
                    y + 7.0,
                    x + 3.5,
                    y + 7.0
                ),
                BLUE,
            )
        } else {
            let y = frame.y(bar.map_or(mark.price, |bar| bar.high)) - 2.0;
            (
                format!(
                    "{x:.1},{y:.1} {:.1},{:.1} {:.1},{:.1}",
                    x - 3.5,
                    y - 7.0,
                    x + 3.5,
                    y - 7.0
                ),
                "#8250df",
            )
        };
        let _ = write!(
            out,
            r#"<polygon points="{points}" fill="{color}" stroke="white" class="halo" stroke-width="0.5"><title>{} {} at {:.2} on average, from {}</title></polygon>"#,
            mark.fills,
            match (mark.buy, mark.fills) {
                (true, 1) => "buy",
                (true, _) => "buys",
                (false, 1) => "sell",
                (false, _) => "sells",
            },
            mark.price,
            date(mark.ts)
        );
    }
    out.push_str("</svg>");
    out
}

fn empty(label: &str) -> String {
    format!(
        r#"<p class="empty">{}: not enough data to draw.</p>"#,
        escape(label)
    )
}
