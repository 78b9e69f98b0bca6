//! Signed trading against the fake Binance server: signatures checked by
//! the fake, the clock resynced after -1021, every filter refusing before
//! anything is sent, and above all an order whose fate is unknown (a late
//! answer, a -1007) resolved by query and never sent twice; 429 / 418 stop
//! new orders without a request. The account stream over the WebSocket API:
//! partial fills once each, resubscribed after a termination or a drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use stratbox_host::exchange::binance::{
    AccountEvent, AccountSettings, Credentials, NewOrder, OpenOrders, OrderShape, OrderSide,
    OrderType, Placement, Resolution, RestClient, Signer, SpotAccount, UserStreamSettings,
    client_order_id, spawn_user_stream,
};
use stratbox_tests::fake_binance::FakeBinance;
use stratbox_tests::fake_binance_trading::OrderScript;
use tokio::sync::mpsc;

const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

async fn setup(secret: &str, timeout: Duration) -> (FakeBinance, SpotAccount) {
    let fake = FakeBinance::start().await;
    fake.add_account(KEY, SECRET, "BTCUSDT");
    let rest = Arc::new(RestClient::new(&fake.rest_url()));
    let account = SpotAccount::new(
        rest,
        Credentials::new(KEY, Signer::hmac(secret).unwrap()),
        AccountSettings {
            timeout,
            ..AccountSettings::default()
        },
    );
    account.sync_clock().await.unwrap();
    (fake, account)
}

fn order(
    id: &str,
    kind: OrderType,
    side: OrderSide,
    quantity: Decimal,
    price: Option<Decimal>,
) -> NewOrder {
    NewOrder {
        symbol: "BTCUSDT".into(),
        client_order_id: id.into(),
        shape: OrderShape {
            side,
            kind,
            quantity,
            price,
        },
        reference: dec!(100),
        open_orders: OpenOrders::default(),
    }
}

fn market(id: &str) -> NewOrder {
    order(id, OrderType::Market, OrderSide::Buy, dec!(0.5), None)
}

#[tokio::test]
async fn a_signed_market_order_fills_and_a_bad_signature_is_refused() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    let id = client_order_id("bot-a", 1);
    let Placement::Accepted(report) = account.place(&market(&id)).await else {
        panic!("accepted")
    };
    assert_eq!(report.client_order_id, id);
    assert_eq!(report.status, "FILLED");
    assert_eq!(report.fills.len(), 2, "two partial fills");
    let filled: Decimal = report.fills.iter().map(|fill| fill.qty).sum();
    assert_eq!(filled, dec!(0.5));
    assert_ne!(report.fills[0].trade_id, report.fills[1].trade_id);
    assert_eq!(account.orders_today(), 1, "X-MBX-ORDER-COUNT-1D read");
    assert_eq!(
        account.weight_limit(),
        stratbox_tests::fake_binance::WEIGHT_LIMIT,
        "signed requests are paced by the weight limit exchangeInfo gives"
    );
    assert_eq!(fake.order_posts(), vec![(id, 200)]);

    let (fake, forger) = setup("not-the-secret", Duration::from_secs(5)).await;
    assert_eq!(
        forger.place(&market("forged-1")).await,
        Placement::Refused {
            code: -1022,
            msg: "Signature for this request is not valid.".into()
        }
    );
    assert!(fake.orders().is_empty());
}

#[tokio::test]
async fn a_skewed_clock_is_resynced_and_the_order_sent_once_more() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    fake.set_clock_skew(20_000);
    let Placement::Accepted(_) = account.place(&market("skewed-1")).await else {
        panic!("accepted after the resync")
    };
    assert_eq!(
        fake.order_posts(),
        vec![("?".into(), 400), ("skewed-1".into(), 200)],
        "one -1021, then the order"
    );
    assert_eq!(fake.orders().len(), 1);
    let drift = account.timestamp() - (chrono::Utc::now().timestamp_millis() + 20_000);
    assert!(drift.abs() < 1_000, "{drift} ms off after the resync");
}

