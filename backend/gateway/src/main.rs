#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "gateway",
        |config| config.gateway_addr,
        |config, listener, shutdown| async move { gateway::build(&config, listener, shutdown).await },
    )
    .await
}
