//! The background tasks `build` starts: the event publisher (its two paths), the ledger
//! posting worker and the idempotency-key purge. Each stops on shutdown.

pub mod ledger_client;
mod postings;
mod publisher;

use std::time::Duration;

use contract::internal::PublishedEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::AppState;

pub use ledger_client::LedgerClient;
pub use publisher::PUBLISH_NOW_WITHIN;

/// How often the purge of expired idempotency keys runs.
const PURGE_EVERY: Duration = Duration::from_secs(15 * 60);

pub fn spawn(
    state: &AppState,
    config: &crate::PaymentsSettings,
    committed: mpsc::Receiver<PublishedEvent>,
    shutdown: CancellationToken,
) {
    tokio::spawn(publisher::run_committed(
        state.db.clone(),
        config.redis.url.clone(),
        config.redis.keys(),
        committed,
        shutdown.clone(),
    ));
    tokio::spawn(publisher::run(
        state.db.clone(),
        config.redis.url.clone(),
        config.redis.keys(),
        state.wake.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(postings::run(
        state.db.clone(),
        LedgerClient::new(config),
        state.wake.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(purge(state.db.clone(), shutdown));
}

async fn purge(db: sqlx::PgPool, shutdown: CancellationToken) {
    loop {
        match crate::store::purge_expired_answers(&db, crate::routes::idempotency::RETENTION).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "purged expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired idempotency keys"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

/// Exponential backoff between retries of something that is down.
#[derive(Debug)]
pub(crate) struct Backoff {
    current: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            current: min,
            min,
            max,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// Waits for `delay`, a wake-up, or shutdown; false on shutdown.
pub(crate) async fn pause(delay: Duration, wake: &tokio::sync::Notify, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = wake.notified() => true,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Waits for `delay` or shutdown; false on shutdown.
pub(crate) async fn sleep(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
