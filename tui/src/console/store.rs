//! The event store: a compact row for every event kept (100,000 by default)
//! and the full bodies and delivery attempts of the newest ones within a byte
//! budget. Rows are addressed by an absolute sequence number that never
//! repeats, so a selection survives older rows being dropped.

use std::collections::{HashMap, VecDeque};

use contract::events::{Event, EventType};

/// How many rows are kept before the oldest is dropped.
pub const DEFAULT_ROW_CAPACITY: usize = 100_000;
/// How many bytes of bodies and attempts are kept before the oldest go.
pub const DEFAULT_BODY_BUDGET: usize = 24 * 1024 * 1024;
/// How much of a local server's answer an attempt keeps.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

/// What became of forwarding one event, as its row shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No forward target is set.
    NotForwarded,
    /// Forwarding is paused; it goes out when resumed.
    Held,
    Sending,
    Answered {
        status: u16,
        latency_ms: u32,
    },
    /// The local server could not be reached or timed out.
    Failed {
        latency_ms: u32,
    },
}

/// One line of the events table; small on purpose, 100,000 of them are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub seq: u64,
    pub id: Box<str>,
    pub kind: EventType,
    /// The event's creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The id of the object the event is about (`pay_...`).
    pub object_id: Box<str>,
    pub resend: bool,
    pub delivery: Delivery,
}

/// One try at delivering an event to the forward target.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub at_ms: i64,
    pub url: String,
    /// `None` when no answer came (connection refused, timeout).
    pub status: Option<u16>,
    pub latency_ms: u32,
    /// The first kilobyte of the answer, or the error.
    pub response: String,
    /// The request headers sent, signature included.
    pub headers: Vec<(String, String)>,
    /// True for a replay (`r` or `e`) rather than the live forward.
    pub replay: bool,
}

impl Attempt {
    pub fn delivery(&self) -> Delivery {
        match self.status {
            Some(status) => Delivery::Answered {
                status,
                latency_ms: self.latency_ms,
            },
            None => Delivery::Failed {
                latency_ms: self.latency_ms,
            },
        }
    }

    fn bytes(&self) -> usize {
        self.url.len()
            + self.response.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>()
            + 64
    }
}

/// The full record of an event: its JSON as received and every attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBody {
    pub raw: String,
    pub attempts: Vec<Attempt>,
}

impl EventBody {
    fn bytes(&self) -> usize {
        self.raw.len() + self.attempts.iter().map(Attempt::bytes).sum::<usize>() + 64
    }
}

#[derive(Debug, Clone)]
pub struct EventStore {
    rows: VecDeque<EventRow>,
    next_seq: u64,
    row_capacity: usize,
    bodies: HashMap<u64, EventBody>,
    body_order: VecDeque<u64>,
    body_bytes: usize,
    body_budget: usize,
    /// Rows dropped because the store was full.
    pub dropped: u64,
}

impl Default for EventStore {
    fn default() -> Self {
        Self::new(DEFAULT_ROW_CAPACITY, DEFAULT_BODY_BUDGET)
    }
}

