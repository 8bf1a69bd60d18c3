//! Accounts: creation, reading with balances, listing, statements.

use std::time::Duration;

use platform::testing::{Link, eventually};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{TestLedger, code, payments, user};

#[tokio::test]
async fn creates_an_account_and_reads_it_back() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let (status, created) = ledger
        .post(
            "/v1/ledger/accounts",
            &ada,
            json!({"name": "  Operating cash ", "type": "asset", "currency": "EUR",
                   "must_not_go_negative": true, "metadata": {"bank": "n26"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("acct_"), "{id}");
    assert_eq!(created["object"], "ledger_account");
    assert_eq!(created["owner_id"], "usr_ada");
    assert_eq!(created["name"], "Operating cash");
    assert_eq!(created["type"], "asset");
    assert_eq!(created["currency"], "eur");
    assert_eq!(created["balance"], 0);
    assert_eq!(created["entry_count"], 0);
    assert_eq!(created["version"], 0);
    assert_eq!(created["must_not_go_negative"], true);
    assert_eq!(created["metadata"], json!({"bank": "n26"}));
    assert!(created["created_at"].is_string());
    assert_eq!(ledger.account(&ada, id).await, created);

    let plain = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let plain = ledger.account(&ada, &plain).await;
    assert_eq!(plain["must_not_go_negative"], false);
    assert_eq!(plain["metadata"], json!({}));
}

#[tokio::test]
async fn refuses_malformed_accounts() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let many_keys: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({"name": " ", "type": "asset", "currency": "usd"}),
            "invalid_name",
            Some("name"),
        ),
        (
            json!({"name": "x", "type": "asset", "currency": "zzz"}),
            "invalid_currency",
            Some("currency"),
        ),
        (
            json!({"name": "x", "type": "revenue", "currency": "usd", "must_not_go_negative": true}),
            "invalid_overdraft_guard",
            Some("must_not_go_negative"),
        ),
        (
            json!({"name": "x", "type": "asset", "currency": "usd", "metadata": many_keys}),
            "invalid_metadata",
            Some("metadata"),
        ),
        (
            json!({"name": "x", "type": "cash", "currency": "usd"}),
            "invalid_body",
            None,
        ),
        (json!({"name": "x", "currency": "usd"}), "invalid_body", None),
    ];
    for (body, expected, param) in cases {
        let (status, error) = ledger.post("/v1/ledger/accounts", &ada, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(code(&error), expected, "{error}");
        assert_eq!(error["error"]["param"].as_str(), param, "{error}");
    }
    let (_, list) = ledger.get("/v1/ledger/accounts", &ada).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn lists_the_callers_accounts_newest_first_by_page() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            ledger
                .create_account(&ada, &format!("a{i}"), "asset", "usd")
                .await,
        );
    }
    ledger
        .create_account(&user("usr_bob"), "bob's", "asset", "usd")
        .await;
    ids.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/ledger/accounts?limit=2".to_owned();
    loop {
        let (status, page) = ledger.get(&path, &ada).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["object"], "list");
        let data = page["data"].as_array().expect("data");
        seen.extend(data.iter().map(|a| a["id"].as_str().expect("id").to_owned()));
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
        let last = data.last().expect("a full page")["id"].as_str().expect("id");
        path = format!("/v1/ledger/accounts?limit=2&starting_after={last}");
    }
    assert_eq!(seen, ids);

    let (status, error) = ledger.get("/v1/ledger/accounts?limit=0", &ada).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&error), "invalid_limit");
    // A limit that is not a number names the field once, not `limit: limit: ...`.
    let (status, error) = ledger.get("/v1/ledger/accounts?limit=ten", &ada).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&error), "invalid_query");
    let message = error["error"]["message"].as_str().expect("message");
    assert_eq!(message.matches("limit").count(), 1, "{message}");
    assert!(message.contains("\"ten\" is not a whole number"), "{message}");
}

