//! Accounts and their statements as stored: the account row joined with its
//! balance, and the entries of one account in posting order.

use chrono::{DateTime, Utc};
use contract::ledger::{Account, AccountEntry, AccountType, Metadata};
use sqlx::PgExecutor;
use sqlx::types::Json as SqlJson;

use super::posting::parse_direction;

const ACCOUNT_COLUMNS: &str = "a.id, a.owner_id, a.name, a.type, a.currency, b.balance, b.entry_count, \
                               b.version, a.must_not_go_negative, a.metadata, a.created_at";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    owner_id: Option<String>,
    name: String,
    #[sqlx(rename = "type")]
    kind: String,
    currency: String,
    balance: i64,
    entry_count: i64,
    version: i64,
    must_not_go_negative: bool,
    metadata: SqlJson<Metadata>,
    created_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for Account {
    type Error = sqlx::Error;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        let kind = AccountType::parse(&row.kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown account type {:?}", row.kind).into()))?;
        Ok(Self {
            id: row.id,
            object: Account::OBJECT.into(),
            owner_id: row.owner_id,
            name: row.name,
            kind,
            currency: row.currency,
            balance: row.balance,
            entry_count: row.entry_count,
            version: row.version,
            must_not_go_negative: row.must_not_go_negative,
            metadata: row.metadata.0,
            created_at: row.created_at,
        })
    }
}

/// A new account with its zero balance, in one statement.
pub struct NewAccount<'a> {
    pub owner_id: &'a str,
    pub name: &'a str,
    pub kind: AccountType,
    pub currency: &'a str,
    pub must_not_go_negative: bool,
    pub metadata: &'a Metadata,
}

pub async fn create_account(db: impl PgExecutor<'_>, new: NewAccount<'_>) -> Result<Account, sqlx::Error> {
    let row: AccountRow = sqlx::query_as(&format!(
        "WITH a AS (
             INSERT INTO accounts (id, owner_id, name, type, currency, must_not_go_negative, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
         ), b AS (
             INSERT INTO account_balances (account_id, type, must_not_go_negative)
             SELECT id, type, must_not_go_negative FROM a RETURNING *
         )
         SELECT {ACCOUNT_COLUMNS} FROM a JOIN b ON b.account_id = a.id"
    ))
    .bind(platform::ids::new_id(contract::ids::ACCOUNT))
    .bind(new.owner_id)
    .bind(new.name)
    .bind(new.kind.as_str())
    .bind(new.currency)
    .bind(new.must_not_go_negative)
    .bind(SqlJson(new.metadata))
    .fetch_one(db)
    .await?;
    Account::try_from(row)
}

/// Up to `limit` of the owner's accounts older than `starting_after`, newest first.
pub async fn list_accounts(
    db: impl PgExecutor<'_>,
    owner_id: &str,
    starting_after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN account_balances b ON b.account_id = a.id
         WHERE a.owner_id = $1 AND ($2::TEXT IS NULL OR a.id < $2)
         ORDER BY a.id DESC LIMIT $3"
    ))
    .bind(owner_id)
    .bind(starting_after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Account::try_from).collect()
}

pub async fn find_owned_account(
    db: impl PgExecutor<'_>,
    id: &str,
    owner_id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN account_balances b ON b.account_id = a.id
         WHERE a.id = $1 AND a.owner_id = $2"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(db)
    .await?;
    row.map(Account::try_from).transpose()
}

#[derive(sqlx::FromRow)]
struct AccountEntryRow {
    id: String,
    transaction_id: String,
    account_id: String,
    direction: String,
    amount: i64,
    currency: String,
    balance_after: i64,
    posted_at: DateTime<Utc>,
    description: Option<String>,
}

/// Where an entry stands in its account's statement; `None` when the entry
/// is not the account's.
pub async fn entry_number(
    db: impl PgExecutor<'_>,
    account_id: &str,
    entry_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT entry_number FROM entries WHERE id = $1 AND account_id = $2")
        .bind(entry_id)
        .bind(account_id)
        .fetch_optional(db)
        .await
}

/// Up to `limit` of the account's entries before entry number `before`,
/// newest first, with the balance after each.
pub async fn list_entries(
    db: impl PgExecutor<'_>,
    account_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AccountEntry>, sqlx::Error> {
    let rows: Vec<AccountEntryRow> = sqlx::query_as(
        "SELECT e.id, e.transaction_id, e.account_id, e.direction, e.amount, e.currency,
                e.balance_after, t.posted_at, t.description
         FROM entries e JOIN transactions t ON t.id = e.transaction_id
         WHERE e.account_id = $1 AND ($2::BIGINT IS NULL OR e.entry_number < $2)
         ORDER BY e.entry_number DESC LIMIT $3",
    )
    .bind(account_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(AccountEntry {
                direction: parse_direction(&row.direction)?,
                id: row.id,
                object: AccountEntry::OBJECT.into(),
                transaction_id: row.transaction_id,
                account_id: row.account_id,
                amount: row.amount,
                currency: row.currency,
                balance_after: row.balance_after,
                posted_at: row.posted_at,
                description: row.description,
            })
        })
        .collect()
}

/// Debits and credits of every entry, per currency: equal when the ledger balances.
pub async fn trial_balance(db: impl PgExecutor<'_>) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT currency,
                coalesce(sum(amount) FILTER (WHERE direction = 'debit'), 0)::BIGINT,
                coalesce(sum(amount) FILTER (WHERE direction = 'credit'), 0)::BIGINT
         FROM entries GROUP BY currency ORDER BY currency",
    )
    .fetch_all(db)
    .await
}
