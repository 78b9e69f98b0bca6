//! What an order a person places must be: taken as written or refused,
//! never rounded (a strategy's orders are rounded to the grid instead).
//! The runner answers these problems field by field; the engine refuses
//! such an order whoever hands it over.

use rust_decimal::Decimal;

use crate::domain::config::ConfigIssue;
use crate::domain::{InstrumentRules, OrderKind, OrderRequest};

use super::max_order_value;

/// Longest client tag a person may give.
const MAX_TAG_CHARS: usize = 64;

/// Every problem of a manual order's fields, at its pointer, for a market
/// of `rules`. (Whether its tag is free is the runner's to say: only it
/// knows the orders open when the order is placed.)
pub fn manual_order_issues(request: &OrderRequest, rules: &InstrumentRules) -> Vec<ConfigIssue> {
    let most = max_order_value();
    let mut issues = Vec::new();
    let mut issue = |pointer: &str, message: String| {
        issues.push(ConfigIssue {
            pointer: pointer.into(),
            message,
        })
    };
    if request.client_tag.is_empty() || request.client_tag.len() > MAX_TAG_CHARS {
        issue(
            "/client_tag",
            format!("must be 1 to {MAX_TAG_CHARS} characters"),
        );
    }
    if request.quantity <= Decimal::ZERO {
        issue("/quantity", "must be above 0".into());
    } else if request.quantity > most {
        issue("/quantity", format!("must be at most {most}"));
    } else if let Some(message) = rules.quantity_off_grid(request.quantity) {
        issue("/quantity", message);
    }
    match (request.kind, request.price) {
        (OrderKind::Market, Some(_)) => issue(
            "/price",
            "a market order takes no price (a limit order does)".into(),
        ),
        (OrderKind::Market, None) => {}
        (_, None) => issue("/price", "limit and stop orders need a price".into()),
        (_, Some(price)) if price <= Decimal::ZERO => issue("/price", "must be above 0".into()),
        (_, Some(price)) if price > most => issue("/price", format!("must be at most {most}")),
        (_, Some(price)) => {
            if let Some(message) = rules.price_off_grid(price) {
                issue("/price", message);
            }
        }
    }
    issues
}
