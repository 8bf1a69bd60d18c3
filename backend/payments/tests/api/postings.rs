//! Ledger postings: each succeeded payment and refund posted exactly once with
//! its stamped fee, through a ledger outage, and dead-lettered when refused.

use std::collections::BTreeMap;

use platform::testing::{eventually, unique_suffix};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::helpers::{DEADLINE, TestLedger, TestPayments, closed_port, id, new_owner};

/// The ledger is down while payments succeed and are refunded; once it is
/// up, every posting lands exactly once and the books balance.
#[tokio::test]
async fn ledger_postings_survive_an_outage_and_land_exactly_once() {
    let ledger_addr = closed_port().await;
    let payments = TestPayments::start_with(|c| c.ledger_url = format!("http://{ledger_addr}")).await;
    let pool = payments.pool().await;
    let merchants = [new_owner(), new_owner()];

    let mut succeeded = Vec::new();
    for (i, amount) in [1000i64, 2550, 99, 12345, 7].into_iter().enumerate() {
        let owner = &merchants[i % 2];
        let currency = if i == 3 { "eur" } else { "usd" };
        let paid = id(&payments.create(owner, amount, currency).await);
        payments.confirm(owner, &paid, "pm_card_visa").await;
        succeeded.push((owner.clone(), paid, amount));
    }
    let declined = id(&payments.create(&merchants[0], 500, "usd").await);
    payments
        .confirm(&merchants[0], &declined, "pm_card_chargeDeclined")
        .await;
    let mut refunds = Vec::new();
    for (owner, paid, amount) in [&succeeded[0], &succeeded[3]] {
        let partial = payments.refund(owner, paid, Some(amount / 3)).await;
        refunds.push((owner.clone(), id(&partial), amount / 3));
        let rest = payments.refund(owner, paid, None).await;
        refunds.push((owner.clone(), id(&rest), amount - amount / 3));
    }

    // The worker has tried and failed for every posting.
    let owed = (succeeded.len() + refunds.len()) as i64;
    eventually(DEADLINE, || async {
        let tried: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ledger_postings WHERE attempts > 0 AND posted_at IS NULL AND last_error IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        (tried == owed).then_some(())
    })
    .await
    .expect("every posting was attempted while the ledger was down");
    let (_, first) = payments
        .get(&succeeded[0].0, &format!("/v1/payments/{}", succeeded[0].1))
        .await;
    assert_eq!(first["ledger_transaction_id"], Value::Null);

    let listener = TcpListener::bind(ledger_addr)
        .await
        .expect("rebind the ledger port");
    let ledger = TestLedger::start(listener).await;

    for (owner, paid, amount) in &succeeded {
        let payment = eventually(DEADLINE, || async {
            let (_, payment) = payments.get(owner, &format!("/v1/payments/{paid}")).await;
            payment["ledger_transaction_id"].is_string().then_some(payment)
        })
        .await
        .expect("the payment is posted once the ledger is back");
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{paid}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(transaction["id"], payment["ledger_transaction_id"]);
        let debits: i64 = transaction["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["direction"] == "debit")
            .map(|e| e["amount"].as_i64().expect("amount"))
            .sum();
        assert_eq!(debits, *amount);
    }
    for (_, refund_id, _) in &refunds {
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{refund_id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "refund {refund_id} posted");
        let stored = eventually(DEADLINE, || async {
            sqlx::query_scalar::<_, Option<String>>("SELECT ledger_transaction_id FROM refunds WHERE id = $1")
                .bind(refund_id)
                .fetch_one(&pool)
                .await
                .expect("refund")
        })
        .await
        .expect("the refund shows its ledger transaction");
        assert_eq!(transaction["id"], stored.as_str());
    }
    let (status, _) = ledger
        .get(&format!("/internal/transactions/by-reference/{declined}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a declined payment is never posted"
    );

    // Exactly once: what the ledger holds adds up to what payments owed.
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (_, _, amount)) in succeeded.iter().enumerate() {
        *expected
            .entry(if i == 3 { "eur" } else { "usd" }.into())
            .or_default() += amount;
    }
    for (i, (_, _, amount)) in refunds.iter().enumerate() {
        *expected
            .entry(if i >= 2 { "eur" } else { "usd" }.into())
            .or_default() += amount;
    }
    let (status, balance) = ledger.get("/internal/trial-balance").await;
    assert_eq!(status, StatusCode::OK);
    let mut totals = BTreeMap::new();
    for line in balance.as_array().expect("lines") {
        let debits = line["debits"].as_i64().expect("debits");
        assert_eq!(debits, line["credits"].as_i64().expect("credits"), "{line}");
        totals.insert(line["currency"].as_str().expect("currency").to_owned(), debits);
    }
    assert_eq!(totals, expected);
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_postings WHERE posted_at IS NOT NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(posted, owed);
}

/// The fee is decided when a payment succeeds, in the currency's own minor
/// unit, and stays what it was: a posting sent after the fee schedule
/// changed carries the stamped fee, and the ledger books exactly that.
#[tokio::test]
async fn fees_are_stamped_at_success_and_posted_as_stamped() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let mut stamped = Vec::new();
    // 2.9% + 0.30: 30 cents, no yen at all, 300 fils.
    for (amount, currency, fee) in [(10_000, "usd", 320), (1_000, "jpy", 29), (10_000, "kwd", 590)] {
        let created = payments.create(&owner, amount, currency).await;
        assert_eq!(created["fee"], Value::Null, "no fee before success");
        let paid = payments.confirm(&owner, &id(&created), "pm_card_visa").await;
        assert_eq!(paid["fee"], fee, "{currency}: {paid}");
        stamped.push((id(&created), amount, fee));
    }
    let declined = id(&payments.create(&owner, 500, "usd").await);
    let declined = payments
        .confirm(&owner, &declined, "pm_card_chargeDeclined")
        .await;
    assert_eq!(declined["fee"], Value::Null, "a failed payment has no fee");

    // The same database under a schedule with no fee at all, and a ledger.
    let config = payments.config.clone();
    let env = payments.env.clone();
    let db = payments.db.clone();
    drop(payments);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ledger_addr = listener.local_addr().expect("address");
    let ledger = TestLedger::start(listener).await;
    let mut free = config.clone();
    free.fee_basis_points = 0;
    free.fee_fixed_cents = 0;
    free.ledger_url = format!("http://{ledger_addr}");
    let payments = TestPayments::instance(env, free, db).await;

    for (paid, amount, fee) in &stamped {
        let payment = eventually(DEADLINE, || async {
            let (_, payment) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
            payment["ledger_transaction_id"].is_string().then_some(payment)
        })
        .await
        .expect("posted once the ledger is up");
        assert_eq!(payment["fee"], *fee, "the stamp never changes");
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{paid}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let credits: Vec<i64> = transaction["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["direction"] == "credit")
            .map(|e| e["amount"].as_i64().expect("amount"))
            .collect();
        assert_eq!(credits, vec![amount - fee, *fee], "{transaction}");
    }
}

/// A posting the ledger refuses (here: an owner that is not a user, which
/// the ledger will never take as a merchant) is tried a bounded number of
/// times and dead-lettered, and does not hold up anyone else's postings.
#[tokio::test]
async fn a_refused_posting_is_dead_lettered_after_bounded_attempts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ledger_addr = listener.local_addr().expect("address");
    let payments = TestPayments::start_with(|c| c.ledger_url = format!("http://{ledger_addr}")).await;
    let _ledger = TestLedger::start(listener).await;
    let pool = payments.pool().await;

    let odd_owner = format!("org_{}", unique_suffix());
    let refused = id(&payments.create(&odd_owner, 1_000, "usd").await);
    payments.confirm(&odd_owner, &refused, "pm_card_visa").await;
    let owner = new_owner();
    let fine = id(&payments.create(&owner, 1_000, "usd").await);
    payments.confirm(&owner, &fine, "pm_card_visa").await;

    let (attempts, refusals, last_error): (i32, i32, Option<String>) = eventually(DEADLINE, || async {
        sqlx::query_as(
            "SELECT attempts, refusals, last_error FROM ledger_postings
             WHERE reference = $1 AND dead_lettered_at IS NOT NULL",
        )
        .bind(&refused)
        .fetch_optional(&pool)
        .await
        .expect("posting")
    })
    .await
    .expect("the refused posting is dead-lettered");
    assert_eq!((attempts, refusals), (5, 5));
    let last_error = last_error.unwrap_or_default();
    assert!(
        last_error.contains("400") && last_error.contains("invalid_merchant_id"),
        "{last_error}"
    );

    let (_, payment) = payments.get(&owner, &format!("/v1/payments/{fine}")).await;
    assert!(payment["ledger_transaction_id"].is_string(), "{payment}");
    let (_, payment) = payments.get(&odd_owner, &format!("/v1/payments/{refused}")).await;
    assert_eq!(payment["ledger_transaction_id"], Value::Null);

    let metrics = payments.metrics_text().await;
    assert!(
        metrics.contains("payments_postings_dead_lettered_total"),
        "{metrics}"
    );

    // Dead means no more attempts: well past when it would have been due
    // (and a few polls of the worker later), the count stays at five.
    eventually(DEADLINE, || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT next_attempt_at + interval '1 second' < now() FROM ledger_postings WHERE reference = $1",
        )
        .bind(&refused)
        .fetch_one(&pool)
        .await
        .expect("due")
        .then_some(())
    })
    .await
    .expect("time passes");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM ledger_postings WHERE reference = $1")
        .bind(&refused)
        .fetch_one(&pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, 5);
}
