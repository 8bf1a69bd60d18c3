//! Refresh tokens: rotation, reuse and expiry.

use std::time::Duration;

use platform::internal_token::Caller;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestAuth, code};

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
