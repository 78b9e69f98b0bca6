//! The account side of the fake Binance server: signed requests (API key
//! header, HMAC-SHA256 signature over the query string, `timestamp` within
//! `recvWindow` of the fake's clock) and `POST` / `GET /api/v3/order` with
//! Binance's answers and error codes. Market orders fill at once at
//! [`FILL_PRICE`] in two trades; limit orders rest. Scripted answers make an
//! order's fate unknown to the client (a late answer, a -1007) while the
//! exchange has it, or refuse it with 429 / 418.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::fake_binance::{Shared, now_ms, refusal, weigh};

/// Where market orders fill.
pub const FILL_PRICE: &str = "100.00000000";

/// How the next order POST is answered.
#[derive(Debug, Clone)]
pub enum OrderScript {
    /// The order is taken (and filled, if market), the answer comes this
    /// much later.
    AnswerLate(Duration),
    /// The order is taken; the answer is 503 with -1007 (status unknown).
    UnknownStatus,
    /// 429 (or 418 when `banned`) with this Retry-After; no order.
    RateLimited { banned: bool, retry_after: u64 },
}

pub struct FakeOrder {
    pub order_id: u64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub kind: String,
    pub quantity: String,
    pub price: String,
    pub status: String,
    pub fills: Vec<Value>,
    pub time: i64,
}

#[derive(Default)]
pub struct Trading {
    pub api_key: String,
    pub secret: String,
    pub symbols: HashSet<String>,
    pub orders: Vec<FakeOrder>,
    pub posts: Vec<(String, u16)>,
    pub scripted: VecDeque<OrderScript>,
    next_trade_id: u64,
    orders_10s: (i64, u32),
    orders_today: u32,
}

