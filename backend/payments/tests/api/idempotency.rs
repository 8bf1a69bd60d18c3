//! Idempotency keys: one payment per key under concurrency, replays byte for
//! byte, no answer kept from a failure, and expiry.

use platform::testing::eventually;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{DEADLINE, Link, TestPayments, code, id, new_owner};

#[tokio::test]
async fn a_hundred_concurrent_creates_with_one_key_make_one_payment() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let body = json!({"amount": 4200, "currency": "usd", "metadata": {"cart": "7"}});
    let attempts = (0..100).map(|_| {
        payments
            .request(reqwest::Method::POST, "/v1/payments", &owner)
            .header("idempotency-key", "order-7")
            .json(&body)
            .send()
    });
    let responses = futures::future::join_all(attempts).await;
    let mut created = Vec::new();
    let mut in_progress = 0;
    for response in responses {
        let response = response.expect("answers");
        match response.status() {
            StatusCode::CREATED => created.push(response.bytes().await.expect("body")),
            StatusCode::CONFLICT => {
                let body: Value = response.json().await.expect("json");
                assert_eq!(code(&body), "idempotency_key_in_use");
                assert_eq!(body["error"]["type"], "idempotency_error");
                in_progress += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| b == &created[0]),
        "every success is the same answer"
    );
    assert_eq!(created.len() + in_progress, 100);
    let (_, list) = payments.get(&owner, "/v1/payments?limit=100").await;
    assert_eq!(list["data"].as_array().expect("data").len(), 1);
    let (_, events) = payments.get(&owner, "/v1/events").await;
    assert_eq!(events["data"].as_array().expect("data").len(), 1);

    // Once the first has finished, a retry is a replay, byte for byte.
    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("idempotency-key", "order-7")
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.bytes().await.expect("body"), created[0]);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_reuse_and_stay_with_their_owner() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let create = json!({"amount": 1500, "currency": "gbp"});
    let (status, first) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some("k-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The same request in another layout is the same request.
    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("idempotency-key", "k-1")
        .header("content-type", "application/json")
        .body(r#"{ "currency":"gbp",  "amount":1500 }"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Value>().await.expect("json"), first);

    // Another body, or another route, under the same key is refused.
    let (status, body) = payments
        .post_with_key(
            &owner,
            "/v1/payments",
            json!({"amount": 1501, "currency": "gbp"}),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "idempotency_key_reused");
    let paid = id(&first);
    let (status, body) = payments
        .post_with_key(
            &owner,
            &format!("/v1/payments/{paid}/confirm"),
            json!({"payment_method": "pm_card_visa"}),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "idempotency_key_reused");

    // A confirm retried after success replays the success; nothing runs twice.
    let confirm = format!("/v1/payments/{paid}/confirm");
    let visa = json!({"payment_method": "pm_card_visa"});
    let (status, confirmed) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-2"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-2"))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &confirmed));
    let refund = format!("/v1/payments/{paid}/refunds");
    let (status, refunded) = payments
        .post_with_key(&owner, &refund, json!({"amount": 100}), Some("k-3"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = payments
        .post_with_key(&owner, &refund, json!({"amount": 100}), Some("k-3"))
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &refunded));
    let (_, fetched) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
    assert_eq!(fetched["amount_refunded"], 100);

    // A refusal that came from running the request is replayed too.
    let (status, refused) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-4"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&refused), "payment_not_confirmable");
    let (status, again) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-4"))
        .await;
    assert_eq!((status, &again), (StatusCode::BAD_REQUEST, &refused));

    // A request refused for its shape is not kept: the key stays free.
    let (status, _) = payments
        .post_with_key(
            &owner,
            "/v1/payments",
            json!({"amount": 0, "currency": "gbp"}),
            Some("k-5"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some("k-5"))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Keys belong to their owner: another owner's k-1 is a new request.
    let stranger = new_owner();
    let (status, theirs) = payments
        .post_with_key(&stranger, "/v1/payments", create.clone(), Some("k-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(id(&theirs), paid);

    // Without a key a POST still runs, but every time.
    let a = payments.create(&owner, 10, "usd").await;
    let b = payments.create(&owner, 10, "usd").await;
    assert_ne!(id(&a), id(&b));

    // Key length: 255 is fine, 256 is refused before anything runs.
    let (status, _) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some(&"k".repeat(255)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some(&"k".repeat(256)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "idempotency_key_invalid");
    assert_eq!(body["error"]["param"], "Idempotency-Key");
    let (_, list) = payments.get(&owner, "/v1/payments?limit=100").await;
    assert_eq!(list["data"].as_array().expect("data").len(), 5);
}

#[tokio::test]
async fn a_server_error_is_not_kept_as_the_answer() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let pool = payments.pool().await;
    // Break the event outbox so that creating fails after the payment row
    // was written: the transaction, key included, must roll back.
    sqlx::query("ALTER TABLE event_sequences RENAME TO event_sequences_away")
        .execute(&pool)
        .await
        .expect("rename");
    let body = json!({"amount": 800, "currency": "usd"});
    let (status, answer) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("retry-me"))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code(&answer), "internal_error");
    assert!(
        !answer.to_string().contains("event_sequences"),
        "no cause leaks: {answer}"
    );
    sqlx::query("ALTER TABLE event_sequences_away RENAME TO event_sequences")
        .execute(&pool)
        .await
        .expect("rename back");

    let (status, created) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("retry-me"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, list) = payments.get(&owner, "/v1/payments").await;
    assert_eq!(list["data"], json!([created]));
}

#[tokio::test]
async fn a_database_outage_is_503_and_the_same_key_succeeds_afterwards() {
    let mut link = Link::to_postgres().await;
    let payments = TestPayments::start_with(|config| {
        config.database.url = link.postgres_url(config.database.url.expose_secret()).into();
    })
    .await;
    let owner = new_owner();
    payments.create(&owner, 100, "usd").await;

    link.cut().await;
    let body = json!({"amount": 800, "currency": "usd"});
    let (status, answer) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("through-the-outage"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(code(&answer), "database_unavailable");

    link.open().await;
    let created = eventually(DEADLINE, || {
        let body = body.clone();
        let payments = &payments;
        let owner = &owner;
        async move {
            let (status, created) = payments
                .post_with_key(owner, "/v1/payments", body, Some("through-the-outage"))
                .await;
            (status == StatusCode::CREATED).then_some(created)
        }
    })
    .await
    .expect("created once the database is back");
    assert_eq!(created["amount"], 800);
}

#[tokio::test]
async fn expired_idempotency_keys_are_purged() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let body = json!({"amount": 100, "currency": "usd"});
    let (_, old) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("old"))
        .await;
    let (_, recent) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("recent"))
        .await;
    let pool = payments.pool().await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'")
        .execute(&pool)
        .await
        .expect("age the key");

    // The purge runs when a process starts, then periodically.
    let _second = payments.another_instance().await;
    eventually(DEADLINE, || async {
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys ORDER BY key")
            .fetch_all(&pool)
            .await
            .expect("keys");
        (keys == ["recent"]).then_some(())
    })
    .await
    .expect("the expired key is purged, the recent one kept");

    let (status, again) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("old"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(id(&again), id(&old), "an expired key no longer replays");
    let (_, replay) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("recent"))
        .await;
    assert_eq!(replay, recent);
}
