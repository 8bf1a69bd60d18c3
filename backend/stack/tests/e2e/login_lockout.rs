use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use stack::testing::TestStack;

use crate::support::{Client, PASSWORD, code};

/// Failed logins lock out the address they came from as the gateway's socket
/// saw it: the owner logs in from another address, and a client cannot pick
/// its address by sending the header the gateway uses to tell auth.
#[tokio::test]
async fn a_login_lockout_holds_per_client_address_as_the_gateway_sees_it() {
    let stack = TestStack::start_with(|c| {
        c.auth.max_failed_logins = 2;
        c.auth.login_lockout_base = Duration::from_secs(60);
    })
    .await;
    let attacker = Client::new(&stack);
    let owner = Client::with_http(
        stack.gateway_url(),
        reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 2]))
            .build()
            .expect("a client bound to 127.0.0.2"),
    );
    let right = json!({"email": "ada@example.com", "password": PASSWORD});
    let wrong = json!({"email": "ada@example.com", "password": "not the password"});
    let (status, _) = owner.post("/auth/register", None, right.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    for _ in 0..2 {
        assert_eq!(
            attacker.post("/auth/login", None, wrong.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body) = attacker.post("/auth/login", None, right.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "login_locked");

    // Claiming to be the owner's address changes nothing.
    let response = attacker
        .http
        .request(Method::POST, format!("{}/auth/login", attacker.base))
        .header("x-micro-client-ip", "127.0.0.2")
        .json(&right)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    let (status, body) = owner.post("/auth/login", None, right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}
