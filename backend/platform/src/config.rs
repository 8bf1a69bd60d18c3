//! Every setting comes from the environment, with a local default, and is
//! read once at start-up. A bad value names its variable.
//!
//! Each service has a configuration of its own, in its own crate, that
//! holds only what that service reads: a service is never handed a secret it
//! does not use, and never refuses to start over one. What they share lives
//! here: the readers, the pieces several services read alike (Redis, a
//! database, the log format, listen addresses, the secrets two services
//! must agree on), and [`ServiceConfig`], which a single-service binary
//! starts from.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::db::DbTimeouts;

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

/// Where settings come from: the process environment in a binary, a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A service's whole configuration, as its binary reads it at start-up.
pub trait ServiceConfig: Sized {
    fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError>;

    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Read from `vars` alone, as a test gives them.
    fn from_pairs(vars: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// Where the service listens and how it logs.
    fn server(&self) -> &ServerSettings;

    /// Where the service's public routes listen.
    fn listen_addr(&self) -> SocketAddr {
        self.server().addr
    }

    fn log_format(&self) -> LogFormat {
        self.server().log_format
    }

    /// The variables, among the secrets this service reads, that still hold
    /// their published development value.
    fn default_secrets(&self) -> Vec<&'static str>;

    /// A release build of a single service refuses the development secrets
    /// it uses, which are public in this repository.
    fn refuse_default_secrets_in_release(&self) -> Result<(), ConfigError> {
        if cfg!(debug_assertions) {
            return Ok(());
        }
        match self.default_secrets().first() {
            Some(name) => Err(ConfigError::DefaultSecret(name)),
            None => Ok(()),
        }
    }
}

pub fn read<T: FromStr>(lookup: Lookup, name: &'static str, default: T) -> Result<T, ConfigError>
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

pub fn read_string(lookup: Lookup, name: &'static str, default: &str) -> String {
    lookup(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn read_seconds(lookup: Lookup, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    read(lookup, name, default).map(Duration::from_secs)
}

pub fn read_millis(lookup: Lookup, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    read(lookup, name, default).map(Duration::from_millis)
}

/// A listen address, on loopback at `port` unless `name` says otherwise.
/// What every service reads alike: where it listens and how it logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    pub log_format: LogFormat,
}

impl ServerSettings {
    /// The address from `addr_name`, else loopback at `port`, and `LOG_FORMAT`.
    pub fn from_lookup(lookup: Lookup, addr_name: &'static str, port: u16) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: read_listen_addr(lookup, addr_name, port)?,
            log_format: LogFormat::from_lookup(lookup)?,
        })
    }
}

pub fn read_listen_addr(lookup: Lookup, name: &'static str, port: u16) -> Result<SocketAddr, ConfigError> {
    read(lookup, name, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Where another service answers: `url_name` when set, else the address that
/// service itself would listen on (`addr_name`, else loopback at `port`), so
/// that moving a service with its `*_ADDR` alone moves it for its callers too.
pub fn read_peer_url(
    lookup: Lookup,
    url_name: &'static str,
    addr_name: &'static str,
    port: u16,
) -> Result<String, ConfigError> {
    let addr = read_listen_addr(lookup, addr_name, port)?;
    Ok(read_string(lookup, url_name, &format!("http://{addr}")))
}

/// A secret variable with the development value it falls back to, which is
/// public in this repository.
#[derive(Debug, Clone, Copy)]
pub struct SecretVar {
    pub name: &'static str,
    pub development: &'static str,
}

/// Signs the session tokens auth issues and the gateway verifies.
pub const JWT_SECRET: SecretVar = SecretVar {
    name: "JWT_SECRET",
    development: "dev-jwt-secret-change-me",
};

/// Signs the internal tokens every service accepts and the gateway and
/// payments send.
pub const INTERNAL_TOKEN_SECRET: SecretVar = SecretVar {
    name: "INTERNAL_TOKEN_SECRET",
    development: "dev-internal-token-secret-change-me",
};

impl SecretVar {
    pub fn read(&self, lookup: Lookup) -> Result<SecretString, ConfigError> {
        let value = read_string(lookup, self.name, self.development);
        if value.len() < 16 {
            return Err(ConfigError::Invalid {
                name: self.name,
                value: "<redacted>".into(),
                reason: "a secret needs at least 16 characters".into(),
            });
        }
        Ok(SecretString::from(value))
    }

    pub fn is_development(&self, value: &SecretString) -> bool {
        value.expose_secret() == self.development
    }
}

/// The names of the secrets in `secrets` that hold their development value.
pub fn development_secrets(secrets: &[(SecretVar, &SecretString)]) -> Vec<&'static str> {
    secrets
        .iter()
        .filter(|(var, value)| var.is_development(value))
        .map(|(var, _)| var.name)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        match read_string(lookup, "LOG_FORMAT", "text").as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(ConfigError::Invalid {
                name: "LOG_FORMAT",
                value: other.into(),
                reason: "expected text or json".into(),
            }),
        }
    }
}

/// The Redis that carries events, revocations and rate-limit counters.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Prepended to every Redis key and channel, so that several stacks (or
    /// tests) can share one Redis without seeing each other.
    pub prefix: String,
}

