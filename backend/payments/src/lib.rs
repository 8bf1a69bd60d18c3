//! The payments service: payments and refunds with Stripe's lifecycle and
//! idempotency keys, the events they emit (written with each change,
//! published to Redis as soon as it commits, and swept from the outbox when
//! that fails), and the ledger postings they
//! owe (written with each success or refund and delivered exactly once by a
//! posting worker). Every route sits behind the internal token.

mod config;
mod domain;
mod error;
pub mod failpoints;
mod routes;
mod state;
mod store;
mod workers;

use anyhow::Context;
use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::PaymentsSettings;
pub use error::PaymentsError;
pub use routes::{openapi, router};
pub use state::AppState;
pub use workers::PUBLISH_NOW_WITHIN;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/payments");

/// Connections in the service's pool: requests, plus one each for the publisher and the posting worker.
const MAX_CONNECTIONS: u32 = 24;

/// Connects to the database, migrates, starts the background workers, and
/// serves on `listener` until `shutdown`, which also stops the workers.
///
/// Redis is not needed to start or to answer: events wait in the outbox
/// until the publisher reaches it, so readiness checks PostgreSQL only.
pub async fn build(
    config: &PaymentsSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    // A connection that broke since its last use fails the one request that
    // finds out, which answers 503 database_unavailable with nothing written
    // (its transaction rolls back) and is retried under its idempotency key;
    // checking every connection first would add a round trip to every request.
    let pool = platform::db::Pool {
        max_connections: MAX_CONNECTIONS,
        ping_before_use: false,
    };
    let db = config
        .database
        .connect(&MIGRATOR, pool)
        .await
        .context("payments database")?;
    let (events, committed) = state::CommittedEvents::channel();
    let state = AppState::new(config, db.clone(), events).context("payments fee schedule")?;
    workers::spawn(&state, config, committed, shutdown.clone());
    let app = router(state)
        .merge(health::routes(Readiness {
            postgres: Some(db),
            redis: None,
        }))
        .merge(platform::metrics::routes());
    let app = platform::http::layered(app, "payments");
    Ok(platform::http::spawn(listener, app, shutdown)?)
}
