//! The SQL of payments, refunds, events and the outboxes. Functions that
//! change state take the request's transaction, so that a change, its event
//! and what it owes the ledger commit together or not at all.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, SubsecRound, Utc};
use contract::events::{Event, EventData, EventType};
use contract::payments::{FailureCode, Payment, PaymentStatus, Refund, RefundStatus};

use contract::internal::PublishedEvent;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres};

/// Opens a transaction of bookkeeping that a crash may lose without harm
/// (what gets redone is dropped downstream): its commit does not wait for
/// the WAL flush, and the setting rides on the BEGIN's round trip.
pub const BEGIN_UNFLUSHED: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// Now, at the precision PostgreSQL stores, so that an object answered from
/// memory and the same object read back are identical.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into())
}

const PAYMENT_COLUMNS: &str = "id, amount, amount_refunded, currency, status, description, metadata, \
     customer_email, payment_method, failure_code, failure_message, ledger_transaction_id, fee, created_at";

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: String,
    amount: i64,
    amount_refunded: i64,
    currency: String,
    status: String,
    description: Option<String>,
    metadata: Json<BTreeMap<String, String>>,
    customer_email: Option<String>,
    payment_method: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    ledger_transaction_id: Option<String>,
    fee: Option<i64>,
    created_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = sqlx::Error;

    fn try_from(row: PaymentRow) -> Result<Self, Self::Error> {
        let status = PaymentStatus::parse(&row.status).ok_or_else(|| decode_error("status", &row.status))?;
        let failure_code = row
            .failure_code
            .map(|code| FailureCode::parse(&code).ok_or_else(|| decode_error("failure code", &code)))
            .transpose()?;
        Ok(Self {
            id: row.id,
            object: contract::payments::PAYMENT_OBJECT.into(),
            amount: row.amount,
            amount_refunded: row.amount_refunded,
            currency: row.currency,
            status,
            description: row.description,
            metadata: row.metadata.0,
            customer_email: row.customer_email,
            payment_method: row.payment_method,
            failure_code,
            failure_message: row.failure_message,
            ledger_transaction_id: row.ledger_transaction_id,
            fee: row.fee,
            created_at: row.created_at,
        })
    }
}

/// The payment, locked until the transaction ends, so that concurrent
/// confirmations, cancellations and refunds of it take turns.
pub async fn lock_payment(
    conn: &mut PgConnection,
    owner_id: &str,
    id: &str,
) -> sqlx::Result<Option<Payment>> {
    let row: Option<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND owner_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(conn)
    .await?;
    row.map(Payment::try_from).transpose()
}

pub async fn get_payment(db: impl PgExecutor<'_>, owner_id: &str, id: &str) -> sqlx::Result<Option<Payment>> {
    let row: Option<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND owner_id = $2"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(db)
    .await?;
    row.map(Payment::try_from).transpose()
}

