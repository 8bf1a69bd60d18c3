//! Delivers the ledger postings owed by succeeded payments and refunds.
//!
//! No transaction is held across a call to the ledger. A round claims due
//! postings with a lease in one statement (`FOR UPDATE SKIP LOCKED`, so
//! several workers share the work, and committed at once), sends them to the
//! ledger in batches (`/internal/payment-postings/batch`: many postings in one
//! ledger commit, each with its own outcome) with the payment or refund id as
//! the reference, then records every outcome of the round in one short
//! transaction. A worker that dies mid-call
//! leaves a lease that expires, and the posting is claimed again; since the
//! ledger records a reference once and answers the same transaction again, a
//! retry after an unknown outcome (a timeout, a crash before our commit)
//! cannot post twice.
//!
//! A network error or a 5xx pushes the posting's next attempt back, doubling
//! up to a few seconds, for as long as it takes. A 4xx refusal is the ledger
//! saying the posting itself is wrong: after `MAX_REFUSALS` of them it is
//! dead-lettered (kept, with its last error, for an operator) rather than
//! retried forever.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use contract::internal::{PaymentPosting, PaymentPostingKind};
use platform::error::error_chain;

use super::ledger_client::{LedgerClient, PostingCallError, outcome_result};
use super::{Backoff, pause, sleep};
use crate::state::Wakeups;

/// Postings claimed per round.
const BATCH: i64 = 200;
/// Postings per call to the ledger, which writes each call's postings in one
/// commit (at most 50 to a commit: see the ledger's `posting::MAX_BATCH`).
const PER_CALL: usize = 50;
/// Calls in flight to the ledger at once.
const CONCURRENCY: usize = 4;
/// How often to look for due postings when nothing woke the worker.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts of one posting.
const MAX_RETRY_SECONDS: f64 = 5.0;
/// How long a claim keeps other workers off a posting: well beyond the
/// ledger client's timeout, so a live worker always records before it ends.
const LEASE_SECONDS: f64 = 60.0;
/// Refusals (4xx) after which a posting is dead-lettered.
pub(crate) const MAX_REFUSALS: i32 = 5;

#[derive(sqlx::FromRow)]
struct Due {
    reference: String,
    payment_id: String,
    refund_id: Option<String>,
    merchant_id: String,
    amount: i64,
    currency: String,
    fee: Option<i64>,
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
            fee: self.fee,
            net: self.fee.map(|fee| self.amount - fee),
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

/// One call for `postings`; each posting's result, as a call of its own
/// would have ended. A call that fails whole fails each of its postings.
async fn post_some<'a>(
    ledger: &LedgerClient,
    postings: &'a [Due],
) -> Vec<(&'a Due, Result<String, PostingCallError>)> {
    match ledger.post_batch(postings.iter().map(Due::body).collect()).await {
        Ok(outcomes) => postings
            .iter()
            .zip(outcomes)
            .map(|(posting, outcome)| (posting, outcome_result(outcome)))
            .collect(),
        Err(e) => postings.iter().map(|posting| (posting, Err(e.share()))).collect(),
    }
}

/// Claims due postings: one statement, committed on its own, so the
/// calls that follow hold no transaction and no row lock.
async fn claim(db: &PgPool) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "UPDATE ledger_postings p
         SET leased_until = now() + make_interval(secs => $2), attempts = p.attempts + 1
         FROM (
             SELECT reference FROM ledger_postings
             WHERE posted_at IS NULL AND dead_lettered_at IS NULL AND next_attempt_at <= now()
               AND (leased_until IS NULL OR leased_until <= now())
             ORDER BY next_attempt_at, reference LIMIT $1
             FOR UPDATE SKIP LOCKED
         ) due
         WHERE p.reference = due.reference
         RETURNING p.reference, p.payment_id, p.refund_id, p.merchant_id, p.amount, p.currency, p.fee",
    )
    .bind(BATCH)
    .bind(LEASE_SECONDS)
    .fetch_all(db)
    .await
}

