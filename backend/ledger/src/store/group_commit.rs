//! Group commit: postings that arrive while earlier ones are being written
//! go to the database together, as one batch (`posting::post_batch`): one
//! statement, one commit and one lock per touched account for all of them,
//! where each alone would queue on a hot account's row lock for a commit of
//! its own.
//!
//! Nothing waits on purpose. The writer takes the first posting that
//! arrives and whatever else is already waiting (up to `posting::MAX_BATCH`);
//! a posting that arrives to an idle writer goes alone, as one call of
//! `ledger_post`, as it did before there was a writer.
//!
//! One writer, because batches in flight together lock the same hot rows and
//! mostly wait for each other: with two, each batch is half as large and the
//! second queues behind the first's commit. `ledger-bench` measured 3,500 to
//! 3,900 postings/s with one writer and 2,900/s with two (16 clients). A
//! batch holds its accounts' locks for one statement and one commit, so a
//! posting waits at most for the batch ahead of it.
//!
//! Each posting keeps its own answer: one the database refuses (an
//! overdraft, say) is rolled back alone, and a batch that fails whole fails
//! only its own postings, which the callers retry under their references.
//! A caller that goes away before its answer does not stop the posting: it
//! commits, and the caller's retry finds it by its reference.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

use crate::LedgerError;
use crate::store::posting::{self, MAX_BATCH, NewTransaction, Posted};

/// Postings waiting for a writer; past this, callers wait to be queued.
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;

#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Waiting>,
}

struct Waiting {
    new: NewTransaction,
    answer: oneshot::Sender<Result<Posted, LedgerError>>,
    span: tracing::Span,
}

impl GroupCommit {
    /// Starts `writers` writers on the current runtime (one, but for tests
    /// that stand for several ledger processes); they stop when every handle
    /// is dropped.
    pub fn spawn(db: PgPool, writers: usize) -> Self {
        let (queue, arrivals) = mpsc::channel(QUEUE_CAPACITY);
        let arrivals = Arc::new(Mutex::new(arrivals));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(db.clone(), Arc::clone(&arrivals)));
        }
        Self { queue }
    }

    /// Posts `new` with whatever else is waiting, and answers as
    /// `posting::post` would.
    pub async fn post(&self, new: NewTransaction) -> Result<Posted, LedgerError> {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            new,
            answer,
            span: tracing::Span::current(),
        };
        // Counted before it can be taken, so that the gauge never dips below
        // what waits.
        metrics::gauge!("ledger_postings_waiting").increment(1);
        if self.queue.send(waiting).await.is_err() {
            metrics::gauge!("ledger_postings_waiting").decrement(1);
            return Err(LedgerError::Database(sqlx::Error::PoolClosed));
        }
        answered
            .await
            .map_err(|_| LedgerError::Database(sqlx::Error::WorkerCrashed))?
    }
}

async fn write(db: PgPool, arrivals: Arc<Mutex<mpsc::Receiver<Waiting>>>) {
    while let Some(batch) = next_batch(&arrivals).await {
        // Each batch in a task of its own: a panic fails that batch's callers
        // (their answers are dropped), not the writer, just as a panic in a
        // request fails only that request.
        if let Err(e) = tokio::spawn(write_batch(db.clone(), batch)).await {
            tracing::error!(error = %e, "a batch of postings panicked");
        }
    }
}

async fn write_batch(db: PgPool, mut batch: Vec<Waiting>) {
    if batch.len() == 1
        && let Some(alone) = batch.pop()
    {
        let result = posting::post(&db, alone.new).instrument(alone.span).await;
        let _ = alone.answer.send(result);
        return;
    }
    let (postings, answers): (Vec<_>, Vec<_>) = batch.into_iter().map(|w| (w.new, w.answer)).unzip();
    tracing::debug!(postings = postings.len(), "posting a group");
    let results = posting::post_batch(&db, postings).await;
    for (answer, result) in answers.into_iter().zip(results) {
        let _ = answer.send(result);
    }
}

/// The first posting to arrive and whatever is waiting behind it; `None`
/// once every handle is gone.
async fn next_batch(arrivals: &Mutex<mpsc::Receiver<Waiting>>) -> Option<Vec<Waiting>> {
    let mut arrivals = arrivals.lock().await;
    let first = arrivals.recv().await?;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match arrivals.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    metrics::gauge!("ledger_postings_waiting").decrement(batch.len() as f64);
    metrics::counter!("ledger_posting_writes_total").increment(1);
    metrics::counter!("ledger_postings_written_total").increment(batch.len() as u64);
    Some(batch)
}
