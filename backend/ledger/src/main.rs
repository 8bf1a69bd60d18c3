#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "ledger",
        |config| config.ledger_addr,
        |config, listener, shutdown| async move { ledger::build(&config, listener, shutdown).await },
    )
    .await
}
