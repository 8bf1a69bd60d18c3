//! Who is calling: API keys on `/v1`, session tokens on session routes, and
//! the client address on login and registration, each with its rate limit.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::auth::{API_KEY_PREFIX, VerifiedApiKey, VerifyApiKeyRequest};
use platform::internal_token::{Caller, Service};
use platform::session::SessionTokenError;

use crate::key_cache::{Principal, digest};
use crate::rate_limit::Verdict;
use crate::{AppState, GatewayError};

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `/v1/*`: a valid API key, then its rate limit.
pub async fn api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match bearer(&req) {
        None => Err(GatewayError::MissingApiKey),
        Some(key) => authenticate_key(&state, key).await,
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(e) => return e.into_response(),
    };
    let subject = format!("key:{}", principal.key_id.as_deref().unwrap_or_default());
    let verdict = state.limiter.check(&subject, state.limits.per_key).await;
    req.extensions_mut().insert(principal);
    limited(verdict, req, next).await
}

/// Session routes of auth: a valid access token.
pub async fn session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let user_id = match bearer(&req).map(|token| state.sessions.verify(token)) {
        None => return GatewayError::MissingSession.into_response(),
        Some(Err(SessionTokenError::Expired)) => return GatewayError::SessionExpired.into_response(),
        Some(Err(SessionTokenError::Invalid(_))) => return GatewayError::InvalidSession.into_response(),
        Some(Ok(user_id)) => user_id,
    };
    let verdict = state
        .limiter
        .check(&format!("user:{user_id}"), state.limits.per_key)
        .await;
    req.extensions_mut().insert(Principal {
        user_id,
        key_id: None,
    });
    limited(verdict, req, next).await
}

/// Either credential, each checked as on its own routes; the service behind
/// decides which it accepts (auth refuses an API key where a session is needed).
pub async fn api_key_or_session(state: State<AppState>, req: Request, next: Next) -> Response {
    if bearer(&req).is_some_and(|token| token.starts_with(API_KEY_PREFIX)) {
        api_key(state, req, next).await
    } else {
        session(state, req, next).await
    }
}

/// Login, registration and refresh: limited per client address, since
/// there is no key yet to count against.
pub async fn client_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let verdict = state
        .limiter
        .check(&format!("addr:{address}"), state.limits.per_address)
        .await;
    limited(verdict, req, next).await
}

async fn limited(verdict: Option<Verdict>, req: Request, next: Next) -> Response {
    if let Some(verdict) = verdict.filter(|v| !v.allowed) {
        metrics::counter!("gateway_rate_limited_total").increment(1);
        return GatewayError::RateLimited(verdict).into_response();
    }
    let mut response = next.run(req).await;
    if let Some(verdict) = verdict {
        verdict.write_headers(response.headers_mut());
    }
    response
}

/// The owner of a key: from the cache, or asked of auth once and cached.
pub async fn authenticate_key(state: &AppState, key: &str) -> Result<Principal, GatewayError> {
    if !key.starts_with(API_KEY_PREFIX) {
        return Err(GatewayError::InvalidApiKey);
    }
    let digest = digest(key);
    if let Some(principal) = state.key_cache.get(&digest) {
        return Ok(principal);
    }
    let generation = state.key_cache.generation();
    let response = state
        .http
        .post(format!("{}/internal/api-keys/verify", state.upstreams.auth))
        .header(
            platform::internal_token::HEADER,
            state.token_cache.token_for(&Caller::Service(Service::Gateway)),
        )
        .json(&VerifyApiKeyRequest { key: key.to_owned() })
        .send()
        .await
        .map_err(|e| crate::proxy::upstream_error("auth", &e))?;
    match response.status() {
        status if status.is_success() => {
            let verified: VerifiedApiKey = response
                .json()
                .await
                .map_err(|_| GatewayError::BadGateway("auth"))?;
            let principal = Principal {
                user_id: verified.user_id,
                key_id: Some(verified.key_id),
            };
            state.key_cache.insert(digest, principal.clone(), generation);
            Ok(principal)
        }
        axum::http::StatusCode::UNAUTHORIZED => Err(GatewayError::InvalidApiKey),
        status => {
            tracing::error!(%status, "auth answered a key verification unexpectedly");
            Err(GatewayError::BadGateway("auth"))
        }
    }
}
