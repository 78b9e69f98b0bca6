//! The account side of the fake Binance server: signed requests (API key
//! header, HMAC-SHA256 signature over the query string, `timestamp` within
//! `recvWindow` of the fake's clock), `POST` / `GET` / `DELETE
//! /api/v3/order`, `GET /api/v3/myTrades` and `GET /api/v3/account` with
//! Binance's answers and error codes. Market orders fill at once at
//! [`FILL_PRICE`] in two trades; limit and stop-loss orders rest until the
//! test fills them (a stop at its stop price); fills move the account's balances (BTC against USDT). Scripted answers make an
//! order's fate unknown to the client (a late answer, a -1007) while the
//! exchange has it, or refuse it with 429 / 418.

use std::collections::{BTreeMap, HashSet, VecDeque};
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

/// What the account streams are told.
#[derive(Debug, Clone)]
pub enum UserPush {
    /// An event object (`executionReport`).
    Event(Arc<str>),
    Terminate,
    Drop,
}

pub struct FakeOrder {
    pub order_id: u64,
    pub client_order_id: String,
    pub symbol: String,
    pub side: String,
    pub kind: String,
    pub quantity: String,
    pub price: String,
    /// A STOP_LOSS order's trigger ("0.00000000" for other types).
    pub stop_price: String,
    pub status: String,
    pub fills: Vec<Value>,
    pub time: i64,
}

impl FakeOrder {
    fn executed(&self) -> f64 {
        self.fills
            .iter()
            .map(|fill| fill["qty"].as_str().unwrap().parse::<f64>().unwrap())
            .sum()
    }

    /// The `executionReport` of this order's latest change (`fill`: the
    /// trade, if it was one).
    fn report(&self, fill: Option<&Value>, now: i64) -> Value {
        let (kind, last_qty, last_price, commission, asset, trade) = match fill {
            Some(fill) => (
                "TRADE",
                fill["qty"].clone(),
                fill["price"].clone(),
                fill["commission"].clone(),
                fill["commissionAsset"].clone(),
                fill["tradeId"].clone(),
            ),
            None => (
                "NEW",
                json!("0.00000000"),
                json!("0.00000000"),
                json!("0"),
                Value::Null,
                json!(-1),
            ),
        };
        json!({
            "e": "executionReport", "E": now, "s": self.symbol, "c": self.client_order_id,
            "S": self.side, "o": self.kind, "f": "GTC", "q": self.quantity, "p": self.price,
            "P": self.stop_price, "F": "0.00000000", "g": -1, "C": "", "x": kind, "X": self.status,
            "r": "NONE", "i": self.order_id, "l": last_qty, "z": format!("{:.8}", self.executed()),
            "L": last_price, "n": commission, "N": asset, "T": now, "t": trade, "I": now,
            "w": self.status == "NEW", "m": false, "M": false, "O": self.time,
            "Z": "0.00000000", "Y": "0.00000000", "Q": "0.00000000", "W": self.time, "V": "NONE"
        })
    }
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
    pub subscriptions: u64,
    pub last_event: Option<Arc<str>>,
    orders_10s: (i64, u32),
    orders_today: u32,
    /// Balances by asset, free and locked together.
    pub balances: BTreeMap<String, f64>,
    /// Signed requests received: method and path.
    pub requests: Vec<(String, String)>,
}

impl Trading {
    fn trade(&mut self, price: &str, quantity: f64) -> Value {
        self.next_trade_id += 1;
        json!({
            "price": price, "qty": format!("{quantity:.8}"),
            "commission": format!("{:.8}", quantity * 100.0 * 0.001), "commissionAsset": "USDT",
            "tradeId": self.next_trade_id
        })
    }

    /// What resting orders hold of `asset` (sells hold the base asset;
    /// buys are not held here).
    pub fn locked(&self, asset: &str) -> f64 {
        if asset != "BTC" {
            return 0.0;
        }
        self.orders
            .iter()
            .filter(|o| o.side == "SELL" && (o.status == "NEW" || o.status == "PARTIALLY_FILLED"))
            .map(|o| o.quantity.parse::<f64>().unwrap_or(0.0) - o.executed())
            .sum()
    }

    /// What of `asset` an order may still use.
    pub fn free(&self, asset: &str) -> f64 {
        self.balances.get(asset).copied().unwrap_or(0.0) - self.locked(asset)
    }

