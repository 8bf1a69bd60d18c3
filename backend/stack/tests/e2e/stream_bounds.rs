//! What ends a stream, and what bounds it: revocation of its key, its
//! lifetime, what a client may send, how many a key may hold, and a Redis
//! subscription that stalls.

use std::time::{Duration, Instant};

use futures::SinkExt;
use platform::testing::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::json;
use stack::testing::TestStack;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Client, Developer, RedisRelay, closed_with, next_frame, open_stream, refused};

async fn ready(stack: &TestStack, key: &str, query: &str) -> crate::support::Socket {
    let mut socket = open_stream(stack, key, query).await.expect("stream opens");
    assert_eq!(next_frame(&mut socket).await.expect("ready")["type"], "ready");
    socket
}

#[tokio::test]
async fn revoking_a_key_closes_its_streams_within_a_second_and_only_its_own() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let (status, second) = client
        .post(
            "/auth/api-keys",
            Some(&ada.access_token),
            json!({"name": "second"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_key = second["key"].as_str().expect("key");
    let mut revoked_a = ready(&stack, &ada.api_key, "").await;
    let mut revoked_b = ready(&stack, &ada.api_key, "?types=payment.succeeded").await;
    let mut other = ready(&stack, second_key, "").await;

    let (status, _, _) = client
        .send(
            Method::DELETE,
            &format!("/auth/api-keys/{}", ada.key_id),
            Some(&ada.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let revoked_at = Instant::now();
    for socket in [&mut revoked_a, &mut revoked_b] {
        let close = closed_with(socket, Duration::from_secs(1)).await;
        assert_eq!(u16::from(close.code), 4001);
        assert_eq!(close.reason.as_str(), "api key revoked");
    }
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    eprintln!("both streams of the revoked key closed {took:?} after the revocation answered");

    // The key's other streams are gone; the user's other key streams on.
    let refused = open_stream(&stack, &ada.api_key, "").await;
    assert_eq!(self::refused(refused).0, 401);
    let (status, _) = client
        .post(
            "/v1/payments",
            Some(second_key),
            json!({"amount": 500, "currency": "usd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let frame = next_frame(&mut other)
        .await
        .expect("the other key's stream goes on");
    assert_eq!(frame["event"]["type"], "payment.created");
}

#[tokio::test]
async fn a_stream_past_its_lifetime_is_closed_with_the_reconnect_code() {
    let stack = TestStack::start_with(|c| c.gateway.stream_max_lifetime = Duration::from_secs(1)).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let opened = Instant::now();
    let mut socket = ready(&stack, &ada.api_key, "").await;
    let close = closed_with(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(close.code, CloseCode::Restart);
    assert!(close.reason.contains("lifetime"), "{}", close.reason);
    assert!(opened.elapsed() >= Duration::from_secs(1));
    // Reconnecting authenticates again and works.
    ready(&stack, &ada.api_key, "").await;
}

#[tokio::test]
async fn a_client_that_sends_data_or_too_large_a_message_is_closed() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let cases = [
        (Message::Text("hello".into()), CloseCode::Policy),
        (Message::Binary(vec![1, 2, 3].into()), CloseCode::Policy),
        (Message::Text("x".repeat(8 * 1024).into()), CloseCode::Size),
    ];
    for (message, expected) in cases {
        let mut socket = ready(&stack, &ada.api_key, "").await;
        socket.send(message).await.expect("sent");
        let close = closed_with(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(close.code, expected, "{}", close.reason);
    }
    // Control frames are fine: a pong and a ping leave the stream open.
    let mut socket = ready(&stack, &ada.api_key, "").await;
    socket
        .send(Message::Pong(Default::default()))
        .await
        .expect("sent");
    socket
        .send(Message::Ping(Default::default()))
        .await
        .expect("sent");
    let (status, _) = client
        .post(
            "/v1/payments",
            Some(&ada.api_key),
            json!({"amount": 500, "currency": "usd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(next_frame(&mut socket).await.expect("an event")["type"], "event");
}

#[tokio::test]
async fn a_key_holds_at_most_its_maximum_of_streams_even_when_they_open_at_once() {
    const MAX: usize = 4;
    let stack = TestStack::start_with(|c| c.gateway.streams_per_key_max = MAX as u32).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let bob = client.developer("bob@example.com").await;

    let attempts =
        futures::future::join_all((0..3 * MAX).map(|_| open_stream(&stack, &ada.api_key, ""))).await;
    let mut open = Vec::new();
    for attempt in attempts {
        match attempt {
            Ok(socket) => open.push(socket),
            Err(e) => {
                let (status, body) = refused(Err(e));
                assert_eq!(status, 429);
                assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
                assert_eq!(body["error"]["type"], "rate_limit_error");
            }
        }
    }
    assert_eq!(open.len(), MAX, "exactly the maximum opened");
    // Another key has its own allowance.
    let _bobs = ready(&stack, &bob.api_key, "").await;

    // A stream that ends frees its slot, whether closed politely or dropped.
    let mut polite = open.pop().expect("a stream");
    polite.close(None).await.expect("closed");
    drop(open.pop());
    let reopened = platform::testing::eventually(Duration::from_secs(5), || async {
        open_stream(&stack, &ada.api_key, "").await.ok()
    })
    .await;
    open.push(reopened.expect("a slot is free again"));
    let reopened = platform::testing::eventually(Duration::from_secs(5), || async {
        open_stream(&stack, &ada.api_key, "").await.ok()
    })
    .await;
    open.push(reopened.expect("the second slot is free again"));
    assert_eq!(refused(open_stream(&stack, &ada.api_key, "").await).0, 429);
}

async fn succeeded_payment(client: &Client, developer: &Developer) {
    let (status, payment) = client
        .post(
            "/v1/payments",
            Some(&developer.api_key),
            json!({"amount": 1_000, "currency": "usd"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let id = payment["id"].as_str().expect("id");
    let (status, confirmed) = client
        .post(
            &format!("/v1/payments/{id}/confirm"),
            Some(&developer.api_key),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
}

/// The sequences of the next events, until `last` has arrived.
async fn sequences_through(socket: &mut crate::support::Socket, last: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        let frame = next_frame(socket).await.expect("a frame");
        if frame["type"] == "event" {
            seen.push(frame["event"]["sequence"].as_i64().expect("sequence"));
        }
    }
    seen
}

#[tokio::test]
async fn a_stalled_subscription_closes_streams_with_1012_and_the_reconnect_misses_nothing() {
    let relay = RedisRelay::start().await;
    let redis_url = relay.url();
    let env = TestEnv::new().with("REDIS_URL", redis_url);
    let stack = TestStack::start_in(env, |c| {
        c.gateway.subscription_heartbeat = Duration::from_millis(200);
        c.gateway.subscription_deadline = Duration::from_millis(1000);
    })
    .await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut socket = ready(&stack, &ada.api_key, "").await;
    succeeded_payment(&client, &ada).await;
    let mut last_id = String::new();
    for expected in 1..=2 {
        let frame = next_frame(&mut socket).await.expect("an event");
        assert_eq!(frame["event"]["sequence"], expected);
        last_id = frame["event"]["id"].as_str().expect("id").to_owned();
    }

    // Nothing comes through, yet no connection closes.
    relay.stall();
    let stalled_at = Instant::now();
    let close = closed_with(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(close.code, CloseCode::Restart, "{}", close.reason);
    let noticed = stalled_at.elapsed();
    // Payments go on meanwhile; their events wait in the outbox.
    succeeded_payment(&client, &ada).await;
    succeeded_payment(&client, &ada).await;
    let refused = open_stream(&stack, &ada.api_key, "").await;
    assert_eq!(
        self::refused(refused).0,
        503,
        "no stream opens while the source is down"
    );

    relay.resume();
    let query = format!("?last_event_id={last_id}");
    // The listener retries at most every 5 s; the rest of the bound is room
    // for a loaded machine.
    let mut socket = platform::testing::eventually(Duration::from_secs(60), || async {
        open_stream(&stack, &ada.api_key, &query).await.ok()
    })
    .await
    .expect("the stream opens again once Redis answers");
    let mut replayed = Vec::new();
    loop {
        let frame = next_frame(&mut socket).await.expect("a frame");
        if frame["type"] == "ready" {
            assert_eq!(frame["replayed"], 4, "{frame}");
            break;
        }
        replayed.push(frame["event"]["sequence"].as_i64().expect("sequence"));
    }
    assert_eq!(replayed, vec![3, 4, 5, 6]);
    // The outbox publishes in order, so once a later payment's events arrive
    // live, any republished copy of 3..6 has been through the stream too.
    succeeded_payment(&client, &ada).await;
    assert_eq!(
        sequences_through(&mut socket, 8).await,
        vec![7, 8],
        "nothing twice"
    );
    eprintln!("stall noticed after {noticed:?}");
}