/// Newest first; `limit` rows, plus one when there are more.
pub async fn list_payments(
    db: impl PgExecutor<'_>,
    owner_id: &str,
    status: Option<PaymentStatus>,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Payment>> {
    let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments
         WHERE owner_id = $1 AND ($2::TEXT IS NULL OR status = $2) AND ($3::TEXT IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(owner_id)
    .bind(status.map(|s| s.as_str()))
    .bind(starting_after)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// The event a change appends, bound as `$1..$6` of the change's statement.
pub struct NewEvent<'a> {
    pub owner_id: &'a str,
    pub kind: EventType,
    pub object_id: &'a str,
    pub object: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Appends the event to its owner's stream, and to the outbox until it is
/// published, as the tail of a change's statement. Bumping the owner's
/// counter row locks it until the transaction ends, so sequences are gapless
/// and a later sequence never commits before an earlier one; being the last
/// write of the transaction keeps that lock short.
const APPEND_EVENT: &str = "seq AS (
        INSERT INTO event_sequences (owner_id, last_sequence) VALUES ($1, 1)
        ON CONFLICT (owner_id) DO UPDATE SET last_sequence = event_sequences.last_sequence + 1
        RETURNING last_sequence
    ), appended AS (
        INSERT INTO events (id, owner_id, sequence, type, object_id, object, created_at)
        SELECT $2, $1, last_sequence, $3, $4, $5, $6 FROM seq
        RETURNING id, owner_id, sequence, position, created_at
    )
    INSERT INTO event_outbox (owner_id, sequence, event_id, position, created_at)
    SELECT owner_id, sequence, id, position, created_at FROM appended
    RETURNING sequence";

/// The primary key a second request under the same key collides with.
pub const IDEMPOTENCY_KEYS_PKEY: &str = "idempotency_keys_pkey";

/// A change's statement: its own CTEs (parameters `$7` to `$last`), then
/// the answer kept under the request's idempotency key when there is one
/// (the six parameters after them), then its event.
fn change_statement(change: &str, last: usize) -> String {
    let key = last + 1;
    let (method, path, hash, status, body) = (key + 1, key + 2, key + 3, key + 4, key + 5);
    format!(
        "WITH {change}, answered AS (
             INSERT INTO idempotency_keys (owner_id, key, method, path, body_hash, response_status, response_body)
             SELECT $1, ${key}, ${method}, ${path}, ${hash}, ${status}, ${body} WHERE ${key}::TEXT IS NOT NULL
         ), {APPEND_EVENT}"
    )
}

/// Runs a change, the answer to keep and the change's event as one
/// statement (one round trip, one snapshot); `bind` adds the change's own
/// parameters from `$7` on. Answers the event as it will be published once
/// the transaction commits.
async fn change_with_event<'q>(
    conn: &mut PgConnection,
    sql: &'q str,
    event: NewEvent<'_>,
    answer: Option<StoredAnswer<'_>>,
    bind: impl FnOnce(QueryScalar<'q, Postgres, i64, PgArguments>) -> QueryScalar<'q, Postgres, i64, PgArguments>,
) -> sqlx::Result<PublishedEvent> {
    let id = platform::ids::new_id(contract::ids::EVENT);
    let query = sqlx::query_scalar(sql)
        .bind(event.owner_id.to_owned())
        .bind(id.clone())
        .bind(event.kind.as_str())
        .bind(event.object_id.to_owned())
        .bind(Json(event.object.clone()))
        .bind(event.at);
    let sequence = bind(query)
        .bind(answer.as_ref().map(|a| a.key.to_owned()))
        .bind(answer.as_ref().map(|a| a.method.to_owned()))
        .bind(answer.as_ref().map(|a| a.path.to_owned()))
        .bind(answer.as_ref().map(|a| a.body_hash.to_vec()))
        .bind(answer.as_ref().map(|a| a.status))
        .bind(answer.as_ref().map(|a| a.body.to_vec()))
        .fetch_one(conn)
        .await?;
    Ok(PublishedEvent {
        owner_id: event.owner_id.to_owned(),
        event: Event {
            id,
            object: "event".into(),
            kind: event.kind,
            sequence,
            created_at: event.at,
            data: EventData { object: event.object },
        },
        resend: false,
    })
}

static CREATE_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    change_statement(
        "created AS (
             INSERT INTO payments (id, owner_id, amount, currency, status, description, metadata,
                                   customer_email, created_at, updated_at)
             VALUES ($7, $1, $8, $9, $10, $11, $12, $13, $6, $6)
         )",
        13,
    )
});

/// Writes a new payment and its `payment.created` event.
pub async fn create_payment(
    conn: &mut PgConnection,
    payment: &Payment,
    event: NewEvent<'_>,
    answer: Option<StoredAnswer<'_>>,
) -> sqlx::Result<PublishedEvent> {
    change_with_event(conn, &CREATE_PAYMENT, event, answer, |query| {
        query
            .bind(payment.id.clone())
            .bind(payment.amount)
            .bind(payment.currency.clone())
            .bind(payment.status.as_str())
            .bind(payment.description.clone())
            .bind(Json(payment.metadata.clone()))
            .bind(payment.customer_email.clone())
    })
    .await
}

static SETTLE_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    change_statement(
        "settled AS (
             UPDATE payments SET status = $8, payment_method = $9, failure_code = $10,
                                 failure_message = $11, fee = $14, updated_at = $6
             WHERE id = $7
         ), owed AS (
             INSERT INTO ledger_postings (reference, kind, payment_id, merchant_id, amount, currency, fee)
             SELECT $7, 'payment', $7, $1, $12, $13, $14 WHERE $8 = 'succeeded'
         )",
        14,
    )
});

