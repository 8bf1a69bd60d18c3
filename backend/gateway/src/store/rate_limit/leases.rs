//! This replica's share of each key's window budget: slices leased from the
//! shared count in Redis and spent here, request by request, without asking
//! Redis again until the slice is gone.
//!
//! Bounded: once `capacity` keys hold a lease in the current window, a new
//! key gets no lease and is counted in Redis request by request instead, so
//! a flood of new keys costs neither unbounded memory nor the leases (and
//! budgets) of the keys already here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most one lease may take, whatever the budget: what one replica can
/// leave unused, and forfeit, at the end of a window.
pub(super) const MAX_SLICE: u64 = 1024;

/// A slice spent within this long is followed by one twice its size; one
/// that lasted longer by one half its size. A key that sends one request now
/// and then leases one at a time, so its slices stay small and nothing is
/// held back from other replicas; a busy key quickly leases large slices
/// and asks Redis rarely.
const GROW_WITHIN: Duration = Duration::from_secs(1);

/// What `take` decided.
#[derive(Debug)]
pub(super) enum Take {
    /// Decided from what this replica holds: admitted from its slice, or
    /// refused because the window's budget is all leased.
    Decided { allowed: bool, remaining: u64 },
    /// The slice is spent: lease another while holding this lock, which
    /// makes concurrent requests for the key wait for one lease instead of
    /// each taking its own.
    Refill(Arc<tokio::sync::Mutex<()>>),
    /// The table is full of this window's leases: count in Redis directly.
    Full,
}

#[derive(Debug)]
struct Lease {
    window: u64,
    /// Requests this replica may still admit in `window`.
    left: u64,
    /// The key's count in Redis after this replica's last lease: every
    /// replica's leases, this one's unspent slice included.
    counted: u64,
    /// The last lease found the window's budget all leased: the count only
    /// grows within a window, so every request is refused until it ends.
    spent: bool,
    /// What the last lease asked for.
    slice: u64,
    leased_at: Instant,
    refill: Arc<tokio::sync::Mutex<()>>,
}

impl Lease {
    fn new(window: u64) -> Self {
        Self {
            window,
            left: 0,
            counted: 0,
            spent: false,
            slice: 0,
            leased_at: Instant::now(),
            refill: Arc::default(),
        }
    }

    /// A new window forfeits what is left of the last one's slice.
    fn roll_to(&mut self, window: u64) {
        if self.window != window {
            self.window = window;
            self.left = 0;
            self.counted = 0;
            self.spent = false;
        }
    }

    /// What this replica can tell about the budget: what no replica has
    /// leased, plus its own unspent slice. Exact while it is the only
    /// replica; with others, it may be more than is left by what they leased
    /// since this replica's last lease, never less.
    fn remaining(&self, limit: u64) -> u64 {
        limit.saturating_sub(self.counted) + self.left
    }
}

#[derive(Debug)]
struct Table {
    entries: HashMap<Box<str>, Lease>,
    /// The window the table was last cleared of older windows' leases in,
    /// so that a full table is scanned at most once a window.
    purged_in: u64,
}

#[derive(Debug)]
pub(super) struct Leases {
    capacity: usize,
    table: Mutex<Table>,
}

impl Leases {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            table: Mutex::new(Table {
                entries: HashMap::new(),
                purged_in: 0,
            }),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // Every change to a lease is complete before the lock is released,
        // so a panic elsewhere leaves a table that is still valid.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spends one request of `subject`'s slice in `window`, if it has one.
    pub(super) fn take(&self, subject: &str, window: u64, limit: u64) -> Take {
        let mut table = self.table();
        if let Some(lease) = table.entries.get_mut(subject) {
            lease.roll_to(window);
            if lease.left > 0 {
                lease.left -= 1;
                return Take::Decided {
                    allowed: true,
                    remaining: lease.remaining(limit),
                };
            }
            if lease.spent {
                return Take::Decided {
                    allowed: false,
                    remaining: 0,
                };
            }
            return Take::Refill(lease.refill.clone());
        }
        if table.entries.len() >= self.capacity && table.purged_in != window {
            table.entries.retain(|_, lease| lease.window >= window);
            table.purged_in = window;
        }
        if table.entries.len() >= self.capacity {
            return Take::Full;
        }
        let lease = Lease::new(window);
        let refill = lease.refill.clone();
        table.entries.insert(subject.into(), lease);
        Take::Refill(refill)
    }

    /// How much the next lease of `subject` asks for.
    pub(super) fn slice_to_ask(&self, subject: &str) -> u64 {
        let table = self.table();
        match table.entries.get(subject) {
            None => 1,
            Some(lease) if lease.slice == 0 => 1,
            Some(lease) if lease.leased_at.elapsed() < GROW_WITHIN => (lease.slice * 2).min(MAX_SLICE),
            Some(lease) => (lease.slice / 2).max(1),
        }
    }

