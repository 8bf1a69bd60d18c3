//! API keys: created, listed, verified, revoked and capped.

use std::time::Duration;

use auth::AuthSettings;
use futures::StreamExt;
use platform::config::ServiceConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestAuth, code, gateway, user};

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