    /// Move the balances for a trade of `fill` (quote commission).
    fn settle(&mut self, side: &str, fill: &Value) {
        let number = |name: &str| fill[name].as_str().unwrap().parse::<f64>().unwrap();
        let (quantity, price, commission) = (number("qty"), number("price"), number("commission"));
        let sign = if side == "BUY" { 1.0 } else { -1.0 };
        *self.balances.entry("BTC".into()).or_default() += sign * quantity;
        *self.balances.entry("USDT".into()).or_default() -= sign * quantity * price + commission;
    }

    /// Fill more of a resting order; its execution report.
    pub fn fill(&mut self, client_order_id: &str, quantity: &str, now: i64) -> Value {
        let index = self
            .orders
            .iter()
            .position(|order| order.client_order_id == client_order_id)
            .expect("an order placed first");
        let order = &self.orders[index];
        let price = if order.kind == "STOP_LOSS" {
            order.stop_price.clone()
        } else {
            order.price.clone()
        };
        let fill = self.trade(&price, quantity.parse().unwrap());
        let side = self.orders[index].side.clone();
        self.settle(&side, &fill);
        let order = &mut self.orders[index];
        order.fills.push(fill.clone());
        let total: f64 = order.quantity.parse().unwrap();
        order.status = if order.executed() + 1e-12 >= total {
            "FILLED"
        } else {
            "PARTIALLY_FILLED"
        }
        .into();
        let report = order.report(Some(&fill), now);
        self.last_event = Some(report.to_string().into());
        report
    }
}

