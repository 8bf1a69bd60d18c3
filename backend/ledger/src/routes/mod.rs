//! One module per resource; each owns its routes and their entries in the
//! API document, so that adding a route is one change in one place.

mod accounts;
mod internal;
mod transactions;

use axum::Router;
use axum::routing::{get, post};
use contract::internal::paths;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public.merge(internal_routes(&state)).with_state(state)
}

/// The public routes' description, merged by the gateway into `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().split_for_parts().1
}

fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(transactions::routes())
}

fn internal_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route(paths::PAYMENT_POSTINGS, post(internal::payment_posting))
        .route(
            paths::PAYMENT_POSTING_BATCHES,
            post(internal::payment_posting_batch),
        )
        .route(paths::TRIAL_BALANCE, get(internal::trial_balance))
        .route(
            paths::TRANSACTION_BY_REFERENCE,
            get(internal::transaction_by_reference),
        );
    platform::internal_token::services_only(routes, state.internal_tokens.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_lists_the_public_routes_only() {
        let document = crate::openapi();
        let paths: Vec<&str> = document.paths.paths.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            vec![
                "/v1/ledger/accounts",
                "/v1/ledger/accounts/{id}",
                "/v1/ledger/accounts/{id}/entries",
                "/v1/ledger/transactions",
                "/v1/ledger/transactions/{id}",
                "/v1/ledger/transactions/{id}/reverse",
            ]
        );
        let json = serde_json::to_string(&document).expect("serialises");
        assert!(
            json.contains("\"Account\"") && json.contains("\"Transaction\""),
            "{json}"
        );
    }
}
