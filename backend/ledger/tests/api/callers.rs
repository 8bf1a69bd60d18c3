//! Who may call the ledger's `/internal` routes: each route has one service
//! on its allowlist, and a user's token, whatever its credential, is refused.

use platform::internal_token::{Caller, Service};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestLedger, code, ops, payments};

const MERCHANT: &str = "usr_0192merchant";

/// Every kind of caller a token can name, and none.
fn callers() -> Vec<(&'static str, Option<Caller>)> {
    vec![
        ("no token", None),
        ("anonymous", Some(Caller::Anonymous)),
        ("user via session", Some(Caller::session(MERCHANT))),
        ("user via api key", Some(Caller::api_key(MERCHANT, "key_1"))),
        ("gateway", Some(Caller::Service(Service::Gateway))),
        ("payments", Some(payments())),
        ("ops", Some(ops())),
    ]
}

#[tokio::test]
async fn each_internal_route_answers_only_the_service_on_its_list() {
    let ledger = TestLedger::start().await;
    let posting = json!({"reference": "pay_1", "merchant_id": MERCHANT, "kind": "payment", "amount": 1_000, "currency": "usd", "fee": 59, "net": 941});
    let routes = [
        (
            Method::POST,
            "/internal/payment-postings",
            Some(posting),
            "payments",
        ),
        (
            Method::GET,
            "/internal/transactions/by-reference/pay_1",
            None,
            "payments",
        ),
        (Method::GET, "/internal/trial-balance", None, "ops"),
    ];
    for (method, path, body, allowed) in routes {
        for (name, caller) in callers() {
            let mut request = ledger
                .http
                .request(method.clone(), format!("{}{path}", ledger.base));
            if let Some(caller) = &caller {
                request = request.header(platform::internal_token::HEADER, ledger.tokens.mint(caller));
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("the ledger answers");
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            let expected = match (name, caller.is_some()) {
                (_, false) => StatusCode::UNAUTHORIZED,
                (name, true) if name == allowed => {
                    if method == Method::POST {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    }
                }
                _ => StatusCode::FORBIDDEN,
            };
            assert_eq!(status, expected, "{method} {path} as {name}: {answer}");
            if status == StatusCode::FORBIDDEN {
                assert_eq!(code(&answer), "caller_not_allowed", "{answer}");
                assert_eq!(answer["error"]["type"], "permission_error", "{answer}");
            }
        }
    }
    // Only the one allowed posting moved money.
    assert_eq!(
        ledger.trial_balance().await,
        json!([{"currency": "usd", "debits": 1_000, "credits": 1_000}])
    );
}