/// Writes a confirmation's or cancellation's outcome and its event; a
/// succeeded payment also owes the ledger its posting, referenced by its id,
/// carrying the fee stamped on the payment.
pub async fn settle_payment(
    conn: &mut PgConnection,
    payment: &Payment,
    event: NewEvent<'_>,
    answer: Option<StoredAnswer<'_>>,
) -> sqlx::Result<PublishedEvent> {
    change_with_event(conn, &SETTLE_PAYMENT, event, answer, |query| {
        query
            .bind(payment.id.clone())
            .bind(payment.status.as_str())
            .bind(payment.payment_method.clone())
            .bind(payment.failure_code.map(|c| c.as_str()))
            .bind(payment.failure_message.clone())
            .bind(payment.amount)
            .bind(payment.currency.clone())
            .bind(payment.fee)
    })
    .await
}

static REFUND_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    change_statement(
        "paid AS (
             UPDATE payments SET amount_refunded = $9, updated_at = $6 WHERE id = $8
         ), refunded AS (
             INSERT INTO refunds (id, payment_id, owner_id, amount, currency, created_at)
             VALUES ($7, $8, $1, $10, $11, $6)
         ), owed AS (
             INSERT INTO ledger_postings (reference, kind, payment_id, refund_id, merchant_id, amount, currency)
             VALUES ($7, 'refund', $8, $7, $1, $10, $11)
         )",
        11,
    )
});

/// Writes a refund, the payment's new refunded amount, the posting the
/// refund owes the ledger (referenced by the refund's id) and the event.
pub async fn refund_payment(
    conn: &mut PgConnection,
    refund: &Refund,
    amount_refunded: i64,
    event: NewEvent<'_>,
    answer: Option<StoredAnswer<'_>>,
) -> sqlx::Result<PublishedEvent> {
    change_with_event(conn, &REFUND_PAYMENT, event, answer, |query| {
        query
            .bind(refund.id.clone())
            .bind(refund.payment.clone())
            .bind(amount_refunded)
            .bind(refund.amount)
            .bind(refund.currency.clone())
    })
    .await
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: String,
    payment_id: String,
    amount: i64,
    currency: String,
    ledger_transaction_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<RefundRow> for Refund {
    fn from(row: RefundRow) -> Self {
        Self {
            id: row.id,
            object: contract::payments::REFUND_OBJECT.into(),
            payment: row.payment_id,
            amount: row.amount,
            currency: row.currency,
            status: RefundStatus::Succeeded,
            ledger_transaction_id: row.ledger_transaction_id,
            created_at: row.created_at,
        }
    }
}

/// A payment's refunds, newest first.
pub async fn list_refunds(
    db: impl PgExecutor<'_>,
    owner_id: &str,
    payment_id: &str,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<Refund>> {
    let rows: Vec<RefundRow> = sqlx::query_as(
        "SELECT id, payment_id, amount, currency, ledger_transaction_id, created_at FROM refunds
         WHERE payment_id = $1 AND owner_id = $2 AND ($3::TEXT IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(payment_id)
    .bind(owner_id)
    .bind(starting_after)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Refund::from).collect())
}

pub(crate) const EVENT_COLUMNS: &str = "id, sequence, type, object, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: String,
    sequence: i64,
    #[sqlx(rename = "type")]
    kind: String,
    object: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for Event {
    type Error = sqlx::Error;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let kind = EventType::parse(&row.kind).ok_or_else(|| decode_error("event type", &row.kind))?;
        Ok(Self {
            id: row.id,
            object: "event".into(),
            kind,
            sequence: row.sequence,
            created_at: row.created_at,
            data: EventData { object: row.object },
        })
    }
}

pub async fn get_event(db: impl PgExecutor<'_>, owner_id: &str, id: &str) -> sqlx::Result<Option<Event>> {
    let row: Option<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND owner_id = $2 AND quarantined_at IS NULL"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(db)
    .await?;
    row.map(Event::try_from).transpose()
}

pub async fn event_sequence(db: impl PgExecutor<'_>, owner_id: &str, id: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT sequence FROM events WHERE id = $1 AND owner_id = $2")
        .bind(id)
        .bind(owner_id)
        .fetch_optional(db)
        .await
}

/// Newest first, below `before_sequence` when given.
pub async fn list_events(
    db: impl PgExecutor<'_>,
    owner_id: &str,
    kind: Option<EventType>,
    before_sequence: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE owner_id = $1 AND ($2::TEXT IS NULL OR type = $2) AND ($3::BIGINT IS NULL OR sequence < $3)
           AND quarantined_at IS NULL
         ORDER BY sequence DESC LIMIT $4"
    ))
    .bind(owner_id)
    .bind(kind.map(|k| k.as_str()))
    .bind(before_sequence)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Event::try_from).collect()
}

