use axum::extract::State;
use contract::auth::WebhookSecret;
use platform::error::Json;
use platform::internal_token::{SessionCaller, UserCaller};

use crate::domain::secrets::new_webhook_secret;
use crate::{AppState, AuthError};

#[utoipa::path(get, path = "/v1/webhooks/secret", operation_id = "retrieve_webhook_secret", tag = "webhooks", security(("api_key" = [])),
    responses((status = 200, body = WebhookSecret), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn secret(
    State(state): State<AppState>,
    caller: UserCaller,
) -> Result<Json<WebhookSecret>, AuthError> {
    let secret: Option<String> = sqlx::query_scalar("SELECT secret FROM webhook_secrets WHERE user_id = $1")
        .bind(&caller.user_id)
        .fetch_optional(&state.db)
        .await?;
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
    let secret: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_secrets SET secret = $2, created_at = now() WHERE user_id = $1 RETURNING secret",
    )
    .bind(&caller.user_id)
    .bind(new_webhook_secret())
    .fetch_optional(&state.db)
    .await?;
    tracing::info!("rolled the webhook signing secret");
    secret
        .map(|secret| Json(WebhookSecret { secret }))
        .ok_or(AuthError::UserNotFound)
}
