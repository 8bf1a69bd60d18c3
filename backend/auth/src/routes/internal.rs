use axum::extract::State;
use contract::internal::{VerifiedApiKey, VerifyApiKeyRequest};
use platform::error::Json;
use platform::internal_token::{FromGateway, ServiceCaller};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::domain::secrets::{api_key_hash, api_key_lookup_id};
use crate::{AppState, AuthError};

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    user_id: String,
    secret_hash: Vec<u8>,
    revoked: bool,
}

/// The gateway's question: whose key is this? Unknown, malformed and revoked
/// keys get the same answer.
#[tracing::instrument(skip_all)]
pub async fn verify_api_key(
    State(state): State<AppState>,
    _gateway: ServiceCaller<FromGateway>,
    Json(request): Json<VerifyApiKeyRequest>,
) -> Result<Json<VerifiedApiKey>, AuthError> {
    let lookup_id = api_key_lookup_id(&request.key).ok_or(AuthError::InvalidApiKey)?;
    let row: KeyRow = sqlx::query_as(
        "SELECT id, user_id, secret_hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE lookup_id = $1",
    )
    .bind(lookup_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or(AuthError::InvalidApiKey)?;
    let presented = api_key_hash(state.api_key_hash_secret.expose_secret(), &request.key);
    if !bool::from(presented.ct_eq(&row.secret_hash)) || row.revoked {
        return Err(AuthError::InvalidApiKey);
    }
    // Coarse on purpose: one write a minute per key at most.
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(&row.id)
    .execute(&state.db)
    .await?;
    Ok(Json(VerifiedApiKey {
        key_id: row.id,
        user_id: row.user_id,
    }))
}
