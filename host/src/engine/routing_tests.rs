//! A routed (live) engine: orders go to the outbox, never fill on their
//! own; the exchange's reports are booked once each, partial fills keep the
//! order open, a fee in the base asset is not received, a cancel waits for
//! the exchange.

use std::sync::Arc;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::bot::{BotEngine, Decider, Placement};
use super::routing::{CheckRefusal, ExchangeFill, ExchangeReport, OrderCheck, VenueRequest};
use crate::domain::config::BotConfig;
use crate::domain::{
    Candle, Liquidity, Order, OrderKind, OrderOrigin, OrderRequest, OrderStatus, Side,
};
use crate::plugin::PluginError;
use crate::plugin::contract::{self, Action};

/// Decides nothing; counts the fills it hears of.
#[derive(Default)]
struct Quiet {
    fills: usize,
}

impl Decider for Quiet {
    fn on_candle(
        &mut self,
        _: &contract::Candle,
        _: &contract::PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        Ok(Vec::new())
    }

    fn on_fill(&mut self, _: &contract::Fill) -> Result<(), PluginError> {
        self.fills += 1;
        Ok(())
    }
}

struct Accept;

impl OrderCheck for Accept {
    fn check(&self, _: &OrderRequest, _: Decimal, _: &[Order]) -> Result<(), CheckRefusal> {
        Ok(())
    }
}

/// A live bot before its first candle.
fn unread_live_engine() -> BotEngine<Quiet> {
    let config = BotConfig::from_yaml(
        "id: live\nname: live\nstrategy: { plugin: x }\nmode: live\n\
         market: { symbol: BTCUSDT, timeframe: 1m, feed: { kind: binance, network: testnet } }\n\
         capital: { quote: USDT, initial: 1000 }\n",
    )
    .unwrap();
    BotEngine::new(&config, Quiet::default()).unwrap()
}

fn live_engine() -> BotEngine<Quiet> {
    let mut engine = unread_live_engine();
    let candle = Candle {
        ts: 0,
        open: dec!(100),
        high: dec!(101),
        low: dec!(99),
        close: dec!(100),
        volume: dec!(1),
    };
    engine.on_candle(&candle).unwrap();
    engine
}

fn buy(kind: OrderKind, quantity: Decimal, price: Option<Decimal>) -> OrderRequest {
    OrderRequest {
        client_tag: "t".into(),
        side: Side::Buy,
        kind,
        quantity,
        price,
        reduce_only: false,
        origin: OrderOrigin::Manual,
    }
}

fn fill(order_id: u64, trade_id: u64, quantity: Decimal, cumulative: Decimal) -> ExchangeReport {
    ExchangeReport::Fill(ExchangeFill {
        order_id,
        trade_id,
        quantity,
        price: dec!(100),
        fee: dec!(0.1),
        base_fee: Decimal::ZERO,
        liquidity: Liquidity::Taker,
        ts: 1,
        cumulative,
    })
}

fn placed(placement: Placement) -> u64 {
    match placement {
        Placement::Placed(order) => order.id,
        Placement::Refused(rejection) => panic!("refused: {rejection:?}"),
    }
}

/// A live engine with one resting limit buy, already sent to the exchange.
fn with_a_resting_buy() -> (BotEngine<Quiet>, u64) {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    let id = placed(
        engine
            .place_manual(buy(OrderKind::Limit, dec!(1), Some(dec!(90))))
            .unwrap(),
    );
    engine.take_outbox();
    (engine, id)
}

#[test]
fn before_its_first_candle_a_live_bot_takes_no_order_not_even_a_limit() {
    // A paper bot's limit order may wait for candles; the exchange's checks
    // need the market's price, which a live bot does not have yet.
    let mut engine = unread_live_engine();
    engine.set_order_check(Arc::new(Accept));
    let refused = engine
        .place_manual(buy(OrderKind::Limit, dec!(1), Some(dec!(90))))
        .unwrap();
    assert!(matches!(refused, Placement::Refused(r) if r.check == "no_price"));
    assert!(engine.take_outbox().is_empty());
}

#[test]
fn without_the_exchange_link_no_order_is_taken() {
    let mut engine = live_engine();
    let refused = engine
        .place_manual(buy(OrderKind::Market, dec!(1), None))
        .unwrap();
    assert!(matches!(refused, Placement::Refused(r) if r.check == "venue"));
    assert!(engine.take_outbox().is_empty());
}

