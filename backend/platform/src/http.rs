//! The HTTP stack every service runs behind, and serving with graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, header};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::route_not_found;
use crate::internal_token;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The caller's address as the gateway's socket saw it. The gateway sets it
/// on every forwarded request and never forwards one from outside; services
/// believe it only on requests that carry a valid internal token.
pub const CLIENT_ADDRESS: HeaderName = HeaderName::from_static("x-micro-client-ip");
const BODY_LIMIT_BYTES: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps a service's routes in the shared stack: request ids (taken from the
/// caller when present, so one id follows a request through every service),
/// a tracing span per request naming the route, metrics, a timeout, a body
/// limit, panics turned into 500s, and secrets hidden from logs.
pub fn layered(router: Router, service: &'static str) -> Router {
    let sensitive = [
        header::AUTHORIZATION,
        header::COOKIE,
        HeaderName::from_static(internal_token::HEADER),
    ];
    router
        .fallback(route_not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::metrics::track_request(service, req, next)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new(sensitive))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request| {
                            let route = req
                                .extensions()
                                .get::<MatchedPath>()
                                .map(|p| p.as_str().to_owned())
                                .unwrap_or_default();
                            let request_id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            tracing::info_span!(
                                "request",
                                service,
                                method = %req.method(),
                                path = %req.uri().path(),
                                route,
                                request_id,
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                )),
        )
}

/// A server running in the background.
#[derive(Debug)]
pub struct Server {
    pub local_addr: SocketAddr,
    pub task: JoinHandle<io::Result<()>>,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets the
/// requests in flight finish.
pub fn spawn(listener: TcpListener, router: Router, shutdown: CancellationToken) -> io::Result<Server> {
    let local_addr = listener.local_addr()?;
    // Small writes (a WebSocket frame, a short JSON answer) leave at once
    // instead of waiting for Nagle's algorithm to gather them.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    });
    Ok(Server { local_addr, task })
}

/// Binds, or says which address could not be bound.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// The whole `main` of a single-service binary: its configuration, logs,
/// the refusal in release builds of the development secrets it uses,
/// binding, serving until Ctrl-C or SIGTERM.
pub async fn run_service<Config, Build, Running>(name: &'static str, build: Build) -> anyhow::Result<()>
where
    Config: crate::config::ServiceConfig,
    Build: FnOnce(Config, TcpListener, CancellationToken) -> Running,
    Running: std::future::Future<Output = anyhow::Result<Server>>,
{
    use anyhow::Context;
    let config = Config::from_env()?;
    crate::telemetry::init(config.log_format());
    config.refuse_default_secrets_in_release()?;
    let shutdown = crate::shutdown::on_signal();
    let listener = bind(config.listen_addr()).await?;
    let server = build(config, listener, shutdown).await?;
    tracing::info!(addr = %server.local_addr, "{name} listening");
    server
        .task
        .await
        .with_context(|| format!("{name} server task"))??;
    Ok(())
}
