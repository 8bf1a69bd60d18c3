use contract::events::{Event, EventData, EventType};
use contract::internal::PublishedEvent;
use futures::StreamExt;
use serde_json::json;
use stack::testing::TestStack;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Client, next_frame, open_stream};

fn event(sequence: i64, kind: EventType, padding: usize) -> Event {
    Event {
        id: format!("evt_test{sequence:08}"),
        object: "event".into(),
        kind,
        sequence,
        created_at: chrono::Utc::now(),
        data: EventData {
            object: json!({"id": format!("pay_{sequence}"), "padding": "x".repeat(padding)}),
        },
    }
}

async fn publish(stack: &TestStack, events: impl IntoIterator<Item = PublishedEvent>) {
    let client = redis::Client::open(stack.config.gateway.redis.url.as_str()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("redis");
    let channel = stack.config.gateway.redis.keys().events();
    let mut pipe = redis::pipe();
    for published in events {
        pipe.cmd("PUBLISH")
            .arg(&channel)
            .arg(serde_json::to_string(&published).expect("json"))
            .ignore();
    }
    let () = pipe.query_async(&mut redis).await.expect("publish");
}

fn for_owner(owner: &str, event: Event) -> PublishedEvent {
    PublishedEvent {
        owner_id: owner.to_owned(),
        event,
        resend: false,
    }
}

#[tokio::test]
async fn a_stream_carries_only_its_owners_events_in_order_and_filters_by_type() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let bob = client.developer("bob@example.com").await;
    let mut all = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    let mut succeeded = open_stream(&stack, &ada.api_key, "?types=payment.succeeded")
        .await
        .expect("stream opens");
    assert_eq!(
        next_frame(&mut all).await.expect("ready"),
        json!({"type": "ready", "replayed": 0})
    );
    assert_eq!(next_frame(&mut succeeded).await.expect("ready")["type"], "ready");

    publish(
        &stack,
        [
            for_owner(&bob.user_id, event(1, EventType::PaymentCreated, 0)),
            for_owner(&ada.user_id, event(1, EventType::PaymentCreated, 0)),
            for_owner(&ada.user_id, event(2, EventType::PaymentSucceeded, 0)),
            for_owner(&ada.user_id, event(3, EventType::PaymentRefunded, 0)),
        ],
    )
    .await;
    for expected in 1..=3 {
        let frame = next_frame(&mut all).await.expect("an event");
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["event"]["sequence"], expected);
    }
    let frame = next_frame(&mut succeeded).await.expect("an event");
    assert_eq!(frame["event"]["type"], "payment.succeeded");
    assert_eq!(frame["event"]["sequence"], 2);

    let refused = open_stream(&stack, &ada.api_key, "?types=payment.exploded").await;
    assert!(refused.is_err(), "an unknown type is refused before the upgrade");
    let refused = open_stream(&stack, "sk_test_nothing", "").await;
    assert!(refused.is_err(), "a stream needs a valid key");
}

