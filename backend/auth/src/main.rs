#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::http::run_service(
        "auth",
        |config: auth::AuthSettings, listener, shutdown| async move {
            auth::build(&config, listener, shutdown).await
        },
    )
    .await
}
