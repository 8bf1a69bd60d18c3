//! One module per resource; each owns its routes.

mod accounts;
mod internal;
mod transactions;

use axum::Router;
use axum::routing::{get, post};
use contract::internal::paths;

use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    accounts::create,
    accounts::list,
    accounts::retrieve,
    accounts::entries,
    transactions::post,
    transactions::retrieve,
    transactions::reverse,
))]
pub(crate) struct ApiDoc;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/ledger/accounts", post(accounts::create).get(accounts::list))
        .route("/v1/ledger/accounts/{id}", get(accounts::retrieve))
        .route("/v1/ledger/accounts/{id}/entries", get(accounts::entries))
        .route("/v1/ledger/transactions", post(transactions::post))
        .route("/v1/ledger/transactions/{id}", get(transactions::retrieve))
        .route(
            "/v1/ledger/transactions/{id}/reverse",
            post(transactions::reverse),
        )
        .merge(internal_routes(&state))
        .with_state(state)
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
