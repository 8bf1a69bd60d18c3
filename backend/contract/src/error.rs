use serde::{Deserialize, Serialize};

/// `{"error": {"type", "code", "message", "param"?}}`, the body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// The broad class of an error, as Stripe names them, so that clients can
/// branch on it without knowing every code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    RateLimitError,
    IdempotencyError,
    CardError,
    ApiError,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                kind,
                code: code.into(),
                message: message.into(),
                param: None,
            },
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.error.param = Some(param.into());
        self
    }
}

/// The error codes every service and the gateway may answer with, whatever
/// the route. Each service's own codes live beside its types
/// (`auth::codes`, `payments::codes`, `ledger::codes`).
pub mod codes {
    pub const RESOURCE_MISSING: &str = "resource_missing";
    pub const ROUTE_NOT_FOUND: &str = "route_not_found";
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// The service's database is down or restarting: retry shortly.
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    pub const INVALID_BODY: &str = "invalid_body";
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_QUERY: &str = "invalid_query";
    pub const INVALID_LIMIT: &str = "invalid_limit";
    pub const INVALID_CURRENCY: &str = "invalid_currency";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// A service reached without the gateway's internal token.
    pub const INTERNAL_TOKEN_INVALID: &str = "internal_token_invalid";
    /// An internal route reached by a service it does not serve.
    pub const CALLER_NOT_ALLOWED: &str = "caller_not_allowed";
    pub const AUTHENTICATION_REQUIRED: &str = "authentication_required";
    /// A route that only a logged-in session may use, called with an API key.
    pub const SESSION_REQUIRED: &str = "session_required";

    // The gateway's answers, on any route it fronts.
    pub const MISSING_API_KEY: &str = "missing_api_key";
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    pub const MISSING_SESSION: &str = "missing_session";
    pub const INVALID_SESSION: &str = "invalid_session";
    pub const SESSION_EXPIRED: &str = "session_expired";
    pub const RATE_LIMIT_EXCEEDED: &str = "rate_limit_exceeded";
    pub const TOO_MANY_AUTH_FAILURES: &str = "too_many_auth_failures";
    pub const UPSTREAM_UNAVAILABLE: &str = "upstream_unavailable";
    pub const UPSTREAM_TIMEOUT: &str = "upstream_timeout";
    pub const BAD_GATEWAY: &str = "bad_gateway";
    pub const INVALID_PATH: &str = "invalid_path";
    pub const INVALID_STREAM_REQUEST: &str = "invalid_stream_request";
    pub const WEBSOCKET_UPGRADE_REQUIRED: &str = "websocket_upgrade_required";
    pub const STREAM_UNAVAILABLE: &str = "stream_unavailable";
    pub const TOO_MANY_STREAMS: &str = "too_many_streams";
}
