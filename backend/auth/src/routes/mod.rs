//! One module per resource; each owns its routes.

mod api_keys;
mod internal;
mod users;
mod webhooks;

use axum::Router;
use axum::routing::{delete, get, post};
use contract::internal::paths;

use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    users::register,
    users::login,
    users::refresh,
    users::me,
    api_keys::create,
    api_keys::list,
    api_keys::revoke,
    webhooks::secret,
    webhooks::roll,
))]
pub(crate) struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/auth/register", post(users::register))
        .route("/auth/login", post(users::login))
        .route("/auth/refresh", post(users::refresh))
        .route("/auth/me", get(users::me))
        .route("/auth/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/auth/api-keys/{id}", delete(api_keys::revoke))
        .route("/v1/webhooks/secret", get(webhooks::secret))
        .route("/v1/webhooks/secret/roll", post(webhooks::roll))
        .merge(platform::internal_token::services_only(
            Router::new().route(paths::VERIFY_API_KEY, post(internal::verify_api_key)),
            state.internal_tokens.clone(),
        ))
        .with_state(state)
}
