//! Whatever numbers a strategy returns, the engine refuses them with a
//! reason and never panics (no decimal overflow, no NaN in the books).

use rust_decimal_macros::dec;
use stratbox_host::domain::Candle;
use stratbox_host::domain::config::BotConfig;
use stratbox_host::engine::{BotEngine, Decider, EngineEvent};
use stratbox_host::plugin::PluginError;
use stratbox_host::plugin::contract::{
    Action, Candle as PluginCandle, Fill, OrderIntent, OrderKind, PluginView, Side,
};

/// Returns the same absurd intents on every candle.
struct Hostile;

fn intent(side: Side, kind: OrderKind, quantity: f64, price: Option<f64>) -> Action {
    Action::Place(OrderIntent {
        side,
        kind,
        quantity,
        price,
        reduce_only: false,
        client_tag: "x".repeat(10_000),
    })
}

impl Decider for Hostile {
    fn on_candle(
        &mut self,
        _candle: &PluginCandle,
        _view: &PluginView,
    ) -> Result<Vec<Action>, PluginError> {
        Ok(vec![
            intent(Side::Buy, OrderKind::Market, f64::NAN, None),
            intent(Side::Buy, OrderKind::Market, f64::INFINITY, None),
            intent(Side::Buy, OrderKind::Market, -1.0, None),
            intent(Side::Buy, OrderKind::Market, 1e300, None),
            intent(Side::Buy, OrderKind::Limit, 1.0, Some(1e300)),
            intent(Side::Buy, OrderKind::Limit, 1.0, Some(f64::NAN)),
            intent(Side::Buy, OrderKind::Limit, 1e12, Some(1e12)),
            intent(Side::Sell, OrderKind::Stop, 1e12, Some(1e-300)),
            intent(Side::Buy, OrderKind::Stop, 1.0, None),
            Action::Cancel("no such order".into()),
        ])
    }

    fn on_fill(&mut self, _fill: &Fill) -> Result<(), PluginError> {
        Ok(())
    }
}

#[test]
fn absurd_intents_are_refused_with_reasons() {
    let text = "id: hostile\nname: hostile\nstrategy: { plugin: none }\nmarket: { symbol: BTCUSDT, timeframe: 1m }\ncapital: { quote: USDT, initial: 1000 }\n";
    let config = BotConfig::from_yaml(text).unwrap();
    let mut engine = BotEngine::new(&config, Hostile).unwrap();
    for i in 0..5 {
        let candle = Candle {
            ts: i * 60_000,
            open: dec!(100),
            high: dec!(101),
            low: dec!(99),
            close: dec!(100),
            volume: dec!(1),
        };
        engine.on_candle(&candle).unwrap();
    }
    let events: Vec<EngineEvent> = engine.drain_events().collect();
    let rejections: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::OrderRejected { rejection } => Some(rejection),
            _ => None,
        })
        .collect();
    // Nine placements per candle, every one refused, none accepted.
    assert_eq!(rejections.len(), 9 * 5);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EngineEvent::OrderPlaced { .. }))
    );
    assert!(
        rejections
            .iter()
            .all(|r| !r.message.is_empty() && r.client_tag.len() <= 64)
    );
    assert!(
        rejections
            .iter()
            .any(|r| r.check == "intent" && r.message.contains("quantity NaN"))
    );
    assert!(rejections.iter().any(|r| r.check == "free_cash"));
    assert_eq!(engine.portfolio().equity(), dec!(1000));
}
