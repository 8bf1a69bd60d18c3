use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contract::auth::{Credentials, RefreshRequest, TokenPair, User};
use platform::error::Json;
use platform::internal_token::{Internal, SessionCaller};
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
    let cost = state.policy.bcrypt_cost;
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

/// Where a login comes from, as the gateway saw it: failed logins are counted
/// per (email, address). Read only by handlers that also take `Internal`, so
/// the header is believed only from a caller holding the internal secret;
/// the gateway overwrites whatever a client sent.
fn client_address(headers: &axum::http::HeaderMap) -> String {
    let parsed = headers
        .get(platform::http::CLIENT_ADDRESS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    match parsed {
        Some(std::net::IpAddr::V4(ip)) => ip.to_string(),
        // One IPv6 host usually holds a whole /64: count the network, or a
        // single machine would have 2^64 budgets.
        Some(std::net::IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = ip.segments();
                let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
        None => "unknown".into(),
    }
}

/// Reserves one login attempt for (email, address) before any password is
/// checked, counting it as a failure until it succeeds. One statement takes
/// the row lock, so concurrent attempts are counted one by one and no more
/// than the budget ever reach bcrypt. Past the free attempts, an attempt is
/// allowed only once the previous lock has passed, and sets the next one:
/// the base delay doubling with each failure, up to the maximum. An address
/// quiet for the maximum delay starts over.
async fn reserve_login_attempt(state: &AppState, email: &str, address: &str) -> Result<(), AuthError> {
    let policy = &state.policy;
    let now: DateTime<Utc> = policy.clock.now().into();
    let reserved: Option<i32> = sqlx::query_scalar(
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
    .bind(policy.free_login_attempts)
    .bind(policy.login_lockout_base_seconds)
    .bind(policy.login_lockout_max_seconds)
    .bind(now)
    .fetch_optional(&state.db)
    .await?;
    if reserved.is_some() {
        return Ok(());
    }
    let remaining_ms: Option<i64> = sqlx::query_scalar(
        "SELECT ceil(extract(epoch FROM locked_until - $3) * 1000)::BIGINT
         FROM login_attempts WHERE email = $1 AND address = $2",
    )
    .bind(email)
    .bind(address)
    .bind(now)
    .fetch_optional(&state.db)
    .await?
    .flatten();
    let retry_after_seconds = (remaining_ms.unwrap_or(1_000).max(1) + 999) / 1_000;
    metrics::counter!("auth_login_locked_total").increment(1);
    Err(AuthError::LoginLocked { retry_after_seconds })
}

#[utoipa::path(post, path = "/auth/login", operation_id = "login", tag = "auth", request_body = contract::auth::Credentials,
    responses((status = 200, body = TokenPair), (status = 401, body = contract::ErrorBody), (status = 429, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    _gateway: Internal,
    headers: axum::http::HeaderMap,
    Json(credentials): Json<Credentials>,
) -> Result<Json<TokenPair>, AuthError> {
    let email = Email::parse(&credentials.email)?;
    let address = client_address(&headers);
    reserve_login_attempt(&state, email.as_str(), &address).await?;

    let user: Option<(String, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&state.db)
            .await?;
    let hash = match &user {
        Some((_, hash)) => hash.clone(),
        None => dummy_hash(state.policy.bcrypt_cost).await?,
    };
    let password = credentials.password;
    // No stored password is longer than bcrypt reads, so a longer one cannot match.
    let fits = password.len() <= MAX_PASSWORD_BYTES;
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await??;

    // A failure was counted when the attempt was reserved.
    let Some((user_id, _)) = user.filter(|_| matches && fits) else {
        return Err(AuthError::InvalidCredentials);
    };

    let mut tx = state.db.begin().await?;
    // Only this address's count: a success elsewhere must not hand an
    // attacker's address a fresh budget.
    sqlx::query("DELETE FROM login_attempts WHERE email = $1 AND address = $2")
        .bind(email.as_str())
        .bind(&address)
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
    .bind(state.policy.refresh_token_ttl)
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
pub async fn me(State(state): State<AppState>, caller: SessionCaller) -> Result<Json<User>, AuthError> {
    let user: Option<UserRow> = sqlx::query_as("SELECT id, email, created_at FROM users WHERE id = $1")
        .bind(&caller.user_id)
        .fetch_optional(&state.db)
        .await?;
    user.map(|u| Json(u.into())).ok_or(AuthError::UserNotFound)
}
