//! Forwarding to a service: the caller's credentials stay here, a fresh
//! internal token goes along, and the service's answer comes back as it was.

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::internal_token::Caller;

use crate::authn::key_cache::Principal;
use crate::authn::token_cache::user_caller;
use crate::domain::canonical::{CanonicalPath, PathError, route_prefix};
use crate::{AppState, GatewayError};

const BODY_LIMIT_BYTES: usize = 1024 * 1024;
const INTERNAL_TOKEN: HeaderName = HeaderName::from_static(platform::internal_token::HEADER);

/// Request headers a service may need; everything else, credentials above
/// all, stays at the gateway.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("idempotency-key"),
    platform::http::REQUEST_ID,
];
const FORWARDED_RESPONSE_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    // A 405 must say which methods the route takes.
    header::ALLOW,
    header::RETRY_AFTER,
    header::LOCATION,
    HeaderName::from_static("idempotent-replayed"),
];

#[derive(Debug, Clone, Copy)]
pub enum Upstream {
    Auth,
    Payments,
    Ledger,
}

impl Upstream {
    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Payments => "payments",
            Self::Ledger => "ledger",
        }
    }
}

pub async fn to_auth(State(state): State<AppState>, req: Request) -> Response {
    forward(&state, Upstream::Auth, req).await.into_response()
}

pub async fn to_payments(State(state): State<AppState>, req: Request) -> Response {
    forward(&state, Upstream::Payments, req).await.into_response()
}

pub async fn to_ledger(State(state): State<AppState>, req: Request) -> Response {
    forward(&state, Upstream::Ledger, req).await.into_response()
}

/// A call to a service that got no whole answer. Refused, or reset or
/// closed before the answer ended, is a service that is down or restarting
/// (a killed process closes its connections mid-request): 503, which the
/// client retries with its idempotency key, as it would a refused
/// connection. (reqwest files a body cut short under "decode"; the gateway
/// decodes nothing it relays.) Only what is none of these, a request that
/// could not even be built, is a bad gateway.
pub fn upstream_error(upstream: &'static str, error: &reqwest::Error) -> GatewayError {
    tracing::warn!(upstream, error = %error, "upstream call failed");
    if error.is_timeout() {
        GatewayError::UpstreamTimeout(upstream)
    } else if error.is_connect() || error.is_request() || error.is_body() || error.is_decode() {
        GatewayError::UpstreamUnavailable(upstream)
    } else {
        GatewayError::BadGateway(upstream)
    }
}

async fn forward(state: &AppState, upstream: Upstream, req: Request) -> Result<Response, GatewayError> {
    let base = match upstream {
        Upstream::Auth => &state.upstreams.auth_url,
        Upstream::Payments => &state.upstreams.payments_url,
        Upstream::Ledger => &state.upstreams.ledger_url,
    };
    let token = match req.extensions().get::<Principal>() {
        Some(principal) => state.token_cache.token_for(&user_caller(principal)),
        None => state.token_cache.token_for(&Caller::Anonymous),
    };
    // Checked again here, whatever ran before: this is where a path becomes a URL.
    let canonical = CanonicalPath::parse(req.uri().path(), req.uri().query())?;
    let prefix = req
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| route_prefix(matched.as_str()))
        .ok_or(PathError::OutsidePrefix)?;
    let url = canonical.upstream_url(base, prefix)?;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| GatewayError::BodyTooLarge)?;

    let mut headers = HeaderMap::with_capacity(FORWARDED_REQUEST_HEADERS.len() + 2);
    headers.insert(INTERNAL_TOKEN, token);
    for name in &FORWARDED_REQUEST_HEADERS {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    // Auth counts failed logins per client address. It is the peer address
    // of this connection, never a client's header (none is forwarded unless
    // listed above).
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        && let Ok(address) = HeaderValue::try_from(peer.ip().to_string())
    {
        headers.insert(platform::http::CLIENT_ADDRESS, address);
    }
    let response = state
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| upstream_error(upstream.name(), &e))?;

    let status = StatusCode::from_u16(response.status().as_u16())
        .map_err(|_| GatewayError::BadGateway(upstream.name()))?;
    let mut forwarded = HeaderMap::with_capacity(FORWARDED_RESPONSE_HEADERS.len());
    for name in &FORWARDED_RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(name) {
            forwarded.insert(name, value.clone());
        }
    }
    // Whole before it is relayed: an upstream that dies halfway through its
    // answer is a 503 the client retries, not a truncated success.
    let bytes = response
        .bytes()
        .await
        .map_err(|e| upstream_error(upstream.name(), &e))?;
    let mut relayed = Response::new(Body::from(bytes));
    *relayed.status_mut() = status;
    *relayed.headers_mut() = forwarded;
    Ok(relayed)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream that takes one request, reads its head, writes `answer`
    /// and closes the connection, as a process killed mid-request does.
    async fn dying_upstream(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut head = [0u8; 1024];
                let _ = socket.read(&mut head).await;
                let _ = socket.write_all(answer).await;
            }
        });
        format!("http://{addr}/v1/payments")
    }

    fn status(error: GatewayError) -> StatusCode {
        error.into_response().status()
    }

    #[tokio::test]
    async fn an_upstream_that_dies_mid_request_is_unavailable_not_a_bad_gateway() {
        let http = reqwest::Client::new();
        let url = dying_upstream(b"").await;
        let error = http.post(&url).body("{}").send().await.expect_err("no answer");
        let mapped = upstream_error("payments", &error);
        assert!(
            matches!(mapped, GatewayError::UpstreamUnavailable("payments")),
            "{mapped:?}"
        );
        assert_eq!(status(mapped), StatusCode::SERVICE_UNAVAILABLE);

        // Dead halfway through its answer.
        let url = dying_upstream(b"HTTP/1.1 201 Created\r\ncontent-length: 100\r\n\r\n{\"id\":").await;
        let response = http.post(&url).body("{}").send().await.expect("a head");
        let error = response.bytes().await.expect_err("not the whole body");
        assert_eq!(
            status(upstream_error("payments", &error)),
            StatusCode::SERVICE_UNAVAILABLE
        );

        // Down: nobody listens on the port.
        let closed = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind")
            .local_addr()
            .expect("address");
        let error = http
            .post(format!("http://{closed}/v1/payments"))
            .send()
            .await
            .expect_err("refused");
        assert_eq!(
            status(upstream_error("payments", &error)),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
