//! The event bus: one envelope, a global sequence number assigned at
//! publication, a ring of recent events for resuming, and a bounded
//! broadcast so a slow subscriber is told it lagged instead of blocking
//! anyone.
//!
//! Sequence numbers come from clients too (resume points): every
//! arithmetic on them is checked, and the bus lock is never held across
//! code that could panic on what a client sent. Should a panic poison it
//! anyway, the bus carries on with the state inside (nothing in it is left
//! half-written: a number is taken and an event pushed, or neither).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::broadcast;

use super::event::{Channel, EventData, LagReason};

/// Events kept for subscribers resuming from a sequence number.
pub const RING_CAPACITY: usize = 10_000;
/// Events a subscriber may fall behind before it is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 4_096;

/// The envelope every event travels in.
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    /// Wall time of publication, epoch ms.
    pub ts: i64,
    pub bot_id: Option<Arc<str>>,
    pub data: EventData,
    /// The event as clients receive it, encoded once by whoever sends it
    /// first (the API) and shared by every other connection.
    encoded: OnceLock<Arc<str>>,
}

impl Event {
    pub fn new(seq: u64, ts: i64, bot_id: Option<Arc<str>>, data: EventData) -> Self {
        Self {
            seq,
            ts,
            bot_id,
            data,
            encoded: OnceLock::new(),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.data.kind()
    }

    pub fn channel(&self) -> Channel {
        self.data.channel()
    }

    /// The encoded form, made by `encode` the first time it is asked for.
    pub fn encoded(&self, encode: impl FnOnce(&Event) -> String) -> Arc<str> {
        self.encoded.get_or_init(|| encode(self).into()).clone()
    }

    /// Whether this is a notice to its subscriber alone (a lag), not a
    /// published event.
    pub fn is_notice(&self) -> bool {
        matches!(
            self.data,
            EventData::Lagged {
                reason: LagReason::Slow | LagReason::Resume,
                ..
            }
        )
    }
}

struct Sequencer {
    next_seq: u64,
    ring: VecDeque<Arc<Event>>,
    /// Numbers below this are reserved (the bound is stored, or on its way
    /// to the store; see [`EventBus::with_reservations`]).
    reserved_until: u64,
}

/// Records durably that every sequence number below its argument may be
/// in use, or queues that record; false when it could do neither now (the
/// bus asks again at its next event). Called under the bus's lock: it must
/// neither block nor publish (no logging).
pub type Reserve = Box<dyn Fn(u64) -> bool + Send + Sync>;

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

/// Which events a subscriber wants: the one filter of the WebSocket, SSE
/// and `stratbox live`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Empty = every channel.
    pub channels: BTreeSet<Channel>,
    /// Empty = every bot. Events of no bot (system events) always pass.
    pub bots: BTreeSet<String>,
}

impl Filter {
    pub fn matches(&self, event: &Event) -> bool {
        (self.channels.is_empty() || self.channels.contains(&event.channel()))
            && (self.bots.is_empty()
                || event
                    .bot_id
                    .as_ref()
                    .is_none_or(|bot| self.bots.contains(&**bot)))
    }
}

/// A resume point the bus cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("sequence number {asked} has not been reached (the last event is {last})")]
    Ahead { asked: u64, last: u64 },
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
                next_seq: first_seq.max(1),
                ring: VecDeque::with_capacity(RING_CAPACITY),
                reserved_until: first_seq.max(1),
            }),
            sender,
            reservations: None,
        }
    }

    /// A bus whose numbers keep rising across restarts. The caller has
    /// stored `first_seq + block` durably before (the first block is
    /// reserved); half a block before the bus runs out of reserved
    /// numbers, it reserves the next `block` through `reserve` (which may
    /// take the time half a block of events takes to make it durable).
    /// After a crash, start the next bus at the stored bound: numbers skip
    /// at most two blocks and never repeat.
    pub fn with_reservations(first_seq: u64, block: u64, reserve: Reserve) -> Self {
        let mut bus = Self::new(first_seq);
        let block = block.max(1);
        bus.sequencer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .reserved_until = first_seq.max(1).saturating_add(block);
        bus.reservations = Some((block, reserve));
        bus
    }

    fn sequencer(&self) -> MutexGuard<'_, Sequencer> {
        self.sequencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Publish `data` (of `bot_id`, if a bot's); its sequence number.
    pub fn publish(&self, bot_id: Option<&Arc<str>>, data: EventData) -> u64 {
        let ts = super::wall_ms();
        let mut sequencer = self.sequencer();
        let seq = sequencer.next_seq;
        // 2^64 events would take millennia; saturating keeps even that safe.
        sequencer.next_seq = seq.saturating_add(1);
        if let Some((block, reserve)) = &self.reservations
            && seq.saturating_add(block / 2) >= sequencer.reserved_until
        {
            let next = sequencer.reserved_until.max(seq).saturating_add(*block);
            if reserve(next) {
                sequencer.reserved_until = next;
            }
        }
        let event = Arc::new(Event::new(seq, ts, bot_id.cloned(), data));
        if sequencer.ring.len() == RING_CAPACITY {
            sequencer.ring.pop_front();
        }
        sequencer.ring.push_back(event.clone());
        // No receiver is not an error: nobody is listening yet.
        let _ = self.sender.send(event);
        seq
    }

    /// Subscribe; with `after`, first replay the kept events with a greater
    /// sequence number. A point beyond the last event is refused.
    pub fn subscribe(
        &self,
        filter: Filter,
        after: Option<u64>,
    ) -> Result<Subscription, ResumeError> {
        let sequencer = self.sequencer();
        let last = sequencer.next_seq.saturating_sub(1);
        if let Some(asked) = after
            && asked > last
        {
            return Err(ResumeError::Ahead { asked, last });
        }
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
        let last_seq = after.unwrap_or(last);
        let oldest = sequencer.ring.front().map_or(sequencer.next_seq, |e| e.seq);
        // `after < last` here, so `after + 1` cannot overflow.
        let notice = after
            .filter(|&after| after + 1 < oldest)
            .map(|after| Arc::new(lagged(after, oldest - after - 1, LagReason::Resume)));
        Ok(Subscription {
            notice,
            filter,
            backlog,
            receiver,
            last_seq,
        })
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.sequencer().next_seq
    }
}

