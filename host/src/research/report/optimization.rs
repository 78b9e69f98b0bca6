//! The report of an optimisation, from its kept result: the ranked runs
//! with the parameter surface (the best score for each pair of values of
//! the two parameters searched most widely, as a heat map), or the
//! walk-forward windows with their in-sample and out-of-sample figures.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::svg::{date, escape};
use super::{opt, page_head};

/// Ranked runs listed at most.
const RUNS_LISTED: usize = 50;

/// The page for an optimisation `result` (as the job keeps it) of
/// `plugin` over `data`.
pub fn render(title: &str, plugin: &str, data: &str, result: &Value) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(&page_head(&escape(&format!("Optimisation: {title}"))));
    let _ = write!(
        out,
        r#"<p class="sub">{plugin} over {data}; {sets} parameter sets ranked by {ranking}</p>"#,
        plugin = escape(plugin),
        data = escape(data),
        sets = result["sets"].as_u64().unwrap_or(0),
        ranking = escape(result["ranking"].as_str().unwrap_or("?")),
    );
    match (result["trials"].as_array(), result["windows"].as_array()) {
        (Some(trials), _) => {
            surface(&mut out, trials);
            ranked(&mut out, trials);
        }
        (None, Some(windows)) => walk(&mut out, windows),
        _ => out.push_str(r#"<p class="empty">No runs.</p>"#),
    }
    out.push_str("</body></html>\n");
    out
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// The parameters whose values differ between runs, widest first.
fn searched(trials: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for trial in trials {
        if let Some(params) = trial["params"].as_object() {
            names.extend(params.keys().cloned());
        }
    }
    let mut varied: Vec<(String, Vec<Value>)> = names
        .into_iter()
        .map(|name| {
            let mut values: Vec<Value> = Vec::new();
            for trial in trials {
                let value = &trial["params"][&name];
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
            values.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => a.to_string().cmp(&b.to_string()),
            });
            (name, values)
        })
        .filter(|(_, values)| values.len() > 1)
        .collect();
    varied.sort_by_key(|(_, values)| std::cmp::Reverse(values.len()));
    varied
}

/// Best score for each pair of values of the two widest parameters.
fn surface(out: &mut String, trials: &[Value]) {
    let varied = searched(trials);
    let [(rows_name, rows), (cols_name, cols), ..] = varied.as_slice() else {
        return;
    };
    let best = |row: &Value, col: &Value| {
        trials
            .iter()
            .filter(|t| t["params"][rows_name] == *row)
            .filter(|t| t["params"][cols_name] == *col)
            .filter_map(|t| number(&t["score"]))
            .fold(None, |acc: Option<f64>, s| {
                Some(acc.map_or(s, |a| a.max(s)))
            })
    };
    let scores: Vec<f64> = trials.iter().filter_map(|t| number(&t["score"])).collect();
    let (lo, hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
            (l.min(*s), h.max(*s))
        });
    let _ = write!(
        out,
        r#"<h2>Parameter surface</h2><p class="sub">Best score for each {} (rows) and {} (columns); other parameters at their best. Empty: no run ranked.</p><table class="heat"><tr><th>{} \ {}</th>"#,
        escape(rows_name),
        escape(cols_name),
        escape(rows_name),
        escape(cols_name)
    );
    for col in cols {
        let _ = write!(out, "<th>{}</th>", escape(&col.to_string()));
    }
    out.push_str("</tr>");
    for row in rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(&row.to_string()));
        for col in cols {
            match best(row, col) {
                Some(score) => {
                    let share = if hi > lo {
                        (score - lo) / (hi - lo)
                    } else {
                        1.0
                    };
                    // Red for the worst, through the page colour, to green for the best.
                    let (rgb, alpha) = if share >= 0.5 {
                        ("26,127,55", (share - 0.5) * 1.5 + 0.05)
                    } else {
                        ("207,34,46", (0.5 - share) * 1.5 + 0.05)
                    };
                    let _ = write!(
                        out,
                        r#"<td style="background:rgba({rgb},{alpha:.2})">{score:.3}</td>"#
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn ranked(out: &mut String, trials: &[Value]) {
    let ranked: Vec<&Value> = trials.iter().filter(|t| !t["score"].is_null()).collect();
    let _ = write!(
        out,
        "<h2>Ranked runs ({} of {} ranked{})</h2><table><tr><th>Rank</th><th>Score</th><th>Return %</th><th>Max drawdown %</th><th>Sharpe</th><th>Trades</th><th>Parameters</th></tr>",
        ranked.len(),
        trials.len(),
        if ranked.len() > RUNS_LISTED {
            format!("; the first {RUNS_LISTED} listed")
        } else {
            String::new()
        }
    );
    for (rank, trial) in ranked.iter().take(RUNS_LISTED).enumerate() {
        let metrics = &trial["metrics"];
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            rank + 1,
            opt(number(&trial["score"]), 4),
            opt(number(&metrics["total_return_pct"]), 2),
            opt(number(&metrics["max_drawdown_pct"]), 2),
            opt(number(&metrics["sharpe"]), 2),
            metrics["trades"],
            escape(&trial["params"].to_string()),
        );
    }
    out.push_str("</table>");
}

fn walk(out: &mut String, windows: &[Value]) {
    out.push_str("<h2>Walk-forward windows</h2><table><tr><th>Window</th><th>Train from</th><th>Test from</th><th>Test to</th><th>In-sample score</th><th>Out-of-sample score</th><th>In-sample return %</th><th>Out-of-sample return %</th><th>Best parameters</th></tr>");
    let mut returns = Vec::with_capacity(windows.len());
    for (index, window) in windows.iter().enumerate() {
        let (inside, outside) = (&window["in_sample"], &window["out_of_sample"]);
        returns.extend(number(&outside["metrics"]["total_return_pct"]));
        let span = &window["window"];
        let time = |key: &str| span[key].as_i64().map_or_else(String::new, date);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            index + 1,
            time("train_from"),
            time("test_from"),
            time("test_to"),
            opt(number(&inside["score"]), 4),
            opt(number(&outside["score"]), 4),
            opt(number(&inside["metrics"]["total_return_pct"]), 2),
            opt(number(&outside["metrics"]["total_return_pct"]), 2),
            if inside.is_null() {
                "(no set ranked)".to_string()
            } else {
                escape(&inside["params"].to_string())
            },
        );
    }
    let _ = write!(
        out,
        "</table><p>Out of sample, compounded over the windows: <b>{:.2}%</b></p>",
        crate::research::walk_forward::compounded_return_pct(returns)
    );
}
