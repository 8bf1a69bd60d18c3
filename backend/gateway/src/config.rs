//! Everything the gateway reads: where it listens and serves its metrics,
//! the Redis it counts and subscribes in, where the services answer, the two
//! secrets it signs and checks tokens with, its rate limits, how long and how
//! many event streams a key may hold, how its Redis subscription is watched,
//! and which proxies it believes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use platform::config::{
    ConfigError, INTERNAL_TOKEN_SECRET, JWT_SECRET, Lookup, RedisSettings, ServerSettings, ServiceConfig,
    development_secrets, read, read_listen_addr, read_millis, read_peer_url, read_seconds, read_string,
};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub server: ServerSettings,
    /// `/metrics` listens here, never on the public port.
    pub metrics_addr: SocketAddr,
    pub redis: RedisSettings,
    /// Signs the internal token sent with every forwarded request.
    pub internal_token_secret: SecretString,
    /// Checks session tokens; auth signs them with the same secret.
    pub jwt_secret: SecretString,
    pub auth_url: String,
    pub payments_url: String,
    pub ledger_url: String,
    /// Requests one API key (or session user) may make per window.
    pub rate_limit_per_minute: u32,
    /// The fixed window the rate limits count in; a minute unless tests shorten it.
    pub rate_limit_window: Duration,
    /// Requests a minute allowed per client address on login and registration.
    pub auth_rate_limit_per_minute: u32,
    /// After this long a stream is closed with 1012 and the client reconnects,
    /// which makes it authenticate its key again.
    pub stream_max_lifetime: Duration,
    /// Concurrent streams one API key may hold; the next upgrade gets 429.
    pub streams_per_key_max: u32,
    /// How often the event subscription is pinged.
    pub subscription_heartbeat: Duration,
    /// A subscription that has not answered a ping for this long is dead.
    pub subscription_deadline: Duration,
    /// Failed API-key and session authentications a client address may make
    /// per rate-limit window before it is refused with 429.
    pub auth_failures_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed; empty means the TCP peer
    /// is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Where rate-limit windows read the time: the system clock, unless a
    /// test replaces it. Not read from the environment.
    pub clock: platform::clock::Clock,
}

fn read_addresses(lookup: Lookup, name: &'static str) -> Result<Vec<IpAddr>, ConfigError> {
    read_string(lookup, name, "")
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    name,
                    value: part.to_owned(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

impl ServiceConfig for GatewaySettings {
    fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        let settings = Self {
            server: ServerSettings::from_lookup(lookup, "GATEWAY_ADDR", 8080)?,
            metrics_addr: read_listen_addr(lookup, "METRICS_ADDR", 9090)?,
            redis: RedisSettings::from_lookup(lookup),
            internal_token_secret: INTERNAL_TOKEN_SECRET.read(lookup)?,
            jwt_secret: JWT_SECRET.read(lookup)?,
            auth_url: read_peer_url(lookup, "AUTH_URL", "AUTH_ADDR", 8081)?,
            payments_url: read_peer_url(lookup, "PAYMENTS_URL", "PAYMENTS_ADDR", 8082)?,
            ledger_url: read_peer_url(lookup, "LEDGER_URL", "LEDGER_ADDR", 8083)?,
            rate_limit_per_minute: read(lookup, "RATE_LIMIT_PER_MINUTE", 100)?,
            rate_limit_window: read_seconds(lookup, "RATE_LIMIT_WINDOW_SECONDS", 60)?,
            auth_rate_limit_per_minute: read(lookup, "AUTH_RATE_LIMIT_PER_MINUTE", 20)?,
            stream_max_lifetime: read_seconds(lookup, "STREAM_MAX_LIFETIME_SECS", 3600)?,
            streams_per_key_max: read(lookup, "STREAMS_PER_KEY_MAX", 10)?,
            subscription_heartbeat: read_millis(lookup, "SUBSCRIPTION_HEARTBEAT_MS", 1000)?,
            subscription_deadline: read_millis(lookup, "SUBSCRIPTION_DEADLINE_MS", 3000)?,
            auth_failures_per_minute: read(lookup, "AUTH_FAILURES_PER_MINUTE", 20)?,
            trusted_proxies: read_addresses(lookup, "TRUSTED_PROXIES")?,
            clock: platform::clock::Clock::system(),
        };
        if settings.subscription_deadline <= settings.subscription_heartbeat {
            return Err(ConfigError::Invalid {
                name: "SUBSCRIPTION_DEADLINE_MS",
                value: settings.subscription_deadline.as_millis().to_string(),
                reason: "must be longer than SUBSCRIPTION_HEARTBEAT_MS".into(),
            });
        }
        Ok(settings)
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }

    fn default_secrets(&self) -> Vec<&'static str> {
        development_secrets(&[
            (JWT_SECRET, &self.jwt_secret),
            (INTERNAL_TOKEN_SECRET, &self.internal_token_secret),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let defaults = GatewaySettings::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(defaults.server.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.metrics_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(defaults.rate_limit_per_minute, 100);
        assert_eq!(defaults.ledger_url, "http://127.0.0.1:8083");
        assert_eq!(defaults.streams_per_key_max, 10);
        assert_eq!(defaults.auth_failures_per_minute, 20);
        assert!(defaults.trusted_proxies.is_empty());
        let set = GatewaySettings::from_pairs(&[
            ("TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("STREAM_MAX_LIFETIME_SECS", "5"),
        ])
        .expect("valid");
        assert_eq!(set.trusted_proxies.len(), 2);
        assert_eq!(set.stream_max_lifetime, Duration::from_secs(5));
    }

    #[test]
    fn only_the_secrets_the_gateway_uses_are_its_defaults() {
        let defaults = GatewaySettings::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(
            defaults.default_secrets(),
            vec!["JWT_SECRET", "INTERNAL_TOKEN_SECRET"]
        );
        // Auth's key-hashing secret is none of the gateway's business.
        let own = GatewaySettings::from_pairs(&[
            ("JWT_SECRET", "a-real-secret-of-some-length"),
            ("INTERNAL_TOKEN_SECRET", "another-real-secret-value"),
        ])
        .expect("valid");
        assert!(own.default_secrets().is_empty());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = GatewaySettings::from_pairs(&[("TRUSTED_PROXIES", "10.0.0.1,proxy")])
            .expect_err("not an address");
        assert!(err.to_string().starts_with("TRUSTED_PROXIES="), "{err}");
        let err =
            GatewaySettings::from_pairs(&[("RATE_LIMIT_PER_MINUTE", "lots")]).expect_err("not a number");
        assert!(err.to_string().starts_with("RATE_LIMIT_PER_MINUTE="), "{err}");
        let err = GatewaySettings::from_pairs(&[("SUBSCRIPTION_DEADLINE_MS", "500")])
            .expect_err("shorter than the heartbeat");
        assert!(err.to_string().starts_with("SUBSCRIPTION_DEADLINE_MS="), "{err}");
    }
}
