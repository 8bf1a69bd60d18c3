//! Which path goes where, and which check guards it: the proxied services,
//! the event stream and the API document.

pub mod openapi;
pub(crate) mod proxy;
pub(crate) mod stream;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post};

use proxy::{to_auth, to_ledger, to_payments};

use crate::{AppState, authn};

pub fn router(state: AppState) -> Router {
    let with_api_key = Router::new()
        .route("/v1/events/stream", get(stream::handler))
        .route("/v1/payments", any(to_payments))
        .route("/v1/payments/{*rest}", any(to_payments))
        .route("/v1/events", any(to_payments))
        .route("/v1/events/{*rest}", any(to_payments))
        .route("/v1/ledger/{*rest}", any(to_ledger))
        .route("/v1/webhooks/{*rest}", any(to_auth))
        .route_layer(from_fn_with_state(state.clone(), authn::api_key));
    let with_session = Router::new()
        .route("/auth/me", get(to_auth))
        .route("/auth/api-keys", any(to_auth))
        .route("/auth/api-keys/{id}", any(to_auth))
        .route_layer(from_fn_with_state(state.clone(), authn::session));
    // Rolling the signing secret needs a session, which auth checks itself;
    // the gateway lets either credential through so that auth can say so.
    let with_either = Router::new()
        .route("/v1/webhooks/secret/roll", post(to_auth))
        .route_layer(from_fn_with_state(state.clone(), authn::api_key_or_session));
    let by_address = Router::new()
        .route("/auth/register", post(to_auth))
        .route("/auth/login", post(to_auth))
        .route("/auth/refresh", post(to_auth))
        .route_layer(from_fn_with_state(state.clone(), authn::client_address));
    Router::new()
        .merge(with_api_key)
        .merge(with_session)
        .merge(with_either)
        .merge(by_address)
        .route("/openapi.json", get(openapi::document))
        .with_state(state)
}
