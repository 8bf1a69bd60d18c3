//! The gateway: the platform's one public door. It authenticates callers
//! (API keys, session tokens), applies rate limits, forwards to the services
//! with an internal token, and streams events over WebSocket.

mod authn;
mod config;
mod domain;
mod error;
mod routes;
mod state;
mod store;

use std::time::Duration;

use anyhow::Context;
use platform::health::{self, Readiness};
use platform::http::Server;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::GatewaySettings;
pub use error::GatewayError;
pub use routes::{openapi, router};
pub use state::AppState;

/// Connects to Redis, starts the one event subscription of this process, and
/// serves on `listener` until `shutdown`. `/metrics` is not among the routes:
/// the binary serves it on its own address (`platform::metrics::serve`).
pub async fn build(
    config: &GatewaySettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Server> {
    let redis = platform::redis::connect(&config.redis.url)
        .await
        .context("the gateway cannot reach Redis")?;
    let state = AppState::new(config, redis.clone(), shutdown.clone())?;
    let watch = routes::stream::listener::Watch {
        heartbeat: config.subscription_heartbeat,
        deadline: config.subscription_deadline,
    };
    let listening =
        routes::stream::listener::spawn(state.clone(), config.redis.url.clone(), watch, shutdown.clone());
    // Streams opened before the subscription exists could miss events.
    tokio::time::timeout(Duration::from_secs(5), listening)
        .await
        .context("the gateway could not subscribe to events in Redis")?
        .context("the event subscription stopped before it started")?;
    let app = router(state).merge(health::routes(Readiness {
        postgres: None,
        redis: Some(redis),
    }));
    // Outermost, so that no route, fallback or authentication sees a
    // non-canonical path.
    let app = platform::http::layered(app, "gateway")
        .layer(axum::middleware::from_fn(domain::canonical::refuse_non_canonical));
    Ok(platform::http::spawn(listener, app, shutdown)?)
}