#[tokio::test]
async fn an_order_with_an_unknown_fate_is_resolved_by_query_never_resent() {
    let (fake, account) = setup(SECRET, Duration::from_millis(500)).await;
    // The exchange takes and fills the order, the answer comes too late.
    fake.script_order(OrderScript::AnswerLate(Duration::from_secs(3)));
    let late = market("late-1");
    let Placement::Unknown { sent_at, .. } = account.place(&late).await else {
        panic!("unknown")
    };
    let Resolution::Found(resolved) = account
        .resolve("BTCUSDT", "late-1", sent_at, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("Binance has it")
    };
    assert_eq!(resolved.status, "FILLED");
    assert_eq!(resolved.executed_qty, dec!(0.5));

    // A 503 with -1007: the same.
    fake.script_order(OrderScript::UnknownStatus);
    let placement = account.place(&market("unknown-1")).await;
    let Placement::Unknown { reason, sent_at } = &placement else {
        panic!("{placement:?}")
    };
    assert!(reason.contains("-1007"), "{reason}");
    let Resolution::Found(resolved) = account
        .resolve("BTCUSDT", "unknown-1", *sent_at, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("Binance has it")
    };
    assert_eq!(resolved.status, "FILLED");

    // One POST each, whatever happened.
    let posts = fake.order_posts();
    assert_eq!(posts.iter().filter(|(id, _)| id == "late-1").count(), 1);
    assert_eq!(posts.iter().filter(|(id, _)| id == "unknown-1").count(), 1);
    // An order Binance does not have is not taken for absent while
    // Binance could still process it (its answer comes from a cache)...
    assert_eq!(
        account
            .resolve(
                "BTCUSDT",
                "never-sent",
                account.timestamp(),
                Duration::from_millis(300)
            )
            .await
            .unwrap(),
        Resolution::StillUnknown
    );
    // ...only once its recvWindow and a margin have passed.
    assert_eq!(
        account
            .resolve(
                "BTCUSDT",
                "never-sent",
                account.timestamp() - 16_000,
                Duration::from_secs(1)
            )
            .await
            .unwrap(),
        Resolution::Absent
    );
}

#[tokio::test]
async fn a_429_or_418_stops_new_orders_until_retry_after() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    fake.script_order(OrderScript::RateLimited {
        banned: false,
        retry_after: 1,
    });
    let started = Instant::now();
    let Placement::Blocked { until, .. } = account.place(&market("busy-1")).await else {
        panic!("blocked")
    };
    assert!(until >= started + Duration::from_millis(900));
    // Refused here without asking Binance.
    assert!(matches!(
        account.place(&market("busy-2")).await,
        Placement::Blocked { .. }
    ));
    assert_eq!(fake.order_posts().len(), 1);
    tokio::time::sleep_until(until.into()).await;
    fake.script_order(OrderScript::RateLimited {
        banned: true,
        retry_after: 2,
    });
    let asked = Instant::now();
    let Placement::Blocked { until, .. } = account.place(&market("busy-3")).await else {
        panic!("banned")
    };
    assert!(until >= asked + Duration::from_millis(1_500));
    tokio::time::sleep_until(until.into()).await;
    assert!(matches!(
        account.place(&market("busy-4")).await,
        Placement::Accepted(_)
    ));
    assert_eq!(fake.order_posts().len(), 3);
}

#[tokio::test]
async fn every_filter_refuses_before_anything_is_sent() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    use OrderSide::{Buy, Sell};
    use OrderType::{Limit, Market};
    let cases = [
        (
            "PRICE_FILTER",
            order("f1", Limit, Buy, dec!(1), Some(dec!(100.005))),
        ),
        (
            "LOT_SIZE",
            order("f2", Limit, Buy, dec!(1.000001), Some(dec!(100))),
        ),
        ("MARKET_LOT_SIZE", order("f3", Market, Buy, dec!(101), None)),
        (
            "PERCENT_PRICE_BY_SIDE",
            // Above 5 x Binance's average price (the fake's 105).
            order("f4", Limit, Sell, dec!(1), Some(dec!(526))),
        ),
        (
            "MIN_NOTIONAL",
            order("f5", Limit, Buy, dec!(0.009), Some(dec!(100))),
        ),
        (
            "NOTIONAL",
            order("f6", Limit, Buy, dec!(0.04), Some(dec!(100))),
        ),
        (
            "MAX_NUM_ORDERS",
            NewOrder {
                open_orders: OpenOrders { all: 3, stops: 0 },
                ..order("f7", Limit, Buy, dec!(1), Some(dec!(100)))
            },
        ),
    ];
    for (filter, new_order) in cases {
        match account.place(&new_order).await {
            Placement::Filtered(refusal) => assert_eq!(refusal.filter, filter, "{refusal}"),
            other => panic!("{filter}: {other:?}"),
        }
    }
    assert!(fake.order_posts().is_empty(), "nothing reached Binance");
}

