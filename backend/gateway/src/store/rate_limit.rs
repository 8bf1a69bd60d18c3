//! Fixed-window rate limits whose budgets live in Redis, so that every
//! gateway replica shares one budget per key, without a Redis round trip on
//! most requests.
//!
//! A replica leases a slice of a key's window budget with one `INCRBY` and
//! admits requests from it locally; when the slice is spent it leases
//! another. A slice is at most a sixteenth of what no replica has leased yet
//! (at least one request) and at most [`leases::MAX_SLICE`], and it starts
//! at one request and doubles only while slices are spent within a second,
//! so a quiet key or one near its limit leases one request at a time. What a
//! replica has not spent when the window ends is forfeited.
//!
//! Exactness: across replicas, a key is never admitted more than its limit
//! in a window, since every admitted request was first counted in Redis.
//! One replica on its own admits exactly the limit. With N replicas, up to
//! N slices may be left unspent at the end of a window, so up to that many
//! fewer requests may be admitted. `RateLimit-Remaining` is exact with one
//! replica; with several it is what this replica knows (what no replica had
//! leased at its last lease, plus its own unspent slice), which may overstate
//! what is left by what other replicas leased since.
//!
//! The lease table is bounded; past its capacity, and for subjects too long
//! to keep, a request is counted in Redis on its own (one `INCR`). Failed
//! authentications are always counted that way: they are rare, and their
//! budget is also read without spending ([`RateLimiter::peek`]).
//!
//! When Redis cannot answer, the limiter fails open: requests go on, a
//! warning is logged and `gateway_rate_limit_fail_open_total` counts them.
//! Refusing all traffic because a counter store is down would turn a Redis
//! outage into a platform outage; authentication does not depend on it.
//! A slice leased before the outage is still spent as usual.

mod leases;

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use platform::clock::Clock;
use platform::redis::Keys;
use redis::aio::ConnectionManager;

use leases::{Leases, Take};

/// INCR and set the expiry on first use, in one script so that a crash
/// between the two cannot leave a counter that never expires.
const COUNT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
";

/// Leases a slice of the window's budget: ARGV[1] is the limit, ARGV[2] the
/// slice asked for, ARGV[3] the expiry. Never counts past the limit; returns
/// the count after the lease and the slice granted (0 once all is leased).
/// The same keys as [`COUNT_SCRIPT`], so both kinds of counting agree.
const LEASE_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= limit then
  return {count, 0}
end
local slice = math.max(1, math.min(tonumber(ARGV[2]), math.floor((limit - count) / 16)))
count = redis.call('INCRBY', KEYS[1], slice)
if count == slice then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {count, slice}
";

/// Keys whose leases one replica holds at most; the table's memory is this
/// many times a lease and a subject of at most [`MAX_LEASED_SUBJECT_BYTES`].
const LEASE_CAPACITY: usize = 50_000;
/// Subjects the gateway builds are a prefix and an id or an address; a
/// longer one is counted in Redis rather than kept.
const MAX_LEASED_SUBJECT_BYTES: usize = 128;

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    keys: Keys,
    window: Duration,
    clock: Clock,
    count_script: std::sync::Arc<redis::Script>,
    lease_script: std::sync::Arc<redis::Script>,
    breaker: std::sync::Arc<Breaker>,
    leases: std::sync::Arc<Leases>,
}

/// How long the limiter lets requests through without asking Redis after a
/// call to it failed, before one request tries it again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Remembers that Redis failed, so that during an outage one request at a
/// time waits to find out whether it is back while every other request
/// fails open at once. Without it each request waited out the connection's
/// retries and timeouts (up to 4.9 s for two calls) before going on.
#[derive(Debug)]
struct Breaker {
    started: std::time::Instant,
    /// Milliseconds since `started` before which Redis is not asked; 0 while
    /// Redis answers.
    skip_until_ms: std::sync::atomic::AtomicU64,
}

