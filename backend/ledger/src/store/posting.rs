//! Posting a validated journal, exactly once per (poster, reference), and
//! reading transactions back.
//!
//! A posting is one call of the database function `ledger_post` (see the
//! migrations): one statement, so one round trip and one implicit database
//! transaction in which the touched accounts are locked in id order, the
//! balances move and the entries are written. Postings to different accounts
//! never wait for each other; postings to the same hot account queue on its
//! row lock only for the length of that statement and its commit.
//!
//! Many postings at once (payments' batches, and single postings that
//! arrived together: see `group_commit`) are one call of `ledger_post_batch`:
//! one statement and one commit, in which every touched account is locked
//! in id order, once for the batch. The database writes the batch as a set
//! (one insert of its transactions, one of its entries, one update per
//! balance) when every posting in it would be accepted; otherwise each
//! posting is one call of `ledger_post` in a subtransaction of its own, so
//! that the database can refuse one alone.
//!
//! A conflict PostgreSQL resolves by aborting (serialization failure,
//! deadlock) is retried here with the same ids, so the caller never sees it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use contract::ledger::{Direction, ENTRY_ID_PREFIX, Entry, Metadata, Transaction};
use rand::Rng;
use sqlx::PgPool;
use sqlx::postgres::PgDatabaseError;
use sqlx::types::Json;

use crate::LedgerError;
use crate::domain::{Description, Journal, Reference};

/// The reference namespace of the payments service's postings.
pub const PAYMENTS_POSTER: &str = "platform:payments";
const MAX_ATTEMPTS: u32 = 5;

/// A transaction ready to post.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    /// Whose reference namespace the reference lives in.
    pub poster: String,
    pub reference: Reference,
    /// What was asked for, stored to tell a retry from a reuse of the reference.
    pub request: serde_json::Value,
    pub description: Description,
    pub metadata: Metadata,
    pub reverses: Option<String>,
    pub journal: Journal,
}

#[derive(Debug, Clone)]
pub enum Posted {
    Created(Transaction),
    /// The reference was already recorded with the same request.
    Replayed(Transaction),
}

/// A transaction as stored, with what only the ledger sees.
#[derive(Debug, Clone)]
pub struct Stored {
    pub transaction: Transaction,
    pub poster: String,
    pub request: serde_json::Value,
}

/// The most postings one statement carries. A batch that cannot be written
/// as a set runs each posting in a subtransaction, and PostgreSQL keeps the
/// ids of only 64 subtransactions per session where other sessions'
/// snapshots look; past that, every snapshot on the server gets slower.
pub const MAX_BATCH: usize = 50;

/// A posting with its ids drawn once, so that a retried batch reuses them.
struct Prepared {
    id: String,
    entry_ids: Vec<String>,
    new: NewTransaction,
}

impl Prepared {
    fn new(new: NewTransaction) -> Self {
        Self {
            id: platform::ids::new_id(contract::ids::TRANSACTION),
            entry_ids: new
                .journal
                .legs()
                .iter()
                .map(|_| platform::ids::new_id(ENTRY_ID_PREFIX))
                .collect(),
            new,
        }
    }
}

/// One posting's row in the answer of `ledger_post_batch`: its transaction,
/// or why the database refused it.
#[derive(sqlx::FromRow)]
struct BatchRow {
    txn_id: Option<String>,
    was_created: Option<bool>,
    txn_posted_at: Option<DateTime<Utc>>,
    error_code: Option<String>,
    error_constraint: Option<String>,
    error_detail: Option<String>,
    error_message: Option<String>,
}

/// The database's refusal of one posting of a batch, as PostgreSQL reported it.
struct Refused {
    code: String,
    constraint: Option<String>,
    detail: Option<String>,
    message: String,
}

#[derive(sqlx::FromRow)]
struct PostRow {
    txn_id: String,
    was_created: bool,
    txn_posted_at: DateTime<Utc>,
}