async fn post_due(db: &PgPool, ledger: &LedgerClient) -> sqlx::Result<Round> {
    let due = claim(db).await?;
    if due.is_empty() {
        return Ok(Round {
            attempted: 0,
            posted: 0,
        });
    }
    let attempted = due.len();
    let calls: Vec<_> = due.chunks(PER_CALL).map(|some| post_some(ledger, some)).collect();
    let results: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();

    let mut posted = (Vec::new(), Vec::new());
    let mut paid = (Vec::new(), Vec::new());
    let mut refunded = (Vec::new(), Vec::new());
    let mut failed = (Vec::new(), Vec::new());
    let mut refused = (Vec::new(), Vec::new());
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
            Err(e) if e.is_refusal() => {
                let chain = error_chain(&e);
                tracing::warn!(reference = %posting.reference, error = %chain, "the ledger refused a posting");
                refused.0.push(posting.reference.clone());
                refused.1.push(chain);
            }
            Err(e) => {
                let chain = error_chain(&e);
                tracing::warn!(reference = %posting.reference, error = %chain, "ledger posting failed; it will be retried");
                failed.0.push(posting.reference.clone());
                failed.1.push(chain);
            }
        }
    }

    if !posted.0.is_empty() {
        crate::failpoints::die_at(crate::failpoints::POSTINGS_POSTED);
    }
    let mut tx = db.begin().await?;
    // This transaction only records what the ledger already holds durably.
    // Should a database crash lose it, the postings are sent again and the
    // ledger answers the transactions it recorded, so it need not wait for
    // its own disk flush, which the requests' commits are queuing for.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE ledger_postings p SET posted_at = now(), ledger_transaction_id = u.transaction_id,
                                      leased_until = NULL, last_error = NULL
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
        "UPDATE ledger_postings p SET last_error = u.error, leased_until = NULL,
             next_attempt_at = now() + make_interval(secs => least($3, 0.1 * power(2, least(p.attempts - 1, 10))))
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, error)
         WHERE p.reference = u.reference AND p.posted_at IS NULL",
    )
    .bind(&failed.0)
    .bind(&failed.1)
    .bind(MAX_RETRY_SECONDS)
    .execute(&mut *tx)
    .await?;
    let dead: Vec<(String, String)> = sqlx::query_as(
        "UPDATE ledger_postings p SET last_error = u.error, leased_until = NULL, refusals = p.refusals + 1,
             dead_lettered_at = CASE WHEN p.refusals + 1 >= $4 THEN now() END,
             next_attempt_at = now() + make_interval(secs => least($3, 0.1 * power(2, least(p.attempts - 1, 10))))
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, error)
         WHERE p.reference = u.reference AND p.posted_at IS NULL
         RETURNING p.reference, p.last_error, p.dead_lettered_at IS NOT NULL AS dead",
    )
    .bind(&refused.0)
    .bind(&refused.1)
    .bind(MAX_RETRY_SECONDS)
    .bind(MAX_REFUSALS)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter_map(|(reference, error, dead): (String, Option<String>, bool)| {
        dead.then(|| (reference, error.unwrap_or_default()))
    })
    .collect();
    tx.commit().await?;

    for (reference, error) in &dead {
        tracing::error!(
            %reference,
            %error,
            refusals = MAX_REFUSALS,
            "the ledger keeps refusing a posting; dead-lettered, it needs an operator"
        );
    }
    let count = posted.0.len();
    metrics::counter!("payments_ledger_postings_total").increment(count as u64);
    metrics::counter!("payments_ledger_posting_failures_total")
        .increment((failed.0.len() + refused.0.len()) as u64);
    if !dead.is_empty() {
        metrics::counter!("payments_postings_dead_lettered_total").increment(dead.len() as u64);
    }
    Ok(Round {
        attempted,
        posted: count,
    })
}
