//! `/healthz` says the process is alive; `/readyz` says its stores answer.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgPool;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
pub struct Readiness {
    pub postgres: Option<PgPool>,
    pub redis: Option<ConnectionManager>,
}

pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    if let Some(pool) = &readiness.postgres {
        let ok = matches!(
            tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(pool)).await,
            Ok(Ok(_))
        );
        all_ok &= ok;
        checks.insert("postgres".into(), json!(if ok { "ok" } else { "down" }));
    }
    if let Some(redis) = &readiness.redis {
        let mut conn = redis.clone();
        let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
        let ok = matches!(tokio::time::timeout(CHECK_TIMEOUT, ping).await, Ok(Ok(_)));
        all_ok &= ok;
        checks.insert("redis".into(), json!(if ok { "ok" } else { "down" }));
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if all_ok { "ready" } else { "not_ready" }, "checks": checks});
    (status, axum::Json(body))
}