/// Oldest first, above `after_sequence`. Quarantined events (see the
/// publisher) are left out here and in every read, as they were never sent.
pub async fn events_after(
    db: impl PgExecutor<'_>,
    owner_id: &str,
    after_sequence: i64,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE owner_id = $1 AND sequence > $2 AND quarantined_at IS NULL
         ORDER BY sequence ASC LIMIT $3"
    ))
    .bind(owner_id)
    .bind(after_sequence)
    .bind(limit + 1)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Event::try_from).collect()
}

pub async fn request_resend(conn: &mut PgConnection, event_id: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO event_resends (event_id) VALUES ($1)")
        .bind(event_id)
        .execute(conn)
        .await?;
    Ok(())
}
/// What a request's key finds: whether this request holds the key's lock,
/// and the answer stored under it, if any.
#[derive(sqlx::FromRow)]
pub struct KeyClaimRow {
    pub locked: bool,
    pub method: Option<String>,
    pub path: Option<String>,
    pub body_hash: Option<Vec<u8>>,
    pub response_status: Option<i16>,
    pub response_body: Option<Vec<u8>>,
}

/// One round trip for the key's lock and the lookup of its answer. The
/// lookup's snapshot predates the lock, so a first request that commits in
/// between is not seen here; this one then fails on the key's primary key
/// when it stores its answer, rolls back, and answers 409 like any request
/// that met the key in use.
pub async fn claim_idempotency_key(
    conn: &mut PgConnection,
    owner_id: &str,
    key: &str,
) -> Result<KeyClaimRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked,
                k.method, k.path, k.body_hash, k.response_status, k.response_body
           FROM (SELECT 1) AS one
           LEFT JOIN idempotency_keys k ON k.owner_id = $2 AND k.key = $3",
    )
    .bind(format!("idempotency\n{owner_id}\n{key}"))
    .bind(owner_id)
    .bind(key)
    .fetch_one(conn)
    .await
}

/// The answer to a request, kept under its key with the request's fingerprint.
pub struct StoredAnswer<'a> {
    pub owner_id: &'a str,
    pub key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub body_hash: &'a [u8],
    pub status: i16,
    pub body: &'a [u8],
}

pub async fn store_answer(conn: &mut PgConnection, answer: &StoredAnswer<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (owner_id, key, method, path, body_hash, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(answer.owner_id)
    .bind(answer.key)
    .bind(answer.method)
    .bind(answer.path)
    .bind(answer.body_hash)
    .bind(answer.status)
    .bind(answer.body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes answers older than `retention`, a batch at a time so that the
/// purge never holds many locks.
pub async fn purge_expired_answers(db: &PgPool, retention: std::time::Duration) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid IN (
                 SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)
                 LIMIT 5000)",
        )
        .bind(retention.as_secs_f64())
        .execute(db)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < 5000 {
            return Ok(total);
        }
    }
}
/// A posting the ledger is owed, as a worker claims it.
#[derive(sqlx::FromRow)]
pub struct DuePosting {
    pub reference: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub merchant_id: String,
    pub amount: i64,
    pub currency: String,
    pub fee: Option<i64>,
}

/// Claims up to `batch` due postings under a lease: one statement, committed
/// on its own, so the calls that follow hold no transaction and no row lock.
pub async fn claim_due_postings(
    db: &PgPool,
    batch: i64,
    lease_seconds: f64,
) -> sqlx::Result<Vec<DuePosting>> {
    sqlx::query_as(
        "UPDATE ledger_postings p
         SET leased_until = now() + make_interval(secs => $2), attempts = p.attempts + 1
         FROM (
             SELECT reference FROM ledger_postings
             WHERE posted_at IS NULL AND dead_lettered_at IS NULL AND next_attempt_at <= now()
               AND (leased_until IS NULL OR leased_until <= now())
             ORDER BY next_attempt_at, reference LIMIT $1
             FOR UPDATE SKIP LOCKED
         ) due
         WHERE p.reference = due.reference
         RETURNING p.reference, p.payment_id, p.refund_id, p.merchant_id, p.amount, p.currency, p.fee",
    )
    .bind(batch)
    .bind(lease_seconds)
    .fetch_all(db)
    .await
}

