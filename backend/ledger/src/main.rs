#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "ledger",
        |config: ledger::LedgerSettings, listener, shutdown| async move {
            ledger::build(&config, listener, shutdown).await
        },
    )
    .await
}
