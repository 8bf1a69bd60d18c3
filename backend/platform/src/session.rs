//! Session access tokens: auth mints them at login, the gateway verifies them
//! on session routes. HS256 only, with issuer, audience and expiry required,
//! so `alg: none`, another key, another audience or a stale token all fail.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "micro-auth";
const AUDIENCE: &str = "micro-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionTokenError {
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
}

/// Checks session tokens without being able to issue one: what the gateway
/// holds. Cheap to clone: every request's extractor takes a copy.
#[derive(Clone)]
pub struct SessionVerifier(std::sync::Arc<SessionVerifierInner>);

struct SessionVerifierInner {
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for SessionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionVerifier").finish_non_exhaustive()
    }
}

impl SessionVerifier {
    pub fn new(secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        Self(std::sync::Arc::new(SessionVerifierInner {
            decoding: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
        }))
    }

    /// The user id the token was issued to.
    pub fn verify(&self, token: &str) -> Result<String, SessionTokenError> {
        jsonwebtoken::decode::<SessionClaims>(token, &self.0.decoding, &self.0.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionTokenError::Expired,
                _ => SessionTokenError::Invalid(e),
            })
    }
}

/// Issues session tokens and checks them: what auth holds.
#[derive(Clone)]
pub struct SessionTokens(std::sync::Arc<SessionTokensInner>);

struct SessionTokensInner {
    encoding: EncodingKey,
    verifier: SessionVerifier,
    ttl: Duration,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens")
            .field("ttl", &self.0.ttl)
            .finish_non_exhaustive()
    }
}

impl SessionTokens {
    pub fn new(secret: &SecretString, ttl: Duration) -> Self {
        Self(std::sync::Arc::new(SessionTokensInner {
            encoding: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            verifier: SessionVerifier::new(secret),
            ttl,
        }))
    }

    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    pub fn mint(&self, user_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign(&SessionClaims {
            sub: user_id.to_owned(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.0.ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// Signs arbitrary claims, so that tests can forge expired or
    /// mis-addressed tokens with the right key.
    #[cfg(any(test, feature = "testing"))]
    pub fn mint_claims(&self, claims: &SessionClaims) -> String {
        self.sign(claims)
    }

    fn sign(&self, claims: &SessionClaims) -> String {
        match jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.0.encoding) {
            Ok(token) => token,
            Err(e) => unreachable!("encoding a session token: {e}"),
        }
    }

    /// The user id the token was issued to.
    pub fn verify(&self, token: &str) -> Result<String, SessionTokenError> {
        self.0.verifier.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn tokens(secret: &str) -> SessionTokens {
        SessionTokens::new(&SecretString::from(secret.to_owned()), Duration::from_secs(900))
    }

    fn claims(aud: &str, exp_offset: i64) -> SessionClaims {
        let now = chrono::Utc::now().timestamp();
        SessionClaims {
            sub: "usr_1".into(),
            iss: ISSUER.into(),
            aud: aud.into(),
            iat: now,
            exp: now + exp_offset,
            jti: "j".into(),
        }
    }

    #[test]
    fn accepts_its_own_tokens() {
        let t = tokens("session-secret-for-tests");
        assert_eq!(t.verify(&t.mint("usr_1")).expect("valid"), "usr_1");
    }

    #[test]
    fn a_verifier_accepts_what_the_issuer_minted_under_the_same_secret() {
        let secret = SecretString::from("session-secret-for-tests".to_owned());
        let token = tokens("session-secret-for-tests").mint("usr_1");
        assert_eq!(
            SessionVerifier::new(&secret).verify(&token).expect("valid"),
            "usr_1"
        );
        let other = SecretString::from("another-session-secret".to_owned());
        assert!(SessionVerifier::new(&other).verify(&token).is_err());
    }

    #[test]
    fn refuses_a_wrong_signature() {
        let token = tokens("session-secret-for-tests").mint("usr_1");
        assert!(matches!(
            tokens("another-session-secret").verify(&token),
            Err(SessionTokenError::Invalid(_))
        ));
    }

    #[test]
    fn refuses_alg_none() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(serde_json::to_vec(&claims(AUDIENCE, 600)).expect("json"));
        let unsigned = format!("{header}.{payload}.");
        assert!(tokens("session-secret-for-tests").verify(&unsigned).is_err());
    }

    #[test]
    fn refuses_expired_and_wrong_audience() {
        let t = tokens("session-secret-for-tests");
        assert!(matches!(
            t.verify(&t.mint_claims(&claims(AUDIENCE, -60))),
            Err(SessionTokenError::Expired)
        ));
        assert!(matches!(
            t.verify(&t.mint_claims(&claims("micro-internal", 600))),
            Err(SessionTokenError::Invalid(_))
        ));
    }
}
