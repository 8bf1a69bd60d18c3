//! Fixed-window rate limits counted in Redis, one atomic round trip per
//! request, so that every gateway replica shares one budget per key.
//!
//! When Redis cannot answer, the limiter fails open: requests go on, a
//! warning is logged and `gateway_rate_limit_fail_open_total` counts them.
//! Refusing all traffic because a counter store is down would turn a Redis
//! outage into a platform outage; authentication does not depend on it.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use platform::clock::Clock;
use platform::redis::Keys;
use redis::aio::ConnectionManager;

/// INCR and set the expiry on first use, in one script so that a crash
/// between the two cannot leave a counter that never expires.
const SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
";

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    keys: Keys,
    window: Duration,
    clock: Clock,
    script: std::sync::Arc<redis::Script>,
    breaker: std::sync::Arc<Breaker>,
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

impl RateLimiter {
    pub fn new(redis: ConnectionManager, keys: Keys, window: Duration, clock: Clock) -> Self {
        Self {
            redis,
            keys,
            window: window.max(Duration::from_secs(1)),
            clock,
            script: std::sync::Arc::new(redis::Script::new(SCRIPT)),
            breaker: std::sync::Arc::new(Breaker::new()),
        }
    }

    /// Counts one request against `subject`'s budget of `limit` per window.
    /// `None` when Redis did not answer (the caller lets the request through).
    pub async fn check(&self, subject: &str, limit: u32) -> Option<Verdict> {
        self.count(subject, limit, true).await
    }

    /// How much of `subject`'s budget is spent, without spending any: the
    /// verdict is "allowed" while another one may be counted.
    pub async fn peek(&self, subject: &str, limit: u32) -> Option<Verdict> {
        self.count(subject, limit, false).await
    }

    async fn count(&self, subject: &str, limit: u32, increment: bool) -> Option<Verdict> {
        let now_ms = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let window_ms = self.window.as_millis() as u64;
        let window = now_ms / window_ms;
        let reset_at_ms = (window + 1) * window_ms;
        if !self.breaker.may_ask(self.breaker.now_ms()) {
            metrics::counter!("gateway_rate_limit_fail_open_total").increment(1);
            return None;
        }
        let key = self.keys.key(&format!("ratelimit:{subject}:{window}"));
        let mut redis = self.redis.clone();
        let counted: redis::RedisResult<u64> = if increment {
            self.script
                .key(key)
                .arg(window_ms + 1000)
                .invoke_async(&mut redis)
                .await
        } else {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<u64>>(&mut redis)
                .await
                .map(Option::unwrap_or_default)
        };
        let count = match counted {
            Ok(count) => {
                self.breaker.answered();
                count
            }
            Err(e) => {
                self.breaker.failed(self.breaker.now_ms());
                tracing::warn!(error = %e, "rate limiter cannot reach Redis; letting requests through");
                metrics::counter!("gateway_rate_limit_fail_open_total").increment(1);
                return None;
            }
        };
        // A peek asks whether one more would still be within the limit.
        let count = if increment { count } else { count + 1 };
        Some(Verdict {
            allowed: count <= limit as u64,
            limit,
            remaining: (limit as u64).saturating_sub(count) as u32,
            reset_seconds: (reset_at_ms - now_ms).div_ceil(1000),
            reset_at: reset_at_ms.div_ceil(1000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