#[test]
fn an_order_goes_to_the_outbox_and_fills_only_as_the_exchange_reports() {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    let id = placed(
        engine
            .place_manual(buy(OrderKind::Market, dec!(1), None))
            .unwrap(),
    );
    assert!(matches!(
        engine.take_outbox().as_slice(),
        [VenueRequest::Send { order, reference }] if order.id == id && *reference == dec!(100)
    ));
    // A market order of a live bot does not fill on the next candle.
    assert_eq!(engine.portfolio().position(), Decimal::ZERO);

    assert!(
        engine
            .apply_report(fill(id, 1, dec!(0.4), dec!(0.4)))
            .unwrap()
    );
    assert_eq!(engine.portfolio().position(), dec!(0.4));
    assert_eq!(engine.open_orders()[0].filled, dec!(0.4));
    assert_eq!(engine.open_orders()[0].status, OrderStatus::Open);
    // The same trade heard again (the stream, then a query) books nothing.
    assert!(
        !engine
            .apply_report(fill(id, 1, dec!(0.4), dec!(0.4)))
            .unwrap()
    );
    assert_eq!(engine.portfolio().position(), dec!(0.4));

    assert!(
        engine
            .apply_report(fill(id, 2, dec!(0.6), dec!(1)))
            .unwrap()
    );
    assert_eq!(engine.portfolio().position(), dec!(1));
    assert!(
        engine.open_orders().is_empty(),
        "filled whole, it is closed"
    );
    assert_eq!(
        engine.portfolio().cash(),
        dec!(1000) - dec!(100) - dec!(0.2)
    );
    assert_eq!(
        engine.decider().fills,
        2,
        "the strategy heard of each fill once"
    );
    assert!(
        !engine
            .apply_report(fill(id, 2, dec!(0.6), dec!(1)))
            .unwrap()
    );
}

#[test]
fn a_fee_in_the_base_asset_is_not_received() {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    let id = placed(
        engine
            .place_manual(buy(OrderKind::Market, dec!(1), None))
            .unwrap(),
    );
    let report = ExchangeReport::Fill(ExchangeFill {
        order_id: id,
        trade_id: 7,
        quantity: dec!(1),
        price: dec!(100),
        fee: dec!(0.1),
        base_fee: dec!(0.001),
        liquidity: Liquidity::Taker,
        ts: 1,
        cumulative: dec!(1),
    });
    assert!(engine.apply_report(report).unwrap());
    // What the account holds: 0.999 BTC for 100 USDT.
    assert_eq!(engine.portfolio().position(), dec!(0.999));
    assert_eq!(
        engine.portfolio().cash(),
        dec!(1000) - dec!(99.9) - dec!(0.1)
    );
}

