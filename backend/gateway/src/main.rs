#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "gateway",
        |config: gateway::GatewaySettings, listener, shutdown| async move {
            // Metrics are served apart from the public port, on an address
            // only the operator's network reaches.
            let metrics = platform::http::bind(config.metrics_addr).await?;
            let metrics = platform::metrics::serve(metrics, shutdown.clone())?;
            tracing::info!(addr = %metrics.local_addr, "gateway metrics listening");
            gateway::build(&config, listener, shutdown).await
        },
    )
    .await
}
