//! The auth service: users, sessions, API keys and webhook signing secrets.
//! Every route sits behind the internal token: only the gateway reaches it.

mod config;
mod domain;
mod error;
mod routes;
mod state;
mod store;

use std::sync::Arc;

use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::AuthSettings;
pub use error::AuthError;
pub use routes::{openapi, router};
pub use state::AppState;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/auth");

/// Connects to the stores, migrates, and serves on `listener` until `shutdown`.
pub async fn build(
    config: &AuthSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    use anyhow::Context;
    let db = config
        .database
        .connect(&MIGRATOR, platform::db::Pool::of(20))
        .await
        .context("auth database")?;
    let redis = platform::redis::connect(&config.redis.url)
        .await
        .context("auth cannot reach Redis")?;
    let state = AppState::new(config, db.clone(), redis.clone());
    let app = router(state)
        .merge(health::routes(Readiness {
            postgres: Some(db),
            redis: Some(redis),
        }))
        .merge(platform::metrics::routes());
    let app = platform::http::layered(app, "auth");
    Ok(platform::http::spawn(listener, app, shutdown)?)
}

/// The rules handlers apply, in the units they use, built once from the
/// configuration.
#[derive(Debug)]
pub(crate) struct Policy {
    pub bcrypt_cost: u32,
    pub refresh_token_ttl: chrono::Duration,
    /// Failed logins from one address on one email before attempts wait.
    pub free_login_attempts: i32,
    /// The first wait, in seconds; it doubles with every further failure.
    pub login_lockout_base_seconds: f64,
    /// The longest wait, and how long a quiet address keeps its count.
    pub login_lockout_max_seconds: f64,
    pub api_keys_per_user_max: i64,
    /// What a lockout counts from, so that tests can step past one.
    pub clock: platform::clock::Clock,
}

pub(crate) type SharedPolicy = Arc<Policy>;
