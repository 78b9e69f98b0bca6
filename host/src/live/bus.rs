//! The event bus: one envelope, channels, a global sequence number assigned
//! at publication, a ring of recent events for resuming, and a bounded
//! broadcast so a slow subscriber is told it lagged instead of blocking
//! anyone.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Events kept for subscribers resuming from a sequence number.
pub const RING_CAPACITY: usize = 10_000;
/// Events a subscriber may fall behind before it is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 4_096;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Bots,
    Signals,
    Orders,
    Positions,
    Trades,
    Risk,
    Logs,
    System,
}

/// The envelope every event travels in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: u64,
    /// Wall time of publication, epoch ms.
    pub ts: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub channel: Channel,
    pub bot_id: Option<String>,
    pub data: Value,
}

struct Sequencer {
    next_seq: u64,
    ring: VecDeque<Arc<Event>>,
    /// Numbers below this are reserved in durable storage (see
    /// [`EventBus::with_reservations`]).
    reserved_until: u64,
}

/// Records that every sequence number below its argument may be in use.
pub type Reserve = Box<dyn Fn(u64) + Send + Sync>;

pub struct EventBus {
    /// Assigning the number and sending happen under this lock, so delivery
    /// order is sequence order.
    sequencer: Mutex<Sequencer>,
    sender: broadcast::Sender<Arc<Event>>,
    /// Block size and the durable record of reservations, when numbers must
    /// keep rising across restarts.
    reservations: Option<(u64, Reserve)>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(1)
    }
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Empty = every channel.
    pub channels: BTreeSet<Channel>,
    /// None = every bot.
    pub bot_id: Option<String>,
}

impl Filter {
    pub fn matches(&self, event: &Event) -> bool {
        (self.channels.is_empty() || self.channels.contains(&event.channel))
            && match (&self.bot_id, &event.bot_id) {
                (None, _) => true,
                (Some(wanted), Some(bot)) => wanted == bot,
                (Some(_), None) => event.channel == Channel::System,
            }
    }
}

/// A live subscription.
pub struct Subscription {
    /// Told first: events the requested resume point has lost from the ring.
    notice: Option<Arc<Event>>,
    filter: Filter,
    backlog: VecDeque<Arc<Event>>,
    receiver: broadcast::Receiver<Arc<Event>>,
    last_seq: u64,
}

impl EventBus {
    /// A bus whose next event gets `first_seq` (continuing after a restart).
    pub fn new(first_seq: u64) -> Self {
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            sequencer: Mutex::new(Sequencer {
                next_seq: first_seq,
                ring: VecDeque::with_capacity(RING_CAPACITY),
                reserved_until: first_seq,
            }),
            sender,
            reservations: None,
        }
    }

    /// A bus whose numbers keep rising across restarts: before it hands out
    /// a number it has not reserved, it reserves the next `block` of them
    /// through `reserve` (which stores the bound durably). After a crash,
    /// start the next bus at the stored bound: numbers skip at most one
    /// block and never repeat.
    pub fn with_reservations(first_seq: u64, block: u64, reserve: Reserve) -> Self {
        let mut bus = Self::new(first_seq);
        bus.reservations = Some((block.max(1), reserve));
        bus
    }

    pub fn publish(
        &self,
        channel: Channel,
        kind: &'static str,
        bot_id: Option<&str>,
        data: Value,
    ) -> u64 {
        let ts = super::wall_ms();
        let mut sequencer = self.sequencer.lock().expect("bus lock");
        let seq = sequencer.next_seq;
        sequencer.next_seq += 1;
        if let Some((block, reserve)) = &self.reservations
            && seq >= sequencer.reserved_until
        {
            sequencer.reserved_until = seq + block;
            reserve(sequencer.reserved_until);
        }
        let event = Arc::new(Event {
            seq,
            ts,
            kind,
            channel,
            bot_id: bot_id.map(str::to_string),
            data,
        });
        if sequencer.ring.len() == RING_CAPACITY {
            sequencer.ring.pop_front();
        }
        sequencer.ring.push_back(event.clone());
        // No receiver is not an error: nobody is listening yet.
        let _ = self.sender.send(event);
        seq
    }

    /// Subscribe; with `after`, first replay the kept events with a greater
    /// sequence number.
    pub fn subscribe(&self, filter: Filter, after: Option<u64>) -> Subscription {
        let sequencer = self.sequencer.lock().expect("bus lock");
        let receiver = self.sender.subscribe();
        let backlog: VecDeque<_> = match after {
            Some(after) => sequencer
                .ring
                .iter()
                .filter(|e| e.seq > after)
                .cloned()
                .collect(),
            None => VecDeque::new(),
        };
        let last_seq = after.unwrap_or(sequencer.next_seq.saturating_sub(1));
        let oldest = sequencer.ring.front().map_or(sequencer.next_seq, |e| e.seq);
        let notice = after
            .filter(|after| after + 1 < oldest)
            .map(|after| Arc::new(lagged_event(after, oldest - after - 1, LagReason::Resume)));
        Subscription {
            notice,
            filter,
            backlog,
            receiver,
            last_seq,
        }
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.sequencer.lock().expect("bus lock").next_seq
    }
}

