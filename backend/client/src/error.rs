use contract::ErrorKind;

use crate::RateLimit;

/// Everything a call to the gateway can end with besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway answered with the public error body.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        kind: ErrorKind,
        code: String,
        message: String,
        param: Option<String>,
        rate_limit: Option<RateLimit>,
    },
    /// A non-2xx answer without the public error body (a proxy in between,
    /// or a gateway too old to know the route).
    #[error("HTTP {status} from the gateway: {body_excerpt}")]
    Http { status: u16, body_excerpt: String },
    /// The request did not get an answer: refused, reset, timed out, TLS.
    #[error("cannot reach the gateway: {0}")]
    Network(String),
    /// An answer arrived but was not what the contract says.
    #[error("the gateway's answer could not be read (HTTP {status}): {message}")]
    Decode { status: u16, message: String },
    /// The event stream was closed by the gateway.
    #[error("the gateway closed the stream ({code}): {reason}")]
    StreamClosed { code: u16, reason: String },
    #[error("invalid gateway URL: {0}")]
    InvalidUrl(String),
}

impl ClientError {
    /// The HTTP status when the gateway answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Http { status, .. } | Self::Decode { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The key or token was refused: logging in again is the remedy.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// The public error code, e.g. `payment_not_refundable`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when trying again later may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) | Self::StreamClosed { .. } => true,
            Self::Api { status, .. } | Self::Http { status, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
            }
            Self::Decode { .. } | Self::InvalidUrl(_) => false,
        }
    }
}

pub(crate) fn excerpt(body: &[u8]) -> String {
    let end = body.len().min(512);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Turns a non-2xx answer into the typed error, preferring the public body.
pub(crate) fn from_answer(status: u16, body: &[u8], rate_limit: Option<RateLimit>) -> ClientError {
    match serde_json::from_slice::<contract::ErrorBody>(body) {
        Ok(parsed) => ClientError::Api {
            status,
            kind: parsed.error.kind,
            code: parsed.error.code,
            message: parsed.error.message,
            param: parsed.error.param,
            rate_limit,
        },
        Err(_) => ClientError::Http {
            status,
            body_excerpt: excerpt(body),
        },
    }
}
