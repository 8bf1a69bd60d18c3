use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ledger::{PostTransactionRequest, ReverseTransactionRequest, Transaction};
use contract::money::Currency;
use platform::error::{ApiError, Json};
use platform::internal_token::UserCaller;
use serde_json::json;

use crate::domain::{Amount, Description, Journal, Leg, Reference, parse_metadata};
use crate::store::posting::{self, NewTransaction, Posted};
use crate::{AppState, LedgerError};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(post))
        .routes(routes!(retrieve))
        .routes(routes!(reverse))
}

fn answer(posted: Posted) -> (StatusCode, Json<Transaction>) {
    match posted {
        Posted::Created(transaction) => (StatusCode::CREATED, Json(transaction)),
        Posted::Replayed(transaction) => (StatusCode::OK, Json(transaction)),
    }
}

/// A manual journal entry between the caller's own accounts. The same
/// reference with the same body answers the transaction already posted (200);
/// with another body, 409 `reference_reused`.
#[utoipa::path(post, path = "/v1/ledger/transactions", operation_id = "post_ledger_transaction", tag = "ledger", security(("api_key" = [])),
    request_body = PostTransactionRequest,
    responses((status = 201, body = Transaction), (status = 200, description = "Already posted with this reference", body = Transaction),
        (status = 400, body = contract::ErrorBody), (status = 404, body = contract::ErrorBody),
        (status = 409, body = contract::ErrorBody), (status = 422, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn post(
    State(state): State<AppState>,
    caller: UserCaller,
    Json(request): Json<PostTransactionRequest>,
) -> Result<(StatusCode, Json<Transaction>), LedgerError> {
    let reference = Reference::parse(&request.reference)?;
    let description = Description::parse(request.description.as_deref())?;
    let metadata = parse_metadata(request.metadata)?;
    let amounts = request
        .entries
        .iter()
        .map(|entry| Amount::parse(entry.amount))
        .collect::<Result<Vec<_>, _>>()?;
    let account_ids: Vec<&str> = request.entries.iter().map(|e| e.account_id.as_str()).collect();
    let accounts = state.directory.lookup(&state.db, &account_ids).await?;
    let mut legs = Vec::with_capacity(request.entries.len());
    for (entry, amount) in request.entries.iter().zip(amounts) {
        let Some(account) = accounts.get(&entry.account_id) else {
            return Err(LedgerError::AccountNotFound(entry.account_id.clone()));
        };
        if account.owner_id.as_deref() != Some(caller.user_id.as_str()) {
            return Err(LedgerError::AccountNotFound(entry.account_id.clone()));
        }
        if account.system_role.is_some() {
            return Err(LedgerError::AccountNotPostable(entry.account_id.clone()));
        }
        let currency = Currency::parse(&account.currency)
            .map_err(|e| sqlx::Error::Decode(format!("account {}: {e}", entry.account_id).into()))?;
        legs.push(Leg {
            account_id: entry.account_id.clone(),
            direction: entry.direction,
            amount,
            currency,
        });
    }
    let journal = Journal::new(legs)?;
    let new = NewTransaction {
        poster: caller.user_id,
        reference,
        request: json!({
            "description": description.as_deref(),
            "metadata": &metadata,
            "entries": &request.entries,
        }),
        description,
        metadata,
        reverses: None,
        journal,
    };
    Ok(answer(state.postings.post(new).await?))
}

#[utoipa::path(get, path = "/v1/ledger/transactions/{id}", operation_id = "retrieve_ledger_transaction", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Transaction), (status = 404, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, transaction_id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Transaction>, LedgerError> {
    let stored = posting::load_visible(&state.db, &id, &caller.user_id)
        .await?
        .ok_or(LedgerError::TransactionNotFound)?;
    Ok(Json(stored.transaction))
}

/// Posts the mirror of one of the caller's transactions: every entry on the
/// other side. A transaction is reversed at most once; asking again with the
/// same reference (by default `reversal:<id>`) answers that reversal.
#[utoipa::path(post, path = "/v1/ledger/transactions/{id}/reverse", operation_id = "reverse_ledger_transaction", tag = "ledger", security(("api_key" = [])),
    params(("id" = String, Path)), request_body(content = Option<ReverseTransactionRequest>),
    responses((status = 201, body = Transaction), (status = 200, description = "Already reversed with this reference", body = Transaction),
        (status = 400, body = contract::ErrorBody), (status = 404, body = contract::ErrorBody),
        (status = 409, body = contract::ErrorBody), (status = 422, body = contract::ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, transaction_id = %id))]
pub async fn reverse(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Transaction>), Response> {
    let request: ReverseTransactionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReverseTransactionRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid(contract::error::codes::INVALID_BODY, e.to_string()).into_response()
        })?
    };
    reverse_transaction(&state, &caller.user_id, &id, request)
        .await
        .map_err(IntoResponse::into_response)
}

async fn reverse_transaction(
    state: &AppState,
    user_id: &str,
    id: &str,
    request: ReverseTransactionRequest,
) -> Result<(StatusCode, Json<Transaction>), LedgerError> {
    let original = posting::load_visible(&state.db, id, user_id)
        .await?
        .ok_or(LedgerError::TransactionNotFound)?;
    if original.poster != user_id {
        return Err(LedgerError::NotReversible(id.to_owned()));
    }
    if original.transaction.reverses.is_some() {
        return Err(LedgerError::ReversalOfReversal(id.to_owned()));
    }
    let reference = Reference::parse(request.reference.as_deref().unwrap_or(&format!("reversal:{id}")))?;
    let description = Description::parse(Some(
        request
            .description
            .as_deref()
            .unwrap_or(&format!("reversal of {id}")),
    ))?;
    let legs = original
        .transaction
        .entries
        .iter()
        .map(|entry| {
            let currency = Currency::parse(&entry.currency)
                .map_err(|e| sqlx::Error::Decode(format!("entry {}: {e}", entry.id).into()))?;
            let amount = Amount::parse(entry.amount)
                .map_err(|e| sqlx::Error::Decode(format!("entry {}: {e}", entry.id).into()))?;
            Ok(Leg {
                account_id: entry.account_id.clone(),
                direction: entry.direction,
                amount,
                currency,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let journal = Journal::new(legs)?.mirrored();
    let new = NewTransaction {
        poster: user_id.to_owned(),
        reference,
        request: json!({"reverses": id, "description": description.as_deref()}),
        description,
        metadata: original.transaction.metadata,
        reverses: Some(id.to_owned()),
        journal,
    };
    Ok(answer(state.postings.post(new).await?))
}
