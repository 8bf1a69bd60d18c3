#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "payments",
        |config| config.payments_addr,
        |config, listener, shutdown| async move { payments::build(&config, listener, shutdown).await },
    )
    .await
}
