//! One module per resource; each owns its routes.

mod events;
mod internal;
mod payments;

use axum::Router;
use axum::routing::{get, post};
use contract::internal::paths;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/payments", post(payments::create).get(payments::list))
        .route("/v1/payments/{id}", get(payments::retrieve))
        .route("/v1/payments/{id}/confirm", post(payments::confirm))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route(
            "/v1/payments/{id}/refunds",
            post(payments::refund).get(payments::list_refunds),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        .route("/v1/events/{id}/resend", post(events::resend))
        .merge(platform::internal_token::services_only(
            Router::new().route(paths::EVENTS_SINCE, get(internal::events_since)),
            state.internal_tokens.clone(),
        ))
        .with_state(state)
}

/// The public routes, for the gateway's `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        payments::create,
        payments::list,
        payments::retrieve,
        payments::confirm,
        payments::cancel,
        payments::refund,
        payments::list_refunds,
        events::list,
        events::retrieve,
        events::resend,
    ),
    components(schemas(
        contract::payments::Payment,
        contract::payments::PaymentStatus,
        contract::payments::FailureCode,
        contract::payments::CreatePaymentRequest,
        contract::payments::ConfirmPaymentRequest,
        contract::payments::CreateRefundRequest,
        contract::payments::Refund,
        contract::payments::RefundStatus,
        contract::events::Event,
        contract::events::EventType,
        contract::events::EventData,
        contract::ErrorBody,
    )),
    tags(
        (name = "payments", description = "Payments and refunds; every POST takes an Idempotency-Key."),
        (name = "events", description = "What happened to payments, in order."),
    )
)]
pub struct ApiDoc;

/// Limits a page size to `1..=max`, defaulting to `default`.
fn page_limit(value: Option<i64>, default: i64, max: i64) -> Result<i64, crate::PaymentsError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(value) => Err(crate::PaymentsError::InvalidLimit { value, max }),
    }
}
