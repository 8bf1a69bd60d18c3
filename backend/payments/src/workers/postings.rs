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
use crate::store::{self, DuePosting};

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

impl DuePosting {
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
        match post_due(&db, &ledger, &shutdown).await {
            Ok(RoundOutcome { attempted, posted }) => {
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

/// Records a round's outcomes, trying again while the database is
/// unavailable: a restart breaks every pooled connection, and each failed
/// try drops one. The round's postings stay leased until their outcomes are
/// recorded or the lease runs out, so giving up at once would hold them back
/// for the rest of the lease, those the ledger already holds included.
async fn record_outcomes(
    db: &PgPool,
    outcomes: &store::PostingOutcomes,
    shutdown: &CancellationToken,
) -> sqlx::Result<Vec<(String, String)>> {
    let give_up_at = tokio::time::Instant::now() + Duration::from_secs_f64(LEASE_SECONDS / 2.0);
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        match store::record_posting_outcomes(db, outcomes, MAX_RETRY_SECONDS, MAX_REFUSALS).await {
            Err(e) if platform::db::is_unavailable(&e) && tokio::time::Instant::now() < give_up_at => {
                tracing::debug!(error = %e, "cannot record ledger postings yet; retrying");
                if !sleep(backoff.next_delay(), shutdown).await {
                    return Err(e);
                }
            }
            result => return result,
        }
    }
}

/// What one round did: how many postings it claimed, how many the ledger took.
struct RoundOutcome {
    attempted: usize,
    posted: usize,
}

/// One call for `postings`; each posting's result, as a call of its own
/// would have ended. A call that fails whole fails each of its postings.
async fn post_some<'a>(
    ledger: &LedgerClient,
    postings: &'a [DuePosting],
) -> Vec<(&'a DuePosting, Result<String, PostingCallError>)> {
    match ledger
        .post_batch(postings.iter().map(DuePosting::body).collect())
        .await
    {
        Ok(outcomes) => postings
            .iter()
            .zip(outcomes)
            .map(|(posting, outcome)| (posting, outcome_result(outcome)))
            .collect(),
        Err(e) => postings.iter().map(|posting| (posting, Err(e.share()))).collect(),
    }
}

async fn post_due(
    db: &PgPool,
    ledger: &LedgerClient,
    shutdown: &CancellationToken,
) -> sqlx::Result<RoundOutcome> {
    let due = store::claim_due_postings(db, BATCH, LEASE_SECONDS).await?;
    if due.is_empty() {
        return Ok(RoundOutcome {
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

    let mut outcomes = store::PostingOutcomes::default();
    for (posting, result) in results {
        match result {
            Ok(transaction_id) => {
                outcomes.posted.push(&posting.reference, &transaction_id);
                match &posting.refund_id {
                    None => outcomes.paid.push(&posting.payment_id, &transaction_id),
                    Some(refund_id) => outcomes.refunded.push(refund_id, &transaction_id),
                }
            }
            Err(e) if e.is_refusal() => {
                let chain = error_chain(&e);
                tracing::warn!(reference = %posting.reference, error = %chain, "the ledger refused a posting");
                outcomes.refused.push(&posting.reference, &chain);
            }
            Err(e) => {
                let chain = error_chain(&e);
                tracing::warn!(reference = %posting.reference, error = %chain, "ledger posting failed; it will be retried");
                outcomes.failed.push(&posting.reference, &chain);
            }
        }
    }

    if !outcomes.posted.is_empty() {
        crate::failpoints::die_at(crate::failpoints::POSTINGS_POSTED);
    }
    let dead = record_outcomes(db, &outcomes, shutdown).await?;

    for (reference, error) in &dead {
        tracing::error!(
            %reference,
            %error,
            refusals = MAX_REFUSALS,
            "the ledger keeps refusing a posting; dead-lettered, it needs an operator"
        );
    }
    let count = outcomes.posted.len();
    metrics::counter!("payments_ledger_postings_total").increment(count as u64);
    metrics::counter!("payments_ledger_posting_failures_total")
        .increment((outcomes.failed.len() + outcomes.refused.len()) as u64);
    if !dead.is_empty() {
        metrics::counter!("payments_postings_dead_lettered_total").increment(dead.len() as u64);
    }
    Ok(RoundOutcome {
        attempted,
        posted: count,
    })
}