/// Posts one transaction: one call of `ledger_post`, one statement and one
/// commit, with none of a batch's per-posting subtransaction.
#[tracing::instrument(skip_all, fields(poster = %new.poster, reference = %new.reference.as_str()))]
pub async fn post(db: &PgPool, new: NewTransaction) -> Result<Posted, LedgerError> {
    post_prepared(db, Prepared::new(new)).await
}

async fn post_prepared(db: &PgPool, prepared: Prepared) -> Result<Posted, LedgerError> {
    let legs = prepared.new.journal.legs();
    let account_ids: Vec<&str> = legs.iter().map(|l| l.account_id.as_str()).collect();
    let directions: Vec<&str> = legs.iter().map(|l| l.direction.as_str()).collect();
    let amounts: Vec<i64> = legs.iter().map(|l| l.amount.get()).collect();
    let currencies: Vec<&str> = legs.iter().map(|l| l.currency.code()).collect();
    let new = &prepared.new;
    let result = retried("posting", || {
        sqlx::query_as::<_, PostRow>(
            "SELECT txn_id, was_created, txn_posted_at
             FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&prepared.id)
        .bind(&new.poster)
        .bind(new.reference.as_str())
        .bind(Json(&new.request))
        .bind(new.description.as_deref())
        .bind(Json(&new.metadata))
        .bind(new.reverses.as_deref())
        .bind(&prepared.entry_ids)
        .bind(&account_ids)
        .bind(&directions)
        .bind(&amounts)
        .bind(&currencies)
        .fetch_one(db)
    })
    .await;
    let row = match result {
        Ok(row) => BatchRow {
            txn_id: Some(row.txn_id),
            was_created: Some(row.was_created),
            txn_posted_at: Some(row.txn_posted_at),
            error_code: None,
            error_constraint: None,
            error_detail: None,
            error_message: None,
        },
        Err(e) if is_retryable(&e) => return Err(LedgerError::Contention(e)),
        Err(e) => match e
            .as_database_error()
            .and_then(|d| d.code().map(|code| (code.into_owned(), d)))
        {
            Some((code, database_error)) => BatchRow {
                txn_id: None,
                was_created: None,
                txn_posted_at: None,
                error_code: Some(code),
                error_constraint: database_error.constraint().map(str::to_owned),
                error_detail: database_error
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(PgDatabaseError::detail)
                    .map(str::to_owned),
                error_message: Some(database_error.message().to_owned()),
            },
            None => return Err(LedgerError::Database(e)),
        },
    };
    finish(db, prepared, row).await
}

/// Posts many transactions, `MAX_BATCH` to a statement, each statement one
/// database transaction and one commit. Each posting gets its own answer, in
/// order: a posting the ledger refuses (an overdraft, say) leaves the others
/// of its batch posted.
#[tracing::instrument(skip_all, fields(postings = batch.len()))]
pub async fn post_batch(db: &PgPool, batch: Vec<NewTransaction>) -> Vec<Result<Posted, LedgerError>> {
    let mut results = Vec::with_capacity(batch.len());
    let mut rest: Vec<Prepared> = batch.into_iter().map(Prepared::new).collect();
    while !rest.is_empty() {
        let chunk: Vec<Prepared> = rest.drain(..rest.len().min(MAX_BATCH)).collect();
        results.extend(post_chunk(db, chunk).await);
    }
    results
}

async fn post_chunk(db: &PgPool, chunk: Vec<Prepared>) -> Vec<Result<Posted, LedgerError>> {
    let rows = match execute(db, &chunk).await {
        Ok(rows) if rows.len() == chunk.len() => rows,
        Ok(rows) => {
            let error = sqlx::Error::Protocol(format!(
                "a batch of {} postings answered {} rows",
                chunk.len(),
                rows.len()
            ));
            return chunk.iter().map(|_| Err(batch_failure(&error))).collect();
        }
        // The server refused the statement as a whole (a lock or statement
        // timeout, say): it may be one posting's doing, or the batch's size.
        // Each posting then gets its own attempt and its own answer, all at
        // once, so that postings stuck behind one lock wait for it together
        // rather than one after another.
        Err(error) if error.as_database_error().is_some() && !is_retryable(&error) => {
            tracing::warn!(error = %error, postings = chunk.len(), "a batch failed whole; posting each alone");
            return futures::future::join_all(chunk.into_iter().map(|prepared| post_prepared(db, prepared)))
                .await;
        }
        Err(error) => return chunk.iter().map(|_| Err(batch_failure(&error))).collect(),
    };
    let mut results = Vec::with_capacity(chunk.len());
    for (prepared, row) in chunk.into_iter().zip(rows) {
        results.push(finish(db, prepared, row).await);
    }
    results
}

