//! The gateway's own settings: where its metrics are served, how long and
//! how many event streams a key may hold, how its Redis subscription is
//! watched, and how many failed authentications an address may make.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{ConfigError, Lookup, read, read_seconds, read_string};

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `/metrics` listens here, never on the public port.
    pub metrics_addr: SocketAddr,
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
}

fn read_millis(lookup: Lookup, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    read(lookup, name, default).map(Duration::from_millis)
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

impl GatewaySettings {
    pub(super) fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        let settings = Self {
            metrics_addr: read(lookup, "METRICS_ADDR", SocketAddr::from(([127, 0, 0, 1], 9090)))?,
            stream_max_lifetime: read_seconds(lookup, "STREAM_MAX_LIFETIME_SECS", 3600)?,
            streams_per_key_max: read(lookup, "STREAMS_PER_KEY_MAX", 10)?,
            subscription_heartbeat: read_millis(lookup, "SUBSCRIPTION_HEARTBEAT_MS", 1000)?,
            subscription_deadline: read_millis(lookup, "SUBSCRIPTION_DEADLINE_MS", 3000)?,
            auth_failures_per_minute: read(lookup, "AUTH_FAILURES_PER_MINUTE", 20)?,
            trusted_proxies: read_addresses(lookup, "TRUSTED_PROXIES")?,
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
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<GatewaySettings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        GatewaySettings::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let defaults = with(&[]).expect("defaults are valid");
        assert_eq!(defaults.metrics_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(defaults.streams_per_key_max, 10);
        assert_eq!(defaults.auth_failures_per_minute, 20);
        assert!(defaults.trusted_proxies.is_empty());
        let set = with(&[
            ("TRUSTED_PROXIES", "10.0.0.1, ::1"),
            ("STREAM_MAX_LIFETIME_SECS", "5"),
        ])
        .expect("valid");
        assert_eq!(set.trusted_proxies.len(), 2);
        assert_eq!(set.stream_max_lifetime, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = with(&[("TRUSTED_PROXIES", "10.0.0.1,proxy")]).expect_err("not an address");
        assert!(err.to_string().starts_with("TRUSTED_PROXIES="), "{err}");
        let err = with(&[("SUBSCRIPTION_DEADLINE_MS", "500")]).expect_err("shorter than the heartbeat");
        assert!(err.to_string().starts_with("SUBSCRIPTION_DEADLINE_MS="), "{err}");
    }
}
