use std::sync::Arc;

use axum::extract::FromRef;
use platform::internal_token::InternalTokens;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::domain::{FeeSchedule, FeeScheduleError};

/// Lets a request that wrote to an outbox wake its worker at once instead of
/// at the worker's next poll.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    pub publisher: Notify,
    pub postings: Notify,
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: PgPool,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) wake: Arc<Wakeups>,
    pub(crate) fees: FeeSchedule,
}

impl AppState {
    pub fn new(config: &crate::PaymentsSettings, db: PgPool) -> Result<Self, FeeScheduleError> {
        Ok(Self {
            db,
            internal_tokens: InternalTokens::new(&config.internal_token_secret),
            wake: Arc::new(Wakeups::default()),
            fees: FeeSchedule::new(config.fee_basis_points, config.fee_fixed_cents)?,
        })
    }
}

impl FromRef<AppState> for InternalTokens {
    fn from_ref(state: &AppState) -> Self {
        state.internal_tokens.clone()
    }
}