/// Why a subscriber missed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagReason {
    /// It read too slowly and the buffer moved on.
    Slow,
    /// It resumed from a point the ring no longer holds.
    Resume,
}

/// The notice a subscriber gets for `missed` events it will never see;
/// `seq` is the last one it did see.
fn lagged_event(seq: u64, missed: u64, reason: LagReason) -> Event {
    Event {
        seq,
        ts: 0,
        kind: "lagged",
        channel: Channel::System,
        bot_id: None,
        data: serde_json::json!({ "missed": missed, "reason": reason }),
    }
}

impl Subscription {
    /// The next matching event, in sequence order. A subscriber that fell
    /// too far behind gets a `system` `lagged` event saying how many it missed.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        if let Some(notice) = self.notice.take() {
            return Some(notice);
        }
        loop {
            let event = match self.backlog.pop_front() {
                Some(event) => event,
                None => match self.receiver.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(Arc::new(lagged_event(
                            self.last_seq,
                            missed,
                            LagReason::Slow,
                        )));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if event.seq <= self.last_seq {
                continue; // already delivered from the backlog
            }
            self.last_seq = event.seq;
            if self.filter.matches(&event) {
                return Some(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn sequence_filters_resume_and_lag() {
        let bus = EventBus::new(100);
        let mut all = bus.subscribe(Filter::default(), None);
        let mut orders_of_a = bus.subscribe(
            Filter {
                channels: [Channel::Orders].into(),
                bot_id: Some("a".into()),
            },
            None,
        );
        bus.publish(Channel::Orders, "order.placed", Some("a"), json!({}));
        bus.publish(Channel::Orders, "order.placed", Some("b"), json!({}));
        bus.publish(Channel::Trades, "trade", Some("a"), json!({}));
        assert_eq!(all.next().await.unwrap().seq, 100);
        assert_eq!(all.next().await.unwrap().seq, 101);
        assert_eq!(all.next().await.unwrap().seq, 102);
        assert_eq!(orders_of_a.next().await.unwrap().seq, 100);

        // Resume after 100: 101 and 102 come back from the ring, then live ones.
        let mut resumed = bus.subscribe(Filter::default(), Some(100));
        bus.publish(Channel::Bots, "bot.state_changed", Some("a"), json!({}));
        let seqs = [
            resumed.next().await.unwrap().seq,
            resumed.next().await.unwrap().seq,
            resumed.next().await.unwrap().seq,
        ];
        assert_eq!(seqs, [101, 102, 103]);

        // A subscriber that never reads is told it lagged; publishing never blocked.
        let mut slow = bus.subscribe(Filter::default(), None);
        for _ in 0..SUBSCRIBER_BUFFER + 10 {
            bus.publish(Channel::Logs, "log", None, json!({}));
        }
        let first = slow.next().await.unwrap();
        assert_eq!(first.kind, "lagged");
        assert!(first.data["missed"].as_u64().unwrap() >= 10);

        // Resuming from a point the ring has forgotten starts with a notice.
        for _ in 0..RING_CAPACITY {
            bus.publish(Channel::Logs, "log", None, json!({}));
        }
        let mut late = bus.subscribe(Filter::default(), Some(100));
        let notice = late.next().await.unwrap();
        assert_eq!(notice.kind, "lagged");
        assert!(notice.data["missed"].as_u64().unwrap() > 4_000);
        assert!(late.next().await.unwrap().seq > 100);
    }

    #[test]
    fn reservations_keep_numbers_rising_across_a_restart() {
        let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let reserve = |stored: &Arc<std::sync::atomic::AtomicU64>| -> Reserve {
            let stored = stored.clone();
            Box::new(move |bound| stored.store(bound, std::sync::atomic::Ordering::SeqCst))
        };
        let bus = EventBus::with_reservations(1, 10, reserve(&stored));
        let mut last = 0;
        for _ in 0..25 {
            last = bus.publish(Channel::Logs, "log", None, json!({}));
        }
        assert_eq!(last, 25);
        let bound = stored.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(bound, 31, "reserved in blocks of ten");
        // A crash now: the next process starts at the stored bound.
        let next = EventBus::with_reservations(bound, 10, reserve(&stored));
        assert!(next.publish(Channel::Logs, "log", None, json!({})) > last);
    }
}
