#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "payments",
        |config: payments::PaymentsSettings, listener, shutdown| async move {
            payments::build(&config, listener, shutdown).await
        },
    )
    .await
}