/// The notice a subscriber gets for `missed` events it will never see;
/// `seq` is the last one it did see.
fn lagged(seq: u64, missed: u64, reason: LagReason) -> Event {
    Event::new(
        seq,
        super::wall_ms(),
        None,
        EventData::Lagged { missed, reason },
    )
}

impl Subscription {
    /// The next matching event, in sequence order. A subscriber that fell
    /// too far behind gets a `system` `lagged` notice saying how many it
    /// missed (it should then resubscribe).
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
                        return Some(Arc::new(lagged(self.last_seq, missed, LagReason::Slow)));
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

    /// The sequence number of the last event this subscription went past.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted() -> EventData {
        EventData::BotDeleted
    }

    fn log() -> EventData {
        EventData::Log(Box::default())
    }

    fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn sequence_filters_resume_and_lag() {
        let bus = EventBus::new(100);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut all = bus.subscribe(Filter::default(), None).unwrap();
        let mut logs_of_a = bus
            .subscribe(
                Filter {
                    channels: [Channel::Logs].into(),
                    bots: ["a".to_string()].into(),
                },
                None,
            )
            .unwrap();
        bus.publish(Some(&a), log());
        bus.publish(Some(&b), log());
        bus.publish(Some(&a), deleted());
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(all.next().await.unwrap());
        }
        assert_eq!(seqs(&got), [100, 101, 102]);
        assert_eq!(logs_of_a.next().await.unwrap().seq, 100);

        // Resume after 100: exactly 101 and 102 come back from the ring,
        // then the live ones.
        let mut resumed = bus.subscribe(Filter::default(), Some(100)).unwrap();
        bus.publish(Some(&a), deleted());
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(resumed.next().await.unwrap());
        }
        assert_eq!(seqs(&got), [101, 102, 103]);

        // A subscriber that never reads is told it lagged; publishing never blocked.
        let mut slow = bus.subscribe(Filter::default(), None).unwrap();
        for _ in 0..SUBSCRIBER_BUFFER + 10 {
            bus.publish(None, log());
        }
        let first = slow.next().await.unwrap();
        assert!(first.is_notice());
        assert!(
            matches!(first.data, EventData::Lagged { missed, reason: LagReason::Slow } if missed >= 10)
        );

        // Resuming from a point the ring has forgotten starts with a notice.
        for _ in 0..RING_CAPACITY {
            bus.publish(None, log());
        }
        let mut late = bus.subscribe(Filter::default(), Some(100)).unwrap();
        let notice = late.next().await.unwrap();
        assert!(
            matches!(notice.data, EventData::Lagged { missed, reason: LagReason::Resume } if missed > 4_000)
        );
        assert!(late.next().await.unwrap().seq > 100);
    }

    #[tokio::test]
    async fn resume_points_from_clients_cannot_break_the_bus() {
        let bus = EventBus::new(1);
        for _ in 0..5 {
            bus.publish(None, log());
        }
        for asked in [6, 1_000, u64::MAX] {
            assert_eq!(
                bus.subscribe(Filter::default(), Some(asked)).err(),
                Some(ResumeError::Ahead { asked, last: 5 })
            );
        }
        // The bus still works, and resuming at the last event waits for the next.
        let mut at_end = bus.subscribe(Filter::default(), Some(5)).unwrap();
        assert_eq!(bus.publish(None, log()), 6);
        assert_eq!(at_end.next().await.unwrap().seq, 6);
        let mut from_zero = bus.subscribe(Filter::default(), Some(0)).unwrap();
        assert_eq!(from_zero.next().await.unwrap().seq, 1);
    }

    #[test]
    fn reservations_keep_numbers_rising_across_a_restart() {
        let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let reserve = |stored: &Arc<std::sync::atomic::AtomicU64>| -> Reserve {
            let stored = stored.clone();
            Box::new(move |bound| {
                stored.store(bound, std::sync::atomic::Ordering::SeqCst);
                true
            })
        };
        let start = |stored: &Arc<std::sync::atomic::AtomicU64>| {
            // As the host starts a bus: the first block stored before.
            let first = stored.load(std::sync::atomic::Ordering::SeqCst).max(1);
            stored.store(first + 10, std::sync::atomic::Ordering::SeqCst);
            EventBus::with_reservations(first, 10, reserve(stored))
        };
        let bus = start(&stored);
        let mut last = 0;
        for _ in 0..25 {
            last = bus.publish(None, log());
        }
        assert_eq!(last, 25);
        let bound = stored.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(bound, 31, "reserved in blocks of ten, half a block ahead");
        // A crash now: the next process starts at the stored bound.
        let next = start(&stored);
        let first = next.publish(None, log());
        assert!(first > last);
        // And a crash right after its first events: nothing is used twice.
        let after = start(&stored);
        assert!(after.publish(None, log()) > first);
        // A reservation that cannot be queued is asked for again.
        let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = asked.clone();
        let refusing = EventBus::with_reservations(
            1,
            10,
            Box::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                false
            }),
        );
        for _ in 0..8 {
            refusing.publish(None, log());
        }
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "at 6, 7 and 8"
        );
    }
}
