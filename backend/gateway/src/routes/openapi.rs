//! `/openapi.json`: the whole public API, merged from the services' own
//! descriptions so that each stays next to the code it describes.
//!
//! The gateway does not link the services, so it serves the merged document
//! from `openapi.json` beside its manifest. A test in `stack`, which links
//! everything, rebuilds the document with [`merge`] and fails when the file
//! has drifted; `MICRO_UPDATE_OPENAPI=1 cargo nextest run -p stack openapi`
//! rewrites it.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The gateway's own routes and the two ways to authenticate.
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::routes::stream::handler), modifiers(&SecuritySchemes))]
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

/// The merged document as committed; [`merge`] is what produces it.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// The whole public API: the services' documents (auth, payments, ledger, in
/// that order) with the gateway's own routes, security schemes and answers.
pub fn merge(services: impl IntoIterator<Item = OpenApi>) -> OpenApi {
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
    for service in services {
        document.merge(service);
    }
    document.merge(<GatewayDoc as utoipa::OpenApi>::openapi());
    add_gateway_responses(&mut document);
    document
}

/// Routes whose credential must be a session, never an API key.
const SESSION_ONLY: [&str; 4] = [
    "/auth/me",
    "/auth/api-keys",
    "/auth/api-keys/{id}",
    "/v1/webhooks/secret/roll",
];

/// The answers the gateway itself may give before a request reaches its
/// service, on every operation that can get them, so that the document lists
/// every status a client can see.
fn add_gateway_responses(document: &mut OpenApi) {
    use utoipa::openapi::path::{HttpMethod, ParameterIn};
    use utoipa::openapi::security::SecurityRequirement;

    for (path, item) in document.paths.paths.iter_mut() {
        let session_only = SESSION_ONLY.contains(&path.as_str());
        for (method, operation) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ] {
            let Some(operation) = operation else { continue };
            if path.starts_with("/v1/") && operation.security.as_ref().is_none_or(|s| s.is_empty()) {
                operation.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
            }
            let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.parameter_in == ParameterIn::Header
                    && parameter.name.eq_ignore_ascii_case("idempotency-key")
                {
                    parameter.schema = Some(idempotency_key_schema().into());
                }
            }
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description).into());
            };
            add(
                "400",
                "The request is malformed: a parameter of the wrong type, a body that is not the JSON \
                 described, or a path that is not canonical.",
            );
            add(
                "429",
                "Too many requests, or too many failed authentications; see Retry-After.",
            );
            add(
                "503",
                "The service behind the gateway is not available right now; retry later.",
            );
            if authenticated {
                add("401", "The credential is missing, not valid, expired or revoked.");
            }
            if session_only {
                add("403", "This route takes a session token; an API key is refused.");
            }
            if operation.request_body.is_some() {
                add("413", "The body is larger than 1 MiB.");
                add("415", "The body is not `application/json`.");
            }
            let takes_idempotency_key = operation.parameters.iter().flatten().any(|p| {
                p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("idempotency-key")
            });
            if method == HttpMethod::Post && takes_idempotency_key {
                add("409", "A request with this Idempotency-Key is still running.");
                add("422", "This Idempotency-Key was used for another request.");
            }
        }
    }
}

/// What payments accepts as a key: 1 to 255 visible ASCII characters, spaces
/// only inside.
fn idempotency_key_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(contract::payments::MAX_IDEMPOTENCY_KEY_LENGTH))
        .pattern(Some("^[!-~]([ -~]*[!-~])?$"))
        .build()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_is_json_describing_every_service() {
        let document: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        for path in [
            "/auth/register",
            "/v1/payments",
            "/v1/ledger/accounts",
            "/v1/events/stream",
        ] {
            assert!(document["paths"][path].is_object(), "{path} is described");
        }
    }
}
