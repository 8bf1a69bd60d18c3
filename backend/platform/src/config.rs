//! Every setting comes from the environment, with a local default, and is
//! read once at start-up. A bad value names its variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub mod gateway;

pub use gateway::GatewaySettings;

pub const DEV_JWT_SECRET: &str = "dev-jwt-secret-change-me";
pub const DEV_INTERNAL_TOKEN_SECRET: &str = "dev-internal-token-secret-change-me";
pub const DEV_API_KEY_HASH_SECRET: &str = "dev-api-key-hash-secret-change-me";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "{0} still has its development default; set it to a secret of your own before running a release build"
    )]
    DefaultSecret(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub redis_url: String,
    /// Prepended to every Redis key and channel, so that several stacks (or
    /// tests) can share one Redis without seeing each other.
    pub redis_prefix: String,
    pub auth_database_url: String,
    pub payments_database_url: String,
    pub ledger_database_url: String,
    pub jwt_secret: SecretString,
    pub internal_token_secret: SecretString,
    /// Keys the SHA-256 under which API keys are stored.
    pub api_key_hash_secret: SecretString,
    pub rate_limit_per_minute: u32,
    /// The fixed window the rate limits count in; a minute unless tests shorten it.
    pub rate_limit_window: Duration,
    /// Requests a minute allowed per client address on login and registration.
    pub auth_rate_limit_per_minute: u32,
    pub gateway_addr: SocketAddr,
    pub auth_addr: SocketAddr,
    pub payments_addr: SocketAddr,
    pub ledger_addr: SocketAddr,
    pub auth_url: String,
    pub payments_url: String,
    pub ledger_url: String,
    pub bcrypt_cost: u32,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Failed logins one client address may make on one email before each
    /// further attempt waits: `login_lockout_base`, doubling with every
    /// failure, never longer than `login_lockout`.
    pub max_failed_logins: u32,
    pub login_lockout_base: Duration,
    pub login_lockout: Duration,
    /// Active (unrevoked) API keys a user may hold at once.
    pub api_keys_per_user_max: u32,
    /// Limits set on every database session of every pool.
    pub db_timeouts: crate::db::DbTimeouts,
    /// Payment fee in basis points of the amount, plus a fixed part in
    /// hundredths of the currency's major unit (30 is 0.30 USD, 0.30 JPY).
    pub fee_basis_points: i64,
    pub fee_fixed_cents: i64,
    pub log_format: LogFormat,
    pub gateway: GatewaySettings,
    /// Where rate-limit windows and login lockouts read the time.
    pub clock: crate::clock::Clock,
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn read<T: FromStr>(lookup: Lookup, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(value) if value.trim().is_empty() => Ok(default),
        Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            value,
            reason: e.to_string(),
        }),
    }
}