impl RedisSettings {
    pub fn from_lookup(lookup: Lookup) -> Self {
        Self {
            url: read_string(lookup, "REDIS_URL", "redis://127.0.0.1:6379"),
            prefix: read_string(lookup, "REDIS_PREFIX", "micro:"),
        }
    }

    pub fn keys(&self) -> crate::redis::Keys {
        crate::redis::Keys::new(self.prefix.clone())
    }
}

/// A service's own database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Secret because under compose it carries the service role's password.
    pub url: SecretString,
    /// Limits set on every session of the service's pools.
    pub timeouts: DbTimeouts,
}

impl DatabaseSettings {
    /// The service's pool, after its migrations: every service's is made here.
    pub async fn connect(
        &self,
        migrator: &sqlx::migrate::Migrator,
        pool: crate::db::Pool,
    ) -> Result<sqlx::PgPool, crate::db::DbSetupError> {
        crate::db::connect_and_migrate(self.url.expose_secret(), migrator, pool, &self.timeouts).await
    }

    /// Reads `name`, which defaults to `database` on the local PostgreSQL.
    pub fn from_lookup(lookup: Lookup, name: &'static str, database: &str) -> Result<Self, ConfigError> {
        let default = format!("postgres://postgres@127.0.0.1:5432/{database}");
        Ok(Self {
            url: SecretString::from(read_string(lookup, name, &default)),
            timeouts: DbTimeouts::from_lookup(lookup)?,
        })
    }
}

impl DbTimeouts {
    pub fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        let millis = |d: Duration| d.as_millis() as u64;
        Ok(Self {
            statement: read_millis(lookup, "DB_STATEMENT_TIMEOUT_MS", millis(Self::DEFAULT.statement))?,
            lock: read_millis(lookup, "DB_LOCK_TIMEOUT_MS", millis(Self::DEFAULT.lock))?,
            idle_in_transaction: read_millis(
                lookup,
                "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                millis(Self::DEFAULT.idle_in_transaction),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_match_the_design() {
        let none = lookup(&[]);
        assert_eq!(RedisSettings::from_lookup(&none).url, "redis://127.0.0.1:6379");
        assert_eq!(
            read_peer_url(&none, "LEDGER_URL", "LEDGER_ADDR", 8083).expect("valid"),
            "http://127.0.0.1:8083"
        );
        let database =
            DatabaseSettings::from_lookup(&none, "AUTH_DATABASE_URL", "micro_auth").expect("valid");
        assert_eq!(
            database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/micro_auth"
        );
        assert_eq!(database.timeouts, DbTimeouts::DEFAULT);
        assert_eq!(LogFormat::from_lookup(&none).expect("valid"), LogFormat::Text);
        assert!(JWT_SECRET.is_development(&JWT_SECRET.read(&none).expect("valid")));
    }

    #[test]
    fn a_peer_url_follows_the_peer_address_unless_set() {
        let moved = lookup(&[("LEDGER_ADDR", "127.0.0.1:9083")]);
        assert_eq!(
            read_peer_url(&moved, "LEDGER_URL", "LEDGER_ADDR", 8083).expect("valid"),
            "http://127.0.0.1:9083"
        );
        let set = lookup(&[
            ("LEDGER_ADDR", "127.0.0.1:9083"),
            ("LEDGER_URL", "http://ledger:8083"),
        ]);
        assert_eq!(
            read_peer_url(&set, "LEDGER_URL", "LEDGER_ADDR", 8083).expect("valid"),
            "http://ledger:8083"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = read::<u32>(
            &lookup(&[("RATE_LIMIT_PER_MINUTE", "lots")]),
            "RATE_LIMIT_PER_MINUTE",
            100,
        )
        .expect_err("not a number");
        assert!(err.to_string().starts_with("RATE_LIMIT_PER_MINUTE="), "{err}");
        let err = JWT_SECRET
            .read(&lookup(&[("JWT_SECRET", "short")]))
            .expect_err("too short");
        assert!(
            err.to_string().contains("JWT_SECRET") && !err.to_string().contains("short\""),
            "{err}"
        );
        let err = LogFormat::from_lookup(&lookup(&[("LOG_FORMAT", "xml")])).expect_err("unknown");
        assert!(err.to_string().starts_with("LOG_FORMAT="), "{err}");
        let err =
            DbTimeouts::from_lookup(&lookup(&[("DB_LOCK_TIMEOUT_MS", "soon")])).expect_err("not a number");
        assert!(err.to_string().starts_with("DB_LOCK_TIMEOUT_MS="), "{err}");
    }

    #[test]
    fn own_secrets_are_not_reported_as_defaults() {
        let own = lookup(&[("JWT_SECRET", "a-real-secret-of-some-length")]);
        let jwt = JWT_SECRET.read(&own).expect("valid");
        let internal = INTERNAL_TOKEN_SECRET.read(&own).expect("valid");
        assert_eq!(
            development_secrets(&[(JWT_SECRET, &jwt), (INTERNAL_TOKEN_SECRET, &internal)]),
            vec!["INTERNAL_TOKEN_SECRET"]
        );
    }
}
