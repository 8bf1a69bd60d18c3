//! Payments, events and the ledger through the gateway, as a developer's
//! integration would use them, and every route closed to another user.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stack::testing::TestStack;

use crate::support::{Client, Developer, code, next_frame, open_stream, refused};

async fn succeeded_payment(client: &Client, developer: &Developer, amount: i64) -> Value {
    let (status, payment) = client
        .post(
            "/v1/payments",
            Some(&developer.api_key),
            json!({"amount": amount, "currency": "usd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let id = payment["id"].as_str().expect("id");
    let (status, confirmed) = client
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some(&developer.api_key),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "succeeded");
    confirmed
}

#[tokio::test]
async fn a_confirmed_payment_reaches_the_stream_and_the_ledger() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut stream = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut stream).await.expect("ready")["type"], "ready");

    let payment = succeeded_payment(&client, &ada, 10_000).await;
    let id = payment["id"].as_str().expect("id");
    for (sequence, kind) in [(1, "payment.created"), (2, "payment.succeeded")] {
        let frame = next_frame(&mut stream).await.expect("an event");
        assert_eq!(frame["event"]["type"], kind);
        assert_eq!(frame["event"]["sequence"], sequence);
        assert_eq!(frame["event"]["data"]["object"]["id"], id);
    }

    let posted = platform::testing::eventually(Duration::from_secs(30), || async {
        let (_, payment) = client
            .get(&format!("/v1/payments/{id}"), Some(&ada.api_key))
            .await;
        payment["ledger_transaction_id"].as_str().map(str::to_owned)
    })
    .await
    .expect("the payment is posted to the ledger");
    let (status, transaction) = client
        .get(&format!("/v1/ledger/transactions/{posted}"), Some(&ada.api_key))
        .await;
    assert_eq!(status, StatusCode::OK, "{transaction}");
    let (status, accounts) = client.get("/v1/ledger/accounts", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK);
    // 2.9% of 100.00 plus 0.30 leaves 96.80 for the merchant.
    assert_eq!(accounts["data"][0]["balance"], 9_680, "{accounts}");
}

/// A client that has seen no event has no id to resume from: it names the
/// sequence it started after instead, and nothing made meanwhile is lost.
#[tokio::test]
async fn a_stream_resumes_after_a_sequence_when_no_event_was_seen() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let bob = client.developer("bob@example.com").await;
    succeeded_payment(&client, &ada, 500).await;
    succeeded_payment(&client, &ada, 700).await;

    let mut stream = open_stream(&stack, &ada.api_key, "?after_sequence=0")
        .await
        .expect("stream opens");
    for expected in 1..=4 {
        let frame = next_frame(&mut stream).await.expect("a missed event");
        assert_eq!(frame["event"]["sequence"], expected, "{frame}");
    }
    assert_eq!(
        next_frame(&mut stream).await.expect("ready"),
        json!({"type": "ready", "replayed": 4})
    );
    let mut later = open_stream(&stack, &ada.api_key, "?after_sequence=3&types=payment.succeeded")
        .await
        .expect("stream opens");
    let frame = next_frame(&mut later).await.expect("the last event");
    assert_eq!(frame["event"]["sequence"], 4, "{frame}");
    assert_eq!(next_frame(&mut later).await.expect("ready")["replayed"], 1);

    // Another user's stream from the beginning holds none of ada's events.
    let mut bobs = open_stream(&stack, &bob.api_key, "?after_sequence=0")
        .await
        .expect("stream opens");
    assert_eq!(
        next_frame(&mut bobs).await.expect("ready"),
        json!({"type": "ready", "replayed": 0})
    );

    let last_id = {
        let (_, events) = client.get("/v1/events?limit=1", Some(&ada.api_key)).await;
        events["data"][0]["id"].as_str().expect("an event").to_owned()
    };
    for query in [
        "?after_sequence=-1".to_owned(),
        "?after_sequence=abc".to_owned(),
        "?after_sequence=99999999999999999999".to_owned(),
        "?after_sequence=".to_owned(),
        "?after_sequence=1e3".to_owned(),
        "?after_sequence=%200".to_owned(),
        "?after_sequence=0&after_sequence=1".to_owned(),
        format!("?after_sequence=0&last_event_id={last_id}"),
    ] {
        let (status, body) = refused(open_stream(&stack, &ada.api_key, &query).await);
        assert_eq!(status, 400, "{query}: {body}");
    }
    // Only an API key opens a stream, whatever it resumes from.
    for credential in [ada.access_token.as_str(), ""] {
        let (status, body) = refused(open_stream(&stack, credential, "?after_sequence=0").await);
        assert_eq!(status, 401, "{body}");
    }
}

