use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use contract::auth::codes;
use contract::error::codes::INVALID_API_KEY;
use platform::error::{ApiError, InvalidLimit, database_error, internal_error};

use crate::domain::{EmailError, KeyNameError, PasswordError};

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
    #[error(transparent)]
    KeyName(#[from] KeyNameError),
    #[error("no such API key")]
    ApiKeyNotFound,
    #[error("a user may hold at most {max} active API keys; revoke one before creating another")]
    ApiKeyLimitReached { max: i64 },
    #[error("no such user")]
    UserNotFound,
    #[error(transparent)]
    Limit(#[from] InvalidLimit),
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
            Self::Email(e) => ApiError::invalid_input(e),
            Self::Password(e) => ApiError::invalid_input(e),
            Self::KeyName(e) => ApiError::invalid_input(e),
            Self::Limit(e) => ApiError::invalid_input(e),
            Self::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::InvalidRequestError,
                codes::EMAIL_TAKEN,
                message,
            ),
            Self::InvalidCredentials => ApiError::unauthenticated(codes::INVALID_CREDENTIALS, message),
            Self::LoginLocked { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                codes::LOGIN_LOCKED,
                message,
            ),
            Self::InvalidRefreshToken => ApiError::unauthenticated(codes::INVALID_REFRESH_TOKEN, message),
            Self::RefreshTokenReused => ApiError::unauthenticated(codes::REFRESH_TOKEN_REUSED, message),
            Self::InvalidApiKey => ApiError::unauthenticated(INVALID_API_KEY, message),
            Self::ApiKeyNotFound => ApiError::not_found("API key"),
            Self::ApiKeyLimitReached { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::InvalidRequestError,
                codes::API_KEY_LIMIT_REACHED,
                message,
            ),
            Self::UserNotFound => ApiError::not_found("user"),
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
