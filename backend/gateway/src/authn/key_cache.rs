//! Verified API keys, held briefly so that a request does not cost a call to
//! auth. Entries are keyed by a SHA-256 of the key, never the key itself.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub key_id: Option<String>,
}

pub type KeyDigest = [u8; 32];

pub fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<KeyDigest, (Principal, Instant)>>,
    /// Bumped by every eviction, so that a verification that started before
    /// a revocation cannot put the revoked key back.
    generation: AtomicU64,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<KeyDigest, (Principal, Instant)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, digest: &KeyDigest) -> Option<Principal> {
        let mut entries = self.entries();
        match entries.get(digest) {
            Some((principal, at)) if at.elapsed() < self.ttl => Some(principal.clone()),
            Some(_) => {
                entries.remove(digest);
                None
            }
            None => None,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches a verification that began at `generation`, unless keys were
    /// evicted since.
    pub fn insert(&self, digest: KeyDigest, principal: Principal, generation: u64) {
        let mut entries = self.entries();
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (principal, Instant::now()));
    }

    /// Drops every entry of a revoked key.
    pub fn evict_key(&self, key_id: &str) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, (principal, _)| principal.key_id.as_deref() != Some(key_id));
    }

    /// Forgets everything: after a gap in the revocation broadcast, any entry
    /// may be stale.
    pub fn clear(&self) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

/// Keys auth refused, remembered briefly (by digest), so that a flood of
/// the same wrong keys reaches auth once per key instead of once per request.
/// Bounded: when full of live entries it starts over, which costs at most
/// one more call to auth per key.
#[derive(Debug)]
pub struct InvalidKeys {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<KeyDigest, Instant>>,
}

impl InvalidKeys {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<KeyDigest, Instant>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn contains(&self, digest: &KeyDigest) -> bool {
        let mut entries = self.entries();
        match entries.get(digest) {
            Some(at) if at.elapsed() < self.ttl => true,
            Some(_) => {
                entries.remove(digest);
                false
            }
            None => false,
        }
    }

    pub fn insert(&self, digest: KeyDigest) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, at| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, Instant::now());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// Verifications under way, one per key: a request that arrives with a
/// key while auth is being asked about it waits for that answer instead of
/// asking again. Without it, a burst of one unknown key from many
/// connections costs auth a lookup per connection before the first answer
/// fills either cache.
#[derive(Debug)]
pub struct InFlight<T> {
    pending: Mutex<HashMap<KeyDigest, Arc<OnceCell<T>>>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> InFlight<T> {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<KeyDigest, Arc<OnceCell<T>>>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `verify`'s answer for `digest`, shared with every caller that comes
    /// while it runs. Should the running caller go away (its client
    /// disconnected), a waiting one runs its own `verify` instead.
    pub async fn once<F, Fut>(&self, digest: KeyDigest, verify: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = self.pending().entry(digest).or_default().clone();
        let answer = cell.get_or_init(verify).await.clone();
        // Later requests find the caches filled, or, after an error, ask afresh.
        let mut pending = self.pending();
        if pending
            .get(&digest)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            pending.remove(&digest);
        }
        answer
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_verifications_of_one_key_ask_once_and_share_the_answer() {
        let in_flight = Arc::new(InFlight::<Result<String, String>>::default());
        let asked = Arc::new(AtomicU64::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (in_flight, asked, release) = (in_flight.clone(), asked.clone(), release.clone());
                tokio::spawn(async move {
                    in_flight
                        .once(digest("sk_test_same"), || async move {
                            asked.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            Err("invalid".to_owned())
                        })
                        .await
                })
            })
            .collect();
        // On the test's one thread, each yield runs every spawned caller
        // until it waits: all 50 are waiting before the answer comes.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        for caller in callers {
            assert_eq!(caller.await.expect("joined"), Err("invalid".to_owned()));
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(in_flight.len(), 0, "nothing is kept once answered");

        let again = in_flight
            .once(digest("sk_test_same"), || async { Ok("usr_1".to_owned()) })
            .await;
        assert_eq!(again, Ok("usr_1".to_owned()), "a later request asks afresh");
    }

    #[tokio::test]
    async fn verifications_of_different_keys_never_share_an_answer() {
        let in_flight = Arc::new(InFlight::<String>::default());
        let release = Arc::new(tokio::sync::Notify::new());
        let callers: Vec<_> = ["sk_test_ada", "sk_test_bob"]
            .into_iter()
            .cycle()
            .take(20)
            .map(|key| {
                let (in_flight, release) = (in_flight.clone(), release.clone());
                tokio::spawn(async move {
                    let answer = in_flight
                        .once(digest(key), || async move {
                            release.notified().await;
                            format!("owner of {key}")
                        })
                        .await;
                    (key, answer)
                })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        for caller in callers {
            let (key, answer) = caller.await.expect("joined");
            assert_eq!(answer, format!("owner of {key}"));
        }
    }

    #[tokio::test]
    async fn a_verification_abandoned_by_its_caller_is_run_by_a_waiting_one() {
        let in_flight = Arc::new(InFlight::<u32>::default());
        let started = Arc::new(tokio::sync::Notify::new());
        let first = {
            let (in_flight, started) = (in_flight.clone(), started.clone());
            tokio::spawn(async move {
                in_flight
                    .once(digest("k"), || async move {
                        started.notify_one();
                        std::future::pending::<u32>().await
                    })
                    .await
            })
        };
        started.notified().await;
        let second = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move { in_flight.once(digest("k"), || async { 7 }).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        first.abort();
        assert_eq!(second.await.expect("joined"), 7);
    }

    #[test]
    fn invalid_keys_are_remembered_briefly_and_bounded() {
        let invalid = InvalidKeys::new(Duration::from_secs(60), 3);
        for key in ["a", "b", "c"] {
            invalid.insert(digest(key));
        }
        assert!(invalid.contains(&digest("a")));
        assert!(!invalid.contains(&digest("z")));
        invalid.insert(digest("d"));
        assert!(invalid.len() <= 3, "never more than its capacity");
        assert!(invalid.contains(&digest("d")));

        let expired = InvalidKeys::new(Duration::ZERO, 3);
        expired.insert(digest("a"));
        assert!(!expired.contains(&digest("a")));
    }

    fn principal(key: &str) -> Principal {
        Principal {
            user_id: "usr_1".into(),
            key_id: Some(key.into()),
        }
    }

    #[test]
    fn evicts_by_key_id_and_expires() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.insert(digest("a"), principal("key_a"), cache.generation());
        cache.insert(digest("b"), principal("key_b"), cache.generation());
        cache.evict_key("key_a");
        assert_eq!(cache.get(&digest("a")), None);
        assert_eq!(cache.get(&digest("b")), Some(principal("key_b")));

        let expired = KeyCache::new(Duration::ZERO);
        expired.insert(digest("a"), principal("key_a"), expired.generation());
        assert_eq!(expired.get(&digest("a")), None);
    }

    #[test]
    fn a_verification_older_than_a_revocation_is_not_cached() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let started = cache.generation();
        cache.evict_key("key_a");
        cache.insert(digest("a"), principal("key_a"), started);
        assert_eq!(cache.get(&digest("a")), None);
    }
}
