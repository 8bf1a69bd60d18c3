#[tokio::main]
async fn main() -> anyhow::Result<()> {
    #[cfg(feature = "failpoints")]
    let _armed = payments::failpoints::arm_from_env();
    platform::http::run_service(
        "payments",
        |config: payments::PaymentsSettings, listener, shutdown| async move {
            payments::build(&config, listener, shutdown).await
        },
    )
    .await
}
