//! `/metrics` is served apart from the public port, and no request can add
//! a series to it.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use stack::testing::TestStack;

use crate::support::{Client, code, metrics_text};

#[tokio::test]
async fn a_thousand_random_paths_and_methods_leave_a_bounded_set_of_series() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let (status, body) = client.get("/metrics", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "route_not_found"));

    let prefixes = [
        "/",
        "/v1/payments/",
        "/v1/ledger/",
        "/v1/events/",
        "/auth/api-keys/",
        "/v1/",
        "/metrics/",
    ];
    let standard = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    let mut invented = Vec::new();
    for i in 0..1_000 {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let path = format!("{}{}", prefixes[i % prefixes.len()], &token[..12]);
        let method = if i % 3 == 0 {
            let name = format!("X{}", &token[12..20].to_ascii_uppercase());
            invented.push(name.clone());
            Method::from_bytes(name.as_bytes()).expect("a method")
        } else {
            Method::from_bytes(standard[i % standard.len()].as_bytes()).expect("a method")
        };
        let response = client
            .http
            .request(method, format!("{}{path}", client.base))
            .send()
            .await
            .expect("the gateway answers");
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
    }

    let text = metrics_text(&stack).await;
    let series: HashSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series))
        .collect();
    eprintln!(
        "{} http_requests_total series after 1,000 random requests",
        series.len()
    );
    assert!(series.len() <= 60, "{} series: {series:#?}", series.len());
    assert!(text.contains(r#"route="unmatched""#));
    assert!(text.contains(r#"method="OTHER""#));
    assert!(text.contains(r#"route="/v1/payments/{*rest}""#));
    for name in &invented {
        assert!(!text.contains(name.as_str()), "{name} became a label");
    }
}
