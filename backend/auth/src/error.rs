use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use platform::error::{ApiError, database_error, internal_error};

use crate::domain::{EmailError, PasswordError};

/// Everything auth can answer with other than success, mapped to HTTP here only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {retry_after_seconds} seconds")]
    LoginLocked { retry_after_seconds: i64 },
    #[error("the refresh token is not valid or has expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; every session of its family is revoked")]
    RefreshTokenReused,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("a key name must have 1 to 100 characters")]
    InvalidKeyName,
    #[error("no such API key")]
    ApiKeyNotFound,
    #[error("a user may hold at most {max} active API keys; revoke one before creating another")]
    ApiKeyLimitReached { max: i64 },
    #[error("no such user")]
    UserNotFound,
    #[error("limit must be between 1 and 100, not {0}")]
    InvalidLimit(i64),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("password hashing failed")]
    Hashing(#[from] bcrypt::BcryptError),
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl AuthError {
    fn to_api_error(&self) -> ApiError {
        let message = self.to_string();
        match self {
            Self::Email(_) => ApiError::invalid_param("invalid_email", "email", message),
            Self::Password(PasswordError::Long) => {
                ApiError::invalid_param("password_too_long", "password", message)
            }
            Self::Password(_) => ApiError::invalid_param("password_too_weak", "password", message),
            Self::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::InvalidRequestError,
                "email_taken",
                message,
            ),
            Self::InvalidCredentials => ApiError::unauthenticated("invalid_credentials", message),
            Self::LoginLocked { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                "login_locked",
                message,
            ),
            Self::InvalidRefreshToken => ApiError::unauthenticated("invalid_refresh_token", message),
            Self::RefreshTokenReused => ApiError::unauthenticated("refresh_token_reused", message),
            Self::InvalidApiKey => ApiError::unauthenticated("invalid_api_key", message),
            Self::InvalidKeyName => ApiError::invalid_param("invalid_name", "name", message),
            Self::ApiKeyNotFound => ApiError::not_found("API key"),
            Self::ApiKeyLimitReached { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::InvalidRequestError,
                "api_key_limit_reached",
                message,
            ),
            Self::UserNotFound => ApiError::not_found("user"),
            Self::InvalidLimit(_) => ApiError::invalid_param("invalid_limit", "limit", message),
            Self::Database(e) => database_error("auth database", e),
            Self::Hashing(e) => internal_error("password hashing", e),
            Self::Task(e) => internal_error("auth background task", e),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = self.to_api_error().into_response();
        if let Self::LoginLocked { retry_after_seconds } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_seconds.max(1).into());
        }
        response
    }
}
