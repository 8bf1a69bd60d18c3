//! One module per resource; each owns its routes and their entries in the
//! API document, so that adding a route is one change in one place.

mod events;
pub(crate) mod idempotency;
mod internal;
mod payments;

use axum::Router;
use axum::routing::get;
use contract::internal::paths;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public
        .merge(platform::internal_token::services_only(
            Router::new().route(paths::EVENTS_SINCE, get(internal::events_since)),
            state.internal_tokens.clone(),
        ))
        .with_state(state)
}

/// The public routes' description, merged by the gateway into `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().split_for_parts().1
}

fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(payments::routes())
        .merge(events::routes())
}

/// What the document says beyond the routes: the schemas they name and the tags.
#[derive(utoipa::OpenApi)]
#[openapi(
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
struct ApiDoc;
