use axum::extract::State;
use contract::List;
use contract::events::Event;
use platform::error::{Json, Query};
use platform::internal_token::{FromGateway, ServiceCaller};
use serde::Deserialize;

use crate::store;
use crate::{AppState, PaymentsError};

const DEFAULT_SINCE_LIMIT: i64 = 100;
const MAX_SINCE_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
pub struct SinceParams {
    /// Whose events: the user the gateway is streaming to.
    owner_id: String,
    /// The last event the client saw.
    after: Option<String>,
    /// Or its sequence number; without either, from the owner's first event.
    after_sequence: Option<i64>,
    limit: Option<i64>,
}

/// The gateway fills a reconnecting client's gap with this: the owner's
/// events after the one it last saw, oldest first. Only the gateway calls it,
/// on its own account, naming the owner it has authenticated.
#[tracing::instrument(skip_all, fields(owner_id = %params.owner_id))]
pub async fn events_since(
    State(state): State<AppState>,
    _gateway: ServiceCaller<FromGateway>,
    Query(params): Query<SinceParams>,
) -> Result<Json<List<Event>>, PaymentsError> {
    let limit = platform::error::limit_within(params.limit, DEFAULT_SINCE_LIMIT, MAX_SINCE_LIMIT)?;
    let after = match params.after.as_deref() {
        Some(id) => store::event_sequence(&state.db, &params.owner_id, id)
            .await?
            .ok_or(PaymentsError::EventNotFound)?,
        None => params.after_sequence.unwrap_or(0).max(0),
    };
    let rows = store::events_after(&state.db, &params.owner_id, after, limit).await?;
    Ok(Json(List::from_overfetched(rows, limit as usize)))
}
