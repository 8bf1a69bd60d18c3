use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use contract::error::codes;
use platform::error::ApiError;

use crate::store::rate_limit::Verdict;

/// What the gateway itself answers; upstream answers pass through untouched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("no API key: send Authorization: Bearer sk_test_...")]
    MissingApiKey,
    #[error("the API key is not valid")]
    InvalidApiKey,
    #[error("this route needs a session: send Authorization: Bearer <access token from /auth/login>")]
    MissingSession,
    #[error("the session token is not valid")]
    InvalidSession,
    #[error("the session has expired; refresh it at /auth/refresh")]
    SessionExpired,
    #[error("too many requests; retry after {} seconds", .0.reset_seconds)]
    RateLimited(Verdict),
    #[error("{0} is not available right now")]
    UpstreamUnavailable(&'static str),
    #[error("{0} did not answer in time")]
    UpstreamTimeout(&'static str),
    #[error("{0} gave an answer the gateway could not relay")]
    BadGateway(&'static str),
    #[error("the request body is too large")]
    BodyTooLarge,
    #[error("{0}: send each path in its one canonical spelling")]
    InvalidPath(#[from] crate::domain::canonical::PathError),
    #[error("{0}")]
    InvalidStreamRequest(String),
    #[error("this route speaks WebSocket: send a WebSocket upgrade request")]
    WebSocketUpgradeRequired,
    #[error("no such event")]
    UnknownEvent,
    #[error("the event stream is reconnecting to its source; try again shortly")]
    StreamUnavailable,
    #[error("this API key already holds its maximum of concurrent event streams; close one first")]
    TooManyStreams,
    #[error("too many failed authentications from this address; retry after {} seconds", .0.reset_seconds)]
    TooManyAuthFailures(Verdict),
}

impl GatewayError {
    fn to_api_error(&self) -> ApiError {
        let message = self.to_string();
        match self {
            Self::MissingApiKey => ApiError::unauthenticated(codes::MISSING_API_KEY, message),
            Self::InvalidApiKey => ApiError::unauthenticated(codes::INVALID_API_KEY, message),
            Self::MissingSession => ApiError::unauthenticated(codes::MISSING_SESSION, message),
            Self::InvalidSession => ApiError::unauthenticated(codes::INVALID_SESSION, message),
            Self::SessionExpired => ApiError::unauthenticated(codes::SESSION_EXPIRED, message),
            Self::RateLimited(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                codes::RATE_LIMIT_EXCEEDED,
                message,
            ),
            Self::UpstreamUnavailable(_) => ApiError::unavailable(codes::UPSTREAM_UNAVAILABLE, message),
            Self::UpstreamTimeout(_) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::ApiError,
                codes::UPSTREAM_TIMEOUT,
                message,
            ),
            Self::BadGateway(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::ApiError,
                codes::BAD_GATEWAY,
                message,
            ),
            Self::BodyTooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::InvalidRequestError,
                codes::BODY_TOO_LARGE,
                message,
            ),
            Self::InvalidPath(_) => ApiError::invalid(codes::INVALID_PATH, message),
            Self::InvalidStreamRequest(_) => ApiError::invalid(codes::INVALID_STREAM_REQUEST, message),
            Self::WebSocketUpgradeRequired => ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                ErrorKind::InvalidRequestError,
                codes::WEBSOCKET_UPGRADE_REQUIRED,
                message,
            ),
            Self::UnknownEvent => ApiError::not_found("event"),
            Self::StreamUnavailable => ApiError::unavailable(codes::STREAM_UNAVAILABLE, message),
            Self::TooManyStreams => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                codes::TOO_MANY_STREAMS,
                message,
            ),
            Self::TooManyAuthFailures(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                codes::TOO_MANY_AUTH_FAILURES,
                message,
            ),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let mut response = self.to_api_error().into_response();
        if let Self::RateLimited(verdict) = &self {
            verdict.write_headers(response.headers_mut());
        }
        if let Self::RateLimited(verdict) | Self::TooManyAuthFailures(verdict) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                verdict.reset_seconds.max(1).into(),
            );
        }
        if let Self::UpstreamUnavailable(upstream)
        | Self::UpstreamTimeout(upstream)
        | Self::BadGateway(upstream) = &self
        {
            metrics::counter!("gateway_upstream_errors_total", "upstream" => *upstream).increment(1);
        }
        response
    }
}
