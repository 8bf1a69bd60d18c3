//! The four services in one process. `micro-stack` runs it on the usual
//! ports; the end-to-end tests (with the `testing` feature) run it on
//! ephemeral ports with fresh databases.

#[cfg(feature = "testing")]
pub mod testing;

use std::net::SocketAddr;

use anyhow::Context;
use auth::AuthSettings;
use gateway::GatewaySettings;
use ledger::LedgerSettings;
use payments::PaymentsSettings;
use platform::config::{ConfigError, LogFormat, Lookup, ServiceConfig};
use tokio_util::sync::CancellationToken;

/// The four services' configurations, each read from the one environment
/// as that service's own binary would read it.
#[derive(Debug, Clone)]
pub struct StackSettings {
    pub gateway: GatewaySettings,
    pub auth: AuthSettings,
    pub payments: PaymentsSettings,
    pub ledger: LedgerSettings,
}

impl StackSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            gateway: GatewaySettings::from_lookup(lookup)?,
            auth: AuthSettings::from_lookup(lookup)?,
            payments: PaymentsSettings::from_lookup(lookup)?,
            ledger: LedgerSettings::from_lookup(lookup)?,
        })
    }

    /// Every service reads the same `LOG_FORMAT`; one process logs one way.
    pub fn log_format(&self) -> LogFormat {
        self.gateway.server.log_format
    }

    /// The secret variables that still hold their development value in any
    /// of the four, each named once.
    pub fn default_secrets(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for name in [
            self.gateway.default_secrets(),
            self.auth.default_secrets(),
            self.payments.default_secrets(),
            self.ledger.default_secrets(),
        ]
        .into_iter()
        .flatten()
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// Why `micro-stack` will not start with the configuration it was given.
#[derive(Debug, thiserror::Error)]
#[error(
    "micro-stack would listen on {exposed} with the development secrets, which are public; \
     set {secrets} to secrets of your own, or listen on loopback addresses only"
)]
pub struct ExposedWithDevelopmentSecrets {
    /// `NAME=address` of each listen address that is not loopback.
    pub exposed: String,
    /// The variables that still hold their development value.
    pub secrets: String,
}

/// The all-in-one runs with the development secrets only where nobody else
/// can reach it: when every listen address is loopback. Listening anywhere
/// else with a secret everyone can read would let anyone mint tokens.
pub fn refuse_development_secrets_off_loopback(
    config: &StackSettings,
) -> Result<(), ExposedWithDevelopmentSecrets> {
    let defaults = config.default_secrets();
    if defaults.is_empty() {
        return Ok(());
    }
    let exposed: Vec<String> = [
        ("GATEWAY_ADDR", config.gateway.server.addr),
        ("AUTH_ADDR", config.auth.server.addr),
        ("PAYMENTS_ADDR", config.payments.server.addr),
        ("LEDGER_ADDR", config.ledger.server.addr),
    ]
    .into_iter()
    .filter(|(_, addr)| !addr.ip().is_loopback())
    .map(|(name, addr)| format!("{name}={addr}"))
    .collect();
    if exposed.is_empty() {
        return Ok(());
    }
    Err(ExposedWithDevelopmentSecrets {
        exposed: exposed.join(", "),
        secrets: defaults.join(", "),
    })
}