impl Breaker {
    fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            skip_until_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Whether this request may ask Redis. After a failure, the first to ask
    /// once the pause is over takes the next try and pushes the pause on, so
    /// that the others keep failing open while it waits.
    fn may_ask(&self, now: u64) -> bool {
        use std::sync::atomic::Ordering;
        let skip_until = self.skip_until_ms.load(Ordering::Acquire);
        if skip_until == 0 {
            return true;
        }
        now >= skip_until
            && self
                .skip_until_ms
                .compare_exchange(
                    skip_until,
                    now + REDIS_RETRY_AFTER.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn failed(&self, now: u64) {
        let until = now + REDIS_RETRY_AFTER.as_millis() as u64;
        self.skip_until_ms
            .store(until, std::sync::atomic::Ordering::Release);
    }

    fn answered(&self) {
        use std::sync::atomic::Ordering;
        if self.skip_until_ms.load(Ordering::Relaxed) != 0 {
            self.skip_until_ms.store(0, Ordering::Release);
        }
    }
}

/// The outcome for one request, and the headers that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
    /// The reset as a Unix time, for the `X-RateLimit-Reset` alias.
    pub reset_at: u64,
}

impl Verdict {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let pairs = [
            ("ratelimit-limit", self.limit as u64),
            ("ratelimit-remaining", self.remaining as u64),
            ("ratelimit-reset", self.reset_seconds),
            ("x-ratelimit-limit", self.limit as u64),
            ("x-ratelimit-remaining", self.remaining as u64),
            ("x-ratelimit-reset", self.reset_at),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}

/// Where a window stands at one instant.
#[derive(Debug, Clone, Copy)]
struct WindowNow {
    number: u64,
    now_ms: u64,
    length_ms: u64,
}

impl WindowNow {
    fn verdict(&self, allowed: bool, limit: u32, remaining: u64) -> Verdict {
        let reset_at_ms = (self.number + 1) * self.length_ms;
        Verdict {
            allowed,
            limit,
            remaining: remaining.min(limit as u64) as u32,
            reset_seconds: (reset_at_ms - self.now_ms).div_ceil(1000),
            reset_at: reset_at_ms.div_ceil(1000),
        }
    }
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, keys: Keys, window: Duration, clock: Clock) -> Self {
        Self {
            redis,
            keys,
            window: window.max(Duration::from_secs(1)),
            clock,
            count_script: std::sync::Arc::new(redis::Script::new(COUNT_SCRIPT)),
            lease_script: std::sync::Arc::new(redis::Script::new(LEASE_SCRIPT)),
            breaker: std::sync::Arc::new(Breaker::new()),
            leases: std::sync::Arc::new(Leases::new(LEASE_CAPACITY)),
        }
    }

    fn window_now(&self) -> WindowNow {
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let length_ms = self.window.as_millis() as u64;
        WindowNow {
            number: now_ms / length_ms,
            now_ms,
            length_ms,
        }
    }

    fn key(&self, subject: &str, window: &WindowNow) -> String {
        self.keys.key(&format!("ratelimit:{subject}:{}", window.number))
    }

    /// The counter lives a second past its window, so that a replica whose
    /// clock lags a little still finds it.
    fn expiry_ms(window: &WindowNow) -> u64 {
        window.length_ms + 1000
    }

    /// Counts one request against `subject`'s budget of `limit` per window,
    /// from this replica's slice when it holds one. `None` when Redis did
    /// not answer (the caller lets the request through).
    pub async fn check(&self, subject: &str, limit: u32) -> Option<Verdict> {
        if subject.len() > MAX_LEASED_SUBJECT_BYTES {
            return self.check_exact(subject, limit).await;
        }
        let window = self.window_now();
        let refill = match self.leases.take(subject, window.number, limit as u64) {
            Take::Decided { allowed, remaining } => return Some(window.verdict(allowed, limit, remaining)),
            Take::Full => return self.check_exact(subject, limit).await,
            Take::Refill(refill) => refill,
        };
        let _refilling = refill.lock().await;
        // Whoever held the lock before may have leased a slice this request
        // can take from.
        if let Take::Decided { allowed, remaining } = self.leases.take(subject, window.number, limit as u64) {
            return Some(window.verdict(allowed, limit, remaining));
        }
        if !self.may_ask() {
            return None;
        }
        let asked = self.leases.slice_to_ask(subject);
        let mut redis = self.redis.clone();
        let leased: redis::RedisResult<(u64, u64)> = self
            .lease_script
            .key(self.key(subject, &window))
            .arg(limit)
            .arg(asked)
            .arg(Self::expiry_ms(&window))
            .invoke_async(&mut redis)
            .await;
        let (counted, granted) = self.answered(leased)?;
        let (allowed, remaining) =
            self.leases
                .leased(subject, window.number, limit as u64, asked, granted, counted);
        Some(window.verdict(allowed, limit, remaining))
    }

    /// Counts one request against `subject`'s budget in Redis itself, one
    /// round trip, with no slice kept here: for budgets that are also read
    /// with [`Self::peek`], which sees only what Redis counted.
    pub async fn check_exact(&self, subject: &str, limit: u32) -> Option<Verdict> {
        let window = self.window_now();
        if !self.may_ask() {
            return None;
        }
        let mut redis = self.redis.clone();
        let counted: redis::RedisResult<u64> = self
            .count_script
            .key(self.key(subject, &window))
            .arg(Self::expiry_ms(&window))
            .invoke_async(&mut redis)
            .await;
        let count = self.answered(counted)?;
        Some(window.verdict(count <= limit as u64, limit, (limit as u64).saturating_sub(count)))
    }

