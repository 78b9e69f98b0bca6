//! Backtest reports: one self-contained HTML page per run (inline CSS and
//! SVG, no script, nothing fetched), so it opens anywhere without a
//! network: headline metrics and the tear-sheet figures
//! ([`tearsheet`]), the equity curve, the underwater chart, monthly returns
//! as a heat map, the trades' PnL distribution, a rolling Sharpe, and the
//! candles with the fills marked ([`svg`]). An optimisation's page is
//! [`optimization`].

pub mod optimization;
mod svg;
pub mod tearsheet;

use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::backtest::BacktestResult;
use crate::domain::decimal::{to_f64, to_fixed};
use crate::domain::{CandleSeries, format_duration as duration};
use svg::{Bar, Mark, date, escape};
use tearsheet::{
    daily_closes, daily_returns, drawdowns, monthly_returns, rolling_sharpe, trade_stats,
    underwater,
};

/// Bars drawn on the price chart at most (candles are merged to fit).
const PRICE_BARS: usize = 240;
/// Trades listed at most (the JSON result has them all).
const TRADES_LISTED: usize = 200;
/// Days in the rolling Sharpe's window.
const ROLLING_DAYS: usize = 30;

/// What a report page may load: nothing but its own inline styles and
/// data URLs (sent as a header by the API, and in the page itself, which
/// also holds where the page is shown without its header).
pub const REPORT_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// A report page's start, up to its `<h1>` (`title` already escaped).
pub(super) fn page_head(title: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{REPORT_POLICY}"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title><style>{style}</style></head><body><h1>{title}</h1>"#,
        style = style()
    )
}

/// The pages' colours, light or dark as the reader's system asks, or as
/// `data-theme="light"|"dark"` on the page's root says (the control UI
/// sets it to its own theme on the report it frames). The charts' lines
/// and labels take their colours from here too.
const LIGHT: &str = "color-scheme:light;--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--faint:#eaeef2;--page:#ffffff;--pos:#1a7f37;--neg:#cf222e";
const DARK: &str = "color-scheme:dark;--ink:#e6edf3;--muted:#8d96a0;--line:#30363d;--faint:#21262d;--page:#0d1117;--pos:#3fb950;--neg:#f85149";
/// The pages' layout, in the colours above.
const LAYOUT: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:var(--ink);background:var(--page);padding:0 12px}\
h1{font-size:22px;margin-bottom:4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}\
.sub{color:var(--muted);margin-top:0}table{border-collapse:collapse;font-size:13px}td,th{padding:4px 8px;text-align:right;border-bottom:1px solid var(--faint)}\
th{color:var(--muted);font-weight:600}td:first-child,th:first-child{text-align:left}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:8px}\
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}.card b{display:block;font-size:18px}.card span{color:var(--muted);font-size:12px}\
.pos{color:var(--pos)}.neg{color:var(--neg)}.heat td{text-align:center;min-width:46px;color:var(--ink)}.empty{color:var(--muted)}\
svg .rule{stroke:var(--line)}svg .label{fill:var(--muted)}svg .halo{stroke:var(--page)}";

/// A report page's style sheet: [`LAYOUT`] in the theme chosen.
fn style() -> String {
    format!(
        ":root{{{LIGHT}}}@media (prefers-color-scheme:dark){{:root:not([data-theme=light]){{{DARK}}}}}:root[data-theme=dark]{{{DARK}}}{LAYOUT}"
    )
}

fn pct(value: f64) -> String {
    format!("{:.2}%", value * 100.0)
}

pub(super) fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("n/a".into(), |v| format!("{v:.digits$}"))
}

fn money(value: Option<Decimal>) -> String {
    value.map_or("n/a".into(), |v| v.round_dp(2).to_string())
}

fn card(out: &mut String, label: &str, value: &str, tone: f64) {
    let class = if tone > 0.0 {
        "pos"
    } else if tone < 0.0 {
        "neg"
    } else {
        ""
    };
    let _ = write!(
        out,
        r#"<div class="card"><span>{}</span><b class="{class}">{}</b></div>"#,
        escape(label),
        escape(value)
    );
}

