//! Who may call what: the internal token, session-only routes, gateway-only routes.

use platform::internal_token::{Caller, HEADER, InternalTokens, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestAuth, code, gateway, user, with_key};

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
async fn unknown_routes_answer_in_the_error_body() {
    let auth = TestAuth::start().await;
    let (status, body) = auth.get("/auth/nothing-here", &Caller::Anonymous).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "route_not_found");
}
