//! Every query auth makes, so that handlers read as the rules they apply and
//! the schema (migrations/auth) is changed in one place with its queries.

use chrono::{DateTime, Utc};
use contract::auth::{ApiKey, User};
use platform::db::ResultExt;
use sqlx::{PgConnection, PgExecutor};

use crate::AuthError;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            created_at: row.created_at,
        }
    }
}

/// A new user and their first webhook signing secret, in the caller's
/// transaction so that no user exists without one.
pub async fn insert_user(
    tx: &mut PgConnection,
    email: &str,
    password_hash: &str,
    webhook_secret: &str,
) -> Result<User, AuthError> {
    let user: UserRow = sqlx::query_as(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) RETURNING id, email, created_at",
    )
    .bind(platform::ids::new_id(contract::ids::USER))
    .bind(email)
    .bind(password_hash)
    .fetch_one(&mut *tx)
    .await
    .on_constraint("users_email_key", |_| AuthError::EmailTaken)?;
    sqlx::query("INSERT INTO webhook_secrets (user_id, secret) VALUES ($1, $2)")
        .bind(&user.id)
        .bind(webhook_secret)
        .execute(&mut *tx)
        .await?;
    Ok(user.into())
}

pub async fn find_user(db: impl PgExecutor<'_>, user_id: &str) -> Result<Option<User>, sqlx::Error> {
    let user: Option<UserRow> = sqlx::query_as("SELECT id, email, created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(user.map(User::from))
}

/// What a login checks a password against.
#[derive(sqlx::FromRow)]
pub struct StoredCredentials {
    pub user_id: String,
    pub password_hash: String,
}

pub async fn find_credentials(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<StoredCredentials>, sqlx::Error> {
    sqlx::query_as("SELECT id AS user_id, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// The lockout policy a login attempt is reserved under.
pub struct LockoutPolicy {
    pub free_attempts: i32,
    pub base_seconds: f64,
    pub max_seconds: f64,
    pub now: DateTime<Utc>,
}

/// Reserves one login attempt for (email, address), counted as a failure
/// until it succeeds, or answers `None` while the pair is locked out. One
/// statement takes the row lock, so concurrent attempts are counted one by
/// one. Past the free attempts, an attempt is allowed only once the previous
/// lock has passed, and sets the next one: the base delay doubling with each
/// failure, up to the maximum. A pair quiet for the maximum starts over.
pub async fn reserve_login_attempt(
    db: impl PgExecutor<'_>,
    email: &str,
    address: &str,
    policy: &LockoutPolicy,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO login_attempts AS a (email, address, failures, locked_until, last_attempt_at)
         VALUES ($1, $2, 1, CASE WHEN 1 >= $3 THEN $6 + make_interval(secs => $4) END, $6)
         ON CONFLICT (email, address) DO UPDATE SET
           failures = CASE WHEN a.last_attempt_at + make_interval(secs => $5) <= $6 THEN 1
                           ELSE a.failures + 1 END,
           locked_until = CASE
             WHEN a.last_attempt_at + make_interval(secs => $5) <= $6 THEN
               CASE WHEN 1 >= $3 THEN $6 + make_interval(secs => $4) END
             WHEN a.failures + 1 >= $3 THEN $6 + make_interval(secs =>
               least($5, $4 * power(2, least(a.failures + 1 - $3, 40))))
           END,
           last_attempt_at = $6
         WHERE a.locked_until IS NULL OR a.locked_until <= $6
         RETURNING a.failures",
    )
    .bind(email)
    .bind(address)
    .bind(policy.free_attempts)
    .bind(policy.base_seconds)
    .bind(policy.max_seconds)
    .bind(policy.now)
    .fetch_optional(db)
    .await
}

/// Milliseconds until (email, address) may try again, if it is locked.
pub async fn lockout_remaining_ms(
    db: impl PgExecutor<'_>,
    email: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let remaining: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT ceil(extract(epoch FROM locked_until - $3) * 1000)::BIGINT
         FROM login_attempts WHERE email = $1 AND address = $2",
    )
    .bind(email)
    .bind(address)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(remaining.flatten())
}

pub async fn clear_login_attempts(
    db: impl PgExecutor<'_>,
    email: &str,
    address: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE email = $1 AND address = $2")
        .bind(email)
        .bind(address)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn insert_refresh_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    user_id: &str,
    family_id: uuid::Uuid,
    ttl: chrono::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, now() + $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(family_id)
    .bind(ttl)
    .execute(db)
    .await?;
    Ok(())
}

/// A refresh token as a refresh finds it, locked for the rest of the
/// transaction so that two refreshes with one token cannot both use it.
#[derive(sqlx::FromRow)]
pub struct RefreshTokenState {
    pub user_id: String,
    pub family_id: uuid::Uuid,
    pub used: bool,
    pub usable: bool,
}

pub async fn lock_refresh_token(
    tx: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<RefreshTokenState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, family_id, used_at IS NOT NULL AS used,
                revoked_at IS NULL AND expires_at > now() AS usable
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(tx)
    .await
}

pub async fn mark_refresh_token_used(db: impl PgExecutor<'_>, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn revoke_session_family(
    db: impl PgExecutor<'_>,
    family_id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family_id)
        .execute(db)
        .await?;
    Ok(())
}

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

/// Locks the user's row, so that the caller can count and insert keys
/// without a concurrent creation passing the cap alongside; false when the
/// user does not exist.
pub async fn lock_user(tx: &mut PgConnection, user_id: &str) -> Result<bool, sqlx::Error> {
    let user: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(tx)
        .await?;
    Ok(user.is_some())
}

pub async fn count_active_api_keys(db: impl PgExecutor<'_>, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .fetch_one(db)
        .await
}

/// An API key to store: only its lookup id and the hash of its secret.
pub struct NewApiKeyRow<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub lookup_id: &'a str,
    pub secret_hash: &'a [u8],
    pub prefix: &'a str,
}