/// One call of `ledger_post_batch`, retried whole (with the same ids) when
/// PostgreSQL resolves a conflict by aborting it.
async fn execute(db: &PgPool, chunk: &[Prepared]) -> Result<Vec<BatchRow>, sqlx::Error> {
    let ids: Vec<&str> = chunk.iter().map(|p| p.id.as_str()).collect();
    let posters: Vec<&str> = chunk.iter().map(|p| p.new.poster.as_str()).collect();
    let references: Vec<&str> = chunk.iter().map(|p| p.new.reference.as_str()).collect();
    let requests: Vec<Json<&serde_json::Value>> = chunk.iter().map(|p| Json(&p.new.request)).collect();
    let descriptions: Vec<Option<&str>> = chunk.iter().map(|p| p.new.description.as_deref()).collect();
    let metadata: Vec<Json<&Metadata>> = chunk.iter().map(|p| Json(&p.new.metadata)).collect();
    let reverses: Vec<Option<&str>> = chunk.iter().map(|p| p.new.reverses.as_deref()).collect();
    let leg_counts: Vec<i32> = chunk
        .iter()
        .map(|p| i32::try_from(p.new.journal.legs().len()).unwrap_or(i32::MAX))
        .collect();
    let legs = || chunk.iter().flat_map(|p| p.new.journal.legs());
    let entry_ids: Vec<&str> = chunk
        .iter()
        .flat_map(|p| p.entry_ids.iter().map(String::as_str))
        .collect();
    let account_ids: Vec<&str> = legs().map(|l| l.account_id.as_str()).collect();
    let directions: Vec<&str> = legs().map(|l| l.direction.as_str()).collect();
    let amounts: Vec<i64> = legs().map(|l| l.amount.get()).collect();
    let currencies: Vec<&str> = legs().map(|l| l.currency.code()).collect();
    retried("batch of postings", || {
        sqlx::query_as::<_, BatchRow>(
            "SELECT txn_id, was_created, txn_posted_at, error_code, error_constraint, error_detail, error_message
             FROM ledger_post_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ORDER BY ordinal",
        )
        .bind(&ids)
        .bind(&posters)
        .bind(&references)
        .bind(&requests)
        .bind(&descriptions)
        .bind(&metadata)
        .bind(&reverses)
        .bind(&leg_counts)
        .bind(&entry_ids)
        .bind(&account_ids)
        .bind(&directions)
        .bind(&amounts)
        .bind(&currencies)
        .fetch_all(db)
    })
    .await
}

