//! Everything payments reads: where it listens, its database, the Redis its
//! events are published to, where the ledger answers, the secret its
//! internal tokens are signed and checked with, and the fee schedule.

use platform::config::{
    ConfigError, DatabaseSettings, INTERNAL_TOKEN_SECRET, Lookup, RedisSettings, ServerSettings,
    ServiceConfig, development_secrets, read, read_peer_url,
};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct PaymentsSettings {
    pub server: ServerSettings,
    /// `PAYMENTS_DATABASE_URL` and the session timeouts.
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    /// Checks the gateway's tokens and signs the ones sent to the ledger.
    pub internal_token_secret: SecretString,
    pub ledger_url: String,
    /// Payment fee in basis points of the amount, plus a fixed part in
    /// hundredths of the currency's major unit (30 is 0.30 USD, 0.30 JPY).
    pub fee_basis_points: i64,
    pub fee_fixed_cents: i64,
}

impl ServiceConfig for PaymentsSettings {
    fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerSettings::from_lookup(lookup, "PAYMENTS_ADDR", 8082)?,
            database: DatabaseSettings::from_lookup(lookup, "PAYMENTS_DATABASE_URL", "micro_payments")?,
            redis: RedisSettings::from_lookup(lookup),
            internal_token_secret: INTERNAL_TOKEN_SECRET.read(lookup)?,
            ledger_url: read_peer_url(lookup, "LEDGER_URL", "LEDGER_ADDR", 8083)?,
            fee_basis_points: read(lookup, "FEE_BASIS_POINTS", 290)?,
            fee_fixed_cents: read(lookup, "FEE_FIXED_CENTS", 30)?,
        })
    }

    fn server(&self) -> &ServerSettings {
        &self.server
    }

    fn default_secrets(&self) -> Vec<&'static str> {
        development_secrets(&[(INTERNAL_TOKEN_SECRET, &self.internal_token_secret)])
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let settings = PaymentsSettings::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(settings.server.addr.to_string(), "127.0.0.1:8082");
        assert_eq!(settings.ledger_url, "http://127.0.0.1:8083");
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/micro_payments"
        );
        assert_eq!((settings.fee_basis_points, settings.fee_fixed_cents), (290, 30));
        assert_eq!(settings.default_secrets(), vec!["INTERNAL_TOKEN_SECRET"]);
    }

    #[test]
    fn only_its_own_secret_is_read() {
        let settings = PaymentsSettings::from_pairs(&[
            ("INTERNAL_TOKEN_SECRET", "a-real-secret-of-some-length"),
            ("JWT_SECRET", "short"),
            ("API_KEY_HASH_SECRET", "short"),
        ])
        .expect("valid");
        assert!(settings.default_secrets().is_empty());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = PaymentsSettings::from_pairs(&[("FEE_BASIS_POINTS", "a few")]).expect_err("not a number");
        assert!(err.to_string().starts_with("FEE_BASIS_POINTS="), "{err}");
    }
}