    /// How much of `subject`'s budget is spent, without spending any: the
    /// verdict is "allowed" while another one may be counted.
    pub async fn peek(&self, subject: &str, limit: u32) -> Option<Verdict> {
        let window = self.window_now();
        if !self.may_ask() {
            return None;
        }
        let mut redis = self.redis.clone();
        let counted = redis::cmd("GET")
            .arg(self.key(subject, &window))
            .query_async::<Option<u64>>(&mut redis)
            .await
            .map(Option::unwrap_or_default);
        let count = self.answered(counted)? + 1;
        Some(window.verdict(count <= limit as u64, limit, (limit as u64).saturating_sub(count)))
    }

    fn may_ask(&self) -> bool {
        if self.breaker.may_ask(self.breaker.now_ms()) {
            return true;
        }
        metrics::counter!("gateway_rate_limit_fail_open_total").increment(1);
        false
    }

    fn answered<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => {
                self.breaker.answered();
                Some(value)
            }
            Err(e) => {
                self.breaker.failed(self.breaker.now_ms());
                tracing::warn!(error = %e, "rate limiter cannot reach Redis; letting requests through");
                metrics::counter!("gateway_rate_limit_fail_open_total").increment(1);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use platform::config::RedisSettings;
    use platform::testing::{Link, ManualClock, TestEnv};

    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    /// Replicas of one deployment: limiters sharing one Redis namespace and
    /// one clock, each with its own leases.
    struct Deployment {
        redis: ConnectionManager,
        keys: Keys,
        clock: ManualClock,
    }

    impl Deployment {
        async fn new() -> Self {
            let env = TestEnv::new();
            let settings = RedisSettings::from_lookup(&|name| env.get(name));
            let redis = platform::redis::connect(&settings.url)
                .await
                .expect("the test Redis answers");
            Self {
                redis,
                keys: settings.keys(),
                clock: ManualClock::new(),
            }
        }

        fn replica(&self) -> RateLimiter {
            RateLimiter::new(self.redis.clone(), self.keys.clone(), WINDOW, self.clock.clock())
        }

        /// What Redis counted for `subject` in the current window.
        async fn counted(&self, replica: &RateLimiter, subject: &str) -> u64 {
            let key = replica.key(subject, &replica.window_now());
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<u64>>(&mut self.redis.clone())
                .await
                .expect("Redis answers")
                .unwrap_or_default()
        }
    }

    async fn admitted(replica: &RateLimiter, subject: &str, limit: u32) -> bool {
        replica
            .check(subject, limit)
            .await
            .expect("Redis answers")
            .allowed
    }

    /// Asks every replica until each refuses, which spends every slice.
    async fn drain(replicas: &[&RateLimiter], subject: &str, limit: u32) -> u64 {
        let mut admitted_total = 0;
        for replica in replicas {
            while admitted(replica, subject, limit).await {
                admitted_total += 1;
            }
        }
        admitted_total
    }

    #[tokio::test]
    async fn one_replica_admits_exactly_the_limit_and_says_what_remains() {
        let deployment = Deployment::new().await;
        let replica = deployment.replica();
        let limit = 2_500;
        for expected in (0..limit).rev() {
            let verdict = replica.check("key:a", limit).await.expect("Redis answers");
            assert!(verdict.allowed, "refused with {} left", expected + 1);
            assert_eq!(verdict.remaining, expected, "each request takes one");
            assert_eq!(verdict.limit, limit);
        }
        for _ in 0..3 {
            let verdict = replica.check("key:a", limit).await.expect("Redis answers");
            assert!(!verdict.allowed);
            assert_eq!(verdict.remaining, 0);
            assert!((1..=60).contains(&verdict.reset_seconds), "{verdict:?}");
        }
        assert_eq!(deployment.counted(&replica, "key:a").await, limit as u64);

        deployment.clock.advance(WINDOW);
        let verdict = replica.check("key:a", limit).await.expect("Redis answers");
        assert!(verdict.allowed, "the next window admits");
        assert_eq!(verdict.remaining, limit - 1);
    }

    #[tokio::test]
    async fn alternating_replicas_share_one_budget_and_never_exceed_it() {
        let deployment = Deployment::new().await;
        let (first, second) = (deployment.replica(), deployment.replica());
        for limit in [10, 3_000] {
            let subject = format!("key:{limit}");
            let mut admitted_total = 0;
            for i in 0..2 * limit {
                let replica = if i % 2 == 0 { &first } else { &second };
                if admitted(replica, &subject, limit).await {
                    admitted_total += 1;
                }
            }
            admitted_total += drain(&[&first, &second], &subject, limit).await;
            assert_eq!(admitted_total, limit as u64, "limit {limit}");
            assert_eq!(deployment.counted(&first, &subject).await, limit as u64);
        }
        // Below 32 left, every slice is one request: two replicas
        // alternating lose nothing to unspent slices.
        let mut admitted_total = 0;
        for i in 0..14 {
            let replica = if i % 2 == 0 { &first } else { &second };
            if admitted(replica, "key:small", 10).await {
                admitted_total += 1;
            }
        }
        assert_eq!(admitted_total, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_replicas_never_admit_more_than_the_limit() {
        let deployment = Deployment::new().await;
        let replicas = [deployment.replica(), deployment.replica()];
        let limit = 1_000;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..32 {
            let replica = replicas[task % 2].clone();
            tasks.spawn(async move {
                let mut admitted_here = 0u64;
                for _ in 0..50 {
                    if admitted(&replica, "key:a", limit).await {
                        admitted_here += 1;
                    }
                }
                admitted_here
            });
        }
        let mut admitted_total = 0;
        while let Some(admitted_here) = tasks.join_next().await {
            admitted_total += admitted_here.expect("a task ends");
        }
        assert!(admitted_total <= limit as u64, "{admitted_total} admitted");
        let unspent = (limit as u64) - admitted_total;
        assert!(
            unspent <= 2 * leases::MAX_SLICE,
            "at most one slice per replica is held back: {unspent}"
        );
        // Whatever the replicas still hold is theirs to spend, and no more.
        admitted_total += drain(&[&replicas[0], &replicas[1]], "key:a", limit).await;
        assert_eq!(admitted_total, limit as u64);
        assert_eq!(deployment.counted(&replicas[0], "key:a").await, limit as u64);
    }

    #[tokio::test]
    async fn keys_have_their_own_budgets_whatever_their_bytes() {
        let deployment = Deployment::new().await;
        let replica = deployment.replica();
        assert_eq!(drain(&[&replica], "key:a", 40).await, 40);
        assert!(admitted(&replica, "key:b", 40).await, "a's budget is not b's");
        // Too long to keep a lease for: counted in Redis, request by request.
        let hostile = format!("key:{}", "\u{0}\u{7f}\u{ffff}%2e/".repeat(20_000));
        assert_eq!(drain(&[&replica], &hostile, 5).await, 5);
        assert_eq!(deployment.counted(&replica, &hostile).await, 6);
        assert!(admitted(&replica, "key:c\u{0}\u{ffff}", 3).await);
    }

    #[tokio::test]
    async fn without_redis_a_spent_slice_fails_open_and_a_held_one_is_still_spent() {
        let mut link = Link::to_redis().await;
        link.open().await;
        let redis = platform::redis::connect(&link.redis_url())
            .await
            .expect("Redis answers through the link");
        let deployment = Deployment::new().await;
        let replica = RateLimiter::new(redis, deployment.keys.clone(), WINDOW, deployment.clock.clock());
        // Two slices spent within a second: the third lease takes four.
        for _ in 0..4 {
            assert!(admitted(&replica, "key:a", 1_000).await);
        }
        link.cut().await;
        for _ in 0..3 {
            let verdict = replica.check("key:a", 1_000).await.expect("from the slice");
            assert!(verdict.allowed);
        }
        assert_eq!(replica.check("key:a", 1_000).await, None, "fails open");
        assert_eq!(replica.check("key:b", 1_000).await, None, "fails open");
    }

    #[test]
    fn after_a_failure_redis_is_left_alone_then_tried_by_one_request_at_a_time() {
        let breaker = Breaker::new();
        assert!(breaker.may_ask(10), "asked while it answers");
        breaker.failed(100);
        assert!(!breaker.may_ask(101), "left alone right after a failure");
        assert!(!breaker.may_ask(1099));
        assert!(breaker.may_ask(1100), "tried again once the pause is over");
        assert!(
            !breaker.may_ask(1100),
            "by one request: the others fail open meanwhile"
        );
        assert!(!breaker.may_ask(2099));
        breaker.answered();
        assert!(
            breaker.may_ask(2100),
            "asked by every request again once it answers"
        );
        assert!(breaker.may_ask(2100));
    }
}
