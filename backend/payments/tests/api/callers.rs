//! Who may call payments: nobody without a valid internal token.

use platform::internal_token::{Caller, HEADER};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestPayments, code};

#[tokio::test]
async fn answers_nobody_without_a_valid_internal_token() {
    let payments = TestPayments::start().await;
    let response = payments
        .http
        .post(format!("{}/v1/payments", payments.base))
        .json(&json!({"amount": 100, "currency": "usd"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = payments
        .http
        .get(format!("{}/v1/events", payments.base))
        .header(HEADER, payments.tokens.mint(&Caller::Anonymous))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "authentication_required");

    let response = payments
        .http
        .get(format!("{}/readyz", payments.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}
