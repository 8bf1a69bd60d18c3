//! Auth through its HTTP routes, on a fresh database and a private Redis
//! namespace, with the internal token the gateway would attach.

use std::time::Duration;

use auth::AuthSettings;
use futures::StreamExt;
use platform::config::ServiceConfig;
use platform::internal_token::{Caller, HEADER, InternalTokens, Service};
use platform::session::SessionTokens;
use platform::testing::{ServiceUnderTest, TestDatabase, config};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct TestAuth {
    service: ServiceUnderTest,
    sessions: SessionTokens,
    config: AuthSettings,
    _db: TestDatabase,
}

impl std::ops::Deref for TestAuth {
    type Target = ServiceUnderTest;
    fn deref(&self) -> &ServiceUnderTest {
        &self.service
    }
}

impl TestAuth {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut AuthSettings)) -> Self {
        let mut config: AuthSettings = config();
        let db = TestDatabase::reserve("auth");
        config.database.url = db.url.clone().into();
        adjust(&mut config);
        let service = ServiceUnderTest::spawn(&config.internal_token_secret, |listener, shutdown| {
            auth::build(&config, listener, shutdown)
        })
        .await;
        Self {
            service,
            sessions: SessionTokens::new(&config.jwt_secret, config.access_token_ttl),
            config,
            _db: db,
        }
    }

    async fn post(&self, path: &str, caller: &Caller, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, caller, Some(body)).await
    }

    async fn get(&self, path: &str, caller: &Caller) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, caller, None).await
    }

    async fn register(&self, email: &str) -> String {
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

    async fn create_key(&self, user: &Caller, name: &str) -> Value {
        let (status, body) = self.post("/auth/api-keys", user, json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

const PASSWORD: &str = "correct horse battery";

/// A user signed in with a session, as on every `/auth` route.
fn user(id: &str) -> Caller {
    Caller::session(id)
}

/// The same user calling with an API key.
fn with_key(id: &str) -> Caller {
    Caller::api_key(id, "key_1")
}

fn gateway() -> Caller {
    Caller::Service(Service::Gateway)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn registers_a_normalised_email_once() {
    let auth = TestAuth::start().await;
    let (status, body) = auth
        .post(
            "/auth/register",
            &Caller::Anonymous,
            json!({"email": "  Ada@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["email"], "ada@example.com");
    assert!(body["id"].as_str().expect("id").starts_with("usr_"));
    assert!(body["created_at"].is_string());
    assert!(body.get("password_hash").is_none());

    let (status, body) = auth
        .post(
            "/auth/register",
            &Caller::Anonymous,
            json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "email_taken");
}

#[tokio::test]
async fn refuses_bad_registrations_with_the_reason() {
    let auth = TestAuth::start().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "invalid_email",
            Some("email"),
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password_too_weak",
            Some("password"),
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(73)}),
            "password_too_long",
            Some("password"),
        ),
        (json!({"email": "a@example.com"}), "invalid_body", None),
    ];
    for (body, expected, param) in cases {
        let (status, answer) = auth.post("/auth/register", &Caller::Anonymous, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(code(&answer), expected);
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        assert_eq!(answer["error"]["param"].as_str(), param);
    }

    let response = auth
        .request(reqwest::Method::POST, "/auth/register", &Caller::Anonymous)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "invalid_json");

    let response = auth
        .request(reqwest::Method::POST, "/auth/register", &Caller::Anonymous)
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn answers_nobody_without_a_valid_internal_token() {
    let auth = TestAuth::start().await;
    let body = json!({"email": "a@example.com", "password": PASSWORD});
    let response = auth
        .http
        .post(format!("{}/auth/register", auth.base))
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(code(&answer), "internal_token_invalid");

    let forged = InternalTokens::new(&secrecy::SecretString::from("not-the-internal-secret".to_owned()));
    let response = auth
        .http
        .post(format!("{}/auth/register", auth.base))
        .header(HEADER, forged.mint(&Caller::Anonymous))
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Health stays open for probes.
    let response = auth
        .http
        .get(format!("{}/readyz", auth.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn logs_in_with_a_session_token_for_the_user() {
    let auth = TestAuth::start().await;
    let user_id = auth.register("ada@example.com").await;
    let (status, body) = auth
        .post(
            "/auth/login",
            &Caller::Anonymous,
            json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], auth.config.access_token_ttl.as_secs());
    let access = body["access_token"].as_str().expect("access token");
    assert_eq!(auth.sessions.verify(access).expect("a valid session"), user_id);
    assert!(
        body["refresh_token"]
            .as_str()
            .expect("refresh")
            .starts_with("rt_")
    );

    let (status, me) = auth.get("/auth/me", &user(&user_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "ada@example.com");
    let (status, _) = auth.get("/auth/me", &Caller::Anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_look_the_same() {
    let auth = TestAuth::start().await;
    auth.register("ada@example.com").await;
    let wrong = auth
        .post(
            "/auth/login",
            &Caller::Anonymous,
            json!({"email": "ada@example.com", "password": "wrong password!"}),
        )
        .await;
    let unknown = auth
        .post(
            "/auth/login",
            &Caller::Anonymous,
            json!({"email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown);
    assert_eq!(code(&wrong.1), "invalid_credentials");
}

#[tokio::test]
async fn locks_an_account_after_repeated_failures() {
    let auth = TestAuth::start_with(|c| c.max_failed_logins = 3).await;
    auth.register("ada@example.com").await;
    for _ in 0..3 {
        let (status, _) = auth
            .post(
                "/auth/login",
                &Caller::Anonymous,
                json!({"email": "ada@example.com", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = auth
        .request(reqwest::Method::POST, "/auth/login", &Caller::Anonymous)
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= auth.config.login_lockout.as_secs() as i64);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "login_locked");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_lockout_ends_with_its_window_and_success_resets_the_count() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 2;
        c.login_lockout = Duration::from_secs(1);
    })
    .await;
    auth.register("ada@example.com").await;
    let wrong = json!({"email": "ada@example.com", "password": "wrong password!"});
    let right = json!({"email": "ada@example.com", "password": PASSWORD});
    for _ in 0..2 {
        auth.post("/auth/login", &Caller::Anonymous, wrong.clone()).await;
    }
    assert_eq!(
        auth.post("/auth/login", &Caller::Anonymous, right.clone())
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let unlocked = platform::testing::eventually(Duration::from_secs(5), || async {
        let (status, _) = auth.post("/auth/login", &Caller::Anonymous, right.clone()).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(unlocked.is_some(), "the lockout should end with its window");
}

/// A login as the gateway forwards it from a client at `address`.
async fn login_from(auth: &TestAuth, address: &str, password: &str) -> (StatusCode, Option<i64>) {
    let response = auth
        .request(reqwest::Method::POST, "/auth/login", &Caller::Anonymous)
        .header("x-micro-client-ip", address)
        .json(&json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .expect("answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status(), retry_after)
}

#[tokio::test]
async fn concurrent_wrong_passwords_cannot_exceed_the_budget() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 5;
        // Long enough that no attempt of the burst outlives the lock.
        c.login_lockout_base = Duration::from_secs(60);
    })
    .await;
    auth.register("ada@example.com").await;
    let attempts = (0..20).map(|_| login_from(&auth, "203.0.113.7", "wrong password!"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Only an attempt that got past the reservation is answered 401 (its
    // password was checked); every other one is refused before bcrypt.
    assert_eq!((checked, refused), (5, 15), "{statuses:?}");
    // The right password is refused too while the lock lasts.
    let (status, retry_after) = login_from(&auth, "203.0.113.7", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|s| s > 1 && s <= 60), "{retry_after:?}");
}

#[tokio::test]
async fn a_lockout_from_one_address_does_not_stop_another() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 3;
        c.login_lockout_base = Duration::from_secs(60);
    })
    .await;
    auth.register("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&auth, "198.51.100.1", "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&auth, "198.51.100.1", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&auth, "198.51.100.2", PASSWORD).await.0,
        StatusCode::OK
    );
    // Hosts of one IPv6 /64 share a count; another network does not.
    for _ in 0..3 {
        login_from(&auth, "2001:db8:0:1::1", "wrong password!").await;
    }
    assert_eq!(
        login_from(&auth, "2001:db8:0:1::ffff", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&auth, "2001:db8:0:2::1", PASSWORD).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_delay_doubles_with_each_failure_up_to_its_cap_and_success_resets_it() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 2;
        c.login_lockout_base = Duration::from_secs(1);
        c.login_lockout = Duration::from_secs(3);
    })
    .await;
    auth.register("ada@example.com").await;
    let from = "192.0.2.9";
    for _ in 0..2 {
        assert_eq!(
            login_from(&auth, from, "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (status, retry_after) = login_from(&auth, from, "wrong password!").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        delays.push(retry_after.expect("a Retry-After"));
        // A refused attempt costs nothing, so polling does not extend the lock.
        let through = platform::testing::eventually(Duration::from_secs(6), || async {
            let (status, _) = login_from(&auth, from, "wrong password!").await;
            (status != StatusCode::TOO_MANY_REQUESTS).then_some(status)
        })
        .await;
        assert_eq!(through, Some(StatusCode::UNAUTHORIZED));
    }
    assert_eq!(delays, vec![1, 2, 3]);

    let unlocked = platform::testing::eventually(Duration::from_secs(6), || async {
        let (status, _) = login_from(&auth, from, PASSWORD).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        unlocked.is_some(),
        "the right password gets through once the lock passes"
    );
    // The success reset the count: the free attempts are back.
    assert_eq!(
        login_from(&auth, from, "wrong password!").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&auth, from, "wrong password!").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&auth, from, "wrong password!").await,
        (StatusCode::TOO_MANY_REQUESTS, Some(1))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let auth = TestAuth::start().await;
    let user_id = auth.register("ada@example.com").await;
    let (_, login) = auth
        .post(
            "/auth/login",
            &Caller::Anonymous,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let first = login["refresh_token"].as_str().expect("refresh").to_owned();

    let (status, rotated) = auth
        .post(
            "/auth/refresh",
            &Caller::Anonymous,
            json!({"refresh_token": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(first, second);
    assert_eq!(
        auth.sessions
            .verify(rotated["access_token"].as_str().expect("access"))
            .expect("valid"),
        user_id
    );

    let (status, body) = auth
        .post(
            "/auth/refresh",
            &Caller::Anonymous,
            json!({"refresh_token": first}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "refresh_token_reused");
    // The reuse ended the family: the token issued by the rotation is dead too.
    let (status, body) = auth
        .post(
            "/auth/refresh",
            &Caller::Anonymous,
            json!({"refresh_token": second}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "invalid_refresh_token");

    let (status, _) = auth
        .post(
            "/auth/refresh",
            &Caller::Anonymous,
            json!({"refresh_token": "rt_made_up"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let auth = TestAuth::start_with(|c| c.refresh_token_ttl = Duration::from_secs(0)).await;
    auth.register("ada@example.com").await;
    let (_, login) = auth
        .post(
            "/auth/login",
            &Caller::Anonymous,
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    let (status, body) = auth
        .post(
            "/auth/refresh",
            &Caller::Anonymous,
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "invalid_refresh_token");
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_secrets_and_verified() {
    let auth = TestAuth::start().await;
    let user_id = auth.register("ada@example.com").await;
    let created = auth.create_key(&user(&user_id), "laptop").await;
    let key = created["key"].as_str().expect("key");
    assert!(key.starts_with("sk_test_"));
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    assert!(created["id"].as_str().expect("id").starts_with("key_"));

    let (status, list) = auth.get("/auth/api-keys", &user(&user_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let listed = &list["data"][0];
    assert_eq!(listed["id"], created["id"]);
    assert_eq!(listed["name"], "laptop");
    assert!(listed.get("key").is_none());
    assert!(!list.to_string().contains(key));
    assert!(listed["last_used_at"].is_null());

    let (status, verified) = auth
        .post("/internal/api-keys/verify", &gateway(), json!({"key": key}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["user_id"], user_id);
    assert_eq!(verified["key_id"], created["id"]);
    let (_, list) = auth.get("/auth/api-keys", &user(&user_id)).await;
    assert!(list["data"][0]["last_used_at"].is_string());

    for bad in [
        format!("{key}x"),
        key.replace("sk_test_", "sk_live_"),
        // The last character changed (to one it is not already).
        format!(
            "{}{}",
            &key[..key.len() - 1],
            if key.ends_with('A') { 'B' } else { 'A' }
        ),
    ] {
        let (status, body) = auth
            .post("/internal/api-keys/verify", &gateway(), json!({"key": bad}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(code(&body), "invalid_api_key");
    }

    let (status, body) = auth
        .post("/auth/api-keys", &user(&user_id), json!({"name": "  "}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_name");
}

#[tokio::test]
async fn revocation_is_idempotent_scoped_and_announced() {
    let auth = TestAuth::start().await;
    let ada = auth.register("ada@example.com").await;
    let bob = auth.register("bob@example.com").await;
    let created = auth.create_key(&user(&ada), "ci").await;
    let key_id = created["id"].as_str().expect("id");

    let client = redis::Client::open(auth.config.redis.url.as_str()).expect("redis url");
    let mut pubsub = client.get_async_pubsub().await.expect("redis");
    let channel = auth.config.redis.keys().api_key_revocations();
    pubsub.subscribe(&channel).await.expect("subscribe");

    let path = format!("/auth/api-keys/{key_id}");
    let (status, _) = auth.send(reqwest::Method::DELETE, &path, &user(&bob), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another user's key is not theirs to revoke"
    );

    let (status, revoked) = auth.send(reqwest::Method::DELETE, &path, &user(&ada), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["id"], key_id);

    let message = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .expect("the revocation is announced")
        .expect("a message");
    let announced: Value =
        serde_json::from_str(&message.get_payload::<String>().expect("text")).expect("json");
    assert_eq!(announced["key_id"], key_id);
    assert_eq!(announced["user_id"], ada);

    let (status, again) = auth.send(reqwest::Method::DELETE, &path, &user(&ada), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);

    let (status, _) = auth
        .post(
            "/internal/api-keys/verify",
            &gateway(),
            json!({"key": created["key"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, list) = auth.get("/auth/api-keys", &user(&ada)).await;
    assert_eq!(list["data"][0]["revoked_at"], revoked["revoked_at"]);
    let (status, _) = auth
        .send(
            reqwest::Method::DELETE,
            "/auth/api-keys/key_missing",
            &user(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn key_lists_are_paginated_newest_first() {
    let auth = TestAuth::start().await;
    let ada = auth.register("ada@example.com").await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        ids.push(
            auth.create_key(&user(&ada), name).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let (_, page) = auth.get("/auth/api-keys?limit=2", &user(&ada)).await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["id"], ids[2].as_str());
    assert_eq!(page["data"][1]["id"], ids[1].as_str());
    let (_, page) = auth
        .get(
            &format!("/auth/api-keys?limit=2&starting_after={}", ids[1]),
            &user(&ada),
        )
        .await;
    assert_eq!(page["has_more"], false);
    assert_eq!(page["data"].as_array().expect("array").len(), 1);
    assert_eq!(page["data"][0]["id"], ids[0].as_str());
    let (status, body) = auth.get("/auth/api-keys?limit=0", &user(&ada)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "invalid_limit");
    let (status, _) = auth.get("/auth/api-keys?limit=many", &user(&ada)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let bob = auth.register("bob@example.com").await;
    let (_, page) = auth.get("/auth/api-keys", &user(&bob)).await;
    assert_eq!(page["data"].as_array().expect("array").len(), 0);
}

#[tokio::test]
async fn every_user_has_a_webhook_secret_that_rolls() {
    let auth = TestAuth::start().await;
    let ada = auth.register("ada@example.com").await;
    let bob = auth.register("bob@example.com").await;
    let (status, first) = auth.get("/v1/webhooks/secret", &user(&ada)).await;
    assert_eq!(status, StatusCode::OK);
    let secret = first["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    let (_, bobs) = auth.get("/v1/webhooks/secret", &user(&bob)).await;
    assert_ne!(bobs["secret"], first["secret"]);

    let (status, rolled) = auth
        .post("/v1/webhooks/secret/roll", &user(&ada), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rolled["secret"], first["secret"]);
    let (_, now) = auth.get("/v1/webhooks/secret", &user(&ada)).await;
    assert_eq!(now["secret"], rolled["secret"]);

    // A listener reads the secret with its API key, but only a session rolls it.
    let (status, read) = auth.get("/v1/webhooks/secret", &with_key(&ada)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["secret"], rolled["secret"]);
    let (status, body) = auth
        .post("/v1/webhooks/secret/roll", &with_key(&ada), json!({}))
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "session_required"));
    let (_, after) = auth.get("/v1/webhooks/secret", &user(&ada)).await;
    assert_eq!(after["secret"], rolled["secret"]);
}

#[tokio::test]
async fn credential_routes_refuse_an_api_key_caller() {
    let auth = TestAuth::start().await;
    let ada = auth.register("ada@example.com").await;
    let created = auth.create_key(&user(&ada), "laptop").await;
    let key_path = format!("/auth/api-keys/{}", created["id"].as_str().expect("id"));
    let routes = [
        (reqwest::Method::GET, "/auth/me", None),
        (reqwest::Method::GET, "/auth/api-keys", None),
        (
            reqwest::Method::POST,
            "/auth/api-keys",
            Some(json!({"name": "successor"})),
        ),
        (reqwest::Method::DELETE, key_path.as_str(), None),
        (reqwest::Method::POST, "/v1/webhooks/secret/roll", Some(json!({}))),
    ];
    for (method, path, body) in routes {
        let key_id = created["id"].as_str().expect("id");
        let caller = Caller::api_key(ada.clone(), key_id);
        let (status, answer) = auth.send(method.clone(), path, &caller, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(code(&answer), "session_required", "{method} {path}");
        assert_eq!(answer["error"]["type"], "permission_error");
        let (status, _) = auth.send(method.clone(), path, &gateway(), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} as the gateway");
    }
    // Nothing was created or revoked by the key.
    let (_, keys) = auth.get("/auth/api-keys", &user(&ada)).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1), "{keys}");
    assert!(keys["data"][0]["revoked_at"].is_null(), "{keys}");
}

#[tokio::test]
async fn key_verification_answers_only_the_gateway() {
    let auth = TestAuth::start().await;
    let ada = auth.register("ada@example.com").await;
    let created = auth.create_key(&user(&ada), "laptop").await;
    let body = json!({"key": created["key"]});
    let callers = [
        ("anonymous", Caller::Anonymous, StatusCode::FORBIDDEN),
        ("user via session", user(&ada), StatusCode::FORBIDDEN),
        ("user via api key", with_key(&ada), StatusCode::FORBIDDEN),
        (
            "payments",
            Caller::Service(Service::Payments),
            StatusCode::FORBIDDEN,
        ),
        ("ops", Caller::Service(Service::Ops), StatusCode::FORBIDDEN),
        ("gateway", gateway(), StatusCode::OK),
    ];
    for (name, caller, expected) in callers {
        let (status, answer) = auth
            .post("/internal/api-keys/verify", &caller, body.clone())
            .await;
        assert_eq!(status, expected, "{name}: {answer}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(code(&answer), "caller_not_allowed", "{name}");
        }
    }
    let response = auth
        .http
        .post(format!("{}/internal/api-keys/verify", auth.base))
        .json(&body)
        .send()
        .await
        .expect("auth answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_holds_at_most_the_configured_number_of_active_keys() {
    let auth = TestAuth::start_with(|config| config.api_keys_per_user_max = 3).await;
    let ada = auth.register("ada@example.com").await;
    let bob = auth.register("bob@example.com").await;
    // Many at once: the cap holds under concurrency, not just in sequence.
    let attempts = (0..12).map(|i| {
        let caller = user(&ada);
        let auth = &auth;
        async move {
            auth.post("/auth/api-keys", &caller, json!({"name": format!("k{i}")}))
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 3, "{answers:?}");
    for (status, body) in answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::CREATED)
    {
        assert_eq!(
            (*status, code(body)),
            (StatusCode::CONFLICT, "api_key_limit_reached"),
            "{body}"
        );
    }
    // Another user's count is their own.
    auth.create_key(&user(&bob), "bob's").await;
    // A revoked key frees its place.
    let path = format!("/auth/api-keys/{}", created[0]["id"].as_str().expect("id"));
    let (status, _) = auth.send(reqwest::Method::DELETE, &path, &user(&ada), None).await;
    assert_eq!(status, StatusCode::OK);
    auth.create_key(&user(&ada), "after revoking").await;
    let (status, body) = auth
        .post("/auth/api-keys", &user(&ada), json!({"name": "one too many"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "api_key_limit_reached")
    );
}

#[test]
fn the_key_cap_defaults_to_25_and_is_configurable() {
    let defaults = AuthSettings::from_lookup(&|_| None).expect("the defaults are valid");
    assert_eq!(defaults.api_keys_per_user_max, 25);
    let set = |value: &'static str| {
        AuthSettings::from_lookup(&move |name| (name == "API_KEYS_PER_USER_MAX").then(|| value.to_owned()))
    };
    assert_eq!(set("7").expect("valid").api_keys_per_user_max, 7);
    assert!(set("0").is_err());
    assert!(set("many").is_err());
}

#[tokio::test]
async fn unknown_routes_answer_in_the_error_body() {
    let auth = TestAuth::start().await;
    let (status, body) = auth.get("/auth/nothing-here", &Caller::Anonymous).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "route_not_found");
}
