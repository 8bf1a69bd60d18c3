use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::events::{Event, EventType};
use contract::list::PageParams;
use contract::payments::{EventFilter, ListEventsParams};
use contract::{ErrorBody, List};
use platform::error::{Json, Query};
use platform::internal_token::UserCaller;
use serde::Deserialize;
use sqlx::PgConnection;

use super::idempotency::{IdempotentPost, KeyClaim};
use crate::store;
use crate::{AppState, PaymentsError};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retrieve))
        .routes(routes!(resend))
}

#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(PageParams, EventFilter),
    responses(
        (status = 200, description = "Newest first.", body = List<Event>),
        (status = 400, description = "A bad limit, type or cursor.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %caller.user_id))]
pub async fn list(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(params): Query<ListEventsParams>,
) -> Result<Json<List<Event>>, PaymentsError> {
    let limit = platform::error::page_limit(params.page.limit)?;
    let kind = params
        .filter
        .kind
        .as_deref()
        .map(|k| EventType::parse(k).ok_or_else(|| PaymentsError::InvalidEventType(k.to_owned())))
        .transpose()?;
    let before = match params.page.starting_after.as_deref() {
        None => None,
        Some(id) => Some(
            store::event_sequence(&state.db, &caller.user_id, id)
                .await?
                .ok_or(PaymentsError::InvalidCursor)?,
        ),
    };
    let rows = store::list_events(&state.db, &caller.user_id, kind, before, limit).await?;
    Ok(Json(List::from_overfetched(rows, limit as usize)))
}

#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    operation_id = "retrieve_event",
    tag = "events",
    params(("id" = String, Path, description = "The event id, evt_...")),
    responses(
        (status = 200, body = Event),
        (status = 404, description = "No such event.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %caller.user_id, event_id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Event>, PaymentsError> {
    store::get_event(&state.db, &caller.user_id, &id)
        .await?
        .map(Json)
        .ok_or(PaymentsError::EventNotFound)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

#[utoipa::path(
    post,
    path = "/v1/events/{id}/resend",
    operation_id = "resend_event",
    tag = "events",
    params(
        ("id" = String, Path, description = "The event id, evt_..."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry."),
    ),
    responses(
        (status = 200, description = "The event, queued to be sent again to live listeners, marked as a resend.", body = Event),
        (status = 404, description = "No such event.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %post.owner_id, event_id = %id))]
pub async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: IdempotentPost,
) -> Result<Response, PaymentsError> {
    let mut tx = match post.begin(&state.db).await? {
        KeyClaim::Run(tx) => tx,
        KeyClaim::Replay(stored) => return Ok(stored.into_response()),
    };
    let outcome = resend_in(&mut tx, &post, &id).await;
    let response = post.finish(tx, outcome).await?;
    state.wake.publisher.notify_one();
    Ok(response)
}

async fn resend_in(
    conn: &mut PgConnection,
    post: &IdempotentPost,
    id: &str,
) -> Result<(StatusCode, Event), PaymentsError> {
    let NoParameters {} = post.json()?;
    let event = store::get_event(&mut *conn, &post.owner_id, id)
        .await?
        .ok_or(PaymentsError::EventNotFound)?;
    store::request_resend(conn, &event.id).await?;
    Ok((StatusCode::OK, event))
}
