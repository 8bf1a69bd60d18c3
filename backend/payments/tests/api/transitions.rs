//! Confirm, cancel and refund: every legal step of a payment's life, and the
//! refusal of every other.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestPayments, code, id, new_owner};

#[tokio::test]
async fn walks_the_state_machine_and_refuses_every_illegal_transition() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let path = |id: &str, action: &str| format!("/v1/payments/{id}/{action}");

    // requires_confirmation -> succeeded, then nothing but refunds.
    let paid = id(&payments.create(&owner, 1000, "usd").await);
    let succeeded = payments.confirm(&owner, &paid, "pm_card_visa").await;
    assert_eq!(succeeded["status"], "succeeded");
    assert_eq!(succeeded["payment_method"], "pm_card_visa");
    assert_eq!(succeeded["failure_code"], Value::Null);
    let (status, body) = payments
        .post(
            &owner,
            &path(&paid, "confirm"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_confirmable");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("succeeded")
    );
    let (status, body) = payments.post(&owner, &path(&paid, "cancel"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_cancelable");

    // Refunds: partial, partial, never beyond the amount, then the rest.
    let first = payments.refund(&owner, &paid, Some(300)).await;
    assert!(id(&first).starts_with("re_"));
    assert_eq!(first["object"], "refund");
    assert_eq!(first["payment"], paid.as_str());
    assert_eq!(first["amount"], 300);
    assert_eq!(first["currency"], "usd");
    assert_eq!(first["status"], "succeeded");
    payments.refund(&owner, &paid, Some(200)).await;
    let (status, body) = payments
        .post(&owner, &path(&paid, "refunds"), json!({"amount": 501}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "refund_exceeds_payment");
    for bad in [json!({"amount": 0}), json!({"amount": -1})] {
        let (status, body) = payments.post(&owner, &path(&paid, "refunds"), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&body), "invalid_amount");
    }
    let rest = payments.refund(&owner, &paid, None).await;
    assert_eq!(rest["amount"], 500);
    let (status, body) = payments.post(&owner, &path(&paid, "refunds"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "refund_exceeds_payment");
    let (_, fetched) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
    assert_eq!(fetched["amount_refunded"], 1000);
    assert_eq!(fetched["status"], "succeeded");
    let (_, refunds) = payments.get(&owner, &path(&paid, "refunds")).await;
    let amounts: Vec<i64> = refunds["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, vec![500, 200, 300]);

    // Declines fail the payment with their code; failed is final.
    for (method, failure) in [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
    ] {
        let declined = id(&payments.create(&owner, 700, "usd").await);
        let failed = payments.confirm(&owner, &declined, method).await;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["failure_code"], failure);
        assert!(failed["failure_message"].is_string());
        for (action, body, expected) in [
            (
                "confirm",
                json!({"payment_method": "pm_card_visa"}),
                "payment_not_confirmable",
            ),
            ("cancel", json!({}), "payment_not_cancelable"),
            ("refunds", json!({}), "payment_not_refundable"),
        ] {
            let (status, answer) = payments.post(&owner, &path(&declined, action), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{action} after failure");
            assert_eq!(code(&answer), expected);
        }
    }

    // requires_confirmation -> canceled; canceled is final.
    let canceled = id(&payments.create(&owner, 900, "usd").await);
    let (status, body) = payments
        .post(&owner, &path(&canceled, "refunds"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_refundable");
    let (status, body) = payments.post(&owner, &path(&canceled, "cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled");
    for (action, body, expected) in [
        (
            "confirm",
            json!({"payment_method": "pm_card_visa"}),
            "payment_not_confirmable",
        ),
        ("cancel", json!({}), "payment_not_cancelable"),
        ("refunds", json!({"amount": 1}), "payment_not_refundable"),
    ] {
        let (status, answer) = payments.post(&owner, &path(&canceled, action), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action} after cancel");
        assert_eq!(code(&answer), expected);
    }

    // Bad inputs to confirm and cancel.
    let fresh = id(&payments.create(&owner, 100, "usd").await);
    for (body, expected) in [
        (
            json!({"payment_method": "pm_card_unknown"}),
            "payment_method_unknown",
        ),
        (json!({}), "invalid_body"),
    ] {
        let (status, answer) = payments.post(&owner, &path(&fresh, "confirm"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&answer), expected);
    }
    let (status, answer) = payments
        .post(&owner, &path(&fresh, "cancel"), json!({"reason": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer), "invalid_body");
    let (_, still) = payments.get(&owner, &format!("/v1/payments/{fresh}")).await;
    assert_eq!(still["status"], "requires_confirmation");

    // Unknown payments, and other owners' payments, are simply missing.
    let stranger = new_owner();
    for (who, target) in [(&owner, "pay_0123456789abcdef"), (&stranger, fresh.as_str())] {
        for (action, body) in [
            ("confirm", json!({"payment_method": "pm_card_visa"})),
            ("cancel", json!({})),
            ("refunds", json!({})),
        ] {
            let (status, answer) = payments.post(who, &path(target, action), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{action} {target}");
            assert_eq!(code(&answer), "resource_missing");
        }
    }
    let (status, _) = payments.get(&stranger, &path(&fresh, "refunds")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every state change, and only those, left an event.
    let (_, events) = payments.get(&owner, "/v1/events?limit=100").await;
    let mut kinds: Vec<&str> = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        vec![
            "payment.created",
            "payment.succeeded",
            "payment.refunded",
            "payment.refunded",
            "payment.refunded",
            "payment.created",
            "payment.failed",
            "payment.created",
            "payment.failed",
            "payment.created",
            "payment.canceled",
            "payment.created",
        ]
    );
}