/// Keys and what to record against each, kept as the two arrays one
/// `UNNEST` reads.
#[derive(Debug, Default)]
pub struct KeyedValues {
    pub keys: Vec<String>,
    pub values: Vec<String>,
}

impl KeyedValues {
    pub fn push(&mut self, key: &str, value: &str) {
        self.keys.push(key.to_owned());
        self.values.push(value.to_owned());
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a round of postings came to.
#[derive(Debug, Default)]
pub struct PostingOutcomes {
    /// Posting reference → ledger transaction id.
    pub posted: KeyedValues,
    /// Payment id → ledger transaction id.
    pub paid: KeyedValues,
    /// Refund id → ledger transaction id.
    pub refunded: KeyedValues,
    /// Posting reference → why the call failed (to be retried).
    pub failed: KeyedValues,
    /// Posting reference → why the ledger refused it.
    pub refused: KeyedValues,
}

/// Records a round's outcomes in one transaction; answers the postings that
/// were dead-lettered by it, with their last error.
pub async fn record_posting_outcomes(
    db: &PgPool,
    outcomes: &PostingOutcomes,
    max_retry_seconds: f64,
    max_refusals: i32,
) -> sqlx::Result<Vec<(String, String)>> {
    async fn record(tx: &mut PgConnection, statement: &'static str, pairs: &KeyedValues) -> sqlx::Result<()> {
        if !pairs.is_empty() {
            sqlx::query(statement)
                .bind(&pairs.keys)
                .bind(&pairs.values)
                .execute(tx)
                .await?;
        }
        Ok(())
    }
    // This transaction only records what the ledger already holds durably.
    // Should a database crash lose it, the postings are sent again and the
    // ledger answers the transactions it recorded, so it need not wait for
    // its own disk flush, which the requests' commits are queuing for.
    let mut tx = db.begin_with(BEGIN_UNFLUSHED).await?;
    record(
        &mut tx,
        "UPDATE ledger_postings p SET posted_at = now(), ledger_transaction_id = u.transaction_id,
                                      leased_until = NULL, last_error = NULL
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, transaction_id) WHERE p.reference = u.reference",
        &outcomes.posted,
    )
    .await?;
    record(
        &mut tx,
        "UPDATE payments p SET ledger_transaction_id = u.transaction_id
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(id, transaction_id) WHERE p.id = u.id",
        &outcomes.paid,
    )
    .await?;
    record(
        &mut tx,
        "UPDATE refunds r SET ledger_transaction_id = u.transaction_id
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(id, transaction_id) WHERE r.id = u.id",
        &outcomes.refunded,
    )
    .await?;
    sqlx::query(
        "UPDATE ledger_postings p SET last_error = u.error, leased_until = NULL,
             next_attempt_at = now() + make_interval(secs => least($3, 0.1 * power(2, least(p.attempts - 1, 10))))
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, error)
         WHERE p.reference = u.reference AND p.posted_at IS NULL",
    )
    .bind(&outcomes.failed.keys)
    .bind(&outcomes.failed.values)
    .bind(max_retry_seconds)
    .execute(&mut *tx)
    .await?;
    let dead: Vec<(String, String)> = sqlx::query_as(
        "UPDATE ledger_postings p SET last_error = u.error, leased_until = NULL, refusals = p.refusals + 1,
             dead_lettered_at = CASE WHEN p.refusals + 1 >= $4 THEN now() END,
             next_attempt_at = now() + make_interval(secs => least($3, 0.1 * power(2, least(p.attempts - 1, 10))))
         FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(reference, error)
         WHERE p.reference = u.reference AND p.posted_at IS NULL
         RETURNING p.reference, p.last_error, p.dead_lettered_at IS NOT NULL AS dead",
    )
    .bind(&outcomes.refused.keys)
    .bind(&outcomes.refused.values)
    .bind(max_retry_seconds)
    .bind(max_refusals)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter_map(|(reference, error, dead): (String, Option<String>, bool)| {
        dead.then(|| (reference, error.unwrap_or_default()))
    })
    .collect();
    tx.commit().await?;
    Ok(dead)
}
