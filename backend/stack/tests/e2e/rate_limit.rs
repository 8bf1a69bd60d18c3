use std::time::Duration;

use platform::testing::{ManualClock, TestEnv};
use reqwest::{Method, StatusCode};
use stack::testing::TestStack;
use tokio_util::sync::CancellationToken;

use crate::support::{Client, RedisRelay, code};

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn the_101st_request_in_a_window_is_refused_and_the_next_window_admits() {
    let clock = ManualClock::new();
    let stack = TestStack::start_with(|c| {
        c.gateway.rate_limit_window = Duration::from_secs(20);
        c.gateway.clock = clock.clock();
    })
    .await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    // Whatever the warm-up used, count from what the gateway says is left.
    let (_, headers, _) = client
        .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
        .await;
    assert_eq!(header(&headers, "ratelimit-limit"), Some(100));
    assert_eq!(header(&headers, "x-ratelimit-limit"), Some(100));
    let mut remaining = header(&headers, "ratelimit-remaining").expect("remaining");
    while remaining > 0 {
        let (status, headers, _) = client
            .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let now = header(&headers, "ratelimit-remaining").expect("remaining");
        assert_eq!(now, remaining - 1, "each request takes one from the budget");
        remaining = now;
    }
    let (status, headers, body) = client
        .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&body), "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(header(&headers, "ratelimit-remaining"), Some(0));
    let retry_after = header(&headers, "retry-after").expect("retry-after");
    assert!((1..=20).contains(&retry_after), "{retry_after}");

    // Still refused a moment before the window ends: only the next one admits.
    clock.advance(Duration::from_secs(retry_after) - Duration::from_millis(1));
    let (status, _) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    clock.advance(Duration::from_millis(1));
    let (status, headers, _) = client
        .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "ratelimit-remaining"), Some(99));
}

#[tokio::test]
async fn keys_have_separate_budgets_and_replicas_share_one() {
    // A clock that stands still, so that the window cannot roll over mid-test.
    let clock = ManualClock::new();
    let stack = TestStack::start_with(|c| {
        c.gateway.rate_limit_per_minute = 10;
        c.gateway.clock = clock.clock();
    })
    .await;
    let second_gateway_shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = gateway::build(
        &stack.stack.config.gateway,
        listener,
        second_gateway_shutdown.clone(),
    )
    .await
    .expect("a second gateway starts");
    let first = Client::new(&stack);
    let replica = Client::at(format!("http://{}", second.local_addr));
    let ada = first.developer("ada@example.com").await;
    let bob = first.developer("bob@example.com").await;

    let mut admitted = 0;
    for i in 0..14 {
        let client = if i % 2 == 0 { &first } else { &replica };
        let (status, _) = client.get("/v1/webhooks/secret", Some(&ada.api_key)).await;
        if status == StatusCode::OK {
            admitted += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(admitted, 10, "both gateways count against one budget");
    // Ada's spent budget is not Bob's.
    let (status, _) = replica.get("/v1/webhooks/secret", Some(&bob.api_key)).await;
    assert_eq!(status, StatusCode::OK);
    second_gateway_shutdown.cancel();
}

#[tokio::test]
async fn without_redis_traffic_goes_on_unlimited_and_limiting_resumes_after() {
    let mut relay = RedisRelay::start().await;
    let redis_url = relay.url();
    let stack = TestStack::start_in(TestEnv::new().with("REDIS_URL", redis_url), |_| {}).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let (_, headers, _) = client
        .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
        .await;
    assert!(headers.contains_key("ratelimit-remaining"));

    relay.cut();
    let down = platform::testing::eventually(Duration::from_secs(10), || async {
        let (status, _) = client.get("/readyz", None).await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    assert!(down.is_some(), "/readyz should report Redis down");
    for _ in 0..3 {
        let (status, headers, _) = client
            .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
            .await;
        assert_eq!(status, StatusCode::OK, "requests go on while Redis is down");
        assert!(!headers.contains_key("ratelimit-remaining"), "no count was taken");
    }

    relay.restore().await;
    let limited_again = platform::testing::eventually(Duration::from_secs(15), || async {
        let (status, headers, _) = client
            .send(Method::GET, "/v1/webhooks/secret", Some(&ada.api_key), None)
            .await;
        (status == StatusCode::OK && headers.contains_key("ratelimit-remaining")).then_some(())
    })
    .await;
    assert!(
        limited_again.is_some(),
        "limiting should resume when Redis is back"
    );
    assert_eq!(client.get("/readyz", None).await.0, StatusCode::OK);
}
