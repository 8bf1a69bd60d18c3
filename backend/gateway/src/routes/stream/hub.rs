//! Fans each event out to the open streams of its owner. Delivery never
//! waits: a stream whose buffer is full is dropped and told why, so one slow
//! client cannot hold up the others or grow memory without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use contract::internal::PublishedEvent;
use tokio::sync::{mpsc, oneshot};

/// How long a revoked key is remembered, so that a stream authenticated just
/// before its revocation was announced cannot subscribe just after. Longer
/// than the key cache's TTL, the longest a revoked key can still pass.
const REVOKED_MEMORY: Duration = Duration::from_secs(60);
const REVOKED_PRUNE_AT: usize = 1024;

/// Why the hub ended a stream; the stream turns it into a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its buffer filled: the client did not keep up.
    TooSlow,
    /// The API key it was opened with was revoked.
    KeyRevoked,
    /// The event source was interrupted; the client should reconnect.
    Restart,
}

struct Subscriber {
    id: u64,
    key_id: Option<String>,
    tx: mpsc::Sender<Arc<PublishedEvent>>,
    end: oneshot::Sender<Ended>,
}

impl Subscriber {
    fn end(self, why: Ended) {
        let _ = self.end.send(why);
    }
}

#[derive(Default)]
struct Subscribers {
    by_owner: HashMap<String, Vec<Subscriber>>,
    revoked: HashMap<String, Instant>,
}

pub struct Hub {
    capacity: usize,
    next_id: AtomicU64,
    subscribers: Mutex<Subscribers>,
    /// False while the Redis subscription is down: a stream opened then would
    /// miss events without knowing.
    live: AtomicBool,
}

/// One stream's end of the hub; dropping it unsubscribes.
pub struct Subscription {
    pub events: mpsc::Receiver<Arc<PublishedEvent>>,
    /// Resolves when the hub ends this stream, with the reason.
    pub ended: oneshot::Receiver<Ended>,
    owner: String,
    id: u64,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.hub.subscribers();
        if let Some(list) = subscribers.by_owner.get_mut(&self.owner) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subscribers.by_owner.remove(&self.owner);
            }
        }
        metrics::gauge!("gateway_stream_connections").decrement(1.0);
    }
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_id: AtomicU64::new(0),
            subscribers: Mutex::new(Subscribers::default()),
            live: AtomicBool::new(false),
        }
    }

    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
    }

    /// Subscribes a stream of `owner`'s events opened with `key_id`; `None`
    /// when that key was revoked moments ago.
    pub fn subscribe(self: &Arc<Self>, owner: &str, key_id: Option<&str>) -> Option<Subscription> {
        let (tx, events) = mpsc::channel(self.capacity);
        let (end, ended) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = self.subscribers();
        let revoked = key_id
            .and_then(|key_id| subscribers.revoked.get(key_id))
            .is_some_and(|at| at.elapsed() < REVOKED_MEMORY);
        if revoked {
            return None;
        }
        subscribers
            .by_owner
            .entry(owner.to_owned())
            .or_default()
            .push(Subscriber {
                id,
                key_id: key_id.map(str::to_owned),
                tx,
                end,
            });
        metrics::gauge!("gateway_stream_connections").increment(1.0);
        Some(Subscription {
            events,
            ended,
            owner: owner.to_owned(),
            id,
            hub: self.clone(),
        })
    }

    pub fn publish(&self, event: PublishedEvent) {
        let event = Arc::new(event);
        let mut subscribers = self.subscribers();
        let Some(list) = subscribers.by_owner.get_mut(&event.owner_id) else {
            return;
        };
        let mut slow = Vec::new();
        let mut kept = Vec::with_capacity(list.len());
        for subscriber in list.drain(..) {
            match subscriber.tx.try_send(event.clone()) {
                Ok(()) => kept.push(subscriber),
                Err(mpsc::error::TrySendError::Full(_)) => slow.push(subscriber),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        *list = kept;
        for subscriber in slow {
            metrics::counter!("gateway_stream_slow_consumers_total").increment(1);
            subscriber.end(Ended::TooSlow);
        }
    }

    /// Ends every stream opened with `key_id`, and refuses new ones for a
    /// while.
    pub fn revoke_key(&self, key_id: &str) {
        let mut subscribers = self.subscribers();
        if subscribers.revoked.len() >= REVOKED_PRUNE_AT {
            subscribers.revoked.retain(|_, at| at.elapsed() < REVOKED_MEMORY);
        }
        subscribers.revoked.insert(key_id.to_owned(), Instant::now());
        let mut ended = 0;
        for list in subscribers.by_owner.values_mut() {
            let (revoked, kept): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|s| s.key_id.as_deref() == Some(key_id));
            *list = kept;
            for subscriber in revoked {
                subscriber.end(Ended::KeyRevoked);
                ended += 1;
            }
        }
        subscribers.by_owner.retain(|_, list| !list.is_empty());
        if ended > 0 {
            metrics::counter!("gateway_streams_closed_revoked_total").increment(ended);
        }
    }

    /// Ends every stream: their clients reconnect and fill the gap.
    pub fn disconnect_all(&self) {
        let mut subscribers = self.subscribers();
        for subscriber in subscribers.by_owner.drain().flat_map(|(_, list)| list) {
            subscriber.end(Ended::Restart);
        }
    }
}

#[cfg(test)]
mod tests {
    use contract::events::{Event, EventData, EventType};

    use super::*;

    fn published(owner: &str, sequence: i64) -> PublishedEvent {
        PublishedEvent {
            owner_id: owner.into(),
            resend: false,
            event: Event {
                id: format!("evt_{sequence}"),
                object: "event".into(),
                kind: EventType::PaymentCreated,
                sequence,
                created_at: chrono::Utc::now(),
                data: EventData {
                    object: serde_json::json!({}),
                },
            },
        }
    }

    #[test]
    fn revocation_ends_only_that_keys_streams_and_bars_it_for_a_while() {
        let hub = Arc::new(Hub::new(4));
        let mut a = hub.subscribe("usr_1", Some("key_a")).expect("subscribed");
        let mut b = hub.subscribe("usr_1", Some("key_b")).expect("subscribed");
        hub.revoke_key("key_a");
        assert_eq!(a.ended.try_recv(), Ok(Ended::KeyRevoked));
        assert!(b.ended.try_recv().is_err(), "another key's stream goes on");
        hub.publish(published("usr_1", 1));
        assert!(b.events.try_recv().is_ok());
        assert!(hub.subscribe("usr_1", Some("key_a")).is_none());
    }

    #[test]
    fn a_full_buffer_ends_the_stream_as_too_slow() {
        let hub = Arc::new(Hub::new(1));
        let mut slow = hub.subscribe("usr_1", None).expect("subscribed");
        hub.publish(published("usr_1", 1));
        hub.publish(published("usr_1", 2));
        assert_eq!(slow.ended.try_recv(), Ok(Ended::TooSlow));
        hub.disconnect_all();
        let mut other = hub.subscribe("usr_1", None).expect("subscribed");
        hub.disconnect_all();
        assert_eq!(other.ended.try_recv(), Ok(Ended::Restart));
    }
}
