//! The ledger service: double-entry accounts, transactions and entries, with
//! exact balances under concurrent postings. Payments posts every succeeded
//! payment and refund here; users read their balances and post manual
//! journal entries between their own accounts. Every route sits behind the
//! internal token: only the gateway and the other services reach it.

mod config;
pub mod domain;
mod error;
mod routes;
#[cfg(feature = "soak")]
pub mod soak;
mod state;
mod store;

use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::LedgerSettings;
pub use error::LedgerError;
pub use routes::{openapi, router};
pub use state::AppState;
pub use store::posting::PAYMENTS_POSTER;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/ledger");

/// Connections to PostgreSQL: enough for many concurrent postings, few
/// enough to leave room for the other services on one server.
const POOL_SIZE: u32 = 20;

/// Connects to the database, migrates, and serves on `listener` until `shutdown`.
pub async fn build(
    config: &LedgerSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    use anyhow::Context;
    // Every posting is idempotent by reference and retried on a broken
    // connection, so the pool need not ping a connection before each one.
    let pool = platform::db::Pool {
        max_connections: POOL_SIZE,
        ping_before_use: false,
    };
    let db = config
        .database
        .connect(&MIGRATOR, pool)
        .await
        .context("ledger database")?;
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
