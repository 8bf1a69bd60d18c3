//! The JSON error body of every service, and the rejections of the shared
//! extractors rendered in it. Each service keeps its own error enum and maps
//! it to an [`ApiError`] in one place.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use contract::error::codes;
use contract::{ErrorBody, ErrorKind};
use serde::de::DeserializeOwned;

/// A rendered error: status and body. 5xx bodies never carry a cause.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorKind, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(kind, code, message),
        }
    }

    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            code,
            message,
        )
    }

    pub fn invalid_param(code: &str, param: &str, message: impl Into<String>) -> Self {
        let mut error = Self::invalid(code, message);
        error.body = error.body.with_param(param);
        error
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::InvalidRequestError,
            codes::RESOURCE_MISSING,
            format!("no such {what}"),
        )
    }

    pub fn unauthenticated(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::AuthenticationError,
            code,
            message,
        )
    }

    /// The answer to anything unexpected. Log the cause where it happened.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ApiError,
            codes::INTERNAL_ERROR,
            "something went wrong on our side; it has been logged",
        )
    }

    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ApiError,
            code,
            message,
        )
    }
}

/// A field's value refused by the type that parses it. Every service
/// validates this way: one parsed-input type per field (`Email`, `Amount`,
/// `Reference`), whose error names the code and the request field at fault,
/// so that the answer is built in one place, [`ApiError::invalid_input`].
pub trait InvalidInput: std::error::Error {
    /// The stable error code clients branch on.
    fn code(&self) -> &'static str;
    /// The request field at fault.
    fn param(&self) -> &'static str;
}

impl ApiError {
    /// 400 naming the code, the field and what is wrong with it.
    pub fn invalid_input(error: &dyn InvalidInput) -> Self {
        Self::invalid_param(error.code(), error.param(), error.to_string())
    }
}

impl InvalidInput for contract::money::UnknownCurrency {
    fn code(&self) -> &'static str {
        codes::INVALID_CURRENCY
    }

    fn param(&self) -> &'static str {
        "currency"
    }
}

/// A page size outside what a list route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be between 1 and {max}, not {value}")]
pub struct InvalidLimit {
    pub value: i64,
    pub max: i64,
}

impl InvalidInput for InvalidLimit {
    fn code(&self) -> &'static str {
        codes::INVALID_LIMIT
    }

    fn param(&self) -> &'static str {
        "limit"
    }
}

/// The page size a public list route was asked for: 1 to 100, 10 by default.
pub fn page_limit(limit: Option<i64>) -> Result<i64, InvalidLimit> {
    use contract::list::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
    limit_within(limit, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT)
}

/// A page size in `1..=max`, `default` when none was asked for.
pub fn limit_within(limit: Option<i64>, default: i64, max: i64) -> Result<i64, InvalidLimit> {
    match limit {
        None => Ok(default),
        Some(value) if (1..=max).contains(&value) => Ok(value),
        Some(value) => Err(InvalidLimit { value, max }),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// An error and every cause under it, `outer: inner: root`, for one log field.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// Logs a 5xx cause with its whole chain and turns it into the bare 500.
pub fn internal_error(context: &str, error: &(dyn std::error::Error + 'static)) -> ApiError {
    tracing::error!(error = %error_chain(error), "{context}");
    ApiError::internal()
}

/// A database error as a client sees it: a database that is down or
/// restarting is 503 `database_unavailable`, to be retried (a POST with the
/// same `Idempotency-Key`); anything else is the bare 500. The cause is
/// logged either way.
pub fn database_error(context: &str, error: &sqlx::Error) -> ApiError {
    if crate::db::is_unavailable(error) {
        tracing::error!(error = %error_chain(error), "{context} is unavailable");
        ApiError::unavailable(
            codes::DATABASE_UNAVAILABLE,
            "the service's database is not available right now; retry shortly",
        )
    } else {
        internal_error(context, error)
    }
}

/// `axum::Json`, with its rejections in our error body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| body_too_large())?;
        refuse_nul(&bytes)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Whether the request says its body is JSON (`application/json`, or any
/// `application/*+json`).
pub fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// PostgreSQL's text cannot hold NUL, so a string carrying one would fail
/// deep in a query. In valid JSON a NUL can only arrive escaped as `\u0000`;
/// an odd run of backslashes before `u0000` makes it an escape rather than
/// a literal backslash.
fn has_escaped_nul(body: &[u8]) -> bool {
    body.windows(5).enumerate().any(|(at, window)| {
        window == b"u0000" && body[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

/// Refuses a JSON body with a NUL in any string, which PostgreSQL could not store.
pub fn refuse_nul(body: &[u8]) -> Result<(), ApiError> {
    if has_escaped_nul(body) {
        return Err(ApiError::invalid(
            codes::INVALID_BODY,
            "strings may not contain the NUL character (\\u0000)",
        ));
    }
    Ok(())
}

pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::InvalidRequestError,
        codes::UNSUPPORTED_MEDIA_TYPE,
        "send the body as JSON with Content-Type: application/json",
    )
}

pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::InvalidRequestError,
        codes::BODY_TOO_LARGE,
        "the request body is too large or could not be read",
    )
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::JsonDataError(e) => ApiError::invalid(codes::INVALID_BODY, e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::invalid(codes::INVALID_JSON, e.body_text()),
        JsonRejection::BytesRejection(_) => body_too_large(),
        other => ApiError::invalid(codes::INVALID_BODY, other.body_text()),
    }
}

/// `axum::extract::Query`, with its rejections in our error body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL cannot reach PostgreSQL's text; refuse it here, named.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::invalid(
                codes::INVALID_QUERY,
                "query parameters may not contain the NUL character (%00)",
            ));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::invalid(codes::INVALID_QUERY, e.body_text()))
            }
            Err(other) => Err(ApiError::invalid(codes::INVALID_QUERY, other.body_text())),
        }
    }
}

/// Answers unknown routes in our error body rather than an empty 404.
pub async fn route_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::InvalidRequestError,
        codes::ROUTE_NOT_FOUND,
        "no such route",
    )
}

#[cfg(test)]
mod nul_tests {
    use super::has_escaped_nul;

    #[test]
    fn finds_an_escaped_nul_and_only_that() {
        assert!(has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"\u0000":"v"}"#));
        assert!(
            has_escaped_nul(br#"{"a":"\\\u0000"}"#),
            "an escaped backslash, then the NUL escape"
        );
        assert!(
            !has_escaped_nul(br#"{"a":"\\u0000"}"#),
            "a literal backslash followed by u0000"
        );
        assert!(!has_escaped_nul(br#"{"a":"u0000 \u0001"}"#));
        assert!(!has_escaped_nul(b""));
    }
}

#[cfg(test)]
mod database_error_tests {
    use axum::http::StatusCode;

    use super::database_error;

    #[test]
    fn an_unreachable_database_is_503_and_anything_else_500() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        for unavailable in [refused, sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let error = database_error("test database", &unavailable);
            assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE, "{unavailable}");
            assert_eq!(error.body.error.code, "database_unavailable");
        }
        let error = database_error("test database", &sqlx::Error::RowNotFound);
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.body.error.code, "internal_error");
    }
}