/// A running stack: where each service listens.
#[derive(Debug)]
pub struct Stack {
    pub gateway: SocketAddr,
    pub auth: SocketAddr,
    pub payments: SocketAddr,
    pub ledger: SocketAddr,
    /// `/metrics` of all four services, apart from the public port.
    pub metrics: SocketAddr,
    /// The configurations the services run with, with the real addresses.
    pub config: StackSettings,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl Stack {
    /// Binds all four listeners first, so that with port 0 every service
    /// learns the others' real addresses, then starts the services.
    pub async fn start(mut config: StackSettings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let gateway = platform::http::bind(config.gateway.server.addr).await?;
        let auth = platform::http::bind(config.auth.server.addr).await?;
        let payments = platform::http::bind(config.payments.server.addr).await?;
        let ledger = platform::http::bind(config.ledger.server.addr).await?;
        let metrics = platform::http::bind(config.gateway.metrics_addr).await?;
        config.gateway.auth_url = format!("http://{}", auth.local_addr()?);
        config.gateway.payments_url = format!("http://{}", payments.local_addr()?);
        config.gateway.ledger_url = format!("http://{}", ledger.local_addr()?);
        config.payments.ledger_url = config.gateway.ledger_url.clone();

        let (auth, ledger) = tokio::try_join!(
            async {
                auth::build(&config.auth, auth, shutdown.clone())
                    .await
                    .context("starting auth")
            },
            async {
                ledger::build(&config.ledger, ledger, shutdown.clone())
                    .await
                    .context("starting ledger")
            },
        )?;
        let payments = payments::build(&config.payments, payments, shutdown.clone())
            .await
            .context("starting payments")?;
        let gateway = gateway::build(&config.gateway, gateway, shutdown.clone())
            .await
            .context("starting gateway")?;
        // One recorder serves the whole process, so one listener serves all four.
        let metrics = platform::metrics::serve(metrics, shutdown.clone())?;
        Ok(Self {
            gateway: gateway.local_addr,
            auth: auth.local_addr,
            payments: payments.local_addr,
            ledger: ledger.local_addr,
            metrics: metrics.local_addr,
            config,
            tasks: vec![
                ("gateway", gateway.task),
                ("auth", auth.task),
                ("payments", payments.task),
                ("ledger", ledger.task),
                ("metrics", metrics.task),
            ],
        })
    }

    /// Waits until every server has stopped; the first failure wins.
    pub async fn wait(self) -> anyhow::Result<()> {
        for (name, task) in self.tasks {
            task.await
                .with_context(|| format!("{name} server task"))?
                .with_context(|| format!("{name} server"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> StackSettings {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StackSettings::from_lookup(&|name| map.get(name).cloned()).expect("a valid configuration")
    }

    const OWN_SECRETS: [(&str, &str); 3] = [
        ("JWT_SECRET", "a-real-secret-of-some-length"),
        ("INTERNAL_TOKEN_SECRET", "another-real-secret-value"),
        ("API_KEY_HASH_SECRET", "a-third-real-secret-value"),
    ];

    #[test]
    fn each_development_secret_is_named_once_whichever_services_read_it() {
        assert_eq!(
            config(&[]).default_secrets(),
            vec!["JWT_SECRET", "INTERNAL_TOKEN_SECRET", "API_KEY_HASH_SECRET"]
        );
    }

    #[test]
    fn development_secrets_are_fine_on_loopback() {
        assert!(refuse_development_secrets_off_loopback(&config(&[])).is_ok());
        let v6 = config(&[("GATEWAY_ADDR", "[::1]:8080"), ("AUTH_ADDR", "127.0.0.2:8081")]);
        assert!(refuse_development_secrets_off_loopback(&v6).is_ok());
    }

    #[test]
    fn development_secrets_off_loopback_are_refused_naming_the_variables() {
        let error = refuse_development_secrets_off_loopback(&config(&[("GATEWAY_ADDR", "0.0.0.0:8080")]))
            .expect_err("refused");
        let message = error.to_string();
        for name in [
            "GATEWAY_ADDR=0.0.0.0:8080",
            "JWT_SECRET",
            "INTERNAL_TOKEN_SECRET",
            "API_KEY_HASH_SECRET",
        ] {
            assert!(message.contains(name), "{message}");
        }
        assert!(!message.contains("AUTH_ADDR"), "{message}");
        // One development secret left is enough to refuse, and is named alone.
        let mut vars = vec![("LEDGER_ADDR", "192.0.2.10:8083")];
        vars.extend_from_slice(&OWN_SECRETS[..2]);
        let message = refuse_development_secrets_off_loopback(&config(&vars))
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("LEDGER_ADDR=192.0.2.10:8083") && message.contains("API_KEY_HASH_SECRET"),
            "{message}"
        );
        assert!(!message.contains("JWT_SECRET"), "{message}");
    }

    #[test]
    fn own_secrets_may_listen_anywhere() {
        let mut vars = vec![("GATEWAY_ADDR", "0.0.0.0:8080"), ("PAYMENTS_ADDR", "[::]:8082")];
        vars.extend_from_slice(&OWN_SECRETS);
        assert!(refuse_development_secrets_off_loopback(&config(&vars)).is_ok());
    }
}
