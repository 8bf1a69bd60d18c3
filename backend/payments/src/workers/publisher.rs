//! Moves committed events from the outbox table to the Redis events channel,
//! by two paths.
//!
//! **At once.** A request that committed a change hands its event to
//! `run_committed`, which publishes whatever has queued up in one pipeline
//! and then deletes those events from the outbox (`event_outbox`; the events
//! themselves are never updated). Nothing is read back from the
//! database first, so an event leaves in one Redis round trip after its
//! commit. Two requests of one owner can hand over their events in either
//! order, and so can two payments processes: the gateway puts each owner's
//! stream back in sequence order, fetching from payments any earlier event
//! that has not reached it yet, and drops what it has already sent.
//!
//! **The sweep.** `run` publishes every event still in the outbox some time
//! after it was written: what the first path never got (a crash between
//! commit and hand-over, a full queue) or could not send (a Redis outage). A batch is
//! locked with `FOR UPDATE SKIP LOCKED`, so several publisher processes
//! share the work and never hold the same event. Within a batch an owner's
//! events are published only from that owner's oldest unpublished one on,
//! without gaps: when another publisher holds an earlier event of the owner,
//! this one leaves the owner alone until that event is out. The batch goes
//! out as one MULTI/EXEC, all or nothing, and leaves the outbox only after
//! Redis took it; a Redis outage leaves the rows unpublished to be retried
//! with backoff. The sweep also sends the resends users ask for, as soon as
//! they ask.
//!
//! The removals from the outbox and the quarantine marks commit without
//! waiting for their WAL flush (`synchronous_commit = off`): a removal lost
//! to a crash only makes the event go out again, which the gateway and every
//! client drop by its sequence. The events themselves are committed durably by the requests
//! that made them.
//!
//! A row that cannot become a message (an unknown type, say, written by a
//! newer version or by hand) is quarantined by the sweep: marked with the
//! reason, logged and counted, and taken out of the outbox, so that one bad
//! row does not stall every user's events behind it. Its owner's later events go
//! out after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contract::events::{Event, EventData, EventType};
use contract::internal::PublishedEvent;
use platform::error::error_chain;
use platform::redis::Keys;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backoff, pause, sleep};
use crate::state::Wakeups;
use crate::store::BEGIN_UNFLUSHED;

