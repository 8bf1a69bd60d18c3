use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credentials {
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: String,
    /// 10 characters or more, at most 72 bytes.
    #[cfg_attr(feature = "openapi", schema(min_length = 10, max_length = 72))]
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApiKeyRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
}

/// The answer to creating a key: the only time its secret is ever shown.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    pub key: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedApiKey {
    pub id: String,
    pub revoked_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSecret {
    pub secret: String,
}

/// The prefix every secret API key starts with.
pub const API_KEY_PREFIX: &str = "sk_test_";
/// The prefix of webhook signing secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// What `Debug` prints in place of a password, a key, a token or a secret,
/// so that a logged or panicking value never carries one.
pub const REDACTED: &str = "[redacted]";

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &REDACTED)
            .field("refresh_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key", &REDACTED)
            .field("prefix", &self.prefix)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("secret", &REDACTED)
            .finish()
    }
}

/// The error codes of auth's routes, beside the shared ones in [`crate::error::codes`].
pub mod codes {
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const PASSWORD_TOO_WEAK: &str = "password_too_weak";
    pub const PASSWORD_TOO_LONG: &str = "password_too_long";
    pub const EMAIL_TAKEN: &str = "email_taken";
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// Too many failed logins from one address for one email; `Retry-After` says when.
    pub const LOGIN_LOCKED: &str = "login_locked";
    pub const INVALID_REFRESH_TOKEN: &str = "invalid_refresh_token";
    /// A used refresh token shown again: its whole session family is revoked.
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    pub const INVALID_NAME: &str = "invalid_name";
    pub const API_KEY_LIMIT_REACHED: &str = "api_key_limit_reached";
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-value-that-must-not-print";

    #[test]
    fn debug_never_prints_a_secret() {
        let now = chrono::Utc::now();
        let printed = [
            format!(
                "{:?}",
                Credentials {
                    email: "ada@example.com".into(),
                    password: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                TokenPair {
                    access_token: SECRET.into(),
                    refresh_token: format!("rt_{SECRET}"),
                    token_type: "Bearer".into(),
                    expires_in: 900,
                }
            ),
            format!(
                "{:?}",
                RefreshRequest {
                    refresh_token: SECRET.into(),
                }
            ),
            format!(
                "{:#?}",
                CreatedApiKey {
                    id: "key_1".into(),
                    name: "ci".into(),
                    key: format!("{API_KEY_PREFIX}{SECRET}"),
                    prefix: API_KEY_PREFIX.into(),
                    created_at: now,
                }
            ),
            format!(
                "{:?}",
                WebhookSecret {
                    secret: format!("{WEBHOOK_SECRET_PREFIX}{SECRET}"),
                }
            ),
        ];
        for text in printed {
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
    }

    #[test]
    fn redaction_is_only_for_debug_the_wire_is_unchanged() {
        let credentials = Credentials {
            email: "ada@example.com".into(),
            password: SECRET.into(),
        };
        let json = serde_json::to_value(&credentials).expect("json");
        assert_eq!(json["password"], SECRET);
        assert!(format!("{credentials:?}").contains("ada@example.com"));
    }
}
