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
            Ok(count) => count,
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter cannot reach Redis; letting the request through");
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
