//! The event outbox: every event published exactly once and in order per
//! owner, through Redis outages, several publishers and undecodable rows.

use std::collections::{HashMap, HashSet};

use platform::testing::{eventually, unique_suffix};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{DEADLINE, EventTap, Link, TestPayments, id, new_owner};

async fn unpublished(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM event_outbox")
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn wait_until_published(pool: &PgPool) {
    eventually(DEADLINE, || async {
        (unpublished(pool).await == 0).then_some(())
    })
    .await
    .expect("every event is published");
}

/// Lets events written during an outage age past the window in which
/// payments publishes an event at once, so that only the sweep, which
/// publishes each owner's in order, sends them once Redis is back. (Sent at
/// once, an owner's events can reach Redis in either order; the gateway
/// restores the order, see the stack's stream tests.)
async fn left_to_the_sweep() {
    tokio::time::sleep(payments::PUBLISH_NOW_WITHIN + std::time::Duration::from_millis(100)).await;
}

/// Whether each owner's events must reach Redis in sequence order: they do
/// when the sweep publishes them, not when concurrent requests publish their
/// own (the gateway orders those).
#[derive(Clone, Copy, PartialEq)]
enum Order {
    PerOwner,
    Any,
}

/// Asserts that `messages` hold every event of the database exactly once,
/// none marked as a resend, and in `order`.
async fn assert_published_exactly_once(pool: &PgPool, messages: &[Value], order: Order) {
    let expected: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, owner_id, sequence FROM events ORDER BY owner_id, sequence")
            .fetch_all(pool)
            .await
            .expect("events");
    let mut seen = HashSet::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    for message in messages {
        let id = message["event"]["id"].as_str().expect("event id").to_owned();
        assert!(seen.insert(id.clone()), "{id} was published twice");
        assert_eq!(message["resend"], false);
        let owner = message["owner_id"].as_str().expect("owner").to_owned();
        let sequence = message["event"]["sequence"].as_i64().expect("sequence");
        let previous = last.insert(owner.clone(), sequence).unwrap_or(0);
        if order == Order::PerOwner {
            assert_eq!(sequence, previous + 1, "{owner}'s events arrived out of order");
        }
    }
    let expected_ids: HashSet<String> = expected.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(seen, expected_ids, "every event is published");
}

/// Redis goes away twice: before payments has ever reached it, and in the
/// middle of a run. Events wait in the outbox and, once Redis is back, each
/// is published exactly once and every owner's in order.
#[tokio::test]
async fn events_survive_redis_outages_and_are_published_exactly_once() {
    let mut proxy = Link::to_redis().await;
    let payments = TestPayments::start_with(|c| c.redis.url = proxy.redis_url()).await;
    let mut tap = EventTap::open(&payments.config).await;
    let pool = payments.pool().await;
    let owners = [new_owner(), new_owner()];

    let run = |round: usize| {
        let payments = &payments;
        let owners = &owners;
        async move {
            for i in 0..3 {
                let owner = &owners[(round + i) % 2];
                let paid = id(&payments.create(owner, 100 + i as i64, "usd").await);
                payments.confirm(owner, &paid, "pm_card_visa").await;
            }
        }
    };

    run(0).await;
    assert_eq!(unpublished(&pool).await, 6, "nothing can be published yet");
    left_to_the_sweep().await;
    proxy.open().await;
    wait_until_published(&pool).await;

    proxy.cut().await;
    run(1).await;
    assert_eq!(unpublished(&pool).await, 6, "the second run waits for Redis");
    left_to_the_sweep().await;
    proxy.open().await;
    wait_until_published(&pool).await;

    let messages = tap.drain().await;
    assert_eq!(messages.len(), 12);
    assert_published_exactly_once(&pool, &messages, Order::PerOwner).await;
}

/// Two processes, each publishing its own requests' events as they commit:
/// every event goes out once, though an owner's may interleave.
#[tokio::test]
async fn several_processes_publishing_as_they_commit_send_each_event_once() {
    let first = TestPayments::start().await;
    let second = first.another_instance().await;
    let mut tap = EventTap::open(&first.config).await;
    confirm_concurrently(&first, &second).await;
    let pool = first.pool().await;
    wait_until_published(&pool).await;
    let messages = tap.drain().await;
    assert_eq!(messages.len(), 48);
    assert_published_exactly_once(&pool, &messages, Order::Any).await;
}

/// Two processes sweep one outbox after Redis comes back: each event still
/// goes out once, and each owner's in sequence order.
#[tokio::test]
async fn several_sweepers_never_publish_an_event_twice() {
    let mut proxy = Link::to_redis().await;
    let first = TestPayments::start_with(|c| c.redis.url = proxy.redis_url()).await;
    let second = first.another_instance().await;
    let mut tap = EventTap::open(&first.config).await;
    confirm_concurrently(&first, &second).await;
    let pool = first.pool().await;
    assert_eq!(unpublished(&pool).await, 48, "nothing can be published yet");
    left_to_the_sweep().await;
    proxy.open().await;
    wait_until_published(&pool).await;
    let messages = tap.drain().await;
    assert_eq!(messages.len(), 48);
    assert_published_exactly_once(&pool, &messages, Order::PerOwner).await;
}

/// 24 payments of three owners created and confirmed at once, through two
/// instances in turn.
async fn confirm_concurrently(first: &TestPayments, second: &TestPayments) {
    let owners: Vec<String> = (0..3).map(|_| new_owner()).collect();
    let work = (0..24).map(|i| {
        let instance = if i % 2 == 0 { first } else { second };
        let owner = owners[i % owners.len()].clone();
        async move {
            let paid = id(&instance.create(&owner, 100, "usd").await);
            instance.confirm(&owner, &paid, "pm_card_visa").await;
        }
    });
    futures::future::join_all(work).await;
}

/// An outbox row that cannot be published (an event type this version does
/// not know) is quarantined; events written after it, its owner's and
/// everyone else's, are still published.
#[tokio::test]
async fn an_undecodable_outbox_row_is_quarantined_and_the_rest_flows() {
    let payments = TestPayments::start().await;
    let mut tap = EventTap::open(&payments.config).await;
    let pool = payments.pool().await;
    let (owner, other) = (new_owner(), new_owner());
    let bad = format!("evt_bad{}", unique_suffix());
    sqlx::query("INSERT INTO event_sequences (owner_id, last_sequence) VALUES ($1, 1)")
        .bind(&owner)
        .execute(&pool)
        .await
        .expect("sequence");
    sqlx::query(
        "INSERT INTO events (id, owner_id, sequence, type, object_id, object, created_at)
         VALUES ($1, $2, 1, 'payment.exploded', 'pay_x', '{}', now())",
    )
    .bind(&bad)
    .bind(&owner)
    .execute(&pool)
    .await
    .expect("a bad row");
    sqlx::query(
        "INSERT INTO event_outbox (owner_id, sequence, event_id, position, created_at)
         SELECT owner_id, sequence, id, position, created_at FROM events WHERE id = $1",
    )
    .bind(&bad)
    .execute(&pool)
    .await
    .expect("the bad row waits to be published");

    for who in [&owner, &other, &owner] {
        let paid = id(&payments.create(who, 100, "usd").await);
        payments.confirm(who, &paid, "pm_card_visa").await;
    }
    let reason: String = eventually(DEADLINE, || async {
        sqlx::query_scalar(
            "SELECT quarantine_reason FROM events WHERE id = $1 AND quarantined_at IS NOT NULL",
        )
        .bind(&bad)
        .fetch_optional(&pool)
        .await
        .expect("event")
    })
    .await
    .expect("the bad row is quarantined");
    assert!(reason.contains("payment.exploded"), "{reason}");
    eventually(DEADLINE, || async {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
            .fetch_one(&pool)
            .await
            .expect("count");
        (waiting == 0).then_some(())
    })
    .await
    .expect("every other event is published");

    let messages = tap.drain().await;
    let sequences = |who: &str| -> Vec<i64> {
        messages
            .iter()
            .filter(|m| m["owner_id"] == who)
            .map(|m| m["event"]["sequence"].as_i64().expect("sequence"))
            .collect()
    };
    assert_eq!(sequences(&owner), vec![2, 3, 4, 5]);
    assert_eq!(sequences(&other), vec![1, 2]);
    assert!(messages.iter().all(|m| m["event"]["id"] != bad.as_str()));

    // Reads leave it out too, rather than failing on it.
    let (status, list) = payments.get(&owner, "/v1/events").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().expect("data").len(), 4);
    let metrics = payments.metrics_text().await;
    assert!(metrics.contains("payments_events_quarantined_total"), "{metrics}");
}
