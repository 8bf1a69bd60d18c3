use auth::AuthSettings;
use platform::internal_token::{Caller, Service};
use platform::session::SessionTokens;
use platform::testing::{ServiceDatabase, TestService};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct TestAuth {
    service: TestService<AuthSettings>,
    /// Checks the session tokens auth issues, as the gateway would.
    pub sessions: SessionTokens,
}

impl std::ops::Deref for TestAuth {
    type Target = TestService<AuthSettings>;
    fn deref(&self) -> &TestService<AuthSettings> {
        &self.service
    }
}

impl TestAuth {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut AuthSettings)) -> Self {
        let service = TestService::start(ServiceDatabase::Auth, adjust, auth::build).await;
        let sessions = SessionTokens::new(&service.config.jwt_secret, service.config.access_token_ttl);
        Self { service, sessions }
    }

    pub async fn register(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                "/auth/register",
                &Caller::Anonymous,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("an id").to_owned()
    }

    pub async fn create_key(&self, user: &Caller, name: &str) -> Value {
        let (status, body) = self.post("/auth/api-keys", user, json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A user signed in with a session, as on every `/auth` route.
pub fn user(id: &str) -> Caller {
    Caller::session(id)
}

/// The same user calling with an API key.
pub fn with_key(id: &str) -> Caller {
    Caller::api_key(id, "key_1")
}

pub fn gateway() -> Caller {
    Caller::Service(Service::Gateway)
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}
