use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contract::List;
use contract::ledger::{Account, AccountEntry, AccountType, CreateAccountRequest, Metadata};
use contract::list::PageParams;
use contract::money::Currency;
use platform::error::{Json, Query};
use platform::internal_token::UserCaller;
use sqlx::types::Json as SqlJson;

use crate::domain::{AccountName, InputError, parse_metadata};
use crate::posting::parse_direction;
use crate::{AppState, LedgerError};

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

#[utoipa::path(post, path = "/v1/ledger/accounts", operation_id = "create_ledger_account", tag = "ledger", security(("api_key" = [])),
    request_body = CreateAccountRequest,
    responses((status = 201, body = Account), (status = 400, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create(
    State(state): State<AppState>,
    caller: UserCaller,
    Json(request): Json<CreateAccountRequest>,
) -> Result<(StatusCode, Json<Account>), LedgerError> {
    let name = AccountName::parse(&request.name)?;
    let currency = Currency::parse(&request.currency).map_err(InputError::from)?;
    if request.must_not_go_negative && !matches!(request.kind, AccountType::Asset | AccountType::Liability) {
        return Err(InputError::GuardNotAllowed.into());
    }
    let metadata = parse_metadata(request.metadata)?;
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
    .bind(&caller.user_id)
    .bind(name.as_str())
    .bind(request.kind.as_str())
    .bind(currency.code())
    .bind(request.must_not_go_negative)
    .bind(SqlJson(&metadata))
    .fetch_one(&state.db)
    .await?;
    let account = Account::try_from(row)?;
    tracing::info!(account_id = %account.id, "created account");
    Ok((StatusCode::CREATED, Json(account)))
}

#[utoipa::path(get, path = "/v1/ledger/accounts", operation_id = "list_ledger_accounts", tag = "ledger", security(("api_key" = [])), params(PageParams),
    responses((status = 200, body = List<Account>), (status = 400, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Account>>, LedgerError> {
    let limit = page.limit().map_err(LedgerError::InvalidLimit)?;
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN account_balances b ON b.account_id = a.id
         WHERE a.owner_id = $1 AND ($2::TEXT IS NULL OR a.id < $2)
         ORDER BY a.id DESC LIMIT $3"
    ))
    .bind(&caller.user_id)
    .bind(&page.starting_after)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let accounts = rows
        .into_iter()
        .map(Account::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(List::from_overfetched(accounts, limit as usize)))
}

async fn owned_account(state: &AppState, id: &str, user_id: &str) -> Result<Account, LedgerError> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN account_balances b ON b.account_id = a.id
         WHERE a.id = $1 AND a.owner_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(&state.db)
    .await?;
    let row = row.ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))?;
    Ok(Account::try_from(row)?)
}

#[utoipa::path(get, path = "/v1/ledger/accounts/{id}", operation_id = "retrieve_ledger_account", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Account), (status = 404, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, account_id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Account>, LedgerError> {
    Ok(Json(owned_account(&state, &id, &caller.user_id).await?))
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

/// The account's statement, newest first, with the balance after each entry.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}/entries", operation_id = "list_ledger_account_entries", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path), PageParams),
    responses((status = 200, body = List<AccountEntry>), (status = 400, body = contract::ErrorBody),
        (status = 404, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, account_id = %id))]
pub async fn entries(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<AccountEntry>>, LedgerError> {
    let limit = page.limit().map_err(LedgerError::InvalidLimit)?;
    let account = owned_account(&state, &id, &caller.user_id).await?;
    let before: Option<i64> = match &page.starting_after {
        None => None,
        Some(cursor) => Some(
            sqlx::query_scalar("SELECT entry_number FROM entries WHERE id = $1 AND account_id = $2")
                .bind(cursor)
                .bind(&account.id)
                .fetch_optional(&state.db)
                .await?
                .ok_or_else(|| LedgerError::InvalidCursor(cursor.clone()))?,
        ),
    };
    let rows: Vec<AccountEntryRow> = sqlx::query_as(
        "SELECT e.id, e.transaction_id, e.account_id, e.direction, e.amount, e.currency,
                e.balance_after, t.posted_at, t.description
         FROM entries e JOIN transactions t ON t.id = e.transaction_id
         WHERE e.account_id = $1 AND ($2::BIGINT IS NULL OR e.entry_number < $2)
         ORDER BY e.entry_number DESC LIMIT $3",
    )
    .bind(&account.id)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let entries = rows
        .into_iter()
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
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(List::from_overfetched(entries, limit as usize)))
}
