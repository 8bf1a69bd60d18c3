//! Who is calling: API keys on `/v1`, session tokens on session routes, and
//! the client address on login and registration, each with its rate limit.
//!
//! Failed authentications (API keys and session tokens) count against a
//! budget per client address; past it the address gets 429 without its keys
//! being verified, so a flood of guesses costs auth nothing. Keys auth
//! refused are also remembered for a few seconds.

pub(crate) mod key_cache;
pub(crate) mod token_cache;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::auth::API_KEY_PREFIX;
use contract::internal::{VerifiedApiKey, VerifyApiKeyRequest, paths};
use platform::internal_token::{Caller, Service};
use platform::session::SessionTokenError;

use crate::authn::key_cache::{KeyDigest, Principal, digest};
use crate::store::rate_limit::Verdict;
use crate::{AppState, GatewayError};

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The client's address: the TCP peer, unless the peer is a configured
/// trusted proxy, in which case the right-most `X-Forwarded-For` entry that
/// is not one of ours (anything further left the client could have written).
fn client_ip(state: &AppState, req: &Request) -> String {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    match peer {
        Some(peer) => forwarded_client(peer, req.headers(), &state.trusted_proxies).to_string(),
        None => "unknown".into(),
    }
}

fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            // A hop our proxies would not write: trust nothing beyond it.
            Err(_) => return client,
        }
    }
    client
}

fn failures_subject(address: &str) -> String {
    format!("authfail:{address}")
}

/// Refuses an address that has spent its failed-authentication budget.
async fn failures_allowed(state: &AppState, address: &str) -> Result<(), GatewayError> {
    let verdict = state
        .limiter
        .peek(&failures_subject(address), state.limits.auth_failures)
        .await;
    match verdict.filter(|v| !v.allowed) {
        Some(verdict) => {
            metrics::counter!("gateway_auth_failures_refused_total").increment(1);
            Err(GatewayError::TooManyAuthFailures(verdict))
        }
        None => Ok(()),
    }
}

/// Counts a failed authentication; the answer is `error`, or 429 once the
/// address is past its budget.
async fn failed(state: &AppState, address: &str, error: GatewayError) -> GatewayError {
    metrics::counter!("gateway_auth_failures_total").increment(1);
    let verdict = state
        .limiter
        .check_exact(&failures_subject(address), state.limits.auth_failures)
        .await;
    match verdict.filter(|v| !v.allowed) {
        Some(verdict) => GatewayError::TooManyAuthFailures(verdict),
        None => error,
    }
}

/// `/v1/*`: a valid API key, then its rate limit.
pub async fn api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match bearer(&req) {
        None => Err(GatewayError::MissingApiKey),
        Some(key) => authenticate_key(&state, key, &client_ip(&state, &req)).await,
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
    let refused = match bearer(&req).map(|token| state.sessions.verify(token)) {
        None => return GatewayError::MissingSession.into_response(),
        Some(Ok(user_id)) => Ok(user_id),
        Some(Err(SessionTokenError::Expired)) => Err(GatewayError::SessionExpired),
        Some(Err(SessionTokenError::Invalid(_))) => Err(GatewayError::InvalidSession),
    };
    // A valid token costs nothing to check, so only failures are counted.
    let user_id = match refused {
        Ok(user_id) => user_id,
        Err(e) => return failed(&state, &client_ip(&state, &req), e).await.into_response(),
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
    let address = client_ip(&state, &req);
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
/// A key not in the cache is verified only while `address` has failed
/// authentication budget left; a failure spends from it.
async fn authenticate_key(state: &AppState, key: &str, address: &str) -> Result<Principal, GatewayError> {
    let digest = digest(key);
    if let Some(principal) = state.key_cache.get(&digest) {
        return Ok(principal);
    }
    failures_allowed(state, address).await?;
    let verified = if !key.starts_with(API_KEY_PREFIX) || state.invalid_keys.contains(&digest) {
        Err(GatewayError::InvalidApiKey)
    } else {
        state
            .verifying
            .once(digest, || verify_key(state, key, digest))
            .await
    };
    match verified {
        Err(GatewayError::InvalidApiKey) => Err(failed(state, address, GatewayError::InvalidApiKey).await),
        other => other,
    }
}

/// Asks auth about a key and caches the answer, valid or not.
async fn verify_key(state: &AppState, key: &str, digest: KeyDigest) -> Result<Principal, GatewayError> {
    let generation = state.key_cache.generation();
    let response = state
        .http
        .post(format!("{}{}", state.upstreams.auth, paths::VERIFY_API_KEY))
        .header(
            platform::internal_token::HEADER,
            state.token_cache.token_for(&Caller::Service(Service::Gateway)),
        )
        .json(&VerifyApiKeyRequest { key: key.to_owned() })
        .send()
        .await
        .map_err(|e| crate::routes::proxy::upstream_error("auth", &e))?;
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
            metrics::counter!("gateway_api_key_verifications_total", "outcome" => "valid").increment(1);
            state.key_cache.insert(digest, principal.clone(), generation);
            Ok(principal)
        }
        axum::http::StatusCode::UNAUTHORIZED => {
            metrics::counter!("gateway_api_key_verifications_total", "outcome" => "invalid").increment(1);
            state.invalid_keys.insert(digest);
            Err(GatewayError::InvalidApiKey)
        }
        // Auth's database is down or restarting: the key is neither valid
        // nor invalid yet, and the client may retry.
        axum::http::StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!("auth cannot verify API keys right now");
            Err(GatewayError::UpstreamUnavailable("auth"))
        }
        status => {
            tracing::error!(%status, "auth answered a key verification unexpectedly");
            Err(GatewayError::BadGateway("auth"))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let headers = forwarded(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(
            forwarded_client(ip("198.51.100.7"), &headers, &[proxy]),
            ip("198.51.100.7")
        );
        assert_eq!(forwarded_client(proxy, &headers, &[]), proxy);
        // The proxy appended the real client last; what the client wrote is further left.
        assert_eq!(forwarded_client(proxy, &headers, &[proxy]), ip("203.0.113.9"));
        let chained = forwarded(&["6.6.6.6", "203.0.113.9, 10.0.0.2"]);
        assert_eq!(
            forwarded_client(proxy, &chained, &[proxy, ip("10.0.0.2")]),
            ip("203.0.113.9")
        );
        assert_eq!(forwarded_client(proxy, &forwarded(&["garbage"]), &[proxy]), proxy);
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
