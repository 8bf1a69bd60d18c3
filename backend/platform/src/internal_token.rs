//! The short-lived token the gateway (or a service) attaches to every call to
//! a service. A service answers nothing without one, so a port left open by
//! mistake is not a way in.

use std::marker::PhantomData;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const HEADER: &str = "micro-internal-token";
const AUDIENCE: &str = "micro-internal";
const ISSUER: &str = "micro";
const LIFETIME: Duration = Duration::from_secs(60);

/// How the gateway authenticated a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A session access token from `/auth/login`.
    Session,
    /// An API key, named by its id.
    ApiKey { key_id: String },
}

/// The services that call other services on their own account. A token
/// naming any other service is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The gateway itself, not on behalf of a user (key verification,
    /// filling a stream's gap).
    Gateway,
    /// Payments, posting to the ledger.
    Payments,
    /// Operators' tooling and tests: the ledger's trial balance.
    Ops,
}

impl Service {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Payments => "payments",
            Self::Ops => "ops",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Gateway, Self::Payments, Self::Ops]
            .into_iter()
            .find(|service| service.name() == name)
    }
}

/// Who a service is serving.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The gateway on behalf of nobody yet (registration, login, refresh).
    Anonymous,
    /// A user, authenticated by the gateway with a session or an API key.
    User { user_id: String, credential: Credential },
    /// A service acting on its own account.
    Service(Service),
}

impl Caller {
    pub fn session(user_id: impl Into<String>) -> Self {
        Self::User {
            user_id: user_id.into(),
            credential: Credential::Session,
        }
    }

    pub fn api_key(user_id: impl Into<String>, key_id: impl Into<String>) -> Self {
        Self::User {
            user_id: user_id.into(),
            credential: Credential::ApiKey {
                key_id: key_id.into(),
            },
        }
    }

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
    /// A user's credential: `session` or `api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cred: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InternalTokenError {
    #[error("the internal token is missing")]
    Missing,
    #[error("the internal token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the internal token names no caller this platform knows")]
    UnknownCaller,
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
        let (scope, sub, cred, key) = match caller {
            Caller::Anonymous => ("anonymous", None, None, None),
            Caller::User {
                user_id,
                credential: Credential::Session,
            } => ("user", Some(user_id.clone()), Some("session"), None),
            Caller::User {
                user_id,
                credential: Credential::ApiKey { key_id },
            } => (
                "user",
                Some(user_id.clone()),
                Some("api_key"),
                Some(key_id.clone()),
            ),
            Caller::Service(service) => ("service", Some(service.name().to_owned()), None, None),
        };
        self.sign(&Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + LIFETIME.as_secs() as i64,
            scope: scope.into(),
            sub,
            cred: cred.map(str::to_owned),
            key,
        })
    }

    fn sign(&self, claims: &Claims) -> String {
        match jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.0.encoding) {
            Ok(token) => token,
            // HS256 over a serialisable struct cannot fail.
            Err(e) => unreachable!("encoding an internal token: {e}"),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, InternalTokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)
            .map_err(InternalTokenError::Invalid)?
            .claims;
        // Every combination not named here is refused, so that a token can
        // never be read as a more trusted kind of caller than it was minted for.
        match (
            claims.scope.as_str(),
            claims.sub,
            claims.cred.as_deref(),
            claims.key,
        ) {
            ("anonymous", None, None, None) => Ok(Caller::Anonymous),
            ("user", Some(user_id), Some("session"), None) => Ok(Caller::session(user_id)),
            ("user", Some(user_id), Some("api_key"), Some(key_id)) => Ok(Caller::api_key(user_id, key_id)),
            ("service", Some(name), None, None) => Service::parse(&name)
                .map(Caller::Service)
                .ok_or(InternalTokenError::UnknownCaller),
            _ => Err(InternalTokenError::UnknownCaller),
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
        verified(&parts.headers, &InternalTokens::from_ref(state)).map(Self)
    }
}

fn verified(headers: &HeaderMap, tokens: &InternalTokens) -> Result<Caller, ApiError> {
    let token = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(InternalTokenError::Missing);
    token.and_then(|t| tokens.verify(t)).map_err(|e| {
        tracing::warn!(error = %e, "refused a call without a valid internal token");
        ApiError::unauthenticated(
            contract::error::codes::INTERNAL_TOKEN_INVALID,
            "this service only answers the gateway",
        )
    })
}

fn not_allowed(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorKind::PermissionError,
        contract::error::codes::CALLER_NOT_ALLOWED,
        message,
    )
}

/// An authenticated user, the only kind of caller user-facing routes take.
#[derive(Debug, Clone)]
pub struct UserCaller {
    pub user_id: String,
    pub credential: Credential,
}