#[tokio::test]
async fn the_price_bands_are_set_by_binances_average_price_not_the_last() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    fake.set_average_price("BTCUSDT", "200.00000000");
    // The last price is 100: a buy at 30 is within 0.2x of it, not of 200.
    match account
        .place(&order(
            "low",
            OrderType::Limit,
            OrderSide::Buy,
            dec!(0.5),
            Some(dec!(30)),
        ))
        .await
    {
        Placement::Filtered(refusal) => {
            assert_eq!(refusal.filter, "PERCENT_PRICE_BY_SIDE");
            assert!(refusal.reason.contains("average price 200"), "{refusal}");
        }
        other => panic!("refused before sending, not {other:?}"),
    }
    assert!(fake.order_posts().is_empty());
    // A buy at 900 is beyond 5x the last price, within 5x the average.
    let high = order(
        "high",
        OrderType::Limit,
        OrderSide::Buy,
        dec!(0.01),
        Some(dec!(900)),
    );
    assert!(!matches!(
        account.place(&high).await,
        Placement::Filtered(_)
    ));
    assert_eq!(fake.order_posts().len(), 1, "it was sent");
}

#[test]
fn credentials_never_show_the_secret() {
    let credentials = Credentials::new(KEY, Signer::hmac(SECRET).unwrap());
    let shown = format!("{credentials:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(KEY), "{shown}");
    assert!(shown.contains("***Eh8A"), "{shown}");
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<AccountEvent>) -> AccountEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an account event in time")
        .expect("the stream runs")
}

async fn next_execution(
    events: &mut mpsc::UnboundedReceiver<AccountEvent>,
) -> stratbox_host::exchange::binance::ExecutionReport {
    match next_event(events).await {
        AccountEvent::Execution(report) => *report,
        other => panic!("expected an execution, got {other:?}"),
    }
}

fn quick_stream() -> UserStreamSettings {
    UserStreamSettings {
        silence: Duration::from_secs(5),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn the_account_stream_delivers_each_fill_once_and_resubscribes() {
    let (fake, account) = setup(SECRET, Duration::from_secs(5)).await;
    let account = Arc::new(account);
    let (sender, mut events) = mpsc::unbounded_channel();
    let _stream = spawn_user_stream(fake.ws_api_url(), account.clone(), sender, quick_stream());
    assert_eq!(next_event(&mut events).await, AccountEvent::Subscribed);

    let resting = order(
        "rest-1",
        OrderType::Limit,
        OrderSide::Buy,
        dec!(1),
        Some(dec!(100)),
    );
    let Placement::Accepted(report) = account.place(&resting).await else {
        panic!("accepted")
    };
    assert_eq!(report.status, "NEW");
    let new = next_execution(&mut events).await;
    assert_eq!(
        (new.execution_type.as_str(), new.status.as_str()),
        ("NEW", "NEW")
    );
    assert_eq!(new.trade_id, -1);

    let first = fake.fill_order("rest-1", "0.4");
    let partial = next_execution(&mut events).await;
    assert_eq!(partial.execution_type, "TRADE");
    assert_eq!(partial.status, "PARTIALLY_FILLED");
    assert_eq!(partial.trade_id, first as i64);
    assert_eq!(partial.last_quantity, dec!(0.4));
    assert_eq!(partial.last_price, dec!(100));
    fake.repeat_last_account_event(); // the same trade again: dropped
    fake.fill_order("rest-1", "0.6");
    let last = next_execution(&mut events).await;
    assert_eq!(last.status, "FILLED");
    assert_eq!(last.cumulative_quantity, dec!(1));
    assert_ne!(last.trade_id, partial.trade_id);

    // Terminated, then dropped: subscribed again each time, announced so
    // that the owner reconciles.
    fake.terminate_account_streams();
    assert_eq!(next_event(&mut events).await, AccountEvent::Subscribed);
    fake.drop_account_streams();
    assert_eq!(next_event(&mut events).await, AccountEvent::Subscribed);
    assert_eq!(fake.account_subscriptions(), 3);
    let Placement::Accepted(_) = account.place(&market("after-drop")).await else {
        panic!("accepted")
    };
    let kinds: Vec<String> = [
        next_execution(&mut events).await,
        next_execution(&mut events).await,
        next_execution(&mut events).await,
    ]
    .iter()
    .map(|report| format!("{}/{}", report.execution_type, report.status))
    .collect();
    assert_eq!(kinds, ["NEW/NEW", "TRADE/PARTIALLY_FILLED", "TRADE/FILLED"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err(), "nothing twice");
}

#[tokio::test]
async fn a_badly_signed_account_stream_is_refused() {
    let (fake, account) = setup("not-the-secret", Duration::from_secs(5)).await;
    let (sender, mut events) = mpsc::unbounded_channel();
    let _stream = spawn_user_stream(fake.ws_api_url(), Arc::new(account), sender, quick_stream());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(events.try_recv().is_err());
    assert_eq!(fake.account_subscriptions(), 0);
}