#[tokio::test]
async fn another_users_account_does_not_exist_for_you() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let id = ledger.create_account(&ada, "cash", "asset", "usd").await;
    for path in [
        format!("/v1/ledger/accounts/{id}"),
        format!("/v1/ledger/accounts/{id}/entries"),
        "/v1/ledger/accounts/acct_missing".to_owned(),
    ] {
        let (status, error) = ledger.get(&path, &user("usr_bob")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {error}");
        assert_eq!(code(&error), "resource_missing");
    }
    // Public routes serve users only, and nothing without the internal token.
    let (status, error) = ledger
        .get(&format!("/v1/ledger/accounts/{id}"), &payments())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
    let response = ledger
        .http
        .get(format!("{}/v1/ledger/accounts", ledger.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_statement_lists_entries_newest_first_with_running_balances() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let rent = ledger.create_account(&ada, "rent", "expense", "usd").await;
    let moves: [(&str, &str, i64); 4] = [
        (&cash, &sales, 500),
        (&cash, &sales, 300),
        (&rent, &cash, 200),
        (&cash, &sales, 50),
    ];
    for (i, (to, from, amount)) in moves.iter().enumerate() {
        let (status, body) = ledger.transfer(&ada, &format!("r{i}"), to, from, *amount).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut statement: Vec<Value> = Vec::new();
    let mut path = format!("/v1/ledger/accounts/{cash}/entries?limit=3");
    loop {
        let (status, page) = ledger.get(&path, &ada).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("data").clone();
        statement.extend(data.iter().cloned());
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
        let last = data.last().expect("entries")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        path = format!("/v1/ledger/accounts/{cash}/entries?limit=3&starting_after={last}");
    }
    let running: Vec<(String, i64, i64)> = statement
        .iter()
        .map(|e| {
            (
                e["direction"].as_str().expect("direction").to_owned(),
                e["amount"].as_i64().expect("amount"),
                e["balance_after"].as_i64().expect("balance_after"),
            )
        })
        .collect();
    assert_eq!(
        running,
        vec![
            ("debit".into(), 50, 650),
            ("credit".into(), 200, 600),
            ("debit".into(), 300, 800),
            ("debit".into(), 500, 500),
        ]
    );
    let first = &statement[0];
    assert_eq!(first["object"], "ledger_entry");
    assert_eq!(first["account_id"], cash.as_str());
    assert_eq!(first["currency"], "usd");
    assert!(first["transaction_id"].as_str().expect("txn").starts_with("txn_"));
    assert!(first["posted_at"].is_string());

    let account = ledger.account(&ada, &cash).await;
    assert_eq!(
        (account["balance"].as_i64(), account["entry_count"].as_i64()),
        (Some(650), Some(4))
    );
    assert_eq!(ledger.balance(&ada, &sales).await, 850);
    assert_eq!(ledger.balance(&ada, &rent).await, 200);

    let (status, error) = ledger
        .get(
            &format!(
                "/v1/ledger/accounts/{sales}/entries?starting_after={}",
                statement[0]["id"].as_str().expect("id")
            ),
            &ada,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an entry of another account is no cursor here"
    );
    assert_eq!(code(&error), "invalid_cursor");
}

#[tokio::test]
async fn a_database_outage_is_503_and_reads_work_again_afterwards() {
    let mut link = Link::to_postgres().await;
    let ledger = TestLedger::start_with(|config| {
        config.database.url = link.postgres_url(config.database.url.expose_secret()).into();
    })
    .await;
    let ada = user("usr_ada");
    let id = ledger.create_account(&ada, "Cash", "asset", "usd").await;

    link.cut().await;
    let (status, answer) = ledger.get("/v1/ledger/accounts", &ada).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(code(&answer), "database_unavailable");

    link.open().await;
    let listed = eventually(Duration::from_secs(15), || {
        let (ledger, ada) = (&ledger, &ada);
        async move {
            let (status, list) = ledger.get("/v1/ledger/accounts", ada).await;
            (status == StatusCode::OK).then_some(list)
        }
    })
    .await
    .expect("listed once the database is back");
    assert_eq!(listed["data"][0]["id"], id.as_str());
}