/// The report of `result`, drawn over `candles` (those of the run's range
/// are used; an empty slice leaves the price chart out).
pub fn render<S: CandleSeries + ?Sized>(result: &BacktestResult, candles: &S) -> String {
    let metrics = &result.metrics;
    let initial = to_f64(metrics.initial_equity);
    let closes = daily_closes(&result.daily_equity);
    let returns = daily_returns(initial, &closes);
    let stats = trade_stats(&result.trades);
    let end_ts = result.equity_curve.last().map_or(result.end_ts, |p| p.ts);
    let market = &result.config.market;
    let mut out = String::with_capacity(256 * 1024);
    let title = escape(&format!("Backtest: {}", result.config.name));
    out.push_str(&page_head(&title));
    let _ = write!(
        out,
        r#"<p class="sub">{plugin} {version} on {symbol} {timeframe}, {from} to {to}, {count} candles; plugin sha256 {hash}</p>"#,
        plugin = escape(&result.plugin.name),
        version = escape(&result.plugin.version),
        symbol = escape(&market.symbol),
        timeframe = escape(&market.timeframe),
        from = date(result.start_ts),
        // The run covers [start, end): its last day is the one its last
        // instant falls on (a run of whole days reads "Jan 1 to Jan 2").
        to = date(end_ts.saturating_sub(1).max(result.start_ts)),
        count = result.candles,
        hash = escape(
            &result
                .plugin
                .content_hash
                .chars()
                .take(16)
                .collect::<String>()
        ),
    );

    out.push_str(r#"<h2>Headline</h2><div class="grid">"#);
    let total = metrics.total_return_pct / 100.0;
    card(&mut out, "Total return", &pct(total), total);
    card(
        &mut out,
        "CAGR",
        &metrics.cagr_pct.map_or("n/a".into(), |c| pct(c / 100.0)),
        metrics.cagr_pct.unwrap_or(0.0),
    );
    card(&mut out, "Sharpe", &opt(metrics.sharpe, 2), 0.0);
    card(&mut out, "Sortino", &opt(metrics.sortino, 2), 0.0);
    card(&mut out, "Calmar", &opt(metrics.calmar, 2), 0.0);
    // A drawdown's depth is a magnitude, as in the API, the CLI and the
    // UI; red when there was one.
    card(
        &mut out,
        "Max drawdown",
        &pct(metrics.max_drawdown_pct / 100.0),
        -metrics.max_drawdown_pct,
    );
    card(
        &mut out,
        "Longest drawdown",
        &duration(metrics.max_drawdown_duration_ms),
        0.0,
    );
    card(
        &mut out,
        "Final equity",
        &metrics.final_equity.round_dp(2).to_string(),
        0.0,
    );
    card(&mut out, "Trades", &metrics.trades.to_string(), 0.0);
    card(
        &mut out,
        "Win rate",
        &metrics
            .win_rate_pct
            .map_or("n/a".into(), |w| format!("{w:.1}%")),
        0.0,
    );
    card(
        &mut out,
        "Profit factor",
        &opt(metrics.profit_factor, 2),
        0.0,
    );
    card(
        &mut out,
        "Average trade",
        &money(stats.average),
        stats.average.map_or(0.0, to_f64),
    );
    card(
        &mut out,
        "Average win / loss",
        &format!(
            "{} / {}",
            money(stats.average_win),
            money(stats.average_loss)
        ),
        0.0,
    );
    card(
        &mut out,
        "Best / worst trade",
        &format!("{} / {}", money(stats.best), money(stats.worst)),
        0.0,
    );
    card(
        &mut out,
        "Winning / losing streak",
        &format!(
            "{} / {}",
            stats.longest_winning_streak, stats.longest_losing_streak
        ),
        0.0,
    );
    card(
        &mut out,
        "Average holding",
        &stats.average_holding_ms.map_or("n/a".into(), duration),
        0.0,
    );
    card(
        &mut out,
        "Exposure",
        &format!("{:.1}%", metrics.exposure_pct),
        0.0,
    );
    card(&mut out, "Fees", &metrics.fees.round_dp(2).to_string(), 0.0);
    let best = returns.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    let worst = returns.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(best), Some(worst)) = (best, worst) {
        card(
            &mut out,
            &format!("Best day ({})", date(best.0)),
            &pct(best.1),
            best.1,
        );
        card(
            &mut out,
            &format!("Worst day ({})", date(worst.0)),
            &pct(worst.1),
            worst.1,
        );
    }
    out.push_str("</div>");

    let equity: Vec<(i64, f64)> = result
        .equity_curve
        .iter()
        .map(|p| (p.ts, to_f64(p.equity)))
        .collect();
    out.push_str("<h2>Equity</h2>");
    out.push_str(&svg::line_chart(
        "Equity curve",
        &equity,
        280.0,
        svg::BLUE,
        false,
        &|v| format!("{v:.0}"),
    ));
    out.push_str("<h2>Underwater (drawdown from the running peak)</h2>");
    let water = underwater(metrics.initial_equity, &result.equity_curve);
    out.push_str(&svg::line_chart(
        "Drawdown",
        &water,
        180.0,
        svg::RED,
        true,
        &|v| pct(v),
    ));

    out.push_str("<h2>Longest drawdowns</h2><table><tr><th>Peak</th><th>Trough</th><th>Recovered</th><th>Depth</th><th>Length</th></tr>");
    for period in drawdowns(
        metrics.initial_equity,
        result.start_ts,
        &result.equity_curve,
    )
    .iter()
    .take(5)
    {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"neg\">{}</td><td>{}</td></tr>",
            date(period.peak_ts),
            date(period.trough_ts),
            period.recovered_ts.map_or("not yet".into(), date),
            pct(period.depth),
            duration(period.length_ms(end_ts))
        );
    }
    out.push_str("</table>");

    out.push_str("<h2>Monthly returns</h2>");
    monthly_heat_map(&mut out, &monthly_returns(initial, &closes));

    out.push_str("<h2>Rolling Sharpe (30 days)</h2>");
    let rolling = rolling_sharpe(&returns, ROLLING_DAYS);
    out.push_str(&svg::line_chart(
        "Rolling Sharpe",
        &rolling,
        180.0,
        svg::BLUE,
        false,
        &|v| format!("{v:.1}"),
    ));

    out.push_str("<h2>Trade PnL distribution</h2>");
    let pnls: Vec<f64> = result.trades.iter().map(|t| to_f64(t.pnl)).collect();
    out.push_str(&svg::histogram("Trade PnL", &pnls, 24, &|v| {
        format!("{v:.0}")
    }));

    out.push_str("<h2>Price and fills</h2>");
    let (bars, marks) = price_chart_data(result, candles);
    out.push_str(&svg::candles("Candles with fills", &bars, &marks));

    trades_table(&mut out, result);
    out.push_str("</body></html>\n");
    out
}

