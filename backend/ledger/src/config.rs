//! Everything the ledger reads: where it listens, its database, and the
//! secret it checks internal tokens with. It has no Redis and issues no
//! session, so it reads neither.

use platform::config::{
    ConfigError, DatabaseSettings, INTERNAL_TOKEN_SECRET, Lookup, ServerSettings, ServiceConfig,
    development_secrets,
};
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct LedgerSettings {
    pub server: ServerSettings,
    /// `LEDGER_DATABASE_URL` and the session timeouts.
    pub database: DatabaseSettings,
    pub internal_token_secret: SecretString,
    /// Batches of postings in flight at once: one (see
    /// `store::group_commit`). Not read from the environment; tests raise it
    /// to stand for several ledger processes writing at once.
    pub posting_writers: usize,
}

impl ServiceConfig for LedgerSettings {
    fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerSettings::from_lookup(lookup, "LEDGER_ADDR", 8083)?,
            database: DatabaseSettings::from_lookup(lookup, "LEDGER_DATABASE_URL", "micro_ledger")?,
            internal_token_secret: INTERNAL_TOKEN_SECRET.read(lookup)?,
            posting_writers: 1,
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
        let settings = LedgerSettings::from_pairs(&[]).expect("defaults are valid");
        assert_eq!(settings.server.addr.to_string(), "127.0.0.1:8083");
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://postgres@127.0.0.1:5432/micro_ledger"
        );
        assert_eq!(settings.default_secrets(), vec!["INTERNAL_TOKEN_SECRET"]);
    }

    #[test]
    fn the_secrets_of_other_services_are_not_its_concern() {
        // A ledger given only its own secret starts, whatever the session
        // and key-hashing secrets hold: it reads neither.
        let settings = LedgerSettings::from_pairs(&[
            ("INTERNAL_TOKEN_SECRET", "a-real-secret-of-some-length"),
            ("JWT_SECRET", "short"),
        ])
        .expect("valid");
        assert!(settings.default_secrets().is_empty());
        assert!(settings.refuse_default_secrets_in_release().is_ok());
    }

    #[test]
    fn the_database_url_is_not_printed() {
        let settings = LedgerSettings::from_pairs(&[(
            "LEDGER_DATABASE_URL",
            "postgres://micro_ledger:hunter2hunter2@db:5432/micro_ledger",
        )])
        .expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