/// HMAC-SHA256 of `payload` with `secret`, in hex (what Binance checks).
fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Binance's answer to a request it refuses: status, code, message.
type Refusal = (u16, i64, &'static str);

/// The query's parameters, once its key, signature and timestamp pass.
fn authenticate(
    trading: &Trading,
    now: i64,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Vec<(String, String)>, Refusal> {
    let key = headers
        .get("x-mbx-apikey")
        .and_then(|value| value.to_str().ok())
        .ok_or((401, -2014, "API-key format invalid."))?;
    if key != trading.api_key || trading.api_key.is_empty() {
        return Err((
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    let raw = raw.unwrap_or("");
    let Some((payload, signature)) = raw.rsplit_once("&signature=") else {
        return Err((
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ));
    };
    let expected = hmac_hex(&trading.secret, payload);
    if !expected.eq_ignore_ascii_case(signature) {
        return Err((400, -1022, "Signature for this request is not valid."));
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
        .ok_or((
            400,
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ))?;
    let window: i64 = get("recvWindow")
        .and_then(|value| value.parse().ok())
        .unwrap_or(5_000);
    if !(timestamp < now + 1_000 && now - timestamp <= window) {
        return Err((
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(params)
}

/// Binance's answer to a request without a parameter it needs.
fn missing(parameter: &str) -> Response {
    refusal(
        400,
        -1102,
        &format!("Mandatory parameter '{parameter}' was not sent, was empty/null, or malformed."),
    )
}

pub(crate) fn order_json(order: &FakeOrder, with_fills: bool) -> Value {
    let executed = format!("{:.8}", order.executed());
    let quote = format!("{:.8}", order.executed() * 100.0);
    let mut value = json!({
        "symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
        "clientOrderId": order.client_order_id, "transactTime": order.time,
        "price": order.price, "origQty": order.quantity, "executedQty": executed,
        "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": quote,
        "status": order.status, "timeInForce": "GTC", "type": order.kind, "side": order.side,
        "stopPrice": order.stop_price,
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
            Err((status, code, msg)) => {
                let response = refusal(status, code, msg);
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
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, missing("quantity"));
        };
        if !["MARKET", "LIMIT", "STOP_LOSS"].contains(&kind.as_str()) {
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, refusal(400, -1116, "Invalid orderType."));
        }
        let stop_price = get("stopPrice");
        if kind == "STOP_LOSS" && stop_price.is_none() {
            trading.posts.push((client_order_id, 400));
            return weigh(inner, 1, missing("stopPrice"));
        }
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
        // A sell needs coins no resting sell holds (Binance sets them aside).
        let wanted: f64 = quantity.parse().unwrap_or(0.0);
        if side == "SELL" && wanted > trading.free("BTC") + 1e-12 {
            trading.posts.push((client_order_id, 400));
            return weigh(
                inner,
                1,
                refusal(
                    400,
                    -2010,
                    "Account has insufficient balance for requested action.",
                ),
            );
        }
        let market = kind == "MARKET";
        let mut fills = Vec::new();
        if market {
            let quantity: f64 = quantity.parse().unwrap_or(0.0);
            for part in [quantity / 2.0, quantity - quantity / 2.0] {
                let fill = trading.trade(FILL_PRICE, part);
                trading.settle(&side, &fill);
                fills.push(fill);
            }
        }
        let mut order = FakeOrder {
            order_id: trading.orders.len() as u64 + 1,
            client_order_id: client_order_id.clone(),
            symbol,
            side,
            kind,
            quantity,
            price: get("price").unwrap_or_else(|| "0.00000000".into()),
            stop_price: stop_price.unwrap_or_else(|| "0.00000000".into()),
            status: if market { "FILLED" } else { "NEW" }.into(),
            fills,
            time: now,
        };
        // The account streams hear of it as Binance tells them: NEW, then
        // each trade.
        let mut reports = Vec::new();
        let all_fills = std::mem::take(&mut order.fills);
        let final_status = order.status.clone();
        order.status = "NEW".into();
        reports.push(order.report(None, now));
        for (i, fill) in all_fills.iter().enumerate() {
            order.fills.push(fill.clone());
            order.status = if i + 1 == all_fills.len() {
                final_status.clone()
            } else {
                "PARTIALLY_FILLED".into()
            };
            reports.push(order.report(Some(fill), now));
        }
        order.status = final_status;
        for report in &reports {
            let text: Arc<str> = report.to_string().into();
            trading.last_event = Some(text.clone());
            let _ = shared.user_pushes.send(UserPush::Event(text));
        }
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
        Err((status, code, msg)) => return weigh(inner, 4, refusal(status, code, msg)),
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

/// The parameters of a signed request (recorded), or Binance's refusal.
fn signed(
    inner: &mut super::fake_binance::Inner,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    raw: Option<&str>,
) -> Result<Vec<(String, String)>, Refusal> {
    let now = now_ms(inner);
    inner
        .trading
        .requests
        .push((method.to_string(), path.to_string()));
    authenticate(&inner.trading, now, headers, raw)
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

pub(crate) async fn cancel_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut guard = shared.inner.lock().unwrap();
    let inner = &mut *guard;
    let params = match signed(inner, "DELETE", "/api/v3/order", &headers, raw.as_deref()) {
        Ok(params) => params,
        Err((status, code, msg)) => return weigh(inner, 1, refusal(status, code, msg)),
    };
    let now = now_ms(inner);
    let wanted = param(&params, "origClientOrderId");
    let open = inner.trading.orders.iter_mut().find(|order| {
        Some(&order.client_order_id) == wanted.as_ref()
            && (order.status == "NEW" || order.status == "PARTIALLY_FILLED")
    });
    let response = match open {
        Some(order) => {
            order.status = "CANCELED".into();
            let mut report = order.report(None, now);
            report["x"] = json!("CANCELED");
            let text: Arc<str> = report.to_string().into();
            let body = order_json(order, false);
            inner.trading.last_event = Some(text.clone());
            let _ = shared.user_pushes.send(UserPush::Event(text));
            axum::Json(body).into_response()
        }
        None => refusal(400, -2011, "Unknown order sent."),
    };
    weigh(inner, 1, response)
}

pub(crate) async fn my_trades(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut guard = shared.inner.lock().unwrap();
    let inner = &mut *guard;
    let params = match signed(inner, "GET", "/api/v3/myTrades", &headers, raw.as_deref()) {
        Ok(params) => params,
        Err((status, code, msg)) => return weigh(inner, 5, refusal(status, code, msg)),
    };
    let order_id: Option<u64> = param(&params, "orderId").and_then(|id| id.parse().ok());
    let trades: Vec<Value> = inner
        .trading
        .orders
        .iter()
        .filter(|order| Some(order.order_id) == order_id)
        .flat_map(|order| {
            order.fills.iter().map(move |fill| {
                let quantity: f64 = fill["qty"].as_str().unwrap().parse().unwrap();
                let price: f64 = fill["price"].as_str().unwrap().parse().unwrap();
                json!({
                    "symbol": order.symbol, "id": fill["tradeId"], "orderId": order.order_id,
                    "orderListId": -1, "price": fill["price"], "qty": fill["qty"],
                    "quoteQty": format!("{:.8}", quantity * price),
                    "commission": fill["commission"], "commissionAsset": fill["commissionAsset"],
                    "time": order.time, "isBuyer": order.side == "BUY",
                    "isMaker": order.kind == "LIMIT", "isBestMatch": true
                })
            })
        })
        .collect();
    weigh(inner, 5, axum::Json(Value::Array(trades)).into_response())
}

pub(crate) async fn account(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut guard = shared.inner.lock().unwrap();
    let inner = &mut *guard;
    if let Err((status, code, msg)) =
        signed(inner, "GET", "/api/v3/account", &headers, raw.as_deref())
    {
        return weigh(inner, 20, refusal(status, code, msg));
    }
    let balances: Vec<Value> = inner
        .trading
        .balances
        .keys()
        .map(|asset| {
            let (free, locked) = (inner.trading.free(asset), inner.trading.locked(asset));
            json!({"asset": asset, "free": format!("{free:.8}"), "locked": format!("{locked:.8}")})
        })
        .collect();
    let body = json!({
        "makerCommission": 10, "takerCommission": 10, "canTrade": true,
        "canWithdraw": true, "canDeposit": true, "accountType": "SPOT",
        "balances": balances, "permissions": ["SPOT"]
    });
    weigh(inner, 20, axum::Json(body).into_response())
}

pub(crate) async fn ws_api(
    State(shared): State<Arc<Shared>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| serve_ws_api(shared, socket))
}

/// The WebSocket API's user data stream subscription: params signed in
/// alphabetical order, events wrapped with the subscription id.
async fn serve_ws_api(shared: Arc<Shared>, mut socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message;
    let mut pushes = shared.user_pushes.subscribe();
    let mut subscribed = false;
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                Ok(UserPush::Event(event)) if subscribed => {
                    let text = format!("{{\"subscriptionId\":0,\"event\":{event}}}");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Ok(UserPush::Terminate) if subscribed => {
                    subscribed = false;
                    let text = json!({"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1}});
                    if socket.send(Message::Text(text.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Ok(UserPush::Drop) | Err(_) => return,
                Ok(_) => {}
            },
            message = socket.recv() => {
                let Some(Ok(message)) = message else { return };
                let Message::Text(text) = message else { continue };
                let Ok(request) = serde_json::from_str::<Value>(&text) else { continue };
                let reply = {
                    let mut inner = shared.inner.lock().unwrap();
                    let now = now_ms(&inner);
                    match verify_ws_request(&inner.trading, now, &request) {
                        Ok(()) => {
                            subscribed = true;
                            inner.trading.subscriptions += 1;
                            json!({"id": request["id"], "status": 200, "result": {"subscriptionId": 0}})
                        }
                        Err((code, msg)) => json!({"id": request["id"], "status": 400, "error": {"code": code, "msg": msg}}),
                    }
                };
                if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn verify_ws_request(
    trading: &Trading,
    now: i64,
    request: &Value,
) -> Result<(), (i64, &'static str)> {
    if request["method"] != "userDataStream.subscribe.signature" {
        return Err((-1102, "Unknown method."));
    }
    let params = request["params"]
        .as_object()
        .ok_or((-1102, "Mandatory parameter 'params' was not sent."))?;
    if params.get("apiKey").and_then(Value::as_str) != Some(trading.api_key.as_str()) {
        return Err((-2015, "Invalid API-key, IP, or permissions for action."));
    }
    let mut names: Vec<&String> = params.keys().filter(|name| *name != "signature").collect();
    names.sort();
    let payload = names
        .iter()
        .map(|name| {
            let value = &params[*name];
            let text = value
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| value.to_string());
            format!("{name}={text}")
        })
        .collect::<Vec<_>>()
        .join("&");
    let expected = hmac_hex(&trading.secret, &payload);
    let signature = params
        .get("signature")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !expected.eq_ignore_ascii_case(signature) {
        return Err((-1022, "Signature for this request is not valid."));
    }
    let timestamp = params.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
    let window = params
        .get("recvWindow")
        .and_then(Value::as_i64)
        .unwrap_or(5_000);
    if !(timestamp < now + 1_000 && now - timestamp <= window) {
        return Err((
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}
