//! Prometheus metrics: one recorder per process (the all-in-one shares it
//! between its services, told apart by the `service` label).
//!
//! Every label value comes from a fixed set: the method from the standard
//! ones (else `OTHER`), the route from the matched template (else
//! `unmatched`), so that no request can add a series.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .install_recorder();
            match recorder {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics` in the Prometheus text format.
pub fn routes() -> Router {
    // Installing here makes sure the recorder exists before the first request.
    let _ = handle();
    Router::new().route(
        "/metrics",
        get(|| async { handle().map(PrometheusHandle::render).unwrap_or_default() }),
    )
}

/// Serves `/metrics` alone on `listener`, apart from any public router, until
/// `shutdown`.
pub fn serve(
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<crate::http::Server> {
    let app = routes().fallback(crate::error::route_not_found);
    crate::http::spawn(listener, app, shutdown)
}

/// The method as a label: one of a fixed set, so that invented methods
/// cannot add series.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub(crate) async fn track_request(service: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("service", service.to_owned()),
        ("route", route),
        ("method", method.to_owned()),
        ("status", status),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::method_label;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for name in ["FOO", "PROPFIND", "get", "CONNECT", "TRACE"] {
            let method = Method::from_bytes(name.as_bytes()).expect("a valid token");
            assert_eq!(method_label(&method), "OTHER", "{name}");
        }
    }
}
