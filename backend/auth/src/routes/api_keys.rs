use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contract::List;
use contract::auth::{ApiKey, CreateApiKeyRequest, CreatedApiKey, RevokedApiKey};
use contract::internal::ApiKeyRevoked;
use contract::list::PageParams;
use platform::error::{Json, Query};
use platform::internal_token::SessionCaller;
use secrecy::ExposeSecret;

use crate::domain::secrets::{NewApiKey, api_key_hash};
use crate::{AppState, AuthError};

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
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
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AuthError::InvalidKeyName);
    }
    let key = NewApiKey::generate();
    let hash = api_key_hash(state.api_key_hash_secret.expose_secret(), &key.plaintext);
    let mut tx = state.db.begin().await?;
    let user: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(&caller.user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if user.is_none() {
        return Err(AuthError::UserNotFound);
    }
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(&caller.user_id)
            .fetch_one(&mut *tx)
            .await?;
    let max = state.policy.api_keys_per_user_max;
    if active >= max {
        return Err(AuthError::ApiKeyLimitReached { max });
    }
    let (id, created_at): (String, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO api_keys (id, user_id, name, lookup_id, secret_hash, prefix)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
    )
    .bind(platform::ids::new_id(contract::ids::API_KEY))
    .bind(&caller.user_id)
    .bind(name)
    .bind(&key.lookup_id)
    .bind(hash)
    .bind(&key.prefix)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(key_id = %id, "created API key");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id,
            name: name.to_owned(),
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
    let limit = page.limit().map_err(AuthError::InvalidLimit)?;
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys
         WHERE user_id = $1 AND ($2::TEXT IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(&caller.user_id)
    .bind(&page.starting_after)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let keys = rows.into_iter().map(ApiKey::from).collect();
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
    let revoked_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING revoked_at",
    )
    .bind(&id)
    .bind(&caller.user_id)
    .fetch_optional(&state.db)
    .await?;
    let revoked_at = revoked_at.ok_or(AuthError::ApiKeyNotFound)?;
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
