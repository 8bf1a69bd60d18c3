//! Fans each event out to the open streams of its owner. Delivery never
//! waits: a stream whose buffer is full is dropped and told why, so one slow
//! client cannot hold up the others or grow memory without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use contract::events::PublishedEvent;
use tokio::sync::mpsc;

struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Arc<PublishedEvent>>,
    overflowed: Arc<AtomicBool>,
}

pub struct Hub {
    capacity: usize,
    next_id: AtomicU64,
    subscribers: Mutex<HashMap<String, Vec<Subscriber>>>,
    /// False while the Redis subscription is down: a stream opened then would
    /// miss events without knowing.
    live: AtomicBool,
}

/// One stream's end of the hub; dropping it unsubscribes.
pub struct Subscription {
    pub events: mpsc::Receiver<Arc<PublishedEvent>>,
    overflowed: Arc<AtomicBool>,
    owner: String,
    id: u64,
    hub: Arc<Hub>,
}

impl Subscription {
    /// True when the hub dropped this stream for not keeping up.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::SeqCst)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.hub.subscribers();
        if let Some(list) = subscribers.get_mut(&self.owner) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subscribers.remove(&self.owner);
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
            subscribers: Mutex::new(HashMap::new()),
            live: AtomicBool::new(false),
        }
    }

    fn subscribers(&self) -> MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
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

    pub fn subscribe(self: &Arc<Self>, owner: &str) -> Subscription {
        let (tx, events) = mpsc::channel(self.capacity);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let overflowed = Arc::new(AtomicBool::new(false));
        self.subscribers()
            .entry(owner.to_owned())
            .or_default()
            .push(Subscriber {
                id,
                tx,
                overflowed: overflowed.clone(),
            });
        metrics::gauge!("gateway_stream_connections").increment(1.0);
        Subscription {
            events,
            overflowed,
            owner: owner.to_owned(),
            id,
            hub: self.clone(),
        }
    }

    pub fn publish(&self, event: PublishedEvent) {
        let event = Arc::new(event);
        let mut subscribers = self.subscribers();
        let Some(list) = subscribers.get_mut(&event.owner_id) else {
            return;
        };
        list.retain(|subscriber| match subscriber.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                subscriber.overflowed.store(true, Ordering::SeqCst);
                metrics::counter!("gateway_stream_slow_consumers_total").increment(1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Ends every stream: their clients reconnect and fill the gap.
    pub fn disconnect_all(&self) {
        self.subscribers().clear();
    }
}