    /// Records a lease of `granted` requests of `subject`'s budget in
    /// `window`, after which the key's count in Redis was `counted`, and
    /// spends one of them on the request that asked. A lease the table
    /// cannot keep (its key was dropped, or the window moved on meanwhile)
    /// serves that one request and forfeits the rest.
    pub(super) fn leased(
        &self,
        subject: &str,
        window: u64,
        limit: u64,
        asked: u64,
        granted: u64,
        counted: u64,
    ) -> (bool, u64) {
        let mut table = self.table();
        let kept = table
            .entries
            .get_mut(subject)
            .filter(|lease| lease.window == window);
        let Some(lease) = kept else {
            return match granted {
                0 => (false, 0),
                _ => (true, limit.saturating_sub(counted)),
            };
        };
        lease.counted = lease.counted.max(counted);
        lease.slice = asked;
        lease.leased_at = Instant::now();
        if granted == 0 {
            lease.spent = true;
            if lease.left == 0 {
                return (false, 0);
            }
            // A lease taken at the same time as this one still has some.
            lease.left -= 1;
            return (true, lease.remaining(limit));
        }
        lease.left += granted - 1;
        (true, lease.remaining(limit))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(take: Take) -> (bool, u64) {
        match take {
            Take::Decided { allowed, remaining } => (allowed, remaining),
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    #[test]
    fn a_slice_is_spent_request_by_request_then_leased_again() {
        let leases = Leases::new(10);
        assert!(matches!(leases.take("key:a", 7, 100), Take::Refill(_)));
        assert_eq!(leases.slice_to_ask("key:a"), 1);
        assert_eq!(leases.leased("key:a", 7, 100, 4, 4, 4), (true, 99));
        assert_eq!(decided(leases.take("key:a", 7, 100)), (true, 98));
        assert_eq!(decided(leases.take("key:a", 7, 100)), (true, 97));
        assert_eq!(decided(leases.take("key:a", 7, 100)), (true, 96));
        assert!(matches!(leases.take("key:a", 7, 100), Take::Refill(_)));
        // Spent within a second: the next slice is twice as large.
        assert_eq!(leases.slice_to_ask("key:a"), 8);
    }

    #[test]
    fn a_spent_budget_is_refused_without_asking_until_the_window_ends() {
        let leases = Leases::new(10);
        assert!(matches!(leases.take("key:a", 7, 3), Take::Refill(_)));
        assert_eq!(leases.leased("key:a", 7, 3, 1, 0, 3), (false, 0));
        assert_eq!(decided(leases.take("key:a", 7, 3)), (false, 0));
        assert!(
            matches!(leases.take("key:a", 8, 3), Take::Refill(_)),
            "a new window asks again"
        );
    }

    #[test]
    fn a_new_window_forfeits_the_old_slice() {
        let leases = Leases::new(10);
        leases.take("key:a", 7, 100);
        assert_eq!(leases.leased("key:a", 7, 100, 50, 50, 50), (true, 99));
        assert!(matches!(leases.take("key:a", 8, 100), Take::Refill(_)));
        // A lease that comes back after the window moved serves its request only.
        assert_eq!(leases.leased("key:a", 7, 100, 50, 50, 100), (true, 0));
        assert!(matches!(leases.take("key:a", 8, 100), Take::Refill(_)));
    }

    #[test]
    fn another_replicas_leases_show_in_what_remains() {
        let leases = Leases::new(10);
        leases.take("key:a", 7, 100);
        // Another replica leased 30 before this one's 10.
        assert_eq!(leases.leased("key:a", 7, 100, 10, 10, 40), (true, 69));
        assert_eq!(decided(leases.take("key:a", 7, 100)), (true, 68));
    }

    #[test]
    fn the_table_is_bounded_and_full_of_this_window_it_leases_no_more() {
        let leases = Leases::new(3);
        for key in ["a", "b", "c"] {
            assert!(matches!(leases.take(key, 7, 100), Take::Refill(_)));
        }
        let huge = "\u{0}\u{ffff}".repeat(100_000);
        assert!(matches!(leases.take(&huge, 7, 100), Take::Full));
        assert!(matches!(leases.take("d", 7, 100), Take::Full));
        assert_eq!(leases.len(), 3);
        // The keys already here keep their leases.
        assert!(matches!(leases.take("a", 7, 100), Take::Refill(_)));
        // A new window makes room by dropping the old window's leases.
        leases.take("a", 8, 100);
        assert!(matches!(leases.take("d", 8, 100), Take::Refill(_)));
        assert_eq!(leases.len(), 2);
    }

    #[test]
    fn slices_shrink_when_they_last() {
        let leases = Leases::new(10);
        leases.take("key:a", 7, 10_000);
        leases.leased("key:a", 7, 10_000, 64, 64, 64);
        if let Some(lease) = leases.table().entries.get_mut("key:a")
            && let Some(earlier) = lease.leased_at.checked_sub(GROW_WITHIN)
        {
            lease.leased_at = earlier;
        }
        assert_eq!(leases.slice_to_ask("key:a"), 32);
    }
}