/// The query's parameters, once its key, signature and timestamp pass.
fn authenticate(
    trading: &Trading,
    now: i64,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Vec<(String, String)>, Response> {
    let key = headers
        .get("x-mbx-apikey")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| refusal(401, -2014, "API-key format invalid."))?;
    if key != trading.api_key || trading.api_key.is_empty() {
        return Err(refusal(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    let raw = raw.unwrap_or("");
    let Some((payload, signature)) = raw.rsplit_once("&signature=") else {
        return Err(refusal(
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(trading.secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if !expected.eq_ignore_ascii_case(signature) {
        return Err(refusal(
            400,
            -1022,
            "Signature for this request is not valid.",
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_str(payload).unwrap_or_default();
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let timestamp: i64 = get("timestamp")
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| {
            refusal(
                400,
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            )
        })?;
    let window: i64 = get("recvWindow")
        .and_then(|value| value.parse().ok())
        .unwrap_or(5_000);
    if !(timestamp < now + 1_000 && now - timestamp <= window) {
        return Err(refusal(
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(params)
}

fn order_json(order: &FakeOrder, with_fills: bool) -> Value {
    let executed = if order.status == "FILLED" {
        order.quantity.clone()
    } else {
        "0.00000000".into()
    };
    let quote = if order.status == "FILLED" {
        let quantity: f64 = order.quantity.parse().unwrap();
        format!("{:.8}", quantity * 100.0)
    } else {
        "0.00000000".into()
    };
    let mut value = json!({
        "symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
        "clientOrderId": order.client_order_id, "transactTime": order.time,
        "price": order.price, "origQty": order.quantity, "executedQty": executed,
        "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": quote,
        "status": order.status, "timeInForce": "GTC", "type": order.kind, "side": order.side,
        "workingTime": order.time, "selfTradePreventionMode": "EXPIRE_MAKER"
    });
    if with_fills {
        value["fills"] = Value::Array(order.fills.clone());
    }
    value
}

pub(crate) async fn new_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let (answer, late) = {
        let mut guard = shared.inner.lock().unwrap();
        let now = now_ms(&guard);
        let inner = &mut *guard;
        let trading = &mut inner.trading;
        let params = match authenticate(trading, now, &headers, raw.as_deref()) {
            Ok(params) => params,
            Err(response) => {
                trading.posts.push(("?".into(), response.status().as_u16()));
                return weigh(inner, 1, response);
            }
        };
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let client_order_id = get("newClientOrderId").unwrap_or_else(|| format!("x-{now}"));
        let script = trading.scripted.pop_front();
        if let Some(OrderScript::RateLimited {
            banned,
            retry_after,
        }) = script
        {
            let mut response = if banned {
                refusal(418, -1003, "Way too many requests; IP banned.")
            } else {
                refusal(
                    429,
                    -1015,
                    "Too many new orders; current limit is 100 orders per 10 SECOND.",
                )
            };
            response.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(&retry_after.to_string()).unwrap(),
            );
            trading
                .posts
                .push((client_order_id, response.status().as_u16()));
            return weigh(inner, 1, response);
        }
        let (Some(symbol), Some(side), Some(kind), Some(quantity)) =
            (get("symbol"), get("side"), get("type"), get("quantity"))
        else {
            let response = refusal(
                400,
                -1102,
                "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
            );
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, response);
        };
        if !trading.symbols.contains(&symbol) {
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, refusal(400, -1121, "Invalid symbol."));
        }
        let open = |order: &&FakeOrder| order.status == "NEW" || order.status == "PARTIALLY_FILLED";
        if trading
            .orders
            .iter()
            .filter(open)
            .any(|order| order.client_order_id == client_order_id)
        {
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, refusal(400, -2010, "Duplicate order sent."));
        }
        let market = kind == "MARKET";
        let mut fills = Vec::new();
        if market {
            let quantity: f64 = quantity.parse().unwrap_or(0.0);
            for part in [quantity / 2.0, quantity - quantity / 2.0] {
                trading.next_trade_id += 1;
                fills.push(json!({
                    "price": FILL_PRICE, "qty": format!("{part:.8}"),
                    "commission": format!("{:.8}", part * 100.0 * 0.001), "commissionAsset": "USDT",
                    "tradeId": trading.next_trade_id
                }));
            }
        }
        let order = FakeOrder {
            order_id: trading.orders.len() as u64 + 1,
            client_order_id: client_order_id.clone(),
            symbol,
            side,
            kind,
            quantity,
            price: get("price").unwrap_or_else(|| "0.00000000".into()),
            status: if market { "FILLED" } else { "NEW" }.into(),
            fills,
            time: now,
        };
        let body = order_json(&order, true);
        trading.orders.push(order);
        let window = now / 10_000;
        if trading.orders_10s.0 != window {
            trading.orders_10s = (window, 0);
        }
        trading.orders_10s.1 += 1;
        trading.orders_today += 1;
        let counts = (trading.orders_10s.1, trading.orders_today);
        let (mut response, late) = match script {
            Some(OrderScript::UnknownStatus) => (
                refusal(
                    503,
                    -1007,
                    "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
                ),
                None,
            ),
            Some(OrderScript::AnswerLate(wait)) => (axum::Json(body).into_response(), Some(wait)),
            _ => (axum::Json(body).into_response(), None),
        };
        let headers = response.headers_mut();
        headers.insert("x-mbx-order-count-10s", HeaderValue::from(counts.0));
        headers.insert("x-mbx-order-count-1d", HeaderValue::from(counts.1));
        trading
            .posts
            .push((client_order_id, response.status().as_u16()));
        (weigh(inner, 1, response), late)
    };
    if let Some(wait) = late {
        tokio::time::sleep(wait).await;
    }
    answer
}

pub(crate) async fn query_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut guard = shared.inner.lock().unwrap();
    let now = now_ms(&guard);
    let inner = &mut *guard;
    let params = match authenticate(&inner.trading, now, &headers, raw.as_deref()) {
        Ok(params) => params,
        Err(response) => return weigh(inner, 4, response),
    };
    let wanted = params
        .iter()
        .find(|(key, _)| key == "origClientOrderId")
        .map(|(_, value)| value.clone());
    let found = inner
        .trading
        .orders
        .iter()
        .find(|order| Some(&order.client_order_id) == wanted.as_ref());
    let response = match found {
        Some(order) => axum::Json(order_json(order, false)).into_response(),
        None => refusal(400, -2013, "Order does not exist."),
    };
    weigh(inner, 4, response)
}