/// Runs `statement` again, after a short backoff, while PostgreSQL resolves
/// conflicts by aborting it (see `is_retryable`), up to `MAX_ATTEMPTS` times.
async fn retried<T, Attempt>(what: &str, mut statement: impl FnMut() -> Attempt) -> sqlx::Result<T>
where
    Attempt: std::future::Future<Output = sqlx::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match statement().await {
            Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                tracing::info!(attempt, error = %e, "{what} conflicted; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What each posting of a batch that failed whole is answered: the batch's
/// error, for every one of them.
fn batch_failure(error: &sqlx::Error) -> LedgerError {
    let copy = match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(e) => sqlx::Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        other => sqlx::Error::Protocol(other.to_string()),
    };
    if is_retryable(error) {
        LedgerError::Contention(copy)
    } else {
        LedgerError::Database(copy)
    }
}

/// The answer for one posting of a batch that committed.
async fn finish(db: &PgPool, prepared: Prepared, row: BatchRow) -> Result<Posted, LedgerError> {
    let Prepared { entry_ids, new, .. } = prepared;
    if let Some(code) = row.error_code {
        let refused = Refused {
            code,
            constraint: row.error_constraint,
            detail: row.error_detail,
            message: row.error_message.unwrap_or_default(),
        };
        // Twin requests under one reference can pass the reference check at
        // the same instant; the loser then meets the winner's reversal on the
        // one-reversal index. Its reference is recorded by now: it is a
        // replay, not a second reversal.
        if refused.code == "23505"
            && refused.constraint.as_deref() == Some("transactions_reverses_key")
            && let Some(stored) = load_by_reference(db, &new.poster, new.reference.as_str()).await?
        {
            return replay(stored, &new);
        }
        return Err(refusal(db, refused, &new).await);
    }
    let (Some(txn_id), Some(was_created), Some(posted_at)) = (row.txn_id, row.was_created, row.txn_posted_at)
    else {
        return Err(
            sqlx::Error::Protocol("a posting answered neither a transaction nor an error".into()).into(),
        );
    };
    if was_created {
        let entries = new
            .journal
            .legs()
            .iter()
            .zip(entry_ids)
            .map(|(leg, entry_id)| Entry {
                id: entry_id,
                account_id: leg.account_id.clone(),
                direction: leg.direction,
                amount: leg.amount.get(),
                currency: leg.currency.code().to_owned(),
            })
            .collect();
        return Ok(Posted::Created(Transaction {
            id: txn_id,
            object: Transaction::OBJECT.into(),
            reference: new.reference.as_str().to_owned(),
            description: new.description.into_inner(),
            metadata: new.metadata,
            reverses: new.reverses,
            posted_at,
            entries,
        }));
    }
    let stored = load(db, &txn_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    replay(stored, &new)
}

/// The answer to a request whose reference is already recorded.
fn replay(stored: Stored, new: &NewTransaction) -> Result<Posted, LedgerError> {
    if stored.request == new.request {
        Ok(Posted::Replayed(stored.transaction))
    } else {
        Err(LedgerError::ReferenceReused(new.reference.as_str().to_owned()))
    }
}

/// Failures worth another attempt: serialization failures and deadlocks,
/// which PostgreSQL asks the client to retry, and a connection that broke
/// (the pool does not test connections before use). Retrying is safe even if
/// the first attempt committed: the reference then finds that transaction.
pub fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_))
        || error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "40001" || code == "40P01")
}

fn backoff(attempt: u32) -> Duration {
    let jitter = rand::thread_rng().gen_range(0..5u64);
    Duration::from_millis(u64::from(attempt) * 5 + jitter)
}

/// Turns the database's refusal of a posting into the answer for the caller.
async fn refusal(db: &PgPool, refused: Refused, new: &NewTransaction) -> LedgerError {
    match (refused.code.as_str(), refused.constraint.as_deref()) {
        ("23514", Some("account_balances_overdraft")) => LedgerError::InsufficientFunds(
            overdrawn_account(refused.detail.as_deref())
                .unwrap_or("an account")
                .to_owned(),
        ),
        // Waited too long for a lock or ran past the statement timeout: busy,
        // not broken; the caller retries under the same reference.
        ("55P03" | "57014", _) => LedgerError::Contention(refused.into_error()),
        ("23514", Some("transactions_reversal_mirrors")) => {
            LedgerError::ReversalOfReversal(new.reverses.clone().unwrap_or_default())
        }
        ("23505", Some("transactions_reverses_key")) => {
            let original = new.reverses.clone().unwrap_or_default();
            let reversal: Result<Option<String>, _> =
                sqlx::query_scalar("SELECT id FROM transactions WHERE reverses = $1")
                    .bind(&original)
                    .fetch_optional(db)
                    .await;
            match reversal {
                Ok(Some(reversal)) => LedgerError::AlreadyReversed { original, reversal },
                Ok(None) => LedgerError::Database(refused.into_error()),
                Err(e) => LedgerError::Database(e),
            }
        }
        _ => LedgerError::Database(refused.into_error()),
    }
}

