use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = platform::Config::from_env()?;
    platform::telemetry::init(config.log_format);
    config.refuse_default_secrets_in_release()?;
    let shutdown = platform::shutdown::on_signal();
    let listener = platform::http::bind(config.gateway_addr).await?;
    let server = gateway::build(&config, listener, shutdown).await?;
    tracing::info!(addr = %server.local_addr, "gateway listening");
    server.task.await.context("gateway server task")??;
    Ok(())
}
