//! Everything auth reads: where it listens, its database, the Redis it
//! counts in and announces revocations on, the three secrets it signs and
//! hashes with, token lifetimes, and the limits on logins and keys.

use std::time::Duration;

use platform::config::{
    ConfigError, DatabaseSettings, INTERNAL_TOKEN_SECRET, JWT_SECRET, Lookup, RedisSettings, SecretVar,
    ServerSettings, ServiceConfig, development_secrets, read, read_millis, read_seconds,
};
use secrecy::SecretString;

/// Keys the SHA-256 under which API keys are stored; only auth holds it.
const API_KEY_HASH_SECRET: SecretVar = SecretVar {
    name: "API_KEY_HASH_SECRET",
    development: "dev-api-key-hash-secret-change-me",
};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub server: ServerSettings,
    /// `AUTH_DATABASE_URL` and the session timeouts.
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    /// Signs the session tokens it issues; the gateway checks them with it.
    pub jwt_secret: SecretString,
    /// Checks the internal tokens the gateway sends.
    pub internal_token_secret: SecretString,
    pub api_key_hash_secret: SecretString,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub bcrypt_cost: u32,
    /// Failed logins one client address may make on one email before each
    /// further attempt waits: `login_lockout_base`, doubling with every
    /// failure, never longer than `login_lockout`.
    pub max_failed_logins: u32,
    pub login_lockout_base: Duration,
    pub login_lockout: Duration,
    /// Active (unrevoked) API keys a user may hold at once.
    pub api_keys_per_user_max: u32,
    /// What login lockouts count from: the system clock, unless a test
    /// replaces it. Not read from the environment.
    pub clock: platform::clock::Clock,
}

impl ServiceConfig for AuthSettings {
    fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
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
        Ok(Self {
            server: ServerSettings::from_lookup(lookup, "AUTH_ADDR", 8081)?,
            database: DatabaseSettings::from_lookup(lookup, "AUTH_DATABASE_URL", "micro_auth")?,
            redis: RedisSettings::from_lookup(lookup),
            jwt_secret: JWT_SECRET.read(lookup)?,
            internal_token_secret: INTERNAL_TOKEN_SECRET.read(lookup)?,
            api_key_hash_secret: API_KEY_HASH_SECRET.read(lookup)?,
            access_token_ttl: read_seconds(lookup, "ACCESS_TOKEN_TTL_SECONDS", 15 * 60)?,
            refresh_token_ttl: read_seconds(lookup, "REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            bcrypt_cost,
            max_failed_logins: read(lookup, "MAX_FAILED_LOGINS", 5)?,
            login_lockout_base: read_millis(lookup, "LOGIN_LOCKOUT_BASE_MS", 1000)?,
            login_lockout: read_seconds(lookup, "LOGIN_LOCKOUT_SECONDS", 15 * 60)?,
            api_keys_per_user_max,
            clock: platform::clock::Clock::system(),
        })
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }

    fn default_secrets(&self) -> Vec<&'static str> {
        development_secrets(&[
            (JWT_SECRET, &self.jwt_secret),
            (INTERNAL_TOKEN_SECRET, &self.internal_token_secret),
            (API_KEY_HASH_SECRET, &self.api_key_hash_secret),
        ])
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let settings = AuthSettings::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(settings.server.addr.to_string(), "127.0.0.1:8081");
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/micro_auth"
        );
        assert_eq!(settings.bcrypt_cost, 12);
        assert_eq!(settings.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            settings.default_secrets(),
            vec!["JWT_SECRET", "INTERNAL_TOKEN_SECRET", "API_KEY_HASH_SECRET"]
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("BCRYPT_COST", "3"),
            ("BCRYPT_COST", "high"),
            ("ACCESS_TOKEN_TTL_SECONDS", "soon"),
            ("API_KEY_HASH_SECRET", "short"),
        ] {
            let err = AuthSettings::from_pairs(&[(name, value)]).expect_err("refused");
            assert!(err.to_string().contains(name), "{err}");
            assert!(
                name != "API_KEY_HASH_SECRET" || !err.to_string().contains("short\""),
                "{err}"
            );
        }
    }

    #[test]
    fn own_secrets_are_not_reported_as_defaults() {
        let settings = AuthSettings::from_pairs(&[
            ("JWT_SECRET", "a-real-secret-of-some-length"),
            ("INTERNAL_TOKEN_SECRET", "another-real-secret-value"),
            ("API_KEY_HASH_SECRET", "a-third-real-secret-value"),
        ])
        .expect("valid");
        assert!(settings.default_secrets().is_empty());
    }
}