/// Payments publishes each event as soon as its request commits, so two of
/// an owner's events can reach the gateway in either order, and the outbox's
/// sweep can send one again. The stream still sends each once, in sequence:
/// an event that arrives before an earlier one waits for it to be fetched.
#[tokio::test]
async fn events_that_arrive_out_of_order_or_twice_are_sent_once_in_sequence() {
    use secrecy::ExposeSecret;
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut stream = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut stream).await.expect("ready")["type"], "ready");

    // Two events committed as requests commit them (and left out of the
    // outbox, as if published); only the second has reached Redis so far.
    let db = sqlx::PgPool::connect(stack.config.payments.database.url.expose_secret())
        .await
        .expect("payments database");
    sqlx::query("INSERT INTO event_sequences (owner_id, last_sequence) VALUES ($1, 2)")
        .bind(&ada.user_id)
        .execute(&db)
        .await
        .expect("sequence");
    for sequence in 1..=2_i64 {
        sqlx::query(
            "INSERT INTO events (id, owner_id, sequence, type, object_id, object, created_at)
             VALUES ($1, $2, $3, 'payment.created', $4, $5, now())",
        )
        .bind(format!("evt_test{sequence:08}"))
        .bind(&ada.user_id)
        .bind(sequence)
        .bind(format!("pay_{sequence}"))
        .bind(json!({"id": format!("pay_{sequence}")}))
        .execute(&db)
        .await
        .expect("an event");
    }
    publish(
        &stack,
        [for_owner(&ada.user_id, event(2, EventType::PaymentCreated, 0))],
    )
    .await;
    for expected in 1..=2 {
        let frame = next_frame(&mut stream).await.expect("an event");
        assert_eq!(frame["event"]["sequence"], expected, "{frame}");
        assert_eq!(frame["event"]["id"], format!("evt_test{expected:08}"));
    }

    // The first one's late copy and a second copy of the second are dropped.
    publish(
        &stack,
        [
            for_owner(&ada.user_id, event(1, EventType::PaymentCreated, 0)),
            for_owner(&ada.user_id, event(2, EventType::PaymentCreated, 0)),
            for_owner(&ada.user_id, event(3, EventType::PaymentCreated, 0)),
        ],
    )
    .await;
    let frame = next_frame(&mut stream).await.expect("an event");
    assert_eq!(frame["event"]["sequence"], 3, "{frame}");
}

/// Many payments of one owner confirmed at once: their events reach the
/// stream in sequence order, each exactly once.
#[tokio::test]
async fn concurrent_payments_of_one_owner_stream_in_sequence() {
    const PAYMENTS: usize = 40;
    let stack = TestStack::start_with(|c| c.gateway.rate_limit_per_minute = 10_000).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut stream = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut stream).await.expect("ready")["type"], "ready");
    let api = client::Client::new(&stack.gateway_url()).expect("client");
    let order = contract::payments::CreatePaymentRequest {
        amount: 1000,
        currency: "usd".into(),
        description: None,
        metadata: None,
        customer_email: None,
    };
    let work = (0..PAYMENTS).map(|_| async {
        let payment = api
            .create_payment(&ada.api_key, &order, None)
            .await
            .expect("created")
            .value;
        api.confirm_payment(&ada.api_key, &payment.id, "pm_card_visa", None)
            .await
            .expect("confirmed");
    });
    futures::future::join_all(work).await;
    for expected in 1..=(2 * PAYMENTS as i64) {
        let frame = next_frame(&mut stream).await.expect("an event");
        assert_eq!(frame["event"]["sequence"], expected, "{frame}");
    }
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_others_keep_receiving() {
    const EVENTS: i64 = 12_000;
    const BATCH: i64 = 200;
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut fast = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    let mut slow = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut fast).await.expect("ready")["type"], "ready");

    // The fast client reads each batch before the next is published; the
    // slow one reads nothing until the end.
    for start in (1..=EVENTS).step_by(BATCH as usize) {
        let batch = (start..start + BATCH)
            .map(|s| for_owner(&ada.user_id, event(s, EventType::PaymentCreated, 2048)));
        publish(&stack, batch).await;
        for expected in start..start + BATCH {
            let frame = next_frame(&mut fast)
                .await
                .expect("the fast client keeps receiving");
            assert_eq!(frame["event"]["sequence"], expected);
        }
    }

    let mut received = 0;
    let close = loop {
        match slow.next().await {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
    assert!(received < EVENTS, "the slow client was cut off before the end");
}

#[tokio::test]
async fn streams_are_pinged_and_closed_with_going_away_on_shutdown() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let mut socket = open_stream(&stack, &ada.api_key, "").await.expect("stream opens");
    assert_eq!(next_frame(&mut socket).await.expect("ready")["type"], "ready");
    let pinged = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_))) => return true,
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(pinged, Ok(true), "the stream pings within a few seconds");

    stack.shut_down();
    let close = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 10 s")
    .expect("with a code");
    assert_eq!(close.code, CloseCode::Away);
}
