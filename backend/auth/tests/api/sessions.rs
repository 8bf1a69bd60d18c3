//! Logging in for a session token.

use std::time::Duration;

use platform::internal_token::Caller;
use platform::testing::{Link, eventually};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{PASSWORD, TestAuth, code, user};

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
async fn a_database_outage_is_503_and_logins_work_again_afterwards() {
    let mut link = Link::to_postgres().await;
    let auth = TestAuth::start_with(|config| {
        config.database.url = link.postgres_url(config.database.url.expose_secret()).into();
    })
    .await;
    auth.register("ada@example.com").await;
    let login = json!({"email": "ada@example.com", "password": PASSWORD});

    link.cut().await;
    let (status, answer) = auth.post("/auth/login", &Caller::Anonymous, login.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(code(&answer), "database_unavailable");

    link.open().await;
    let logged_in = eventually(Duration::from_secs(15), || {
        let (auth, login) = (&auth, login.clone());
        async move {
            let (status, answer) = auth.post("/auth/login", &Caller::Anonymous, login).await;
            (status == StatusCode::OK).then_some(answer)
        }
    })
    .await
    .expect("logged in once the database is back");
    assert!(logged_in["access_token"].is_string(), "{logged_in}");
}
