use std::sync::Arc;

use axum::extract::FromRef;
use contract::internal::PublishedEvent;
use platform::internal_token::InternalTokens;
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};

use crate::domain::{FeeSchedule, FeeScheduleError};

/// Lets a request that wrote to an outbox wake its worker at once instead of
/// at the worker's next poll.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    pub publisher: Notify,
    pub postings: Notify,
}

/// How many committed events may wait for the publisher's Redis connection;
/// past that, they wait in the outbox for its sweep instead.
const COMMITTED_EVENTS_QUEUE: usize = 10_000;

/// Events whose transactions have committed, handed from the request to the
/// publisher so that they leave at once. The outbox row stays the source of
/// truth: an event that is not taken here, or not published, is sent by the
/// publisher's sweep.
#[derive(Debug, Clone)]
pub(crate) struct CommittedEvents {
    sender: mpsc::Sender<PublishedEvent>,
}

impl CommittedEvents {
    /// The requests' end, and the publisher's.
    pub fn channel() -> (Self, mpsc::Receiver<PublishedEvent>) {
        let (sender, receiver) = mpsc::channel(COMMITTED_EVENTS_QUEUE);
        (Self { sender }, receiver)
    }

    /// Called only after the event's transaction has committed.
    pub fn committed(&self, event: PublishedEvent) {
        if self.sender.try_send(event).is_err() {
            metrics::counter!("payments_events_left_to_sweep_total").increment(1);
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: PgPool,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) wake: Arc<Wakeups>,
    pub(crate) events: CommittedEvents,
    pub(crate) fees: FeeSchedule,
}

impl AppState {
    pub(crate) fn new(
        config: &crate::PaymentsSettings,
        db: PgPool,
        events: CommittedEvents,
    ) -> Result<Self, FeeScheduleError> {
        Ok(Self {
            db,
            internal_tokens: InternalTokens::new(&config.internal_token_secret),
            wake: Arc::new(Wakeups::default()),
            events,
            fees: FeeSchedule::new(config.fee_basis_points, config.fee_fixed_cents)?,
        })
    }
}

impl FromRef<AppState> for InternalTokens {
    fn from_ref(state: &AppState) -> Self {
        state.internal_tokens.clone()
    }
}
