//! Creating, reading and listing payments, each refusal with its reason, and
//! the routes payments describes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestPayments, code, id, new_owner};

#[tokio::test]
async fn creates_retrieves_and_lists_payments() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let (status, created) = payments
        .post(
            &owner,
            "/v1/payments",
            json!({
                "amount": 2500,
                "currency": "EUR",
                "description": "  Two coffees ",
                "metadata": {"order": "42"},
                "customer_email": "Ada@Example.com",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(id(&created).starts_with("pay_"));
    assert_eq!(created["object"], "payment");
    assert_eq!(created["amount"], 2500);
    assert_eq!(created["amount_refunded"], 0);
    assert_eq!(created["currency"], "eur");
    assert_eq!(created["status"], "requires_confirmation");
    assert_eq!(created["description"], "Two coffees");
    assert_eq!(created["metadata"], json!({"order": "42"}));
    assert_eq!(created["customer_email"], "ada@example.com");
    assert_eq!(created["payment_method"], Value::Null);
    assert_eq!(created["failure_code"], Value::Null);
    assert_eq!(created["ledger_transaction_id"], Value::Null);
    assert!(created["created_at"].is_string());

    let (status, fetched) = payments
        .get(&owner, &format!("/v1/payments/{}", id(&created)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    // Another owner learns nothing, not even that the id exists.
    let stranger = new_owner();
    let (status, body) = payments
        .get(&stranger, &format!("/v1/payments/{}", id(&created)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");
    let (_, list) = payments.get(&stranger, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));

    let mut ids = vec![id(&created)];
    for amount in [100, 200, 300] {
        ids.push(id(&payments.create(&owner, amount, "usd").await));
    }
    payments.confirm(&owner, &ids[1], "pm_card_visa").await;
    ids.reverse();

    let (status, page) = payments.get(&owner, "/v1/payments?limit=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    let first: Vec<String> = page["data"].as_array().expect("data").iter().map(id).collect();
    assert_eq!(first, ids[..3]);
    let (_, page) = payments
        .get(&owner, &format!("/v1/payments?limit=3&starting_after={}", ids[2]))
        .await;
    assert_eq!(page["has_more"], false);
    let rest: Vec<String> = page["data"].as_array().expect("data").iter().map(id).collect();
    assert_eq!(rest, ids[3..]);

    let (_, succeeded) = payments.get(&owner, "/v1/payments?status=succeeded").await;
    let succeeded: Vec<String> = succeeded["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id)
        .collect();
    assert_eq!(succeeded, vec![ids[2].clone()]);

    for (query, expected) in [
        ("?status=paid", "invalid_status"),
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?limit=ten", "invalid_query"),
    ] {
        let (status, body) = payments.get(&owner, &format!("/v1/payments{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(code(&body), expected, "{query}");
    }
}

#[tokio::test]
async fn refuses_bad_payments_with_the_reason() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let many_keys: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({"amount": 0, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": -5, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": 1_000_000_000_000i64, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (json!({"amount": 10.5, "currency": "usd"}), "invalid_body", None),
        (json!({"amount": "10", "currency": "usd"}), "invalid_body", None),
        (json!({"currency": "usd"}), "invalid_body", None),
        (
            json!({"amount": 100, "currency": "xyz"}),
            "invalid_currency",
            Some("currency"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "amout": 1}),
            "invalid_body",
            None,
        ),
        (
            json!({"amount": 100, "currency": "usd", "description": "d".repeat(1001)}),
            "invalid_description",
            Some("description"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": many_keys}),
            "invalid_metadata",
            Some("metadata"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": {"k": "v".repeat(501)}}),
            "invalid_metadata",
            Some("metadata"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": {"k": 1}}),
            "invalid_body",
            None,
        ),
        (
            json!({"amount": 100, "currency": "usd", "customer_email": "nobody"}),
            "invalid_email",
            Some("customer_email"),
        ),
    ];
    for (body, expected, param) in cases {
        let (status, answer) = payments.post(&owner, "/v1/payments", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(code(&answer), expected, "{body}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        assert_eq!(answer["error"]["param"].as_str(), param, "{body}");
    }

    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "invalid_json");

    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .body(r#"{"amount": 100, "currency": "usd"}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing was created by any of it.
    let (_, list) = payments.get(&owner, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));

    // jpy has no minor unit: 500 means 500 yen.
    let yen = payments.create(&owner, 500, "JPY").await;
    assert_eq!(
        (yen["amount"].as_i64(), yen["currency"].as_str()),
        (Some(500), Some("jpy"))
    );
}

#[tokio::test]
async fn describes_its_public_routes_only() {
    let document = serde_json::to_value(payments::openapi()).expect("json");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/v1/payments",
        "/v1/payments/{id}",
        "/v1/payments/{id}/confirm",
        "/v1/payments/{id}/cancel",
        "/v1/payments/{id}/refunds",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/events/{id}/resend",
    ] {
        assert!(paths.contains_key(path), "{path} is described");
    }
    assert!(paths.keys().all(|p| !p.starts_with("/internal")));
    let schemas = document["components"]["schemas"].as_object().expect("schemas");
    assert!(
        schemas.contains_key("Payment") && schemas.contains_key("Refund") && schemas.contains_key("Event")
    );
}