/// The new key's id and creation time.
pub async fn insert_api_key(
    db: impl PgExecutor<'_>,
    key: NewApiKeyRow<'_>,
) -> Result<(String, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO api_keys (id, user_id, name, lookup_id, secret_hash, prefix)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at",
    )
    .bind(platform::ids::new_id(contract::ids::API_KEY))
    .bind(key.user_id)
    .bind(key.name)
    .bind(key.lookup_id)
    .bind(key.secret_hash)
    .bind(key.prefix)
    .fetch_one(db)
    .await
}

/// Up to `limit` keys older than `starting_after`, newest first.
pub async fn list_api_keys(
    db: impl PgExecutor<'_>,
    user_id: &str,
    starting_after: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys
         WHERE user_id = $1 AND ($2::TEXT IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(starting_after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// Revokes the user's key, keeping the first revocation's time; `None` when
/// the user has no such key.
pub async fn revoke_api_key(
    db: impl PgExecutor<'_>,
    key_id: &str,
    user_id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
         WHERE id = $1 AND user_id = $2 RETURNING revoked_at",
    )
    .bind(key_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// A stored key, as the gateway's verification compares it.
#[derive(sqlx::FromRow)]
pub struct StoredApiKey {
    pub id: String,
    pub user_id: String,
    pub secret_hash: Vec<u8>,
    pub revoked: bool,
}

pub async fn find_api_key(
    db: impl PgExecutor<'_>,
    lookup_id: &str,
) -> Result<Option<StoredApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, secret_hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE lookup_id = $1",
    )
    .bind(lookup_id)
    .fetch_optional(db)
    .await
}

/// Records a key's use, coarsely on purpose: one write a minute per key at most.
pub async fn touch_api_key(db: impl PgExecutor<'_>, key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn webhook_secret(db: impl PgExecutor<'_>, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT secret FROM webhook_secrets WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await
}

/// Replaces the user's secret; `None` when the user has none.
pub async fn replace_webhook_secret(
    db: impl PgExecutor<'_>,
    user_id: &str,
    secret: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE webhook_secrets SET secret = $2, created_at = now() WHERE user_id = $1 RETURNING secret",
    )
    .bind(user_id)
    .bind(secret)
    .fetch_optional(db)
    .await
}
