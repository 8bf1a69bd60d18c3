//! Group commit: postings that arrive while others are being written wait
//! for the next batch, and each batch is one statement and one commit
//! (`posting::post_batch`). Under load many postings share one round trip,
//! one disk flush, and one hold of each hot account's lock; alone, a posting
//! goes out at once, in a batch of one.
//!
//! Batches are written by runner tasks, at most `MAX_RUNNERS` at a time: a
//! posting that finds every runner busy waits in the queue, and the first
//! runner to finish its batch takes everything waiting (up to
//! `posting::MAX_BATCH`). Runners are spawned tasks, not the requests' own
//! futures, so a request that is dropped mid-way (its client hung up) never
//! strands the postings of others that its batch carried.

use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::LedgerError;
use crate::posting::{self, NewTransaction, Posted};

/// Batches in flight at once. More than one keeps the database busy while a
/// finished batch's answers are sent and the next one is gathered; batches
/// that touch the same accounts still queue on their locks.
const MAX_RUNNERS: usize = 2;

type Answer = Result<Posted, LedgerError>;

struct Job {
    new: NewTransaction,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Job>,
    runners: usize,
}

#[derive(Clone)]
pub struct GroupCommit {
    db: PgPool,
    queue: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            queue: Arc::default(),
        }
    }

    /// Posts `new` in the next batch; the same answer as `posting::post`.
    pub async fn post(&self, new: NewTransaction) -> Answer {
        let (reply, answer) = oneshot::channel();
        let start_runner = {
            let mut queue = lock(&self.queue);
            queue.waiting.push(Job { new, reply });
            let start = queue.runners < MAX_RUNNERS;
            if start {
                queue.runners += 1;
            }
            start
        };
        if start_runner {
            tokio::spawn(run(
                self.db.clone(),
                Runner {
                    queue: self.queue.clone(),
                    released: false,
                },
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(sqlx::Error::Protocol("a batch of postings ended without an answer".into()).into())
        })
    }
}

/// A runner's place among the `MAX_RUNNERS`; given back when the runner ends,
/// also should it panic.
struct Runner {
    queue: Arc<Mutex<Queue>>,
    released: bool,
}

impl Runner {
    /// The next batch, or None, having given the place back, when nothing
    /// waits (under the lock that posting takes, so that no posting is left
    /// waiting without a runner).
    fn next_batch(&mut self) -> Option<Vec<Job>> {
        let mut queue = lock(&self.queue);
        if queue.waiting.is_empty() {
            queue.runners = queue.runners.saturating_sub(1);
            self.released = true;
            return None;
        }
        let take = queue.waiting.len().min(posting::MAX_BATCH);
        Some(queue.waiting.drain(..take).collect())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.released {
            let mut queue = lock(&self.queue);
            queue.runners = queue.runners.saturating_sub(1);
        }
    }
}

async fn run(db: PgPool, mut runner: Runner) {
    while let Some(jobs) = runner.next_batch() {
        let (batch, replies): (Vec<NewTransaction>, Vec<oneshot::Sender<Answer>>) =
            jobs.into_iter().map(|job| (job.new, job.reply)).unzip();
        let answers = posting::post_batch(&db, batch).await;
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The request may have gone; its posting stands either way.
            let _ = reply.send(answer);
        }
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Jobs and a count; a panic elsewhere cannot leave them inconsistent.
    queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
