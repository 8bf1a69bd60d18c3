use reqwest::header::HeaderMap;

/// The gateway's budget for the caller, as the last answer described it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
    /// Seconds to wait before trying again, on a 429.
    pub retry_after: Option<u64>,
}

fn number<T: std::str::FromStr>(headers: &HeaderMap, names: &[&str]) -> Option<T> {
    names.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    })
}

impl RateLimit {
    /// Reads `RateLimit-*`, falling back to the `X-RateLimit-*` aliases
    /// (whose reset is a Unix time, turned back into seconds from `now`).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let limit = number(headers, &["ratelimit-limit", "x-ratelimit-limit"])?;
        let remaining = number(headers, &["ratelimit-remaining", "x-ratelimit-remaining"])?;
        let reset_seconds = number(headers, &["ratelimit-reset"]).or_else(|| {
            let at: u64 = number(headers, &["x-ratelimit-reset"])?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(at.saturating_sub(now))
        })?;
        Some(Self {
            limit,
            remaining,
            reset_seconds,
            retry_after: retry_after(headers),
        })
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<u64> {
    number(headers, &["retry-after"])
}