const BATCH: i64 = 500;
/// How often the sweep looks for events that were not published at once.
const POLL: Duration = Duration::from_millis(500);
/// How long an event must have been in the outbox before the sweep takes
/// it. The first path is done with an event well before then (it publishes nothing older
/// than `PUBLISH_NOW_WITHIN`, within `REDIS_TIMEOUT`), so that the two
/// paths rarely send one event twice.
const SWEEP_AFTER: Duration = Duration::from_secs(1);
/// The first path leaves an event that waited longer than this (behind a
/// Redis outage, say) to the sweep.
pub const PUBLISH_NOW_WITHIN: Duration = Duration::from_millis(500);
/// How long the first path waits on Redis before it leaves a batch to the sweep.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("Redis refused the batch")]
    Redis(#[from] redis::RedisError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("the event type {0:?} is unknown")]
    Invalid(String),
    #[error("cannot serialise an event")]
    Serialise(#[from] serde_json::Error),
}

pub async fn run(db: PgPool, redis_url: String, keys: Keys, wake: Arc<Wakeups>, shutdown: CancellationToken) {
    let channel = keys.events();
    let mut redis: Option<ConnectionManager> = None;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut failing = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let connection = match redis.as_mut() {
            Some(connection) => connection,
            None => match platform::redis::connect(&redis_url).await {
                Ok(connection) => redis.insert(connection),
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot reach Redis; events wait in the outbox");
                        failing = true;
                    }
                    if !sleep(backoff.next_delay(), &shutdown).await {
                        return;
                    }
                    continue;
                }
            },
        };
        match publish_batch(&db, connection, &channel).await {
            Ok(published) => {
                if failing {
                    tracing::info!("publishing events again");
                    failing = false;
                }
                backoff.reset();
                if published < BATCH as usize && !pause(POLL, &wake.publisher, &shutdown).await {
                    return;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %error_chain(&e), "cannot publish events; retrying with backoff");
                    failing = true;
                }
                if matches!(e, PublishError::Redis(_)) {
                    // A fresh connection on the next round, rather than
                    // trusting one that just failed.
                    redis = None;
                }
                if !sleep(backoff.next_delay(), &shutdown).await {
                    return;
                }
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: String,
    owner_id: String,
    sequence: i64,
    #[sqlx(rename = "type")]
    kind: String,
    object: serde_json::Value,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ResendRow {
    resend_id: i64,
    #[sqlx(flatten)]
    event: OutboxRow,
}

impl OutboxRow {
    fn message(self, resend: bool) -> Result<String, PublishError> {
        let kind = EventType::parse(&self.kind).ok_or_else(|| PublishError::Invalid(self.kind.clone()))?;
        let published = PublishedEvent {
            owner_id: self.owner_id,
            event: Event {
                id: self.id,
                object: "event".into(),
                kind,
                sequence: self.sequence,
                created_at: self.created_at,
                data: EventData { object: self.object },
            },
            resend,
        };
        Ok(serde_json::to_string(&published)?)
    }
}

/// Publishes one batch of events, then one of resends; answers how many
/// events went out.
async fn publish_batch(
    db: &PgPool,
    redis: &mut ConnectionManager,
    channel: &str,
) -> Result<usize, PublishError> {
    let published = publish_events(db, redis, channel).await?;
    let resent = publish_resends(db, redis, channel).await?;
    if published + resent > 0 {
        metrics::counter!("payments_events_published_total").increment(published as u64);
        metrics::counter!("payments_events_resent_total").increment(resent as u64);
    }
    Ok(published)
}

async fn publish_events(
    db: &PgPool,
    redis: &mut ConnectionManager,
    channel: &str,
) -> Result<usize, PublishError> {
    let mut tx = db.begin_with(BEGIN_UNFLUSHED).await?;
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT e.id, e.owner_id, e.sequence, e.type, e.object, e.created_at
         FROM event_outbox o JOIN events e ON e.id = o.event_id
         WHERE o.created_at < now() - make_interval(secs => $2)
         ORDER BY o.position LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
    )
    .bind(BATCH)
    .bind(SWEEP_AFTER.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut owners: Vec<&str> = rows.iter().map(|r| r.owner_id.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    let heads: Vec<(String, i64)> = sqlx::query_as(
        "SELECT owner_id, min(sequence) FROM event_outbox WHERE owner_id = ANY($1) GROUP BY owner_id",
    )
    .bind(&owners)
    .fetch_all(&mut *tx)
    .await?;
    // The next sequence each owner may publish; an owner whose next event is
    // held elsewhere is left out of this batch entirely.
    let mut next: HashMap<String, Option<i64>> = heads.into_iter().map(|(o, s)| (o, Some(s))).collect();
    let mut published = Published::default();
    let mut messages = Vec::with_capacity(rows.len());
    let mut quarantined = crate::store::KeyedValues::default();
    for row in rows {
        let expected = next.entry(row.owner_id.clone()).or_insert(None);
        if *expected != Some(row.sequence) {
            *expected = None;
            continue;
        }
        // Quarantined or published, the owner's next event may follow.
        *expected = Some(row.sequence + 1);
        let id = row.id.clone();
        let owner_id = row.owner_id.clone();
        let sequence = row.sequence;
        match row.message(false) {
            Ok(message) => {
                published.push(&owner_id, sequence);
                messages.push(message);
            }
            Err(e) => {
                let reason = error_chain(&e);
                tracing::error!(event_id = %id, %owner_id, %reason, "quarantined an event that cannot be published");
                quarantined.push(&id, &reason);
            }
        }
    }
    if !quarantined.is_empty() {
        sqlx::query(
            "WITH marked AS (
                 UPDATE events e SET quarantined_at = now(), quarantine_reason = q.reason
                 FROM UNNEST($1::TEXT[], $2::TEXT[]) AS q(id, reason) WHERE e.id = q.id
                 RETURNING e.owner_id, e.sequence
             )
             DELETE FROM event_outbox o USING marked m
             WHERE o.owner_id = m.owner_id AND o.sequence = m.sequence",
        )
        .bind(&quarantined.keys)
        .bind(&quarantined.values)
        .execute(&mut *tx)
        .await?;
        metrics::counter!("payments_events_quarantined_total").increment(quarantined.len() as u64);
    }
    if messages.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for message in &messages {
        pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
    }
    pipe.query_async::<()>(redis).await?;
    crate::failpoints::die_at(crate::failpoints::EVENTS_PUBLISHED);
    published.delete_from_outbox(&mut tx).await?;
    tx.commit().await?;
    Ok(messages.len())
}

async fn publish_resends(
    db: &PgPool,
    redis: &mut ConnectionManager,
    channel: &str,
) -> Result<usize, PublishError> {
    let mut tx = db.begin_with(BEGIN_UNFLUSHED).await?;
    // A resend waits for its event's first publication, so that listeners
    // never get the copy before the original.
    let rows: Vec<ResendRow> = sqlx::query_as(
        "SELECT r.id AS resend_id, e.id, e.owner_id, e.sequence, e.type, e.object, e.created_at
         FROM event_resends r JOIN events e ON e.id = r.event_id
         WHERE r.published_at IS NULL AND e.quarantined_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM event_outbox o WHERE o.owner_id = e.owner_id AND o.sequence = e.sequence)
         ORDER BY r.id LIMIT $1 FOR UPDATE OF r SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut resend_ids = Vec::with_capacity(rows.len());
    let mut pipe = redis::pipe();
    pipe.atomic();
    for row in rows {
        resend_ids.push(row.resend_id);
        pipe.cmd("PUBLISH")
            .arg(channel)
            .arg(row.event.message(true)?)
            .ignore();
    }
    pipe.query_async::<()>(redis).await?;
    sqlx::query("UPDATE event_resends SET published_at = now() WHERE id = ANY($1)")
        .bind(&resend_ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(resend_ids.len())
}

/// Publishes events as their requests hand them over, a pipeline of whatever
/// has queued meanwhile at a time, and takes them out of the outbox. A batch
/// that Redis does not take in time is left to the sweep.
pub async fn run_committed(
    db: PgPool,
    redis_url: String,
    keys: Keys,
    mut committed: mpsc::Receiver<PublishedEvent>,
    shutdown: CancellationToken,
) {
    let channel = keys.events();
    let mut redis: Option<ConnectionManager> = None;
    let mut batch = Vec::with_capacity(BATCH as usize);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = committed.recv_many(&mut batch, BATCH as usize) => if received == 0 {
                return;
            },
        }
        let oldest_allowed = Utc::now() - chrono::TimeDelta::from_std(PUBLISH_NOW_WITHIN).unwrap_or_default();
        batch.retain(|published| published.event.created_at >= oldest_allowed);
        if batch.is_empty() {
            continue;
        }
        let published = tokio::time::timeout(
            REDIS_TIMEOUT,
            publish_now(&mut redis, &redis_url, &channel, &batch),
        )
        .await;
        match published {
            Ok(Ok(())) => {
                crate::failpoints::die_at(crate::failpoints::EVENTS_PUBLISHED);
                metrics::counter!("payments_events_published_total").increment(batch.len() as u64);
                let mut published = Published::default();
                for event in &batch {
                    published.push(&event.owner_id, event.event.sequence);
                }
                if let Err(e) = remove_from_outbox(&db, &published).await {
                    // Still in the outbox, they go out again from the
                    // sweep: a copy that the gateway drops by sequence.
                    tracing::warn!(error = %e, events = batch.len(), "could not take published events out of the outbox");
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, events = batch.len(), "events left to the sweep");
                redis = None;
            }
            Err(_) => {
                tracing::debug!(events = batch.len(), "Redis too slow; events left to the sweep");
                redis = None;
            }
        }
        batch.clear();
    }
}

