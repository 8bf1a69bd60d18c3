//! Manual journal entries, reading transactions, reversals, the overdraft guard.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestLedger, assert_books_consistent, code, user};

fn entry(account: &str, direction: &str, amount: i64) -> Value {
    json!({"account_id": account, "direction": direction, "amount": amount})
}

#[tokio::test]
async fn a_journal_entry_moves_balances_on_their_normal_side() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let loan = ledger.create_account(&ada, "loan", "liability", "usd").await;
    let capital = ledger.create_account(&ada, "capital", "equity", "usd").await;
    let body = json!({
        "reference": "open-books",
        "description": "opening balances",
        "metadata": {"source": "import"},
        "entries": [entry(&cash, "debit", 1_500), entry(&loan, "credit", 1_000), entry(&capital, "credit", 500)],
    });
    let (status, txn) = ledger.post("/v1/ledger/transactions", &ada, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{txn}");
    assert_eq!(txn["object"], "ledger_transaction");
    assert_eq!(txn["reference"], "open-books");
    assert_eq!(txn["description"], "opening balances");
    assert_eq!(txn["metadata"], json!({"source": "import"}));
    assert_eq!(txn["entries"].as_array().expect("entries").len(), 3);
    assert_eq!(txn["entries"][1]["account_id"], loan.as_str());
    assert_eq!(txn["entries"][1]["currency"], "usd");
    assert!(txn["entries"][1]["id"].as_str().expect("id").starts_with("ent_"));
    assert_eq!(ledger.balance(&ada, &cash).await, 1_500);
    assert_eq!(ledger.balance(&ada, &loan).await, 1_000);
    assert_eq!(ledger.balance(&ada, &capital).await, 500);

    let id = txn["id"].as_str().expect("id");
    let (status, read) = ledger.get(&format!("/v1/ledger/transactions/{id}"), &ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, txn);

    // A retry is the same posting; a reused reference is refused.
    let (status, again) = ledger.post("/v1/ledger/transactions", &ada, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, txn);
    let mut changed = body.clone();
    changed["description"] = json!("something else");
    let (status, error) = ledger.post("/v1/ledger/transactions", &ada, changed).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(code(&error), "reference_reused");
    assert_eq!(ledger.account(&ada, &cash).await["version"], 1);

    // References are per owner.
    let bob = user("usr_bob");
    let bob_cash = ledger.create_account(&bob, "cash", "asset", "usd").await;
    let bob_capital = ledger.create_account(&bob, "capital", "equity", "usd").await;
    let (status, _) = ledger
        .transfer(&bob, "open-books", &bob_cash, &bob_capital, 5)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = ledger.get(&format!("/v1/ledger/transactions/{id}"), &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_books_consistent(&ledger.pool().await).await;
}

#[tokio::test]
async fn refuses_postings_that_do_not_hold_and_writes_nothing() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let euros = ledger.create_account(&ada, "euros", "asset", "eur").await;
    let bobs = ledger
        .create_account(&user("usr_bob"), "bob's", "asset", "usd")
        .await;
    let cases = [
        (
            vec![entry(&cash, "debit", 100)],
            StatusCode::BAD_REQUEST,
            "invalid_entries",
        ),
        (
            vec![entry(&cash, "debit", 100), entry(&sales, "credit", 90)],
            StatusCode::BAD_REQUEST,
            "transaction_unbalanced",
        ),
        // Balanced in sum, not per currency.
        (
            vec![entry(&cash, "debit", 100), entry(&euros, "credit", 100)],
            StatusCode::BAD_REQUEST,
            "transaction_unbalanced",
        ),
        (
            vec![entry(&cash, "debit", 0), entry(&sales, "credit", 0)],
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            vec![entry(&cash, "debit", -5), entry(&sales, "credit", -5)],
            StatusCode::BAD_REQUEST,
            "invalid_amount",
        ),
        (
            vec![entry(&cash, "debit", 100), entry(&bobs, "credit", 100)],
            StatusCode::NOT_FOUND,
            "resource_missing",
        ),
        (
            vec![entry(&cash, "debit", 100), entry("acct_nope", "credit", 100)],
            StatusCode::NOT_FOUND,
            "resource_missing",
        ),
    ];
    for (i, (entries, status, expected)) in cases.into_iter().enumerate() {
        let (answer, error) = ledger
            .post(
                "/v1/ledger/transactions",
                &ada,
                json!({"reference": format!("bad-{i}"), "entries": entries}),
            )
            .await;
        assert_eq!(answer, status, "case {i}: {error}");
        assert_eq!(code(&error), expected, "case {i}: {error}");
    }
    let (status, error) = ledger
        .post(
            "/v1/ledger/transactions",
            &ada,
            json!({"reference": "", "entries": [entry(&cash, "debit", 1), entry(&sales, "credit", 1)]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&error), "invalid_reference");
    assert_eq!(ledger.trial_balance().await, json!([]));
}

#[tokio::test]
async fn a_guarded_account_never_goes_negative() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let (wallet, capital) = ledger.funded_wallet(&ada, 1_000).await;
    let spend = ledger.create_account(&ada, "spend", "expense", "usd").await;
    let (status, error) = ledger.transfer(&ada, "too-much", &spend, &wallet, 1_001).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(code(&error), "insufficient_funds");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains(&wallet),
        "{error}"
    );
    assert_eq!(ledger.balance(&ada, &wallet).await, 1_000);
    // A refused posting leaves its reference free.
    let (status, _) = ledger.transfer(&ada, "too-much", &spend, &wallet, 1_000).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ledger.balance(&ada, &wallet).await, 0);
    // An unguarded account may go negative.
    let (status, _) = ledger.transfer(&ada, "loan", &spend, &capital, 5).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ledger.balance(&ada, &capital).await, 1_005);
    let (status, _) = ledger
        .transfer(&ada, "negative-spend", &capital, &spend, 2_000)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ledger.balance(&ada, &spend).await, -995);
    assert_books_consistent(&ledger.pool().await).await;
}

