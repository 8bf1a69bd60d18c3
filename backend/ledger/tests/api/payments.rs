//! What payments posts: succeeded payments and refunds, exactly once per reference.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestLedger, assert_books_consistent, assert_trial_balance_zero, code, payment_posting, payments, user,
};

const MERCHANT: &str = "usr_0192merchant";

fn payment(reference: &str, amount: i64) -> Value {
    payment_posting(reference, MERCHANT, amount, "usd")
}

/// (account_id, direction, amount) of each entry, in order.
fn legs(transaction: &Value) -> Vec<(String, String, i64)> {
    transaction["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["account_id"].as_str().expect("account").to_owned(),
                e["direction"].as_str().expect("direction").to_owned(),
                e["amount"].as_i64().expect("amount"),
            )
        })
        .collect()
}

async fn merchant_balance_account(ledger: &TestLedger) -> Value {
    let (status, list) = ledger.get("/v1/ledger/accounts", &user(MERCHANT)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let accounts = list["data"].as_array().expect("data");
    assert_eq!(accounts.len(), 1, "{list}");
    accounts[0].clone()
}

#[tokio::test]
async fn a_payment_credits_the_merchant_less_the_fee() {
    let ledger = TestLedger::start().await;
    let (status, txn) = ledger.payment_posting(payment("pay_1", 10_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{txn}");
    assert!(txn["id"].as_str().expect("id").starts_with("txn_"));
    assert_eq!(txn["object"], "ledger_transaction");
    assert_eq!(txn["reference"], "pay_1");
    assert_eq!(txn["reverses"], Value::Null);
    assert!(txn["posted_at"].is_string());

    let merchant = merchant_balance_account(&ledger).await;
    assert_eq!(merchant["owner_id"], MERCHANT);
    assert_eq!(merchant["name"], "balance");
    assert_eq!(merchant["type"], "liability");
    assert_eq!(merchant["currency"], "usd");
    // 2.9% of 100.00 is 2.90, plus 0.30.
    assert_eq!(merchant["balance"], 9_680);
    assert_eq!(merchant["entry_count"], 1);
    assert_eq!(merchant["version"], 1);

    let legs = legs(&txn);
    assert_eq!(legs.len(), 3, "{txn}");
    let merchant_id = merchant["id"].as_str().expect("id");
    assert_eq!(legs[0].1, "debit");
    assert_eq!(legs[0].2, 10_000);
    assert_eq!(legs[1], (merchant_id.to_owned(), "credit".into(), 9_680));
    assert_eq!(legs[2].1, "credit");
    assert_eq!(legs[2].2, 320);
    for entry in txn["entries"].as_array().expect("entries") {
        assert_eq!(entry["currency"], "usd");
    }
    // The platform's accounts are nobody's: the merchant cannot open them.
    let (status, _) = ledger
        .get(&format!("/v1/ledger/accounts/{}", legs[0].0), &user(MERCHANT))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        ledger.trial_balance().await,
        json!([{"currency": "usd", "debits": 10_000, "credits": 10_000}])
    );
    assert_books_consistent(&ledger.pool().await).await;
}

#[tokio::test]
async fn a_repeated_posting_answers_the_same_transaction_byte_for_byte() {
    let ledger = TestLedger::start().await;
    let body = Some(payment("pay_2", 2_000));
    let (first_status, first) = ledger
        .send_raw(
            Method::POST,
            "/internal/payment-postings",
            &payments(),
            body.clone(),
        )
        .await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    for _ in 0..2 {
        let (status, again) = ledger
            .send_raw(
                Method::POST,
                "/internal/payment-postings",
                &payments(),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, first);
    }
    let (status, found) = ledger
        .send_raw(
            Method::GET,
            "/internal/transactions/by-reference/pay_2",
            &payments(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, first);

    // The same reference for anything else is refused, and changes nothing.
    let mut other = payment("pay_2", 2_001);
    let (status, error) = ledger.payment_posting(other.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(code(&error), "reference_reused");
    other = json!({"reference": "pay_2", "merchant_id": MERCHANT, "kind": "refund", "amount": 2_000, "currency": "usd"});
    let (status, _) = ledger.payment_posting(other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A currency spelled differently is the same currency.
    let mut same = payment("pay_2", 2_000);
    same["currency"] = json!("USD");
    let (status, _) = ledger.payment_posting(same).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(merchant_balance_account(&ledger).await["balance"], 2_000 - 88);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions")
        .fetch_one(&ledger.pool().await)
        .await
        .expect("count");
    assert_eq!(count, 1);

    let (status, error) = ledger
        .get("/internal/transactions/by-reference/pay_unknown", &payments())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&error), "resource_missing");
}

#[tokio::test]
async fn a_refund_debits_the_merchant_and_keeps_the_fee() {
    let ledger = TestLedger::start().await;
    let (status, paid) = ledger.payment_posting(payment("pay_3", 10_000)).await;
    assert_eq!(status, StatusCode::CREATED);
    let clearing = legs(&paid)[0].0.clone();
    let (status, refund) = ledger
        .payment_posting(json!({
            "reference": "re_1", "merchant_id": MERCHANT, "kind": "refund", "amount": 4_000, "currency": "usd"
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    let merchant = merchant_balance_account(&ledger).await;
    let merchant_id = merchant["id"].as_str().expect("id").to_owned();
    assert_eq!(
        legs(&refund),
        vec![
            (merchant_id, "debit".into(), 4_000),
            (clearing, "credit".into(), 4_000)
        ]
    );
    assert_eq!(merchant["balance"], 9_680 - 4_000);
    assert_eq!(merchant["version"], 2);
    assert_trial_balance_zero(&ledger.trial_balance().await);
    assert_books_consistent(&ledger.pool().await).await;
}

#[tokio::test]
async fn zero_legs_are_left_out() {
    // A fee as large as the payment leaves nothing for the merchant.
    let ledger = TestLedger::start().await;
    let (status, txn) = ledger.payment_posting(payment("pay_small", 25)).await;
    assert_eq!(status, StatusCode::CREATED, "{txn}");
    let legs = legs(&txn);
    assert_eq!(legs.len(), 2, "{txn}");
    assert_eq!((legs[0].2, legs[1].2), (25, 25));

    // No fee at all: no fee leg.
    let mut free = payment("pay_free", 500);
    free["fee"] = json!(0);
    free["net"] = json!(500);
    let (status, txn) = ledger.payment_posting(free).await;
    assert_eq!(status, StatusCode::CREATED, "{txn}");
    assert_eq!(txn["entries"].as_array().expect("entries").len(), 2);
}

#[tokio::test]
async fn accounts_exist_per_merchant_and_currency() {
    let ledger = TestLedger::start().await;
    for (reference, merchant, currency) in [
        ("pay_a", MERCHANT, "usd"),
        ("pay_b", MERCHANT, "eur"),
        ("pay_c", "usr_other", "usd"),
        ("pay_d", MERCHANT, "usd"),
    ] {
        let (status, body) = ledger
            .payment_posting(payment_posting(reference, merchant, 1_000, currency))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let roles: Vec<(Option<String>, String, String)> =
        sqlx::query_as("SELECT owner_id, currency, system_role FROM accounts ORDER BY 3, 2, 1")
            .fetch_all(&ledger.pool().await)
            .await
            .expect("accounts");
    let expected = [
        (Some(MERCHANT), "eur", "merchant_balance"),
        (Some(MERCHANT), "usd", "merchant_balance"),
        (Some("usr_other"), "usd", "merchant_balance"),
        (None, "eur", "platform_clearing"),
        (None, "usd", "platform_clearing"),
        (None, "eur", "platform_fee_revenue"),
        (None, "usd", "platform_fee_revenue"),
    ];
    let expected: Vec<(Option<String>, String, String)> = expected
        .iter()
        .map(|(o, c, r)| (o.map(str::to_owned), c.to_string(), r.to_string()))
        .collect();
    assert_eq!(roles, expected);
    let lines = ledger.trial_balance().await;
    assert_eq!(lines.as_array().expect("lines").len(), 2);
    assert_trial_balance_zero(&lines);
}

#[tokio::test]
async fn refuses_malformed_postings() {
    let ledger = TestLedger::start().await;
    let cases = [
        (json!({"amount": 0}), "invalid_amount"),
        (json!({"amount": -5}), "invalid_amount"),
        (json!({"currency": "xyz"}), "invalid_currency"),
        (json!({"merchant_id": "acct_1"}), "invalid_merchant_id"),
        (json!({"reference": ""}), "invalid_reference"),
        (json!({"kind": "chargeback"}), "invalid_body"),
        // The fee is checked, not computed: it must add up and stay in bounds.
        (json!({"fee": null}), "invalid_fee"),
        (json!({"net": null}), "invalid_fee"),
        (json!({"fee": 31, "net": 70}), "invalid_fee"),
        (json!({"fee": 101, "net": -1}), "invalid_fee"),
        (json!({"fee": -1, "net": 101}), "invalid_fee"),
        (json!({"kind": "refund"}), "invalid_fee"),
    ];
    for (change, expected) in cases {
        let mut body = payment("pay_bad", 100);
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let (status, error) = ledger.payment_posting(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(code(&error), expected, "{error}");
    }
    let response = ledger
        .http
        .post(format!("{}/internal/payment-postings", ledger.base))
        .json(&payment("pay_x", 100))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ledger.trial_balance().await, json!([]));
}

#[tokio::test]
async fn a_merchant_cannot_move_its_balance_by_hand() {
    let ledger = TestLedger::start().await;
    let (status, _) = ledger.payment_posting(payment("pay_4", 1_000)).await;
    assert_eq!(status, StatusCode::CREATED);
    let balance = merchant_balance_account(&ledger).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let merchant = user(MERCHANT);
    let cash = ledger.create_account(&merchant, "cash", "asset", "usd").await;
    let (status, error) = ledger.transfer(&merchant, "steal", &cash, &balance, 500).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(code(&error), "account_not_postable");
}

/// The batch route answers each posting as the single route would, in
/// order: one that is refused (a reused reference, a wrong fee) leaves the
/// others posted; one already posted is answered its transaction again.
#[tokio::test]
async fn a_batch_answers_each_posting_as_the_single_route_would() {
    let ledger = TestLedger::start().await;
    let (status, first) = ledger.payment_posting(payment("pay_1", 10_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let mut wrong_fee = payment("pay_3", 500);
    wrong_fee["fee"] = json!(600);
    wrong_fee["net"] = json!(-100);
    let refund = json!({
        "reference": "re_1", "merchant_id": MERCHANT, "kind": "refund", "amount": 1_000, "currency": "usd",
    });
    let batch = json!({"postings": [
        payment("pay_2", 2_000),
        payment("pay_1", 10_000),
        payment("pay_1", 9_999),
        wrong_fee,
        refund,
    ]});
    let path = contract::internal::paths::PAYMENT_POSTING_BATCHES;

    let (status, answer) = ledger.post(path, &payments(), batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcomes = answer["outcomes"].as_array().expect("outcomes");
    let summary: Vec<(&str, i64, Option<&str>)> = outcomes
        .iter()
        .map(|o| {
            (
                o["reference"].as_str().expect("reference"),
                o["status"].as_i64().expect("status"),
                o["error"]["code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("pay_2", 201, None),
            ("pay_1", 200, None),
            ("pay_1", 409, Some("reference_reused")),
            ("pay_3", 400, Some("invalid_fee")),
            ("re_1", 201, None),
        ],
        "{answer}"
    );
    assert_eq!(outcomes[1]["transaction_id"], first["id"]);
    assert!(outcomes[2]["transaction_id"].is_null() && outcomes[3]["transaction_id"].is_null());

    let merchant = merchant_balance_account(&ledger).await;
    let fees = crate::helpers::stamped_fee(10_000) + crate::helpers::stamped_fee(2_000);
    assert_eq!(merchant["balance"], 10_000 + 2_000 - fees - 1_000);
    assert_eq!(merchant["entry_count"], 3);

    // The same batch again: every posting is answered as posted before.
    let (status, again) = ledger.post(path, &payments(), batch).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let statuses: Vec<i64> = again["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| o["status"].as_i64().expect("status"))
        .collect();
    assert_eq!(statuses, vec![200, 200, 409, 400, 200], "{again}");
    for (before, after) in outcomes
        .iter()
        .zip(again["outcomes"].as_array().expect("outcomes"))
    {
        assert_eq!(before["transaction_id"], after["transaction_id"]);
    }
    assert_eq!(merchant_balance_account(&ledger).await["entry_count"], 3);
    assert_books_consistent(&ledger.pool().await).await;
    assert_trial_balance_zero(&ledger.trial_balance().await);
}

#[tokio::test]
async fn a_batch_is_for_payments_only_and_has_a_size_limit() {
    let ledger = TestLedger::start().await;
    let path = contract::internal::paths::PAYMENT_POSTING_BATCHES;
    let (status, body) = ledger
        .post(
            path,
            &user(MERCHANT),
            json!({"postings": [payment("pay_1", 100)]}),
        )
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status} {body}"
    );
    let too_many: Vec<Value> = (0..=contract::internal::MAX_PAYMENT_POSTINGS_PER_BATCH)
        .map(|i| payment(&format!("pay_{i}"), 100))
        .collect();
    let (status, body) = ledger
        .post(path, &payments(), json!({"postings": too_many}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_batch");
    assert_eq!(ledger.trial_balance().await, json!([]));
}
