use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let config = stack::StackSettings::from_env()?;
    platform::telemetry::init(config.log_format());
    // The all-in-one is for laptops and demos, so it runs with the development
    // secrets, but only where nobody else can reach it.
    stack::refuse_development_secrets_off_loopback(&config)?;
    let defaults = config.default_secrets();
    if !defaults.is_empty() {
        tracing::warn!(
            secrets = ?defaults,
            "running with development secrets on loopback only: fine on a laptop, never in production"
        );
    }
    let shutdown = platform::shutdown::on_signal();
    let stack = stack::Stack::start(config, shutdown).await?;
    tracing::info!(
        gateway = %stack.gateway,
        auth = %stack.auth,
        payments = %stack.payments,
        ledger = %stack.ledger,
        metrics = %stack.metrics,
        ready_in_ms = started.elapsed().as_millis() as u64,
        "micro-stack ready"
    );
    stack.wait().await
}
