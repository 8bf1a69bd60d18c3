//! Posting a validated journal, exactly once per (poster, reference), and
//! reading transactions back.
//!
//! A posting is one call of the database function `ledger_post` (see the
//! migration): one statement, so one round trip and one implicit database
//! transaction in which the touched accounts are locked in id order, the
//! balances move and the entries are written. Postings to different accounts
//! never wait for each other; postings to the same hot account queue on its
//! row lock only for the length of that statement and its commit. A conflict
//! PostgreSQL resolves by aborting (serialization failure, deadlock) is
//! retried here with the same ids, so the caller never sees it.

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

#[derive(sqlx::FromRow)]
struct PostRow {
    txn_id: String,
    was_created: bool,
    txn_posted_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all, fields(poster = %new.poster, reference = %new.reference.as_str()))]
pub async fn post(db: &PgPool, new: NewTransaction) -> Result<Posted, LedgerError> {
    let id = platform::ids::new_id(contract::ids::TRANSACTION);
    let legs = new.journal.legs();
    let entry_ids: Vec<String> = legs
        .iter()
        .map(|_| platform::ids::new_id(ENTRY_ID_PREFIX))
        .collect();
    let account_ids: Vec<&str> = legs.iter().map(|l| l.account_id.as_str()).collect();
    let directions: Vec<&str> = legs.iter().map(|l| l.direction.as_str()).collect();
    let amounts: Vec<i64> = legs.iter().map(|l| l.amount.get()).collect();
    let currencies: Vec<&str> = legs.iter().map(|l| l.currency.code()).collect();
    let mut attempt = 1;
    let row = loop {
        let result = sqlx::query_as::<_, PostRow>(
            "SELECT txn_id, was_created, txn_posted_at
             FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(&new.poster)
        .bind(new.reference.as_str())
        .bind(Json(&new.request))
        .bind(new.description.as_deref())
        .bind(Json(&new.metadata))
        .bind(new.reverses.as_deref())
        .bind(&entry_ids)
        .bind(&account_ids)
        .bind(&directions)
        .bind(&amounts)
        .bind(&currencies)
        .fetch_one(db)
        .await;
        match result {
            Ok(row) => break row,
            Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                tracing::info!(attempt, error = %e, "posting conflicted; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) if is_retryable(&e) => return Err(LedgerError::Contention(e)),
            // Twin requests under one reference can pass the reference check at
            // the same instant; the loser then meets the winner's reversal on
            // the one-reversal index. Its reference is recorded by now: it is a
            // replay, not a second reversal.
            Err(e) if is_violation_of(&e, "transactions_reverses_key") => {
                return match load_by_reference(db, &new.poster, new.reference.as_str()).await? {
                    Some(stored) => replay(stored, &new),
                    None => Err(refusal(db, e, &new).await),
                };
            }
            Err(e) => return Err(refusal(db, e, &new).await),
        }
    };
    if row.was_created {
        let entries = legs
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
            id: row.txn_id,
            object: Transaction::OBJECT.into(),
            reference: new.reference.as_str().to_owned(),
            description: new.description.into_inner(),
            metadata: new.metadata,
            reverses: new.reverses,
            posted_at: row.txn_posted_at,
            entries,
        }));
    }
    let stored = load(db, &row.txn_id).await?.ok_or(sqlx::Error::RowNotFound)?;
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

fn is_violation_of(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint))
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
async fn refusal(db: &PgPool, error: sqlx::Error, new: &NewTransaction) -> LedgerError {
    let Some(database_error) = error.as_database_error() else {
        return LedgerError::Database(error);
    };
    match (database_error.code().as_deref(), database_error.constraint()) {
        (Some("23514"), Some("account_balances_overdraft")) => {
            let detail = database_error
                .try_downcast_ref::<PgDatabaseError>()
                .and_then(PgDatabaseError::detail);
            LedgerError::InsufficientFunds(overdrawn_account(detail).unwrap_or("an account").to_owned())
        }
        (Some("23514"), Some("transactions_reversal_mirrors")) => {
            LedgerError::ReversalOfReversal(new.reverses.clone().unwrap_or_default())
        }
        (Some("23505"), Some("transactions_reverses_key")) => {
            let original = new.reverses.clone().unwrap_or_default();
            let reversal: Result<Option<String>, _> =
                sqlx::query_scalar("SELECT id FROM transactions WHERE reverses = $1")
                    .bind(&original)
                    .fetch_optional(db)
                    .await;
            match reversal {
                Ok(Some(reversal)) => LedgerError::AlreadyReversed { original, reversal },
                Ok(None) => LedgerError::Database(error),
                Err(e) => LedgerError::Database(e),
            }
        }
        _ => LedgerError::Database(error),
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
