//! Registering: one account per normalised email, and each refusal with its reason.

use platform::internal_token::Caller;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestAuth, code};

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
