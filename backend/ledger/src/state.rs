use std::sync::Arc;

use axum::extract::FromRef;
use platform::internal_token::InternalTokens;
use sqlx::PgPool;

use crate::store::chart::Chart;
use crate::store::directory::Directory;
use crate::store::group_commit::GroupCommit;

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: PgPool,
    pub(crate) internal_tokens: InternalTokens,
    pub(crate) chart: Arc<Chart>,
    pub(crate) directory: Arc<Directory>,
    /// Where single postings go, to be written with whatever else is waiting.
    pub(crate) postings: GroupCommit,
}

impl AppState {
    /// Starts the group commit's writer on the current runtime.
    pub fn new(config: &crate::LedgerSettings, db: PgPool) -> Self {
        Self {
            postings: GroupCommit::spawn(db.clone(), config.posting_writers),
            db,
            internal_tokens: InternalTokens::new(&config.internal_token_secret),
            chart: Arc::new(Chart::default()),
            directory: Arc::new(Directory::default()),
        }
    }
}

impl FromRef<AppState> for InternalTokens {
    fn from_ref(state: &AppState) -> Self {
        state.internal_tokens.clone()
    }
}
