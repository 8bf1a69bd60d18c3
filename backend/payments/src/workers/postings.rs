//! Delivers the ledger postings owed by succeeded payments and refunds.
//!
//! Due postings are locked with `FOR UPDATE SKIP LOCKED` (several workers
//! share the work), sent to the ledger with the payment or refund id as the
//! reference, and marked posted with the ledger's transaction id, which is
//! also copied onto the payment or refund. A failure only pushes the posting's
//! next attempt back; since the ledger records a reference once and answers
//! the same transaction again, a retry after an unknown outcome (a timeout, a
//! crash before our commit) cannot post twice.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use contract::ledger::{PaymentPosting, PaymentPostingKind};

use super::ledger_client::{LedgerClient, LedgerError};
use super::{Backoff, pause, sleep};
use crate::state::Wakeups;

const BATCH: i64 = 128;
/// Postings in flight to the ledger at once; the ledger commits each, and
/// concurrent commits share their disk flushes.
const CONCURRENCY: usize = 16;
/// How often to look for due postings when nothing woke the worker.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts of one posting.
const MAX_RETRY_SECONDS: f64 = 5.0;

#[derive(sqlx::FromRow)]
struct Due {
    reference: String,
    payment_id: String,
    refund_id: Option<String>,
    merchant_id: String,
    amount: i64,
    currency: String,
}

impl Due {
    fn body(&self) -> PaymentPosting {
        PaymentPosting {
            reference: self.reference.clone(),
            merchant_id: self.merchant_id.clone(),
            kind: match self.refund_id {
                None => PaymentPostingKind::Payment,
                Some(_) => PaymentPostingKind::Refund,
            },
            amount: self.amount,
            currency: self.currency.clone(),
        }
    }
}

pub async fn run(db: PgPool, ledger: LedgerClient, wake: Arc<Wakeups>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match post_due(&db, &ledger).await {
            Ok(Round { attempted, posted }) => {
                backoff.reset();
                let more = attempted == BATCH as usize && posted > 0;
                if !more && !pause(POLL, &wake.postings, &shutdown).await {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or record ledger postings; retrying");
                if !sleep(backoff.next_delay(), &shutdown).await {
                    return;
                }
            }
        }
    }
}

struct Round {
    attempted: usize,
    posted: usize,
}

async fn post_one<'a>(ledger: &LedgerClient, posting: &'a Due) -> (&'a Due, Result<String, LedgerError>) {
    (posting, ledger.post(&posting.body()).await)
}

async fn post_due(db: &PgPool, ledger: &LedgerClient) -> sqlx::Result<Round> {
    let mut tx = db.begin().await?;
    // This transaction only records what the ledger already holds durably.
    // Should a database crash lose it, the postings are sent again and the
    // ledger answers the transactions it recorded, so it need not wait for
    // its own disk flush, which the requests' commits are queuing for.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let due: Vec<Due> = sqlx::query_as(
        "SELECT reference, payment_id, refund_id, merchant_id, amount, currency FROM ledger_postings
         WHERE posted_at IS NULL AND next_attempt_at <= now()
         ORDER BY next_attempt_at, reference LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(Round {
            attempted: 0,
            posted: 0,
        });
    }
    let attempted = due.len();
    let calls: Vec<_> = due.iter().map(|posting| post_one(ledger, posting)).collect();
    let results: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut posted = (Vec::new(), Vec::new());
    let mut paid = (Vec::new(), Vec::new());
    let mut refunded = (Vec::new(), Vec::new());
    let mut failed = (Vec::new(), Vec::new());
    for (posting, result) in results {
        match result {
            Ok(transaction_id) => {
                posted.0.push(posting.reference.clone());
                posted.1.push(transaction_id.clone());
                match &posting.refund_id {
                    None => {
                        paid.0.push(posting.payment_id.clone());
                        paid.1.push(transaction_id);
                    }
                    Some(refund_id) => {
                        refunded.0.push(refund_id.clone());
                        refunded.1.push(transaction_id);
                    }
                }
            }
            Err(e) => {
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    chain.push_str(": ");
                    chain.push_str(&cause.to_string());
                    source = cause.source();
                }
                tracing::warn!(reference = %posting.reference, error = %chain, "ledger posting failed; it will be retried");
                failed.0.push(posting.reference.clone());
                failed.1.push(chain);
            }
        }
    }
    sqlx::query(
        "UPDATE ledger_postings p SET posted_at = now(), ledger_transaction_id = u.transaction_id,
                                      attempts = p.attempts + 1, last_error = NULL
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, transaction_id) WHERE p.reference = u.reference",
    )
    .bind(&posted.0)
    .bind(&posted.1)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE payments p SET ledger_transaction_id = u.transaction_id
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(id, transaction_id) WHERE p.id = u.id",
    )
    .bind(&paid.0)
    .bind(&paid.1)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE refunds r SET ledger_transaction_id = u.transaction_id
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(id, transaction_id) WHERE r.id = u.id",
    )
    .bind(&refunded.0)
    .bind(&refunded.1)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ledger_postings p SET attempts = p.attempts + 1, last_error = u.error,
             next_attempt_at = now() + make_interval(secs => least($3, 0.1 * power(2, least(p.attempts, 10))))
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, error) WHERE p.reference = u.reference",
    )
    .bind(&failed.0)
    .bind(&failed.1)
    .bind(MAX_RETRY_SECONDS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let count = posted.0.len();
    metrics::counter!("payments_ledger_postings_total").increment(count as u64);
    metrics::counter!("payments_ledger_posting_failures_total").increment(failed.0.len() as u64);
    Ok(Round {
        attempted,
        posted: count,
    })
}