fn read_string(lookup: Lookup, name: &'static str, default: &str) -> String {
    lookup(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn read_secret(lookup: Lookup, name: &'static str, default: &str) -> Result<SecretString, ConfigError> {
    let value = read_string(lookup, name, default);
    if value.len() < 16 {
        return Err(ConfigError::Invalid {
            name,
            value: "<redacted>".into(),
            reason: "a secret needs at least 16 characters".into(),
        });
    }
    Ok(SecretString::from(value))
}

fn read_seconds(lookup: Lookup, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    read(lookup, name, default).map(Duration::from_secs)
}

fn read_millis(lookup: Lookup, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    read(lookup, name, default).map(Duration::from_millis)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The local defaults, whatever the environment says: what tests start from.
    pub fn local_defaults() -> Self {
        match Self::from_lookup(&|_| None) {
            Ok(config) => config,
            Err(e) => unreachable!("the built-in defaults are valid: {e}"),
        }
    }

    pub fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        let pg = "postgres://postgres@127.0.0.1:5432";
        let gateway_addr = read(lookup, "GATEWAY_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let auth_addr = read(lookup, "AUTH_ADDR", SocketAddr::from(([127, 0, 0, 1], 8081)))?;
        let payments_addr = read(lookup, "PAYMENTS_ADDR", SocketAddr::from(([127, 0, 0, 1], 8082)))?;
        let ledger_addr = read(lookup, "LEDGER_ADDR", SocketAddr::from(([127, 0, 0, 1], 8083)))?;
        let bcrypt_cost = read(lookup, "BCRYPT_COST", 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::Invalid {
                name: "BCRYPT_COST",
                value: bcrypt_cost.to_string(),
                reason: "bcrypt takes a cost from 4 to 31".into(),
            });
        }
        let api_keys_per_user_max = read(lookup, "API_KEYS_PER_USER_MAX", 25u32)?;
        if api_keys_per_user_max == 0 {
            return Err(ConfigError::Invalid {
                name: "API_KEYS_PER_USER_MAX",
                value: "0".into(),
                reason: "a user needs at least one API key".into(),
            });
        }
        let log_format = match read_string(lookup, "LOG_FORMAT", "text").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    name: "LOG_FORMAT",
                    value: other.into(),
                    reason: "expected text or json".into(),
                });
            }
        };
        Ok(Self {
            redis_url: read_string(lookup, "REDIS_URL", "redis://127.0.0.1:6379"),
            redis_prefix: read_string(lookup, "REDIS_PREFIX", "micro:"),
            auth_database_url: read_string(lookup, "AUTH_DATABASE_URL", &format!("{pg}/micro_auth")),
            payments_database_url: read_string(
                lookup,
                "PAYMENTS_DATABASE_URL",
                &format!("{pg}/micro_payments"),
            ),
            ledger_database_url: read_string(lookup, "LEDGER_DATABASE_URL", &format!("{pg}/micro_ledger")),
            jwt_secret: read_secret(lookup, "JWT_SECRET", DEV_JWT_SECRET)?,
            internal_token_secret: read_secret(lookup, "INTERNAL_TOKEN_SECRET", DEV_INTERNAL_TOKEN_SECRET)?,
            api_key_hash_secret: read_secret(lookup, "API_KEY_HASH_SECRET", DEV_API_KEY_HASH_SECRET)?,
            rate_limit_per_minute: read(lookup, "RATE_LIMIT_PER_MINUTE", 100)?,
            auth_rate_limit_per_minute: read(lookup, "AUTH_RATE_LIMIT_PER_MINUTE", 20)?,
            rate_limit_window: read_seconds(lookup, "RATE_LIMIT_WINDOW_SECONDS", 60)?,
            auth_url: read_string(lookup, "AUTH_URL", &format!("http://{auth_addr}")),
            payments_url: read_string(lookup, "PAYMENTS_URL", &format!("http://{payments_addr}")),
            ledger_url: read_string(lookup, "LEDGER_URL", &format!("http://{ledger_addr}")),
            gateway_addr,
            auth_addr,
            payments_addr,
            ledger_addr,
            bcrypt_cost,
            access_token_ttl: read_seconds(lookup, "ACCESS_TOKEN_TTL_SECONDS", 15 * 60)?,
            refresh_token_ttl: read_seconds(lookup, "REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            max_failed_logins: read(lookup, "MAX_FAILED_LOGINS", 5)?,
            login_lockout_base: read_millis(lookup, "LOGIN_LOCKOUT_BASE_MS", 1000)?,
            login_lockout: read_seconds(lookup, "LOGIN_LOCKOUT_SECONDS", 15 * 60)?,
            api_keys_per_user_max,
            db_timeouts: crate::db::DbTimeouts {
                statement: read_millis(lookup, "DB_STATEMENT_TIMEOUT_MS", 5_000)?,
                lock: read_millis(lookup, "DB_LOCK_TIMEOUT_MS", 2_000)?,
                idle_in_transaction: read_millis(lookup, "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 10_000)?,
            },
            fee_basis_points: read(lookup, "FEE_BASIS_POINTS", 290)?,
            fee_fixed_cents: read(lookup, "FEE_FIXED_CENTS", 30)?,
            log_format,
            gateway: GatewaySettings::from_lookup(lookup)?,
            clock: crate::clock::Clock::system(),
        })
    }

    /// The secrets that still hold their published development value.
    pub fn default_secrets(&self) -> Vec<&'static str> {
        [
            ("JWT_SECRET", &self.jwt_secret, DEV_JWT_SECRET),
            (
                "INTERNAL_TOKEN_SECRET",
                &self.internal_token_secret,
                DEV_INTERNAL_TOKEN_SECRET,
            ),
            (
                "API_KEY_HASH_SECRET",
                &self.api_key_hash_secret,
                DEV_API_KEY_HASH_SECRET,
            ),
        ]
        .into_iter()
        .filter(|(_, secret, default)| secret.expose_secret() == *default)
        .map(|(name, _, _)| name)
        .collect()
    }

    /// A release build of a single service refuses the development secrets,
    /// which are public in this repository.
    pub fn refuse_default_secrets_in_release(&self) -> Result<(), ConfigError> {
        if cfg!(debug_assertions) {
            return Ok(());
        }
        match self.default_secrets().first() {
            Some(name) => Err(ConfigError::DefaultSecret(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let config = Config::local_defaults();
        assert_eq!(config.rate_limit_per_minute, 100);
        assert_eq!(config.gateway_addr.port(), 8080);
        assert_eq!(config.ledger_url, "http://127.0.0.1:8083");
        assert_eq!(
            config.auth_database_url,
            "postgres://postgres@127.0.0.1:5432/micro_auth"
        );
        assert_eq!(config.default_secrets().len(), 3);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = with(&[("RATE_LIMIT_PER_MINUTE", "lots")]).expect_err("not a number");
        assert!(err.to_string().starts_with("RATE_LIMIT_PER_MINUTE="), "{err}");
        let err = with(&[("JWT_SECRET", "short")]).expect_err("too short");
        assert!(
            err.to_string().contains("JWT_SECRET") && !err.to_string().contains("short\""),
            "{err}"
        );
    }

    #[test]
    fn own_secrets_are_not_reported_as_defaults() {
        let config = with(&[
            ("JWT_SECRET", "a-real-secret-of-some-length"),
            ("INTERNAL_TOKEN_SECRET", "another-real-secret-value"),
            ("API_KEY_HASH_SECRET", "a-third-real-secret-value"),
        ])
        .expect("valid");
        assert!(config.default_secrets().is_empty());
    }
}
