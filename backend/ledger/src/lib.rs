//! The ledger service: double-entry accounts, transactions and entries, with
//! exact balances under concurrent postings. Payments posts every succeeded
//! payment and refund here; users read their balances and post manual
//! journal entries between their own accounts. Every route sits behind the
//! internal token: only the gateway and the other services reach it.

mod chart;
mod config;
mod directory;
pub mod domain;
mod error;
mod posting;
mod routes;
#[cfg(feature = "soak")]
pub mod soak;
mod state;

use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::LedgerSettings;
pub use error::LedgerError;
pub use posting::PAYMENTS_POSTER;
pub use routes::router;
pub use state::AppState;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/ledger");

/// Connections to PostgreSQL: enough for many concurrent postings, few
/// enough to leave room for the other services on one server.
const POOL_SIZE: u32 = 20;

/// The pool the routes use. sqlx pings an idle connection before handing it
/// out by default: a second round trip for every one-statement posting. The
/// ledger skips it; a connection that died is dropped by the pool after the
/// query that finds out, and a posting that met one is retried (postings are
/// idempotent by reference).
/// Its sessions run under the same timeouts as every other pool.
fn serving_pool(
    url: &str,
    timeouts: &platform::db::DbTimeouts,
) -> Result<sqlx::PgPool, platform::db::DbSetupError> {
    let options = timeouts.connect_options(url)?;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// The public routes of the ledger, for the gateway's `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    routes::ApiDoc::openapi()
}

/// Connects to the database, migrates, and serves on `listener` until `shutdown`.
pub async fn build(
    config: &LedgerSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    use anyhow::Context;
    use secrecy::ExposeSecret;
    let url = config.database.url.expose_secret();
    let migrated = platform::db::connect_and_migrate(url, &MIGRATOR, 1, &config.database.timeouts)
        .await
        .context("ledger database")?;
    migrated.close().await;
    let db = serving_pool(url, &config.database.timeouts).context("ledger database")?;
    let state = AppState::new(config, db.clone());
    let app = router(state)
        .merge(health::routes(Readiness {
            postgres: Some(db),
            redis: None,
        }))
        .merge(platform::metrics::routes());
    let app = platform::http::layered(app, "ledger");
    Ok(platform::http::spawn(listener, app, shutdown)?)
}
