//! Input that PostgreSQL cannot store, refused with a 400 that names it
//! before any query runs, on every kind of route that takes text.

use reqwest::StatusCode;
use serde_json::json;
use stack::testing::TestStack;

use crate::support::{Client, code};

#[tokio::test]
async fn a_nul_character_in_a_body_or_a_query_is_a_400_not_a_500() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let key = Some(ada.api_key.as_str());

    let bodies = [
        (
            "/v1/payments",
            json!({"amount": 100, "currency": "usd", "description": "a\u{0}b"}),
        ),
        (
            "/v1/payments",
            json!({"amount": 100, "currency": "usd", "metadata": {"k\u{0}": "v"}}),
        ),
        (
            "/v1/ledger/accounts",
            json!({"name": "cash\u{0}", "type": "asset", "currency": "usd"}),
        ),
        (
            "/auth/register",
            json!({"email": "nul\u{0}@example.com", "password": "correct horse battery"}),
        ),
    ];
    for (path, body) in bodies {
        let (status, error) = client.post(path, key, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {error}");
        assert_eq!(code(&error), "invalid_body", "{path}: {error}");
    }

    // The gateway refuses a NUL in any query at its edge; the services'
    // query extractor refuses it too, for callers that are not the gateway.
    for path in [
        "/v1/payments?starting_after=a%00b",
        "/v1/events?starting_after=a%00b",
        "/v1/ledger/accounts?starting_after=%00",
    ] {
        let (status, error) = client.get(path, key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {error}");
        assert_eq!(code(&error), "invalid_path", "{path}: {error}");
    }

    // The same text without the NUL goes through: the refusal is about NUL alone.
    let (status, payment) = client
        .post(
            "/v1/payments",
            key,
            json!({"amount": 100, "currency": "usd", "description": "a\\u0000b, spelled out"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["description"], "a\\u0000b, spelled out");
}
