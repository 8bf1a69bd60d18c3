//! Webhook signing secrets.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestAuth, code, user, with_key};

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
