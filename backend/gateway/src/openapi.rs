//! `/openapi.json`: the whole public API, merged from the services' own
//! descriptions so that each stays next to the code it describes.

use std::sync::OnceLock;

use axum::Json;
use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The gateway's own routes and the two ways to authenticate.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::stream::handler), modifiers(&SecuritySchemes))]
struct GatewayDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_test_...")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

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
    document.merge(payments::openapi());
    document.merge(ledger::openapi());
    document.merge(<GatewayDoc as utoipa::OpenApi>::openapi());
    document
}

pub async fn document() -> Json<OpenApi> {
    Json(DOCUMENT.get_or_init(merged).clone())
}
