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
use crate::{AppState, AuthError, store};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(me))
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
    let user = store::insert_user(&mut tx, email.as_str(), &password_hash, &new_webhook_secret()).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "registered");
    Ok((StatusCode::CREATED, Json(user)))
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
/// checked, so that no more than the budget ever reach bcrypt; a locked
/// pair is told how long to wait.
async fn reserve_login_attempt(state: &AppState, email: &str, address: &str) -> Result<(), AuthError> {
    let policy = &state.policy;
    let now: DateTime<Utc> = policy.clock.now().into();
    let lockout = store::LockoutPolicy {
        free_attempts: policy.free_login_attempts,
        base_seconds: policy.login_lockout_base_seconds,
        max_seconds: policy.login_lockout_max_seconds,
        now,
    };
    if store::reserve_login_attempt(&state.db, email, address, &lockout)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let remaining_ms = store::lockout_remaining_ms(&state.db, email, address, now).await?;
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

    let user = store::find_credentials(&state.db, email.as_str()).await?;
    let hash = match &user {
        Some(stored) => stored.password_hash.clone(),
        None => dummy_hash(state.policy.bcrypt_cost).await?,
    };
    let password = credentials.password;
    // No stored password is longer than bcrypt reads, so a longer one cannot match.
    let fits = password.len() <= MAX_PASSWORD_BYTES;
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash)).await??;

    // A failure was counted when the attempt was reserved.
    let Some(store::StoredCredentials { user_id, .. }) = user.filter(|_| matches && fits) else {
        return Err(AuthError::InvalidCredentials);
    };

    let mut tx = state.db.begin().await?;
    // Only this address's count: a success elsewhere must not hand an
    // attacker's address a fresh budget.
    store::clear_login_attempts(&mut *tx, email.as_str(), &address).await?;
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
    store::insert_refresh_token(
        &mut **tx,
        &hash,
        user_id,
        family_id,
        state.policy.refresh_token_ttl,
    )
    .await?;
    Ok(TokenPair {
        access_token: state.sessions.mint(user_id),
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.sessions.ttl().as_secs() as i64,
    })
}

#[utoipa::path(post, path = "/auth/refresh", operation_id = "refresh_session", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    _gateway: Internal,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<TokenPair>, AuthError> {
    let token_hash = refresh_token_hash(&request.refresh_token);
    let mut tx = state.db.begin().await?;
    let Some(row) = store::lock_refresh_token(&mut tx, &token_hash).await? else {
        return Err(AuthError::InvalidRefreshToken);
    };
    if row.used && row.usable {
        // A used token shown again means it leaked: end every session of the family.
        store::revoke_session_family(&mut *tx, row.family_id).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, "refresh token reused; revoked its family");
        return Err(AuthError::RefreshTokenReused);
    }
    if !row.usable || row.used {
        return Err(AuthError::InvalidRefreshToken);
    }
    store::mark_refresh_token_used(&mut *tx, &token_hash).await?;
    let tokens = issue_tokens(&state, &mut tx, &row.user_id, row.family_id).await?;
    tx.commit().await?;
    Ok(Json(tokens))
}

#[utoipa::path(get, path = "/auth/me", operation_id = "retrieve_current_user", tag = "auth", security(("session" = [])),
    responses((status = 200, body = User), (status = 401, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn me(State(state): State<AppState>, caller: SessionCaller) -> Result<Json<User>, AuthError> {
    let user = store::find_user(&state.db, &caller.user_id).await?;
    user.map(Json).ok_or(AuthError::UserNotFound)
}
