use axum::extract::{Path, State};
use axum::http::StatusCode;
use contract::List;
use contract::auth::{ApiKey, CreateApiKeyRequest, CreatedApiKey, RevokedApiKey};
use contract::internal::ApiKeyRevoked;
use contract::list::PageParams;
use platform::error::{Json, Query};
use platform::internal_token::SessionCaller;
use secrecy::ExposeSecret;

use crate::domain::KeyName;
use crate::domain::secrets::{NewApiKey, api_key_hash};
use crate::{AppState, AuthError, store};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[utoipa::path(post, path = "/auth/api-keys", operation_id = "create_api_key", tag = "auth", security(("session" = [])), request_body = CreateApiKeyRequest,
    responses((status = 201, description = "The key's secret, shown this once", body = CreatedApiKey), (status = 400, body = contract::ErrorBody),
        (status = 409, description = "The user holds the most active keys allowed", body = contract::ErrorBody)))]
/// Creating counts the user's active keys and inserts under a lock on the
/// user's row, so that concurrent creations cannot pass the cap together.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create(
    State(state): State<AppState>,
    caller: SessionCaller,
    Json(request): Json<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), AuthError> {
    let name = KeyName::parse(&request.name)?;
    let key = NewApiKey::generate();
    let hash = api_key_hash(state.api_key_hash_secret.expose_secret(), &key.plaintext);
    let mut tx = state.db.begin().await?;
    if !store::lock_user(&mut tx, &caller.user_id).await? {
        return Err(AuthError::UserNotFound);
    }
    let active = store::count_active_api_keys(&mut *tx, &caller.user_id).await?;
    let max = state.policy.api_keys_per_user_max;
    if active >= max {
        return Err(AuthError::ApiKeyLimitReached { max });
    }
    let (id, created_at) = store::insert_api_key(
        &mut *tx,
        store::NewApiKeyRow {
            user_id: &caller.user_id,
            name: name.as_str(),
            lookup_id: &key.lookup_id,
            secret_hash: &hash,
            prefix: &key.prefix,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(key_id = %id, "created API key");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id,
            name: name.into_inner(),
            key: key.plaintext,
            prefix: key.prefix,
            created_at,
        }),
    ))
}

#[utoipa::path(get, path = "/auth/api-keys", operation_id = "list_api_keys", tag = "auth", security(("session" = [])), params(PageParams),
    responses((status = 200, body = List<ApiKey>), (status = 400, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list(
    State(state): State<AppState>,
    caller: SessionCaller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<ApiKey>>, AuthError> {
    let limit = platform::error::page_limit(page.limit)?;
    let keys = store::list_api_keys(
        &state.db,
        &caller.user_id,
        page.starting_after.as_deref(),
        limit + 1,
    )
    .await?;
    Ok(Json(List::from_overfetched(keys, limit as usize)))
}

#[utoipa::path(delete, path = "/auth/api-keys/{id}", operation_id = "revoke_api_key", tag = "auth", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RevokedApiKey), (status = 404, body = contract::ErrorBody)))]
/// Revoking is idempotent: revoking a revoked key answers with its first
/// revocation time. Every revocation is announced so that caches drop the key.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, key_id = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: SessionCaller,
    Path(id): Path<String>,
) -> Result<Json<RevokedApiKey>, AuthError> {
    let revoked_at = store::revoke_api_key(&state.db, &id, &caller.user_id)
        .await?
        .ok_or(AuthError::ApiKeyNotFound)?;
    announce_revocation(
        &state,
        ApiKeyRevoked {
            key_id: id.clone(),
            user_id: caller.user_id,
        },
    )
    .await;
    Ok(Json(RevokedApiKey { id, revoked_at }))
}

/// Best effort: when Redis is down the database still says the key is
/// revoked, and gateway caches expire it after their short lifetime.
async fn announce_revocation(state: &AppState, revoked: ApiKeyRevoked) {
    let message = match serde_json::to_string(&revoked) {
        Ok(message) => message,
        Err(e) => unreachable!("serialising a revocation: {e}"),
    };
    let mut redis = state.redis.clone();
    let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
        .arg(state.keys.api_key_revocations())
        .arg(message)
        .query_async(&mut redis)
        .await;
    if let Err(e) = published {
        tracing::warn!(error = %e, key_id = %revoked.key_id, "could not announce a key revocation");
    }
}
