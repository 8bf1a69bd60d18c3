//! The ledger service. Until its issue lands it answers only its health routes.

use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves on `listener` until `shutdown`.
pub async fn build(
    _config: &platform::Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    let app = health::routes(Readiness::default()).merge(platform::metrics::routes());
    let app = platform::http::layered(app, "ledger");
    Ok(platform::http::spawn(listener, app, shutdown)?)
}