#[tokio::test]
async fn a_reconnecting_stream_gets_exactly_the_events_it_missed() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut stream = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut stream).await.expect("ready")["type"], "ready");
    succeeded_payment(&client, &ada, 500).await;
    next_frame(&mut stream).await.expect("created");
    let last_seen = next_frame(&mut stream).await.expect("succeeded");
    assert_eq!(last_seen["event"]["sequence"], 2);
    drop(stream);

    // Two payments happen while the client is away.
    succeeded_payment(&client, &ada, 700).await;
    succeeded_payment(&client, &ada, 900).await;

    let last_id = last_seen["event"]["id"].as_str().expect("id");
    let mut stream = open_stream(&stack, &ada.api_key, &format!("?last_event_id={last_id}"))
        .await
        .expect("stream reopens");
    for expected in 3..=6 {
        let frame = next_frame(&mut stream).await.expect("a missed event");
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["event"]["sequence"], expected);
    }
    assert_eq!(
        next_frame(&mut stream).await.expect("ready"),
        json!({"type": "ready", "replayed": 4})
    );

    // Then live, with nothing repeated.
    succeeded_payment(&client, &ada, 1100).await;
    for expected in 7..=8 {
        assert_eq!(
            next_frame(&mut stream).await.expect("a live event")["event"]["sequence"],
            expected
        );
    }

    let refused = open_stream(&stack, &ada.api_key, "?last_event_id=evt_doesnotexist").await;
    assert!(refused.is_err(), "an unknown last_event_id is refused");
}

#[tokio::test]
async fn another_user_reaches_none_of_a_users_objects() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let bob = client.developer("bob@example.com").await;
    let payment = succeeded_payment(&client, &ada, 2_000).await;
    let pay = payment["id"].as_str().expect("id");
    let (_, events) = client.get("/v1/events", Some(&ada.api_key)).await;
    let event = events["data"][0]["id"].as_str().expect("an event id").to_owned();
    let txn = platform::testing::eventually(Duration::from_secs(30), || async {
        let (_, payment) = client
            .get(&format!("/v1/payments/{pay}"), Some(&ada.api_key))
            .await;
        payment["ledger_transaction_id"].as_str().map(str::to_owned)
    })
    .await
    .expect("posted");
    let (_, accounts) = client.get("/v1/ledger/accounts", Some(&ada.api_key)).await;
    let account = accounts["data"][0]["id"].as_str().expect("an account").to_owned();

    let attempts = [
        (Method::GET, format!("/v1/payments/{pay}"), None),
        (
            Method::POST,
            format!("/v1/payments/{pay}/confirm"),
            Some(json!({"payment_method": "pm_card_visa"})),
        ),
        (
            Method::POST,
            format!("/v1/payments/{pay}/cancel"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/payments/{pay}/refunds"),
            Some(json!({"amount": 100})),
        ),
        (Method::GET, format!("/v1/events/{event}"), None),
        (
            Method::POST,
            format!("/v1/events/{event}/resend"),
            Some(json!({})),
        ),
        (Method::GET, format!("/v1/ledger/accounts/{account}"), None),
        (
            Method::GET,
            format!("/v1/ledger/accounts/{account}/entries"),
            None,
        ),
        (Method::GET, format!("/v1/ledger/transactions/{txn}"), None),
        (
            Method::POST,
            format!("/v1/ledger/transactions/{txn}/reverse"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, _, answer) = client.send(method.clone(), &path, Some(&bob.api_key), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(code(&answer), "resource_missing", "{method} {path}");
    }
    for list in ["/v1/payments", "/v1/events", "/v1/ledger/accounts"] {
        let (status, page) = client.get(list, Some(&bob.api_key)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["data"], json!([]), "{list}");
    }
    let refused = open_stream(&stack, &bob.api_key, &format!("?last_event_id={event}")).await;
    assert!(refused.is_err(), "bob cannot resume from ada's event");
    // Ada's payment is untouched.
    let (_, still) = client
        .get(&format!("/v1/payments/{pay}"), Some(&ada.api_key))
        .await;
    assert_eq!(still["amount_refunded"], 0);
    assert_eq!(still["status"], "succeeded");
}
