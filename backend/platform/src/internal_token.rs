//! The short-lived token the gateway (or a service) attaches to every call to
//! a service. A service answers nothing without one, so a port left open by
//! mistake is not a way in.

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const HEADER: &str = "micro-internal-token";
const AUDIENCE: &str = "micro-internal";
const ISSUER: &str = "micro";
const LIFETIME: Duration = Duration::from_secs(60);

/// Who a service is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The gateway on behalf of nobody yet (registration, login, key checks).
    Anonymous,
    /// A user, authenticated by the gateway with a session or an API key.
    User {
        user_id: String,
        api_key_id: Option<String>,
    },
    /// Another service acting on its own account (payments posting to the ledger).
    Service { name: String },
}

impl Caller {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// `anonymous`, `user` or `service`.
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InternalTokenError {
    #[error("the internal token is missing")]
    Missing,
    #[error("the internal token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the internal token has an unknown scope")]
    UnknownScope,
}

/// Cheap to clone: every request's extractor takes a copy.
#[derive(Clone)]
pub struct InternalTokens(std::sync::Arc<InternalTokensInner>);

struct InternalTokensInner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for InternalTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalTokens(..)")
    }
}

impl InternalTokens {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.leeway = 5;
        Self(std::sync::Arc::new(InternalTokensInner {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }))
    }

    pub fn mint(&self, caller: &Caller) -> String {
        let now = chrono::Utc::now().timestamp();
        let (scope, sub, key) = match caller {
            Caller::Anonymous => ("anonymous", None, None),
            Caller::User { user_id, api_key_id } => ("user", Some(user_id.clone()), api_key_id.clone()),
            Caller::Service { name } => ("service", Some(name.clone()), None),
        };
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + LIFETIME.as_secs() as i64,
            scope: scope.into(),
            sub,
            key,
        };
        match jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding) {
            Ok(token) => token,
            // HS256 over a serialisable struct cannot fail.
            Err(e) => unreachable!("encoding an internal token: {e}"),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, InternalTokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(InternalTokenError::Invalid)?
            .claims;
        match (claims.scope.as_str(), claims.sub) {
            ("anonymous", _) => Ok(Caller::Anonymous),
            ("user", Some(user_id)) => Ok(Caller::User {
                user_id,
                api_key_id: claims.key,
            }),
            ("service", Some(name)) => Ok(Caller::Service { name }),
            _ => Err(InternalTokenError::UnknownScope),
        }
    }
}

/// Extracts and verifies the internal token; any handler that takes it is
/// closed to callers without one.
#[derive(Debug, Clone)]
pub struct Internal(pub Caller);

impl<S> FromRequestParts<S> for Internal
where
    S: Send + Sync,
    InternalTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tokens = InternalTokens::from_ref(state);
        let token = parts
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(InternalTokenError::Missing);
        match token.and_then(|t| tokens.verify(t)) {
            Ok(caller) => Ok(Self(caller)),
            Err(e) => {
                tracing::warn!(error = %e, "refused a call without a valid internal token");
                Err(ApiError::unauthenticated(
                    "internal_token_invalid",
                    "this service only answers the gateway",
                ))
            }
        }
    }
}

/// An authenticated user, the only kind of caller user-facing routes take.
#[derive(Debug, Clone)]
pub struct UserCaller {
    pub user_id: String,
    pub api_key_id: Option<String>,
}

impl<S> FromRequestParts<S> for UserCaller
where
    S: Send + Sync,
    InternalTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Internal::from_request_parts(parts, state).await?.0 {
            Caller::User { user_id, api_key_id } => Ok(Self { user_id, api_key_id }),
            _ => Err(ApiError::unauthenticated(
                "authentication_required",
                "this route needs an authenticated user",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> InternalTokens {
        InternalTokens::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn round_trips_every_caller() {
        let t = tokens("a-secret-long-enough-for-tests");
        for caller in [
            Caller::Anonymous,
            Caller::User {
                user_id: "usr_1".into(),
                api_key_id: Some("key_1".into()),
            },
            Caller::Service {
                name: "payments".into(),
            },
        ] {
            assert_eq!(t.verify(&t.mint(&caller)).expect("valid"), caller);
        }
    }

    #[test]
    fn refuses_another_secret_and_tampering() {
        let token = tokens("a-secret-long-enough-for-tests").mint(&Caller::Anonymous);
        assert!(tokens("another-secret-long-enough").verify(&token).is_err());
        let mut tampered = token.clone();
        tampered.pop();
        assert!(
            tokens("a-secret-long-enough-for-tests")
                .verify(&tampered)
                .is_err()
        );
    }
}
