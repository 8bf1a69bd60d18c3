use std::sync::Arc;
use std::time::Duration;

use platform::internal_token::InternalTokens;
use platform::redis::Keys;
use platform::session::SessionVerifier;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::GatewayError;
use crate::authn::key_cache::{InFlight, InvalidKeys, KeyCache, Principal};
use crate::authn::token_cache::TokenCache;
use crate::routes::stream::hub::Hub;
use crate::routes::stream::slots::StreamSlots;
use crate::store::rate_limit::RateLimiter;

/// How long a verified API key is trusted without asking auth again. A
/// revocation broadcast evicts it sooner; this bounds staleness when Redis
/// cannot deliver that broadcast.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
const STREAM_BUFFER: usize = 256;
/// How long a key auth refused is refused again without asking: long enough
/// that a flood of the same keys costs auth one call each, short enough that
/// nothing legitimate waits on it (a key is valid from its creation).
const INVALID_KEY_TTL: Duration = Duration::from_secs(10);
const INVALID_KEY_CAPACITY: usize = 10_000;

/// One `Arc` to clone per request, whatever the state holds.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) upstreams: Arc<Upstreams>,
    pub(crate) token_cache: Arc<TokenCache>,
    pub(crate) sessions: SessionVerifier,
    pub(crate) keys: Keys,
    pub(crate) key_cache: Arc<KeyCache>,
    pub(crate) invalid_keys: Arc<InvalidKeys>,
    pub(crate) verifying: Arc<InFlight<Result<Principal, GatewayError>>>,
    pub(crate) limiter: RateLimiter,
    pub(crate) limits: Limits,
    pub(crate) hub: Arc<Hub>,
    pub(crate) stream_slots: Arc<StreamSlots>,
    pub(crate) stream_lifetime: Duration,
    /// Peers whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Arc<[std::net::IpAddr]>,
    pub(crate) shutdown: CancellationToken,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub per_key: u32,
    pub per_address: u32,
    /// Failed authentications per client address and window.
    pub auth_failures: u32,
}

#[derive(Debug)]
pub(crate) struct Upstreams {
    pub auth: String,
    pub payments: String,
    /// The services' base URLs, parsed once rather than on every forwarded
    /// request.
    pub auth_url: reqwest::Url,
    pub payments_url: reqwest::Url,
    pub ledger_url: reqwest::Url,
}

impl Upstreams {
    fn new(auth: &str, payments: &str, ledger: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        let parse = |name: &str, url: &str| {
            reqwest::Url::parse(url).with_context(|| format!("{name}'s URL is not valid: {url}"))
        };
        Ok(Self {
            auth_url: parse("auth", &base(auth))?,
            payments_url: parse("payments", &base(payments))?,
            ledger_url: parse("ledger", &base(ledger))?,
            auth: base(auth),
            payments: base(payments),
        })
    }
}

impl AppState {
    pub fn new(
        config: &crate::GatewaySettings,
        redis: ConnectionManager,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(UPSTREAM_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        let keys = config.redis.keys();
        Ok(Self(Arc::new(Inner {
            http,
            upstreams: Arc::new(Upstreams::new(
                &config.auth_url,
                &config.payments_url,
                &config.ledger_url,
            )?),
            token_cache: Arc::new(TokenCache::new(InternalTokens::new(
                &config.internal_token_secret,
            ))),
            sessions: SessionVerifier::new(&config.jwt_secret),
            key_cache: Arc::new(KeyCache::new(KEY_CACHE_TTL)),
            invalid_keys: Arc::new(InvalidKeys::new(INVALID_KEY_TTL, INVALID_KEY_CAPACITY)),
            verifying: Arc::default(),
            limiter: RateLimiter::new(
                redis,
                keys.clone(),
                config.rate_limit_window,
                config.clock.clone(),
            ),
            limits: Limits {
                per_key: config.rate_limit_per_minute,
                per_address: config.auth_rate_limit_per_minute,
                auth_failures: config.auth_failures_per_minute,
            },
            keys,
            hub: Arc::new(Hub::new(STREAM_BUFFER)),
            stream_slots: Arc::new(StreamSlots::new(config.streams_per_key_max)),
            stream_lifetime: config.stream_max_lifetime,
            trusted_proxies: config.trusted_proxies.clone().into(),
            shutdown,
        })))
    }
}
