use std::sync::Arc;

use axum::extract::FromRef;
use platform::internal_token::InternalTokens;
use sqlx::PgPool;

use crate::chart::Chart;
use crate::directory::Directory;
use crate::domain::{FeeSchedule, FeeScheduleError};

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: PgPool,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) fees: FeeSchedule,
    pub(crate) chart: Arc<Chart>,
    pub(crate) directory: Arc<Directory>,
}

impl AppState {
    pub fn new(config: &platform::Config, db: PgPool) -> Result<Self, FeeScheduleError> {
        Ok(Self {
            db,
            internal_tokens: InternalTokens::new(&config.internal_token_secret),
            fees: FeeSchedule::new(config.fee_basis_points, config.fee_fixed_minor)?,
            chart: Arc::new(Chart::default()),
            directory: Arc::new(Directory::default()),
        })
    }
}

impl FromRef<AppState> for InternalTokens {
    fn from_ref(state: &AppState) -> Self {
        state.internal_tokens.clone()
    }
}
