use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contract::auth::{Credentials, RefreshRequest, TokenPair, User};
use platform::error::Json;
use platform::internal_token::{Internal, UserCaller};
use sqlx::{Postgres, Transaction};
use tokio::sync::OnceCell;

use crate::domain::secrets::{new_refresh_token, new_webhook_secret, refresh_token_hash};
use crate::domain::{Email, MAX_PASSWORD_BYTES, Password};
use crate::{AppState, AuthError};

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

#[utoipa::path(post, path = "/auth/register", operation_id = "register", tag = "auth", request_body = contract::auth::Credentials,
    responses((status = 201, body = User), (status = 400, body = contract::ErrorBody), (status = 409, body = contract::ErrorBody), (status = 429, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    _gateway: Internal,
    Json(credentials): Json<Credentials>,
) -> Result<(StatusCode, Json<User>), AuthError> {
    let email = Email::parse(&credentials.email)?;
    let password = Password::parse(credentials.password)?;
    let cost = state.settings.bcrypt_cost;
    let password_hash = tokio::task::spawn_blocking(move || bcrypt::hash(password.expose(), cost)).await??;

    let mut tx = state.db.begin().await?;
    let user: UserRow = sqlx::query_as(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) RETURNING id, email, created_at",
    )
    .bind(platform::ids::new_id(contract::ids::USER))
    .bind(email.as_str())
    .bind(&password_hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if platform::db::is_unique_violation(&e, "users_email_key") {
            AuthError::EmailTaken
        } else {
            AuthError::Database(e)
        }
    })?;
    sqlx::query("INSERT INTO webhook_secrets (user_id, secret) VALUES ($1, $2)")
        .bind(&user.id)
        .bind(new_webhook_secret())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "registered");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// A hash to verify against when the email is unknown, so that a wrong email
/// and a wrong password take the same time.
static DUMMY_HASH: OnceCell<String> = OnceCell::const_new();

async fn dummy_hash(cost: u32) -> Result<String, AuthError> {
    DUMMY_HASH
        .get_or_try_init(|| async move {
            Ok::<_, AuthError>(
                tokio::task::spawn_blocking(move || bcrypt::hash("not a password", cost)).await??,
            )
        })
        .await
        .cloned()
}

#[utoipa::path(post, path = "/auth/login", operation_id = "login", tag = "auth", request_body = contract::auth::Credentials,
    responses((status = 200, body = TokenPair), (status = 401, body = contract::ErrorBody), (status = 429, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    _gateway: Internal,
    Json(credentials): Json<Credentials>,
) -> Result<Json<TokenPair>, AuthError> {
    let email = Email::parse(&credentials.email)?;
    let settings = &state.settings;

    let locked_for: Option<i64> = sqlx::query_scalar(
        "SELECT CEIL(EXTRACT(EPOCH FROM (window_started_at + $3 - now())))::BIGINT FROM login_failures
         WHERE email = $1 AND failures >= $2 AND window_started_at + $3 > now()",
    )
    .bind(email.as_str())
    .bind(settings.max_failed_logins)
    .bind(settings.login_lockout)
    .fetch_optional(&state.db)
    .await?;
    if let Some(retry_after_seconds) = locked_for {
        return Err(AuthError::LoginLocked { retry_after_seconds });
    }

    let user: Option<(String, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&state.db)
            .await?;
    let hash = match &user {
        Some((_, hash)) => hash.clone(),
        None => dummy_hash(settings.bcrypt_cost).await?,
    };
    let password = credentials.password;
    // No stored password is longer than bcrypt reads, so a longer one cannot match.
    let fits = password.len() <= MAX_PASSWORD_BYTES;
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await??;

    let Some((user_id, _)) = user.filter(|_| matches && fits) else {
        sqlx::query(
            "INSERT INTO login_failures (email, failures, window_started_at) VALUES ($1, 1, now())
             ON CONFLICT (email) DO UPDATE SET
               failures = CASE WHEN login_failures.window_started_at + $2 <= now() THEN 1
                               ELSE login_failures.failures + 1 END,
               window_started_at = CASE WHEN login_failures.window_started_at + $2 <= now() THEN now()
                                        ELSE login_failures.window_started_at END",
        )
        .bind(email.as_str())
        .bind(settings.login_lockout)
        .execute(&state.db)
        .await?;
        return Err(AuthError::InvalidCredentials);
    };

    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
    let tokens = issue_tokens(&state, &mut tx, &user_id, uuid::Uuid::new_v4()).await?;
    tx.commit().await?;
    tracing::info!(%user_id, "logged in");
    Ok(Json(tokens))
}

async fn issue_tokens(
    state: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    user_id: &str,
    family_id: uuid::Uuid,
) -> Result<TokenPair, AuthError> {
    let (refresh_token, hash) = new_refresh_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, now() + $4)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(family_id)
    .bind(state.settings.refresh_token_ttl)
    .execute(&mut **tx)
    .await?;
    Ok(TokenPair {
        access_token: state.sessions.mint(user_id),
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.sessions.ttl().as_secs() as i64,
    })
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    user_id: String,
    family_id: uuid::Uuid,
    used: bool,
    usable: bool,
}

#[utoipa::path(post, path = "/auth/refresh", operation_id = "refresh_session", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    _gateway: Internal,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, AuthError> {
    let mut tx = state.db.begin().await?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT user_id, family_id, used_at IS NOT NULL AS used,
                revoked_at IS NULL AND expires_at > now() AS usable
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(refresh_token_hash(&request.refresh_token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(AuthError::InvalidRefreshToken);
    };
    if row.used && row.usable {
        // A used token shown again means it leaked: end every session of the family.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(row.family_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, "refresh token reused; revoked its family");
        return Err(AuthError::RefreshTokenReused);
    }
    if !row.usable || row.used {
        return Err(AuthError::InvalidRefreshToken);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(refresh_token_hash(&request.refresh_token))
        .execute(&mut *tx)
        .await?;
    let tokens = issue_tokens(&state, &mut tx, &row.user_id, row.family_id).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

#[utoipa::path(get, path = "/auth/me", operation_id = "retrieve_current_user", tag = "auth", security(("session" = [])),
    responses((status = 200, body = User), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn me(State(state): State<AppState>, caller: UserCaller) -> Result<Json<User>, AuthError> {
    let user: Option<UserRow> = sqlx::query_as("SELECT id, email, created_at FROM users WHERE id = $1")
        .bind(&caller.user_id)
        .fetch_optional(&state.db)
        .await?;
    user.map(|u| Json(u.into())).ok_or(AuthError::UserNotFound)
}
