use axum::extract::State;
use contract::auth::WebhookSecret;
use platform::error::Json;
use platform::internal_token::{SessionCaller, UserCaller};

use crate::domain::secrets::new_webhook_secret;
use crate::{AppState, AuthError, store};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(secret))
        .routes(routes!(roll))
}

#[utoipa::path(get, path = "/v1/webhooks/secret", operation_id = "retrieve_webhook_secret", tag = "webhooks", security(("api_key" = [])),
    responses((status = 200, body = WebhookSecret), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn secret(
    State(state): State<AppState>,
    caller: UserCaller,
) -> Result<Json<WebhookSecret>, AuthError> {
    let secret = store::webhook_secret(&state.db, &caller.user_id).await?;
    secret
        .map(|secret| Json(WebhookSecret { secret }))
        .ok_or(AuthError::UserNotFound)
}

/// Rolling takes a session: a leaked API key must not be able to lock the
/// developer's listeners out by replacing the secret they verify with.
#[utoipa::path(post, path = "/v1/webhooks/secret/roll", operation_id = "roll_webhook_secret", tag = "webhooks", security(("session" = [])),
    responses((status = 200, body = WebhookSecret), (status = 401, body = contract::ErrorBody), (status = 403, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn roll(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> Result<Json<WebhookSecret>, AuthError> {
    let secret = store::replace_webhook_secret(&state.db, &caller.user_id, &new_webhook_secret()).await?;
    tracing::info!("rolled the webhook signing secret");
    secret
        .map(|secret| Json(WebhookSecret { secret }))
        .ok_or(AuthError::UserNotFound)
}
