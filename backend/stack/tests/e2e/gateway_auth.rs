use std::time::Duration;

use platform::session::{SessionClaims, SessionTokens};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;
use stack::testing::TestStack;

use crate::support::{Client, PASSWORD, code};

#[tokio::test]
async fn a_developer_registers_logs_in_and_manages_keys_through_the_gateway() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;

    let (status, me) = client.get("/auth/me", Some(&ada.access_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], ada.user_id.as_str());

    let (status, keys) = client.get("/auth/api-keys", Some(&ada.access_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys["data"][0]["id"], ada.key_id.as_str());
    assert!(!keys.to_string().contains(&ada.api_key));

    let (status, secret) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(secret["secret"].as_str().expect("secret").starts_with("whsec_"));

    // The key is not a session, and the session is not a key.
    let (status, body) = client.get("/auth/me", Some(&ada.api_key)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_session")
    );
    let (status, body) = client.get("/v1/webhooks/secret", Some(&ada.access_token)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}

#[tokio::test]
async fn unknown_and_missing_keys_are_refused_alike() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let (status, body) = client.get("/v1/webhooks/secret", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "missing_api_key")
    );
    let made_up = format!("sk_test_{}", "A".repeat(48));
    for key in [made_up.as_str(), "sk_test_short", "not-a-key"] {
        let (status, body) = client.get("/v1/webhooks/secret", Some(key)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_a_second() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    // Warm the gateway's cache so that revocation has something to evict.
    let (status, _) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = client
        .send(
            Method::DELETE,
            &format!("/auth/api-keys/{}", ada.key_id),
            Some(&ada.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = platform::testing::eventually(Duration::from_secs(1), || async {
        let (status, _) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert!(refused.is_some(), "the revoked key still worked after a second");
}

#[tokio::test]
async fn session_tokens_are_checked_by_the_gateway() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64| SessionClaims {
        sub: ada.user_id.clone(),
        iss: "micro-auth".into(),
        aud: aud.into(),
        iat: now,
        exp,
        jti: "test".into(),
    };
    let ours = SessionTokens::new(&stack.config.auth.jwt_secret, Duration::from_secs(900));
    let theirs = SessionTokens::new(
        &secrecy::SecretString::from("a-different-jwt-secret".to_owned()),
        Duration::from_secs(900),
    );
    let b64 = |bytes: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(&serde_json::to_vec(&claims("micro-api", now + 600)).expect("json"))
    );
    let cases = [
        (theirs.mint(&ada.user_id), "invalid_session"),
        (unsigned, "invalid_session"),
        (
            ours.mint_claims(&claims("micro-api", now - 120)),
            "session_expired",
        ),
        (
            ours.mint_claims(&claims("micro-internal", now + 600)),
            "invalid_session",
        ),
    ];
    for (token, expected) in cases {
        let (status, body) = client.get("/auth/me", Some(&token)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, expected));
    }
    let (status, body) = client.get("/auth/me", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "missing_session")
    );
    let (status, _) = client.get("/auth/me", Some(&ours.mint(&ada.user_id))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn registration_and_login_are_limited_per_client_address() {
    let stack = TestStack::start_with(|c| c.gateway.auth_rate_limit_per_minute = 3).await;
    let client = Client::new(&stack);
    let wrong = json!({"email": "nobody@example.com", "password": PASSWORD});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) = client
            .send(Method::POST, "/auth/login", None, Some(wrong.clone()))
            .await;
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(headers.contains_key("retry-after"));
        }
    }
    // Three answers from auth, then the gateway stops the fourth (unless the
    // window happened to roll over, which leaves at most one more through).
    assert_eq!(&statuses[..3], &[StatusCode::UNAUTHORIZED; 3]);
    assert!(statuses[3] == StatusCode::TOO_MANY_REQUESTS || statuses[3] == StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_gateway_serves_health_metrics_and_openapi() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(client.get(path, None).await.0, StatusCode::OK, "{path}");
    }
    let (status, document) = client.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["paths"]["/auth/register"]["post"].is_object(),
        "{document}"
    );
    client.get("/auth/me", None).await;
    let metrics = crate::support::metrics_text(&stack).await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    let (status, body) = client.get("/nothing/here", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "route_not_found"));
}

#[tokio::test]
async fn a_key_checked_while_auths_database_is_down_is_503_not_invalid_and_works_after() {
    let mut link = platform::testing::Link::to_postgres().await;
    let stack = TestStack::start_with(|config| {
        let url = link.postgres_url(config.auth.database.url.expose_secret());
        config.auth.database.url = url.into();
    })
    .await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;

    link.cut().await;
    let (status, body) = client.get("/v1/payments", Some(&ada.api_key)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        "{body}"
    );

    // Not remembered as invalid: the key works as soon as auth can look it up.
    link.open().await;
    let listed = platform::testing::eventually(Duration::from_secs(15), || {
        let (client, key) = (&client, &ada.api_key);
        async move {
            let (status, list) = client.get("/v1/payments", Some(key)).await;
            (status == StatusCode::OK).then_some(list)
        }
    })
    .await
    .expect("the key works once auth's database is back");
    assert_eq!(listed["object"], "list");
}