#[tokio::test]
async fn a_reversal_mirrors_the_original_once() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let (_, original) = ledger.transfer(&ada, "sale-1", &cash, &sales, 700).await;
    let id = original["id"].as_str().expect("id");
    let path = format!("/v1/ledger/transactions/{id}/reverse");

    let response = ledger
        .request(reqwest::Method::POST, &path, &ada)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let reversal: Value = response.json().await.expect("json");
    assert_eq!(reversal["reverses"], id);
    assert_eq!(reversal["reference"], format!("reversal:{id}"));
    let mirrored: Vec<(Value, Value, Value)> = reversal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["account_id"].clone(),
                e["direction"].clone(),
                e["amount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        mirrored,
        vec![
            (json!(cash), json!("credit"), json!(700)),
            (json!(sales), json!("debit"), json!(700))
        ]
    );
    assert_eq!(ledger.balance(&ada, &cash).await, 0);
    assert_eq!(ledger.balance(&ada, &sales).await, 0);
    assert_eq!(ledger.account(&ada, &cash).await["entry_count"], 2);

    // Asking again answers the same reversal; another reference is refused.
    let (status, again) = ledger.post(&path, &ada, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, reversal);
    let (status, error) = ledger.post(&path, &ada, json!({"reference": "undo-again"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(code(&error), "already_reversed");
    let reversal_id = reversal["id"].as_str().expect("id");
    let (status, error) = ledger
        .post(
            &format!("/v1/ledger/transactions/{reversal_id}/reverse"),
            &ada,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(code(&error), "reversal_not_reversible");
    let (status, _) = ledger.post(&path, &user("usr_bob"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ledger.balance(&ada, &cash).await, 0);
    assert_books_consistent(&ledger.pool().await).await;
}

#[tokio::test]
async fn a_reversal_respects_the_overdraft_guard() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let wallet = ledger
        .create_account_with(
            &ada,
            json!({"name": "wallet", "type": "asset", "currency": "usd", "must_not_go_negative": true}),
        )
        .await;
    let capital = ledger.create_account(&ada, "capital", "equity", "usd").await;
    let spend = ledger.create_account(&ada, "spend", "expense", "usd").await;
    let (_, funding) = ledger.transfer(&ada, "fund", &wallet, &capital, 100).await;
    let (status, _) = ledger.transfer(&ada, "buy", &spend, &wallet, 60).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, error) = ledger
        .post(
            &format!(
                "/v1/ledger/transactions/{}/reverse",
                funding["id"].as_str().expect("id")
            ),
            &ada,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(code(&error), "insufficient_funds");
    assert_eq!(ledger.balance(&ada, &wallet).await, 40);
}

#[tokio::test]
async fn a_merchant_sees_but_cannot_reverse_a_payment_posting() {
    let ledger = TestLedger::start().await;
    let merchant = user("usr_shop");
    let (status, txn) = ledger
        .payment_posting(crate::helpers::payment_posting("pay_9", "usr_shop", 1_000, "usd"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = txn["id"].as_str().expect("id");
    let (status, seen) = ledger
        .get(&format!("/v1/ledger/transactions/{id}"), &merchant)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, txn);
    let (status, _) = ledger
        .get(&format!("/v1/ledger/transactions/{id}"), &user("usr_else"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = ledger
        .post(
            &format!("/v1/ledger/transactions/{id}/reverse"),
            &merchant,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(code(&error), "not_reversible");
}

/// A field the ledger does not know is refused, not ignored, in each body
/// the ledger takes, and nothing is written: the reference is still free.
#[tokio::test]
async fn unknown_fields_are_refused_and_nothing_is_written() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let misspelt = json!({
        "reference": "sale",
        "descripton": "typo",
        "entries": [entry(&cash, "debit", 100), entry(&sales, "credit", 100)],
    });
    let mut with_currency = entry(&cash, "debit", 100);
    with_currency["currency"] = json!("eur");
    let leg_with_currency = json!({
        "reference": "sale",
        "entries": [with_currency, entry(&sales, "credit", 100)],
    });
    for body in [misspelt, leg_with_currency] {
        let (status, answer) = ledger.post("/v1/ledger/transactions", &ada, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(code(&answer), "invalid_body");
    }
    let (status, answer) = ledger
        .post(
            "/v1/ledger/accounts",
            &ada,
            json!({"name": "bank", "type": "asset", "currency": "usd", "guarded": true}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    let (status, sale) = ledger.transfer(&ada, "sale", &cash, &sales, 100).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the reference was still free: {sale}"
    );
    let path = format!(
        "/v1/ledger/transactions/{}/reverse",
        sale["id"].as_str().expect("id")
    );
    let (status, answer) = ledger.post(&path, &ada, json!({"referense": "undo"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(ledger.balance(&ada, &cash).await, 100, "nothing reversed");
}