impl Refused {
    fn into_error(self) -> sqlx::Error {
        let constraint = self.constraint.as_deref().unwrap_or("-");
        sqlx::Error::Protocol(format!(
            "the database refused a posting: {} (SQLSTATE {}, constraint {constraint})",
            self.message, self.code
        ))
    }
}

/// The account in a check violation's detail, `Failing row contains (acct_..., ...)`:
/// the id is the first column of `account_balances`.
fn overdrawn_account(detail: Option<&str>) -> Option<&str> {
    let row = detail?.strip_prefix("Failing row contains (")?;
    let id = row.split(',').next()?;
    contract::ids::has_prefix(id, contract::ids::ACCOUNT).then_some(id)
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: String,
    poster: String,
    reference: String,
    request: Json<serde_json::Value>,
    description: Option<String>,
    metadata: Json<Metadata>,
    reverses: Option<String>,
    posted_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: String,
    account_id: String,
    direction: String,
    amount: i64,
    currency: String,
}

const TRANSACTION_COLUMNS: &str =
    "t.id, t.poster, t.reference, t.request, t.description, t.metadata, t.reverses, t.posted_at";

pub async fn load(db: &PgPool, id: &str) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM transactions t WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    with_entries(db, row).await
}

pub async fn load_by_reference(
    db: &PgPool,
    poster: &str,
    reference: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM transactions t WHERE t.poster = $1 AND t.reference = $2"
    ))
    .bind(poster)
    .bind(reference)
    .fetch_optional(db)
    .await?;
    with_entries(db, row).await
}

/// A transaction the user may see: one they posted, or one that moved one of
/// their accounts (a payment credited to their balance, say).
pub async fn load_visible(db: &PgPool, id: &str, user_id: &str) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query_as(&format!(
        "SELECT {TRANSACTION_COLUMNS} FROM transactions t
         WHERE t.id = $1 AND (t.poster = $2 OR EXISTS (
             SELECT 1 FROM entries e JOIN accounts a ON a.id = e.account_id
             WHERE e.transaction_id = t.id AND a.owner_id = $2))"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    with_entries(db, row).await
}

async fn with_entries(db: &PgPool, row: Option<TransactionRow>) -> Result<Option<Stored>, sqlx::Error> {
    let Some(row) = row else {
        return Ok(None);
    };
    let entries: Vec<EntryRow> = sqlx::query_as(
        "SELECT id, account_id, direction, amount, currency FROM entries
         WHERE transaction_id = $1 ORDER BY position",
    )
    .bind(&row.id)
    .fetch_all(db)
    .await?;
    let entries = entries
        .into_iter()
        .map(|e| {
            Ok(Entry {
                direction: parse_direction(&e.direction)?,
                id: e.id,
                account_id: e.account_id,
                amount: e.amount,
                currency: e.currency,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(Stored {
        transaction: Transaction {
            id: row.id,
            object: Transaction::OBJECT.into(),
            reference: row.reference,
            description: row.description,
            metadata: row.metadata.0,
            reverses: row.reverses,
            posted_at: row.posted_at,
            entries,
        },
        poster: row.poster,
        request: row.request.0,
    }))
}

pub(crate) fn parse_direction(name: &str) -> Result<Direction, sqlx::Error> {
    Direction::parse(name).ok_or_else(|| sqlx::Error::Decode(format!("unknown direction {name:?}").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_overdrawn_account_in_the_check_detail() {
        let detail = "Failing row contains (acct_0192ab, usr_1, wallet, asset, usd, null, t, {}, 2026-01-01, -5, 3, 3).";
        assert_eq!(overdrawn_account(Some(detail)), Some("acct_0192ab"));
        assert_eq!(overdrawn_account(Some("something else")), None);
        assert_eq!(overdrawn_account(None), None);
    }
}
