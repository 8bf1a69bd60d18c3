//! The four services in one process. `micro-stack` runs it on the usual
//! ports; the end-to-end tests run it on ephemeral ports with fresh databases.

pub mod testing;

use std::net::SocketAddr;

use anyhow::Context;
use platform::Config;
use tokio_util::sync::CancellationToken;

/// A running stack: where each service listens.
#[derive(Debug)]
pub struct Stack {
    pub gateway: SocketAddr,
    pub auth: SocketAddr,
    pub payments: SocketAddr,
    pub ledger: SocketAddr,
    /// `/metrics` of all four services, apart from the public port.
    pub metrics: SocketAddr,
    /// The configuration the services run with, with the real addresses.
    pub config: Config,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl Stack {
    /// Binds all four listeners first, so that with port 0 every service
    /// learns the others' real addresses, then starts the services.
    pub async fn start(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let gateway = platform::http::bind(config.gateway_addr).await?;
        let auth = platform::http::bind(config.auth_addr).await?;
        let payments = platform::http::bind(config.payments_addr).await?;
        let ledger = platform::http::bind(config.ledger_addr).await?;
        let metrics = platform::http::bind(config.gateway.metrics_addr).await?;
        config.auth_url = format!("http://{}", auth.local_addr()?);
        config.payments_url = format!("http://{}", payments.local_addr()?);
        config.ledger_url = format!("http://{}", ledger.local_addr()?);

        let (auth, ledger) = tokio::try_join!(
            async {
                auth::build(&config, auth, shutdown.clone())
                    .await
                    .context("starting auth")
            },
            async {
                ledger::build(&config, ledger, shutdown.clone())
                    .await
                    .context("starting ledger")
            },
        )?;
        let payments = payments::build(&config, payments, shutdown.clone())
            .await
            .context("starting payments")?;
        let gateway = gateway::build(&config, gateway, shutdown.clone())
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
