//! Failed authentications from one address are limited, and a flood of the
//! same wrong key reaches auth once.

use std::net::IpAddr;

use platform::testing::ManualClock;
use reqwest::{Method, StatusCode};
use stack::testing::TestStack;

use crate::support::{Client, code, metric_value, metrics_text};

/// A client whose connections come from `address` (any of 127/8 reaches
/// the gateway on 127.0.0.1).
fn from(stack: &TestStack, address: &str) -> Client {
    let address: IpAddr = address.parse().expect("an address");
    Client::with_http(
        stack.gateway_url(),
        reqwest::Client::builder()
            .local_address(address)
            .build()
            .expect("a client"),
    )
}

fn random_key() -> String {
    format!("sk_test_{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn the_21st_failure_from_an_address_is_refused_and_other_addresses_are_not() {
    // A clock that stands still, so that the burst lands in one window.
    let clock = ManualClock::new();
    let stack = TestStack::start_with(|c| c.gateway.clock = clock.clock()).await;
    let registrar = Client::new(&stack);
    let ada = registrar.developer("ada@example.com").await;
    let attacker = from(&stack, "127.0.0.2");
    let neighbour = from(&stack, "127.0.0.3");

    // Wrong keys and forged session tokens spend one budget.
    for i in 0..20 {
        let (status, body) = if i % 2 == 0 {
            attacker.get("/v1/payments", Some(&random_key())).await
        } else {
            attacker.get("/auth/me", Some("not.a.token")).await
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {i}: {body}");
    }
    let (status, headers, body) = attacker
        .send(Method::GET, "/v1/payments", Some(&random_key()), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_auth_failures")
    );
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Past the budget even a valid key is not checked from that address...
    let (status, _) = attacker.get("/v1/payments", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...while another address is unaffected.
    let (status, body) = neighbour.get("/v1/payments", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = neighbour.get("/v1/payments", Some(&random_key())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The next window gives the address its budget back.
    clock.advance(stack.config.gateway.rate_limit_window);
    let (status, _) = attacker.get("/v1/payments", Some(&random_key())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_same_wrong_key_reaches_auth_once_within_the_negative_cache_ttl() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let wrong = random_key();
    let series = r#"gateway_api_key_verifications_total{outcome="invalid"}"#;
    let before = metric_value(&metrics_text(&stack).await, series);
    for _ in 0..10 {
        let (status, body) = client.get("/v1/payments", Some(&wrong)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
    }
    let after = metric_value(&metrics_text(&stack).await, series);
    assert_eq!(after - before, 1.0, "auth was asked about the key once");
    let (status, _) = client.get("/v1/payments", Some(&random_key())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let asked = metric_value(&metrics_text(&stack).await, series);
    assert_eq!(asked - before, 2.0, "a different key is asked about");
}
