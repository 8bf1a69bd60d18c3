//! One module per resource; each owns its routes and their entries in the
//! API document, so that adding a route is one change in one place.

mod api_keys;
mod internal;
mod users;
mod webhooks;

use axum::Router;
use axum::routing::post;
use contract::internal::paths;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public
        .merge(platform::internal_token::services_only(
            Router::new().route(paths::VERIFY_API_KEY, post(internal::verify_api_key)),
            state.internal_tokens.clone(),
        ))
        .with_state(state)
}

/// The public routes' description, merged by the gateway into `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().split_for_parts().1
}

fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::routes())
        .merge(api_keys::routes())
        .merge(webhooks::routes())
}
