//! `/openapi.json`: the whole public API, merged from the services' own
//! descriptions so that each stays next to the code it describes.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::OpenApi;

static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();

pub fn merged() -> OpenApi {
    let mut document = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Micro API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Payments, events and ledger behind one gateway. /v1 routes take \
                     `Authorization: Bearer sk_test_...`; session routes take the access token from /auth/login.",
                ))
                .build(),
        )
        .build();
    document.merge(auth::openapi());
    document
}

pub async fn document() -> Json<OpenApi> {
    Json(DOCUMENT.get_or_init(merged).clone())
}
