use std::sync::Arc;

use axum::extract::FromRef;
use platform::internal_token::InternalTokens;
use platform::redis::Keys;
use platform::session::SessionTokens;
use redis::aio::ConnectionManager;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::{AuthSettings, Policy, SharedPolicy};

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: PgPool,
    pub(crate) redis: ConnectionManager,
    pub(crate) keys: Keys,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) sessions: SessionTokens,
    pub(crate) api_key_hash_secret: Arc<SecretString>,
    pub(crate) policy: SharedPolicy,
}

impl AppState {
    pub fn new(config: &AuthSettings, db: PgPool, redis: ConnectionManager) -> Self {
        let seconds = |d: std::time::Duration| chrono::Duration::seconds(d.as_secs() as i64);
        Self {
            db,
            redis,
            keys: config.redis.keys(),
            internal_tokens: InternalTokens::new(&config.internal_token_secret),
            sessions: SessionTokens::new(&config.jwt_secret, config.access_token_ttl),
            api_key_hash_secret: Arc::new(config.api_key_hash_secret.clone()),
            policy: Arc::new(Policy {
                bcrypt_cost: config.bcrypt_cost,
                refresh_token_ttl: seconds(config.refresh_token_ttl),
                free_login_attempts: config.max_failed_logins.max(1) as i32,
                login_lockout_base_seconds: config.login_lockout_base.as_secs_f64(),
                login_lockout_max_seconds: config.login_lockout.as_secs_f64(),
                api_keys_per_user_max: i64::from(config.api_keys_per_user_max),
                clock: config.clock.clone(),
            }),
        }
    }
}

impl FromRef<AppState> for InternalTokens {
    fn from_ref(state: &AppState) -> Self {
        state.internal_tokens.clone()
    }
}
