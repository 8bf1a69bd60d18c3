use axum::extract::State;
use contract::internal::{VerifiedApiKey, VerifyApiKeyRequest};
use platform::error::Json;
use platform::internal_token::{FromGateway, ServiceCaller};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::domain::secrets::{api_key_hash, api_key_lookup_id};
use crate::{AppState, AuthError, store};

/// The gateway's question: whose key is this? Unknown, malformed and revoked
/// keys get the same answer.
#[tracing::instrument(skip_all)]
pub async fn verify_api_key(
    State(state): State<AppState>,
    _gateway: ServiceCaller<FromGateway>,
    Json(request): Json<VerifyApiKeyRequest>,
) -> Result<Json<VerifiedApiKey>, AuthError> {
    let lookup_id = api_key_lookup_id(&request.key).ok_or(AuthError::InvalidApiKey)?;
    let row = store::find_api_key(&state.db, lookup_id)
        .await?
        .ok_or(AuthError::InvalidApiKey)?;
    let presented = api_key_hash(state.api_key_hash_secret.expose_secret(), &request.key);
    if !bool::from(presented.ct_eq(&row.secret_hash)) || row.revoked {
        return Err(AuthError::InvalidApiKey);
    }
    store::touch_api_key(&state.db, &row.id).await?;
    Ok(Json(VerifiedApiKey {
        key_id: row.id,
        user_id: row.user_id,
    }))
}