#[test]
fn a_cancel_waits_for_the_exchange_and_keeps_its_reason() {
    let (mut engine, id) = with_a_resting_buy();
    let order = engine
        .cancel_order(id, "cancelled by the operator")
        .unwrap();
    assert_eq!(
        order.status,
        OrderStatus::Open,
        "open until the exchange confirms"
    );
    assert!(matches!(engine.take_outbox().as_slice(), [VenueRequest::Cancel(o)] if o.id == id));
    // Asked again by the operator: sent again; by anyone else: not.
    engine
        .cancel_order(id, "cancelled by the operator")
        .unwrap();
    assert_eq!(engine.take_outbox().len(), 1);
    engine.cancel_pending("bot stopped");
    assert!(engine.take_outbox().is_empty());

    let closed = ExchangeReport::Closed {
        order_id: id,
        ts: 2,
        reason: "canceled by Binance".into(),
    };
    assert!(engine.apply_report(closed.clone()).unwrap());
    assert!(engine.open_orders().is_empty());
    let cancelled = engine
        .drain_events()
        .find_map(|event| match event {
            super::bot::EngineEvent::OrderCancelled { order } => Some(order),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        cancelled.reason.as_deref(),
        Some("cancelled by the operator")
    );
    assert!(
        !engine.apply_report(closed).unwrap(),
        "a repeat changes nothing"
    );
}

#[test]
fn an_undone_step_keeps_what_was_queued_before_it() {
    let (mut engine, id) = with_a_resting_buy();
    engine.drain_events().for_each(drop);
    // A kill held in memory (its commit failed) queued a cancel and its
    // records ...
    engine.kill("manual kill");
    // ... and the next step, also undone, must not take them away.
    let marks = engine.queue_marks();
    assert!(marks.events > 0);
    let before = engine.checkpoint();
    engine
        .cancel_order(id, "cancelled by the operator")
        .unwrap();
    assert_eq!(engine.queue_marks().outbox, marks.outbox + 1);
    engine.undo_to(before, marks);
    assert_eq!(engine.queue_marks(), marks);
    assert!(matches!(engine.take_outbox().as_slice(), [VenueRequest::Cancel(o)] if o.id == id));
}

#[test]
fn an_undone_step_sends_nothing() {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    let before = engine.checkpoint();
    placed(
        engine
            .place_manual(buy(OrderKind::Market, dec!(1), None))
            .unwrap(),
    );
    engine.restore(before);
    assert!(engine.take_outbox().is_empty());
    assert!(engine.open_orders().is_empty());
}

#[test]
fn order_numbers_never_go_back() {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    engine.number_orders_from(5_000);
    let first = placed(
        engine
            .place_manual(buy(OrderKind::Market, dec!(1), None))
            .unwrap(),
    );
    engine.number_orders_from(10);
    let again = OrderRequest {
        client_tag: "u".into(),
        ..buy(OrderKind::Market, dec!(1), None)
    };
    let second = placed(engine.place_manual(again).unwrap());
    assert_eq!((first, second), (5_000, 5_001));
}

/// A live engine that bought 1 unit at 100, linked to an exchange that
/// takes every order.
fn long_one() -> BotEngine<Quiet> {
    let mut engine = live_engine();
    engine.set_order_check(Arc::new(Accept));
    let entry = placed(
        engine
            .place_manual(buy(OrderKind::Market, dec!(1), None))
            .unwrap(),
    );
    engine
        .apply_report(fill(entry, 1, dec!(1), dec!(1)))
        .unwrap();
    engine
}

/// `engine` with a reduce-only sell stop for its whole position resting at
/// 90; the stop's id.
fn with_a_stop(engine: &mut BotEngine<Quiet>) -> u64 {
    let stop = placed(
        engine
            .place_manual(sell("stop", OrderKind::Stop, Some(dec!(90))))
            .unwrap(),
    );
    engine.take_outbox();
    stop
}

fn sell(tag: &str, kind: OrderKind, price: Option<Decimal>) -> OrderRequest {
    OrderRequest {
        client_tag: tag.into(),
        side: Side::Sell,
        reduce_only: true,
        ..buy(kind, dec!(1), price)
    }
}

#[test]
fn a_market_exit_cancels_the_resting_stop_first_and_flat_asks_no_more() {
    let mut engine = long_one();
    let stop = with_a_stop(&mut engine);
    // The exchange holds the stop's coins: its cancel goes out before the
    // exit; the stop stays open until the exchange confirms.
    let exit = placed(
        engine
            .place_manual(sell("exit", OrderKind::Market, None))
            .unwrap(),
    );
    assert!(matches!(
        engine.take_outbox().as_slice(),
        [VenueRequest::Cancel(cancelled), VenueRequest::Send { order, .. }]
            if cancelled.id == stop && order.id == exit
    ));
    assert!(engine.open_orders().iter().any(|o| o.id == stop));
    // Flat: the stop's cancel was asked for already, not again.
    engine
        .apply_report(fill(exit, 2, dec!(1), dec!(1)))
        .unwrap();
    assert_eq!(engine.portfolio().position(), Decimal::ZERO);
    assert!(engine.take_outbox().is_empty());
}

#[test]
fn a_limit_sell_beyond_what_resting_sells_leave_free_is_refused() {
    let mut engine = long_one();
    with_a_stop(&mut engine);
    let refused = engine
        .place_manual(sell("take-profit", OrderKind::Limit, Some(dec!(120))))
        .unwrap();
    match refused {
        Placement::Refused(rejection) => {
            assert_eq!(rejection.check, "balance");
            assert!(
                rejection.message.contains("resting sells hold 1"),
                "{}",
                rejection.message
            );
        }
        Placement::Placed(order) => panic!("placed: {order:?}"),
    }
    assert!(engine.take_outbox().is_empty());
}

#[test]
fn a_flatten_cancels_every_resting_sell_and_a_market_sell_cannot_spend_held_coins() {
    let mut engine = long_one();
    // A plain (not reduce-only) limit sell holds the whole position.
    let limit = placed(
        engine
            .place_manual(OrderRequest {
                reduce_only: false,
                ..sell("tp", OrderKind::Limit, Some(dec!(120)))
            })
            .unwrap(),
    );
    engine.take_outbox();
    let refused = engine
        .place_manual(sell("exit", OrderKind::Market, None))
        .unwrap();
    assert!(matches!(refused, Placement::Refused(r) if r.check == "balance"));
    // A flatten (close-all, kill) cancels it first, then sells.
    engine.flatten(OrderOrigin::Manual, "close all").unwrap();
    assert!(matches!(
        engine.take_outbox().as_slice(),
        [VenueRequest::Cancel(cancelled), VenueRequest::Send { order, .. }]
            if cancelled.id == limit && order.side == Side::Sell
    ));
}