impl EventStore {
    pub fn new(row_capacity: usize, body_budget: usize) -> Self {
        Self {
            rows: VecDeque::with_capacity(row_capacity.min(4096)),
            next_seq: 0,
            row_capacity: row_capacity.max(1),
            bodies: HashMap::new(),
            body_order: VecDeque::new(),
            body_bytes: 0,
            body_budget,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The sequence number of the oldest row kept.
    pub fn first_seq(&self) -> u64 {
        self.rows.front().map_or(self.next_seq, |r| r.seq)
    }

    /// Adds an event, dropping the oldest row when full; returns its sequence number.
    pub fn push(&mut self, event: &Event, raw: String, resend: bool, delivery: Delivery) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let object_id = event
            .data
            .object
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        self.rows.push_back(EventRow {
            seq,
            id: event.id.as_str().into(),
            kind: event.kind,
            created_ms: event.created_at.timestamp_millis(),
            object_id: object_id.into(),
            resend,
            delivery,
        });
        if self.rows.len() > self.row_capacity
            && let Some(old) = self.rows.pop_front()
        {
            self.dropped += 1;
            self.forget_body(old.seq);
        }
        let body = EventBody {
            raw,
            attempts: Vec::new(),
        };
        self.body_bytes += body.bytes();
        self.bodies.insert(seq, body);
        self.body_order.push_back(seq);
        self.trim_bodies();
        seq
    }

    fn forget_body(&mut self, seq: u64) {
        if let Some(body) = self.bodies.remove(&seq) {
            self.body_bytes -= body.bytes();
        }
    }

    fn trim_bodies(&mut self) {
        while self.body_bytes > self.body_budget && self.body_order.len() > 1 {
            if let Some(seq) = self.body_order.pop_front() {
                self.forget_body(seq);
            }
        }
        // Sequence numbers of rows already gone may linger at the front.
        while let Some(&seq) = self.body_order.front() {
            if self.bodies.contains_key(&seq) {
                break;
            }
            self.body_order.pop_front();
        }
    }

    /// The row with this sequence number, if still kept.
    pub fn get(&self, seq: u64) -> Option<&EventRow> {
        let first = self.first_seq();
        if seq < first {
            return None;
        }
        self.rows.get(usize::try_from(seq - first).ok()?)
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut EventRow> {
        let first = self.first_seq();
        if seq < first {
            return None;
        }
        self.rows.get_mut(usize::try_from(seq - first).ok()?)
    }

    /// The row at `index` counted from the oldest kept.
    pub fn at(&self, index: usize) -> Option<&EventRow> {
        self.rows.get(index)
    }

    pub fn body(&self, seq: u64) -> Option<&EventBody> {
        self.bodies.get(&seq)
    }

    /// The newest row for an event id; deliveries concern recent events, so
    /// the search runs from the newest end.
    pub fn find(&self, id: &str) -> Option<u64> {
        self.rows.iter().rev().find(|r| &*r.id == id).map(|r| r.seq)
    }

    /// Records an attempt; a live forward (not a replay) also sets the row's result.
    pub fn add_attempt(&mut self, seq: u64, mut attempt: Attempt) {
        if attempt.response.len() > RESPONSE_BODY_LIMIT {
            let mut cut = RESPONSE_BODY_LIMIT;
            while !attempt.response.is_char_boundary(cut) {
                cut -= 1;
            }
            attempt.response.truncate(cut);
        }
        let delivery = attempt.delivery();
        if let Some(row) = self.get_mut(seq) {
            row.delivery = delivery;
        }
        if let Some(body) = self.bodies.get_mut(&seq) {
            self.body_bytes += attempt.bytes();
            body.attempts.push(attempt);
            self.trim_bodies();
        }
    }

    /// Rows oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &EventRow> + ExactSizeIterator {
        self.rows.iter()
    }

    /// Rough bytes held, for the benchmark's report.
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use contract::events::EventData;

    use super::*;

    fn event(n: u64) -> Event {
        Event {
            id: format!("evt_{n:08}"),
            object: "event".into(),
            kind: EventType::PaymentCreated,
            sequence: n as i64,
            created_at: Utc.timestamp_opt(1_700_000_000, 0).single().expect("time"),
            data: EventData {
                object: serde_json::json!({"id": format!("pay_{n}")}),
            },
        }
    }

    #[test]
    fn drops_the_oldest_rows_and_counts_them() {
        let mut store = EventStore::new(3, 1 << 20);
        for n in 0..5 {
            store.push(&event(n), "{}".into(), false, Delivery::NotForwarded);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.dropped, 2);
        assert_eq!(store.first_seq(), 2);
        assert!(store.get(1).is_none());
        assert_eq!(store.get(4).map(|r| &*r.id), Some("evt_00000004"));
        assert!(store.body(1).is_none());
        assert_eq!(store.find("evt_00000003"), Some(3));
        assert_eq!(store.get(2).map(|r| &*r.object_id), Some("pay_2"));
    }

    #[test]
    fn bodies_stay_within_their_budget() {
        let mut store = EventStore::new(1000, 2000);
        for n in 0..100 {
            store.push(&event(n), "x".repeat(100), false, Delivery::NotForwarded);
        }
        assert_eq!(store.len(), 100);
        assert!(store.body_bytes() <= 2000, "{}", store.body_bytes());
        assert!(store.body(99).is_some());
        assert!(store.body(0).is_none());
    }

    #[test]
    fn attempts_keep_a_kilobyte_and_set_the_row() {
        let mut store = EventStore::default();
        let seq = store.push(&event(1), "{}".into(), false, Delivery::Sending);
        store.add_attempt(
            seq,
            Attempt {
                at_ms: 0,
                url: "http://localhost:4242".into(),
                status: Some(200),
                latency_ms: 12,
                response: "é".repeat(1000),
                headers: vec![],
                replay: false,
            },
        );
        let body = store.body(seq).expect("body");
        assert!(body.attempts[0].response.len() <= RESPONSE_BODY_LIMIT);
        assert_eq!(
            store.get(seq).map(|r| r.delivery),
            Some(Delivery::Answered {
                status: 200,
                latency_ms: 12
            })
        );
    }
}