/// Years by months, each cell coloured by its return.
fn monthly_heat_map(out: &mut String, months: &[(i32, u32, f64)]) {
    if months.is_empty() {
        out.push_str(r#"<p class="empty">No full day in the run.</p>"#);
        return;
    }
    let scale = months
        .iter()
        .map(|m| m.2.abs())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    out.push_str(r#"<table class="heat"><tr><th>Year</th>"#);
    for name in [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year",
    ] {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("</tr>");
    let (first, last) = (months[0].0, months[months.len() - 1].0);
    for year in first..=last {
        let _ = write!(out, "<tr><td>{year}</td>");
        let mut compounded = 1.0;
        for month in 1..=12 {
            match months.iter().find(|m| m.0 == year && m.1 == month) {
                Some(&(_, _, r)) => {
                    compounded *= 1.0 + r;
                    let alpha = (r.abs() / scale).min(1.0) * 0.75 + 0.05;
                    let rgb = if r >= 0.0 { "26,127,55" } else { "207,34,46" };
                    let _ = write!(
                        out,
                        r#"<td style="background:rgba({rgb},{alpha:.2})">{:.1}%</td>"#,
                        r * 100.0
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        let _ = write!(
            out,
            "<td><b>{:.1}%</b></td></tr>",
            (compounded - 1.0) * 100.0
        );
    }
    out.push_str("</table>");
}

/// The run's candles merged into at most [`PRICE_BARS`] bars, and its fills.
fn price_chart_data<S: CandleSeries + ?Sized>(
    result: &BacktestResult,
    candles: &S,
) -> (Vec<Bar>, Vec<Mark>) {
    let first = candles.first_from(result.start_ts);
    let end = candles
        .first_from(result.end_ts.saturating_add(1))
        .max(first);
    let per_bar = (end - first).div_ceil(PRICE_BARS).max(1);
    let bars: Vec<Bar> = (first..end)
        .step_by(per_bar)
        .map(|bar_start| {
            let open = candles.candle(bar_start);
            let mut bar = Bar {
                ts: open.ts,
                open: to_f64(open.open),
                high: f64::MIN,
                low: f64::MAX,
                close: 0.0,
            };
            for index in bar_start..(bar_start + per_bar).min(end) {
                let candle = candles.candle(index);
                bar.high = bar.high.max(to_f64(candle.high));
                bar.low = bar.low.min(to_f64(candle.low));
                bar.close = to_f64(candle.close);
            }
            bar
        })
        .collect();
    // One mark per bar and side: the number of fills and their mean price
    // (thousands of fills would hide the candles).
    let mut marks: Vec<Mark> = Vec::new();
    for fill in &result.fills {
        let index = bars.partition_point(|bar| bar.ts <= fill.ts);
        let Some(bar) = index.checked_sub(1).map(|i| bars[i]) else {
            continue;
        };
        let buy = fill.side == crate::domain::Side::Buy;
        let price = to_f64(fill.price);
        match marks
            .iter_mut()
            .rev()
            .find(|mark| mark.ts == bar.ts && mark.buy == buy)
        {
            Some(mark) => {
                mark.price += (price - mark.price) / (mark.fills + 1) as f64;
                mark.fills += 1;
            }
            None => marks.push(Mark {
                ts: bar.ts,
                price,
                buy,
                fills: 1,
            }),
        }
    }
    (bars, marks)
}

fn trades_table(out: &mut String, result: &BacktestResult) {
    let _ = write!(
        out,
        "<h2>Trades ({} round trips{})</h2><table><tr><th>Entry</th><th>Exit</th><th>Quantity</th><th>Entry price</th><th>Exit price</th><th>Fees</th><th>PnL</th></tr>",
        result.trades.len(),
        if result.trades.len() > TRADES_LISTED {
            format!("; the first {TRADES_LISTED} listed, all are in the JSON result")
        } else {
            String::new()
        }
    );
    let listed = &result.trades[..result.trades.len().min(TRADES_LISTED)];
    let quantity_places = column_places(listed.iter().map(|t| t.quantity));
    let price_places = column_places(listed.iter().flat_map(|t| [t.entry_price, t.exit_price]));
    for trade in listed {
        let class = if trade.pnl >= Decimal::ZERO {
            "pos"
        } else {
            "neg"
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            time(trade.entry_ts),
            time(trade.exit_ts),
            to_fixed(trade.quantity, quantity_places),
            to_fixed(trade.entry_price, price_places),
            to_fixed(trade.exit_price, price_places),
            to_fixed(trade.fees, 4),
            to_fixed(trade.pnl, 2),
        );
    }
    out.push_str("</table>");
}

/// Decimals for a column of `values`: the most any of them needs, so the
/// figures line up; at most 8 (an average entry price can run to 28), so a
/// finer figure shows rounded here (the JSON result keeps every digit).
fn column_places(values: impl Iterator<Item = Decimal>) -> u32 {
    values
        .map(|value| value.normalize().scale().min(8))
        .max()
        .unwrap_or(0)
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
