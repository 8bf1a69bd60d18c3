//! The events a payment's life leaves: listed, retrieved, published, resent,
//! and served to the gateway's gap filler.

use platform::internal_token::{Caller, Service};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{EventTap, TestPayments, code, id, new_owner, user};

#[tokio::test]
async fn a_payment_run_emits_exactly_the_expected_events_in_order() {
    let payments = TestPayments::start().await;
    let mut tap = EventTap::open(&payments.config).await;
    let owner = new_owner();
    let paid = id(&payments.create(&owner, 1000, "usd").await);
    payments.confirm(&owner, &paid, "pm_card_visa").await;
    payments.refund(&owner, &paid, Some(300)).await;
    payments.refund(&owner, &paid, None).await;

    let (status, list) = payments.get(&owner, "/v1/events?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["has_more"], false);
    let mut events = list["data"].as_array().expect("data").clone();
    events.reverse();
    let summary: Vec<(i64, &str, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e["sequence"].as_i64().expect("sequence"),
                e["type"].as_str().expect("type"),
                e["data"]["object"]["status"].as_str().expect("status"),
                e["data"]["object"]["amount_refunded"].as_i64().expect("refunded"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "payment.created", "requires_confirmation", 0),
            (2, "payment.succeeded", "succeeded", 0),
            (3, "payment.refunded", "succeeded", 300),
            (4, "payment.refunded", "succeeded", 1000),
        ]
    );
    for event in &events {
        assert!(id(event).starts_with("evt_"));
        assert_eq!(event["object"], "event");
        assert_eq!(event["data"]["object"]["id"], paid.as_str());
        assert_eq!(event["data"]["object"]["object"], "payment");
        assert!(event["created_at"].is_string());
    }

    // Redis carries the same events, in order, with their owner.
    let published = tap.take(4).await;
    for (message, event) in published.iter().zip(&events) {
        assert_eq!(message["owner_id"], owner.as_str());
        assert_eq!(message["resend"], false);
        assert_eq!(&message["event"], event);
    }

    // Retrieve, filter and page.
    let (status, one) = payments
        .get(&owner, &format!("/v1/events/{}", id(&events[1])))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, events[1]);
    let (_, refunded) = payments.get(&owner, "/v1/events?type=payment.refunded").await;
    assert_eq!(refunded["data"], json!([events[3], events[2]]));
    let (_, page) = payments.get(&owner, "/v1/events?limit=2").await;
    assert_eq!(
        (page["has_more"].as_bool(), page["data"].as_array().map(Vec::len)),
        (Some(true), Some(2))
    );
    let (_, page) = payments
        .get(
            &owner,
            &format!("/v1/events?limit=2&starting_after={}", id(&events[2])),
        )
        .await;
    assert_eq!(page["data"], json!([events[1], events[0]]));
    assert_eq!(page["has_more"], false);
    for (query, expected) in [
        ("?type=payment.paid", "invalid_type"),
        ("?starting_after=evt_nope", "invalid_cursor"),
        ("?limit=1000", "invalid_limit"),
    ] {
        let (status, body) = payments.get(&owner, &format!("/v1/events{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code(&body), expected, "{query}");
    }
    let stranger = new_owner();
    let (status, body) = payments
        .get(&stranger, &format!("/v1/events/{}", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");

    // The gateway's gap filler: ascending, after an id or a sequence.
    let (status, since) = payments
        .since(&owner, &format!("&after={}&limit=2", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(since["data"], json!([events[1], events[2]]));
    assert_eq!(since["has_more"], true);
    let (_, since) = payments.since(&owner, "&after_sequence=3").await;
    assert_eq!(since["data"], json!([events[3]]));
    assert_eq!(since["has_more"], false);
    let (_, all) = payments.since(&owner, "").await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(4));
    let (status, body) = payments.since(&owner, "&after=evt_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");
    let (status, _) = payments
        .since(&stranger, &format!("&after={}", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only the gateway asks, on its own account; a user's token never
    // reaches the gap filler, whatever its credential.
    let path = format!("/internal/events/since?owner_id={owner}");
    let callers = [
        Caller::Anonymous,
        Caller::session(owner.clone()),
        user(&owner),
        Caller::Service(Service::Payments),
        Caller::Service(Service::Ops),
    ];
    for caller in callers {
        let (status, body) = payments.send(reqwest::Method::GET, &path, &caller, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{caller:?}: {body}");
        assert_eq!(code(&body), "caller_not_allowed", "{caller:?}");
    }
    let response = payments
        .http
        .get(format!("{}{path}", payments.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A resend goes out again to live listeners, marked as such.
    let (status, resent) = payments
        .post(
            &owner,
            &format!("/v1/events/{}/resend", id(&events[1])),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resent, events[1]);
    let again = tap.take(1).await;
    assert_eq!(again[0]["resend"], true);
    assert_eq!(again[0]["owner_id"], owner.as_str());
    assert_eq!(again[0]["event"], events[1]);
    let (status, _) = payments
        .post(
            &stranger,
            &format!("/v1/events/{}/resend", id(&events[1])),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Resending is not a state change: the stream did not grow.
    let (_, list) = payments.get(&owner, "/v1/events?limit=10").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(4));
}
