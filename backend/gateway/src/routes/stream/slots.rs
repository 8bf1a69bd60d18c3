//! How many streams each API key holds. A slot is taken before the upgrade
//! and given back by `Drop`, so that a stream ending in any way (closed,
//! failed, upgrade never completed, task cancelled) frees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
pub struct StreamSlots {
    max_per_key: u32,
    held: Mutex<HashMap<String, u32>>,
}

/// One open stream's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    key_id: String,
}

impl StreamSlots {
    pub fn new(max_per_key: u32) -> Self {
        Self {
            max_per_key,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for `key_id`, or `None` when it already holds the maximum.
    pub fn try_acquire(self: &Arc<Self>, key_id: &str) -> Option<StreamSlot> {
        let mut held = self.held();
        let count = held.entry(key_id.to_owned()).or_insert(0);
        if *count >= self.max_per_key {
            if *count == 0 {
                held.remove(key_id);
            }
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: self.clone(),
            key_id: key_id.to_owned(),
        })
    }

    #[cfg(test)]
    fn holding(&self, key_id: &str) -> u32 {
        self.held().get(key_id).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held();
        if let Some(count) = held.get_mut(&self.key_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    #[test]
    fn no_more_than_the_maximum_under_contention_and_all_freed_after() {
        let slots = Arc::new(StreamSlots::new(10));
        let threads = 64;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let slots = slots.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let slot = slots.try_acquire("key_a");
                    // Hold it until every thread has tried.
                    barrier.wait();
                    slot.is_some()
                })
            })
            .collect();
        let granted = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .filter(|granted| *granted)
            .count();
        assert_eq!(granted, 10);
        assert_eq!(slots.holding("key_a"), 0);
        assert!(slots.held().is_empty(), "no entry is left behind");
    }

    #[test]
    fn keys_have_separate_slots_and_a_freed_slot_is_reusable() {
        let slots = Arc::new(StreamSlots::new(1));
        let a = slots.try_acquire("key_a").expect("first");
        assert!(slots.try_acquire("key_a").is_none());
        let _b = slots.try_acquire("key_b").expect("another key");
        drop(a);
        assert!(slots.try_acquire("key_a").is_some());
        let none = Arc::new(StreamSlots::new(0));
        assert!(none.try_acquire("key_a").is_none());
        assert!(none.held().is_empty());
    }
}