impl<S> FromRequestParts<S> for UserCaller
where
    S: Send + Sync,
    InternalTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Internal::from_request_parts(parts, state).await?.0 {
            Caller::User { user_id, credential } => Ok(Self { user_id, credential }),
            _ => Err(ApiError::unauthenticated(
                contract::error::codes::AUTHENTICATION_REQUIRED,
                "this route needs an authenticated user",
            )),
        }
    }
}

/// A user who signed in with a session. Routes that manage credentials take
/// this, so that an API key, leaked or not, cannot mint or revoke keys
/// whatever the gateway's routing lets through.
#[derive(Debug, Clone)]
pub struct SessionCaller {
    pub user_id: String,
}

impl<S> FromRequestParts<S> for SessionCaller
where
    S: Send + Sync,
    InternalTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = UserCaller::from_request_parts(parts, state).await?;
        match user.credential {
            Credential::Session => Ok(Self {
                user_id: user.user_id,
            }),
            Credential::ApiKey { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorKind::PermissionError,
                contract::error::codes::SESSION_REQUIRED,
                "this route needs a session: sign in at /auth/login; an API key cannot do this",
            )),
        }
    }
}

/// Which services may call a route; see [`ServiceCaller`].
pub trait Allowlist: Send + Sync + 'static {
    const SERVICES: &'static [Service];
}

/// Only the gateway, on its own account.
#[derive(Debug)]
pub enum FromGateway {}
impl Allowlist for FromGateway {
    const SERVICES: &'static [Service] = &[Service::Gateway];
}

/// Only payments.
#[derive(Debug)]
pub enum FromPayments {}
impl Allowlist for FromPayments {
    const SERVICES: &'static [Service] = &[Service::Payments];
}

/// Only operators' tooling: no public path leads here.
#[derive(Debug)]
pub enum FromOps {}
impl Allowlist for FromOps {
    const SERVICES: &'static [Service] = &[Service::Ops];
}

/// A service on `A`'s list. Every `/internal` handler takes one, so its
/// allowlist is part of its signature; users, whatever their credential,
/// and services not on the list get 403.
#[derive(Debug)]
pub struct ServiceCaller<A: Allowlist>(pub Service, PhantomData<A>);

impl<S, A> FromRequestParts<S> for ServiceCaller<A>
where
    S: Send + Sync,
    A: Allowlist,
    InternalTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Internal::from_request_parts(parts, state).await?.0 {
            Caller::Service(service) if A::SERVICES.contains(&service) => Ok(Self(service, PhantomData)),
            caller => {
                tracing::warn!(?caller, path = %parts.uri.path(), "refused a caller not on the route's allowlist");
                Err(not_allowed("this route is not open to this caller"))
            }
        }
    }
}

/// Closes every route of `router` to all but services, before any handler
/// runs: the `/internal` routes of a service go through this, so that a
/// handler written without its [`ServiceCaller`] is still shut to users.
pub fn services_only<S>(router: Router<S>, tokens: InternalTokens) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(axum::middleware::from_fn_with_state(tokens, refuse_non_services))
}

async fn refuse_non_services(State(tokens): State<InternalTokens>, req: Request, next: Next) -> Response {
    match verified(req.headers(), &tokens) {
        Ok(Caller::Service(_)) => next.run(req).await,
        Ok(caller) => {
            tracing::warn!(?caller, path = %req.uri().path(), "refused a non-service caller on an internal route");
            not_allowed("this route is not open to this caller").into_response()
        }
        Err(e) => e.into_response(),
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
            Caller::session("usr_1"),
            Caller::api_key("usr_1", "key_1"),
            Caller::Service(Service::Gateway),
            Caller::Service(Service::Payments),
            Caller::Service(Service::Ops),
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

    fn claims(scope: &str, sub: Option<&str>, cred: Option<&str>, key: Option<&str>) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + 60,
            scope: scope.into(),
            sub: sub.map(str::to_owned),
            cred: cred.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn refuses_callers_it_does_not_know_or_that_are_half_said() {
        let t = tokens("a-secret-long-enough-for-tests");
        for odd in [
            claims("service", Some("billing"), None, None),
            claims("service", Some("payments"), Some("session"), None),
            claims("user", Some("usr_1"), None, None),
            claims("user", Some("usr_1"), None, Some("key_1")),
            claims("user", Some("usr_1"), Some("api_key"), None),
            claims("user", Some("usr_1"), Some("session"), Some("key_1")),
            claims("user", None, Some("session"), None),
            claims("anonymous", Some("usr_1"), None, None),
            claims("admin", Some("usr_1"), None, None),
        ] {
            let described = format!("{odd:?}");
            assert!(
                matches!(t.verify(&t.sign(&odd)), Err(InternalTokenError::UnknownCaller)),
                "{described}"
            );
        }
    }
}
