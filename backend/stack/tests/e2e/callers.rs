//! Who may do what: internal routes answer only the service on their list,
//! credential routes only a session, and a user holds a bounded number of keys.

use std::net::SocketAddr;

use platform::internal_token::{Caller, HEADER, InternalTokens, Service};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stack::testing::TestStack;

use crate::support::{Client, code};

/// An internal route, the one service it answers, and its answer to that service.
struct Route {
    addr: SocketAddr,
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: Service,
    success: StatusCode,
}

impl Route {
    fn new(
        addr: SocketAddr,
        method: Method,
        path: &str,
        body: Option<Value>,
        allowed: Service,
        success: StatusCode,
    ) -> Self {
        Self {
            addr,
            method,
            path: path.to_owned(),
            body,
            allowed,
            success,
        }
    }
}

#[tokio::test]
async fn every_internal_route_answers_only_its_service() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let tokens = InternalTokens::new(&stack.config.gateway.internal_token_secret);
    let s = &stack.stack;
    let posting = json!({"reference": "x1", "merchant_id": ada.user_id, "kind": "payment", "amount": 1_000, "currency": "usd", "fee": 59, "net": 941});
    let since = format!("/internal/events/since?owner_id={}", ada.user_id);
    let routes = [
        Route::new(
            s.ledger,
            Method::POST,
            "/internal/payment-postings",
            Some(posting),
            Service::Payments,
            StatusCode::CREATED,
        ),
        Route::new(
            s.ledger,
            Method::GET,
            "/internal/transactions/by-reference/x1",
            None,
            Service::Payments,
            StatusCode::OK,
        ),
        Route::new(
            s.ledger,
            Method::GET,
            "/internal/trial-balance",
            None,
            Service::Ops,
            StatusCode::OK,
        ),
        Route::new(
            s.auth,
            Method::POST,
            "/internal/api-keys/verify",
            Some(json!({"key": ada.api_key})),
            Service::Gateway,
            StatusCode::OK,
        ),
        Route::new(
            s.payments,
            Method::GET,
            &since,
            None,
            Service::Gateway,
            StatusCode::OK,
        ),
    ];
    let callers = [
        ("no token", None),
        ("anonymous", Some(Caller::Anonymous)),
        ("user via session", Some(Caller::session(ada.user_id.clone()))),
        (
            "user via api key",
            Some(Caller::api_key(ada.user_id.clone(), ada.key_id.clone())),
        ),
        ("gateway", Some(Caller::Service(Service::Gateway))),
        ("payments", Some(Caller::Service(Service::Payments))),
        ("ops", Some(Caller::Service(Service::Ops))),
    ];
    let http = reqwest::Client::new();
    for Route {
        addr,
        method,
        path,
        body,
        allowed,
        success,
    } in &routes
    {
        for (name, caller) in &callers {
            let mut request = http.request(method.clone(), format!("http://{addr}{path}"));
            if let Some(caller) = caller {
                request = request.header(HEADER, tokens.mint(caller));
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("the service answers");
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            let expected = match caller {
                None => StatusCode::UNAUTHORIZED,
                Some(Caller::Service(service)) if service == allowed => *success,
                Some(_) => StatusCode::FORBIDDEN,
            };
            assert_eq!(status, expected, "{method} {path} as {name}: {answer}");
            if expected == StatusCode::FORBIDDEN {
                assert_eq!(code(&answer), "caller_not_allowed", "{path} as {name}");
            }
        }
        // And the gateway has no way to them.
        let (status, answer) = client.get(path, Some(&ada.api_key)).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{path} through the gateway: {answer}"
        );
    }
}

#[tokio::test]
async fn a_session_rolls_the_signing_secret_and_an_api_key_only_reads_it() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let (status, first) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = client
        .post("/v1/webhooks/secret/roll", Some(&ada.api_key), json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "session_required"),
        "{body}"
    );
    let (_, unchanged) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(unchanged["secret"], first["secret"]);

    let (status, rolled) = client
        .post("/v1/webhooks/secret/roll", Some(&ada.access_token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_ne!(rolled["secret"], first["secret"]);
    let (_, now) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(now["secret"], rolled["secret"]);

    let (status, body) = client.post("/v1/webhooks/secret/roll", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn session_routes_refuse_an_api_key_at_the_gateway_and_at_auth() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let key_path = format!("/auth/api-keys/{}", ada.key_id);
    for (method, path) in [
        (Method::GET, "/auth/me"),
        (Method::GET, "/auth/api-keys"),
        (Method::POST, "/auth/api-keys"),
        (Method::DELETE, key_path.as_str()),
    ] {
        let (status, _, body) = client
            .send(
                method.clone(),
                path,
                Some(&ada.api_key),
                Some(json!({"name": "successor"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        // Should a route reach auth with the key anyway, auth says no itself.
        let token = InternalTokens::new(&stack.config.gateway.internal_token_secret)
            .mint(&Caller::api_key(ada.user_id.clone(), ada.key_id.clone()));
        let response = reqwest::Client::new()
            .request(method.clone(), format!("http://{}{path}", stack.stack.auth))
            .header(HEADER, token)
            .json(&json!({"name": "successor"}))
            .send()
            .await
            .expect("auth answers");
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} at auth"
        );
    }
    let (_, keys) = client.get("/auth/api-keys", Some(&ada.access_token)).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1), "{keys}");
    assert!(keys["data"][0]["revoked_at"].is_null());
}

#[tokio::test]
async fn the_26th_active_key_is_refused() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    for i in 1..25 {
        let (status, body) = client
            .post(
                "/auth/api-keys",
                Some(&ada.access_token),
                json!({"name": format!("k{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "key {}: {body}", i + 1);
    }
    let (status, body) = client
        .post("/auth/api-keys", Some(&ada.access_token), json!({"name": "k26"}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "api_key_limit_reached"),
        "{body}"
    );
    let (status, _, _) = client
        .send(
            Method::DELETE,
            &format!("/auth/api-keys/{}", ada.key_id),
            Some(&ada.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = client
        .post("/auth/api-keys", Some(&ada.access_token), json!({"name": "k26"}))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a revoked key frees its place: {body}"
    );
}
