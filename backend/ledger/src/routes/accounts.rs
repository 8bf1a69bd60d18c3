use axum::extract::{Path, State};
use axum::http::StatusCode;
use contract::List;
use contract::ledger::{Account, AccountEntry, AccountType, CreateAccountRequest};
use contract::list::PageParams;
use contract::money::Currency;
use platform::error::{Json, Query};
use platform::internal_token::UserCaller;

use crate::domain::{AccountName, InputError, parse_metadata};
use crate::store::accounts;
use crate::{AppState, LedgerError};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve))
        .routes(routes!(entries))
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
    let account = accounts::create_account(
        &state.db,
        accounts::NewAccount {
            owner_id: &caller.user_id,
            name: name.as_str(),
            kind: request.kind,
            currency: currency.code(),
            must_not_go_negative: request.must_not_go_negative,
            metadata: &metadata,
        },
    )
    .await?;
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
    let limit = platform::error::page_limit(page.limit)?;
    let accounts = accounts::list_accounts(
        &state.db,
        &caller.user_id,
        page.starting_after.as_deref(),
        limit + 1,
    )
    .await?;
    Ok(Json(List::from_overfetched(accounts, limit as usize)))
}

async fn owned_account(state: &AppState, id: &str, user_id: &str) -> Result<Account, LedgerError> {
    accounts::find_owned_account(&state.db, id, user_id)
        .await?
        .ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))
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
    let limit = platform::error::page_limit(page.limit)?;
    let account = owned_account(&state, &id, &caller.user_id).await?;
    let before = match &page.starting_after {
        None => None,
        Some(cursor) => Some(
            accounts::entry_number(&state.db, &account.id, cursor)
                .await?
                .ok_or_else(|| LedgerError::InvalidCursor(cursor.clone()))?,
        ),
    };
    let entries = accounts::list_entries(&state.db, &account.id, before, limit + 1).await?;
    Ok(Json(List::from_overfetched(entries, limit as usize)))
}