async fn publish_now(
    redis: &mut Option<ConnectionManager>,
    redis_url: &str,
    channel: &str,
    batch: &[PublishedEvent],
) -> Result<(), PublishError> {
    let connection = match redis {
        Some(connection) => connection,
        None => redis.insert(platform::redis::connect(redis_url).await?),
    };
    let mut pipe = redis::pipe();
    for published in batch {
        pipe.cmd("PUBLISH")
            .arg(channel)
            .arg(serde_json::to_string(published)?)
            .ignore();
    }
    pipe.query_async::<()>(connection).await?;
    Ok(())
}

async fn remove_from_outbox(db: &PgPool, published: &Published) -> sqlx::Result<()> {
    let mut tx = db.begin_with(BEGIN_UNFLUSHED).await?;
    published.delete_from_outbox(&mut tx).await?;
    tx.commit().await
}

/// Events Redis has taken, by owner and sequence (the outbox's key).
#[derive(Default)]
struct Published {
    owners: Vec<String>,
    sequences: Vec<i64>,
}

impl Published {
    fn push(&mut self, owner_id: &str, sequence: i64) {
        self.owners.push(owner_id.to_owned());
        self.sequences.push(sequence);
    }

    async fn delete_from_outbox(&self, conn: &mut sqlx::PgConnection) -> sqlx::Result<()> {
        sqlx::query(
            "DELETE FROM event_outbox o USING UNNEST($1::TEXT[], $2::BIGINT[]) AS p(owner_id, sequence)
             WHERE o.owner_id = p.owner_id AND o.sequence = p.sequence",
        )
        .bind(&self.owners)
        .bind(&self.sequences)
        .execute(conn)
        .await?;
        Ok(())
    }
}
