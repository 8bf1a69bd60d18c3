//! What the databases say, read directly: the payments database for what
//! was stored and owed, the ledger's for what was posted. Only reads.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::check::{CurrencyTotals, Footprint, LedgerPosting, OwedPosting};

/// The poster under which payments' postings are recorded (`ledger::PAYMENTS_POSTER`).
const PAYMENTS_POSTER: &str = "platform:payments";

pub async fn pool(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Every event: (owner id, event id, sequence).
pub async fn events(payments: &PgPool) -> anyhow::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT owner_id, id, sequence FROM events WHERE quarantined_at IS NULL ORDER BY position")
        .fetch_all(payments)
        .await
        .context("reading events")
}

/// What is still on its way: unpublished events, unposted postings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub unpublished: i64,
    pub unposted: i64,
    pub dead_lettered: i64,
    pub quarantined: i64,
}

pub async fn backlog(payments: &PgPool) -> anyhow::Result<Backlog> {
    let (unpublished, quarantined): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM event_outbox),
                (SELECT count(*) FROM events WHERE quarantined_at IS NOT NULL)",
    )
    .fetch_one(payments)
    .await
    .context("reading the events outbox")?;
    let (unposted, dead_lettered): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE posted_at IS NULL AND dead_lettered_at IS NULL),
                count(*) FILTER (WHERE dead_lettered_at IS NOT NULL)
         FROM ledger_postings",
    )
    .fetch_one(payments)
    .await
    .context("reading the postings outbox")?;
    Ok(Backlog {
        unpublished,
        unposted,
        dead_lettered,
        quarantined,
    })
}

/// Payments and their status; refund ids.
pub async fn stored_payments(
    payments: &PgPool,
) -> anyhow::Result<(HashMap<String, String>, HashSet<String>)> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM payments")
        .fetch_all(payments)
        .await
        .context("reading payments")?;
    let refunds: Vec<(String,)> = sqlx::query_as("SELECT id FROM refunds")
        .fetch_all(payments)
        .await
        .context("reading refunds")?;
    Ok((
        rows.into_iter().collect(),
        refunds.into_iter().map(|(id,)| id).collect(),
    ))
}

/// What payments owes the ledger, from the payments and refunds themselves
/// rather than from its postings outbox, which is what is under test.
pub async fn owed(payments: &PgPool) -> anyhow::Result<Vec<OwedPosting>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT id, amount, currency FROM payments WHERE status = 'succeeded'
         UNION ALL
         SELECT id, amount, currency FROM refunds",
    )
    .fetch_all(payments)
    .await
    .context("reading what payments owes the ledger")?;
    Ok(rows
        .into_iter()
        .map(|(reference, amount, currency)| OwedPosting {
            reference,
            amount,
            currency,
        })
        .collect())
}

/// Every transaction payments posted, by reference.
pub async fn postings(ledger: &PgPool) -> anyhow::Result<Vec<LedgerPosting>> {
    let rows: Vec<(String, i64, i64, Vec<String>)> = sqlx::query_as(
        "SELECT t.reference,
                count(DISTINCT t.id),
                COALESCE(sum(e.amount) FILTER (WHERE e.direction = 'debit'), 0)::BIGINT,
                array_agg(DISTINCT e.currency ORDER BY e.currency)
         FROM transactions t JOIN entries e ON e.transaction_id = t.id
         WHERE t.poster = $1
         GROUP BY t.reference",
    )
    .bind(PAYMENTS_POSTER)
    .fetch_all(ledger)
    .await
    .context("reading the ledger's payment postings")?;
    Ok(rows
        .into_iter()
        .map(|(reference, transactions, debited, currencies)| LedgerPosting {
            reference,
            transactions,
            debited,
            currencies,
        })
        .collect())
}

/// Debits and credits per currency, over every entry.
pub async fn trial_balance(ledger: &PgPool) -> anyhow::Result<Vec<CurrencyTotals>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT currency,
                COALESCE(sum(amount) FILTER (WHERE direction = 'debit'), 0)::BIGINT,
                COALESCE(sum(amount) FILTER (WHERE direction = 'credit'), 0)::BIGINT
         FROM entries GROUP BY currency ORDER BY currency",
    )
    .fetch_all(ledger)
    .await
    .context("reading the trial balance")?;
    Ok(rows
        .into_iter()
        .map(|(currency, debits, credits)| CurrencyTotals {
            currency,
            debits,
            credits,
        })
        .collect())
}

/// Every payment with the count of each thing a committed write leaves
/// behind for it, read in one statement, so from one snapshot.
pub async fn footprints(payments: &PgPool) -> anyhow::Result<Vec<Footprint>> {
    sqlx::query_as(
        "WITH answers AS (
             SELECT CASE WHEN path LIKE '%/confirm' THEN 'confirm'
                         WHEN path LIKE '%/refunds' THEN 'refund'
                         WHEN path = '/v1/payments' THEN 'create' END AS kind,
                    convert_from(response_body, 'UTF8')::jsonb AS body
             FROM idempotency_keys WHERE response_status BETWEEN 200 AND 299),
         answer_counts AS (
             SELECT CASE kind WHEN 'refund' THEN body->>'payment' ELSE body->>'id' END AS payment_id,
                    count(*) FILTER (WHERE kind = 'create') AS creates,
                    count(*) FILTER (WHERE kind = 'confirm') AS confirms,
                    count(*) FILTER (WHERE kind = 'refund') AS refunds
             FROM answers GROUP BY 1),
         event_counts AS (
             SELECT object_id,
                    count(*) FILTER (WHERE type = 'payment.created') AS created,
                    count(*) FILTER (WHERE type IN ('payment.succeeded', 'payment.failed')) AS settled,
                    count(*) FILTER (WHERE type = 'payment.refunded') AS refunded
             FROM events GROUP BY object_id),
         posting_counts AS (
             SELECT payment_id,
                    count(*) FILTER (WHERE kind = 'payment') AS paid,
                    count(*) FILTER (WHERE kind = 'refund') AS refunded
             FROM ledger_postings GROUP BY payment_id),
         refund_counts AS (SELECT payment_id, count(*) AS refunds FROM refunds GROUP BY payment_id)
         SELECT p.id, p.status, p.fee,
                coalesce(r.refunds, 0) AS refunds,
                coalesce(e.created, 0) AS created_events,
                coalesce(e.settled, 0) AS settled_events,
                coalesce(e.refunded, 0) AS refunded_events,
                coalesce(l.paid, 0) AS payment_postings,
                coalesce(l.refunded, 0) AS refund_postings,
                coalesce(a.creates, 0) AS create_answers,
                coalesce(a.confirms, 0) AS confirm_answers,
                coalesce(a.refunds, 0) AS refund_answers
         FROM payments p
         LEFT JOIN refund_counts r ON r.payment_id = p.id
         LEFT JOIN event_counts e ON e.object_id = p.id
         LEFT JOIN posting_counts l ON l.payment_id = p.id
         LEFT JOIN answer_counts a ON a.payment_id = p.id
         ORDER BY p.id",
    )
    .fetch_all(payments)
    .await
    .context("reading what each payment's writes left")
}
