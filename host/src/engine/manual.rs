//! What an order a person places must be: taken as written or refused,
//! never rounded (a strategy's orders are rounded to the grid instead).
//! The runner answers these problems field by field; the engine refuses
//! such an order whoever hands it over.

use rust_decimal::Decimal;

use crate::domain::config::ConfigIssue;
use crate::domain::{InstrumentRules, OrderKind, OrderRequest};

use super::bot::MAX_TAG_CHARS;
use super::max_order_value;

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
    let tag_chars = request.client_tag.chars().count();
    if tag_chars == 0 || tag_chars > MAX_TAG_CHARS {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderOrigin, Side};

    fn order(tag: &str, kind: OrderKind, price: Option<Decimal>) -> OrderRequest {
        OrderRequest {
            client_tag: tag.into(),
            side: Side::Buy,
            kind,
            quantity: Decimal::ONE,
            price,
            reduce_only: false,
            origin: OrderOrigin::Manual,
        }
    }

    fn pointers(request: &OrderRequest) -> Vec<String> {
        manual_order_issues(request, &InstrumentRules::default())
            .into_iter()
            .map(|issue| issue.pointer)
            .collect()
    }

    #[test]
    fn a_persons_order_is_taken_as_written_or_refused_at_its_field() {
        assert!(pointers(&order("a", OrderKind::Market, None)).is_empty());
        // Tags count characters, not bytes.
        assert!(pointers(&order(&"é".repeat(64), OrderKind::Market, None)).is_empty());
        assert_eq!(
            pointers(&order(&"é".repeat(65), OrderKind::Market, None)),
            ["/client_tag"]
        );
        assert_eq!(
            pointers(&order("", OrderKind::Market, None)),
            ["/client_tag"]
        );
        assert_eq!(
            pointers(&order("a", OrderKind::Market, Some(Decimal::ONE))),
            ["/price"]
        );
        assert_eq!(pointers(&order("a", OrderKind::Limit, None)), ["/price"]);
        let mut zero = order("a", OrderKind::Limit, Some(Decimal::ONE));
        zero.quantity = Decimal::ZERO;
        assert_eq!(pointers(&zero), ["/quantity"]);
    }
}
