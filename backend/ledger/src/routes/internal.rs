//! What other services (payments) and operators ask of the ledger.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use contract::internal::{
    MAX_PAYMENT_POSTINGS_PER_BATCH, PaymentPosting, PaymentPostingBatch, PaymentPostingBatchOutcome,
    PaymentPostingKind, PaymentPostingOutcome, TrialBalanceLine,
};
use contract::ledger::{Metadata, Transaction};
use contract::money::Currency;
use platform::error::Json;
use platform::internal_token::{FromOps, FromPayments, ServiceCaller};
use serde_json::json;

use crate::domain::{Amount, Description, InputError, Journal, Leg, Reference};
use crate::store;
use crate::store::posting::{self, NewTransaction, PAYMENTS_POSTER, Posted};
use crate::{AppState, LedgerError};

/// Posts a succeeded payment or a refund, once per reference.
///
/// A payment of A carries the fee F that payments stamped on it when it
/// succeeded, and the net N: the ledger checks A = N + F and 0 <= F <= A
/// rather than computing a fee of its own, so a change of fee schedule never
/// makes a retried posting disagree with the payment. It posts: debit
/// platform clearing A, credit the merchant's balance N, credit platform fee
/// revenue F (a zero leg is left out). A refund of R: debit the merchant's
/// balance R, credit platform clearing R; the fee is kept.
#[tracing::instrument(skip_all, fields(reference = %body.reference, kind = body.kind.as_str()))]
pub async fn payment_posting(
    State(state): State<AppState>,
    _payments: ServiceCaller<FromPayments>,
    Json(body): Json<PaymentPosting>,
) -> Result<(StatusCode, Json<Transaction>), LedgerError> {
    let new = payment_transaction(&state, &body).await?;
    Ok(match state.postings.post(new).await? {
        Posted::Created(transaction) => (StatusCode::CREATED, Json(transaction)),
        Posted::Replayed(transaction) => (StatusCode::OK, Json(transaction)),
    })
}

/// Posts many payments and refunds, each as [`payment_posting`] would, in
/// as few commits as `posting::post_batch` takes; each posting's outcome is
/// its own.
#[tracing::instrument(skip_all, fields(postings = body.postings.len()))]
pub async fn payment_posting_batch(
    State(state): State<AppState>,
    _payments: ServiceCaller<FromPayments>,
    Json(body): Json<PaymentPostingBatch>,
) -> Result<Json<PaymentPostingBatchOutcome>, LedgerError> {
    if body.postings.len() > MAX_PAYMENT_POSTINGS_PER_BATCH {
        return Err(InputError::BatchSize {
            count: body.postings.len(),
        }
        .into());
    }
    let mut outcomes: Vec<Option<PaymentPostingOutcome>> = Vec::with_capacity(body.postings.len());
    let mut valid = Vec::with_capacity(body.postings.len());
    let mut valid_at = Vec::with_capacity(body.postings.len());
    for (index, posting) in body.postings.iter().enumerate() {
        match payment_transaction(&state, posting).await {
            Ok(new) => {
                valid.push(new);
                valid_at.push(index);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(outcome(&posting.reference, Err(e)))),
        }
    }
    let posted = posting::post_batch(&state.db, valid).await;
    for (index, result) in valid_at.into_iter().zip(posted) {
        if let (Some(slot), Some(posting)) = (outcomes.get_mut(index), body.postings.get(index)) {
            *slot = Some(outcome(&posting.reference, result));
        }
    }
    Ok(Json(PaymentPostingBatchOutcome {
        outcomes: outcomes.into_iter().flatten().collect(),
    }))
}

fn outcome(reference: &str, result: Result<Posted, LedgerError>) -> PaymentPostingOutcome {
    let (status, transaction_id, error) = match result {
        Ok(Posted::Created(transaction)) => (StatusCode::CREATED, Some(transaction.id), None),
        Ok(Posted::Replayed(transaction)) => (StatusCode::OK, Some(transaction.id), None),
        Err(e) => {
            let api_error = e.to_api_error();
            (api_error.status, None, Some(api_error.body.error))
        }
    };
    PaymentPostingOutcome {
        reference: reference.to_owned(),
        status: status.as_u16(),
        transaction_id,
        error,
    }
}

/// A payment's or refund's posting, validated and laid out on the chart.
async fn payment_transaction(state: &AppState, body: &PaymentPosting) -> Result<NewTransaction, LedgerError> {
    let reference = Reference::parse(&body.reference)?;
    if !contract::ids::has_prefix(&body.merchant_id, contract::ids::USER) {
        return Err(InputError::MerchantId.into());
    }
    let amount = Amount::parse(body.amount)?;
    let currency = Currency::parse(&body.currency).map_err(InputError::from)?;
    let split = fee_split(body.kind, amount, body.fee, body.net)?;
    let accounts = state
        .chart
        .payment_accounts(&state.db, &body.merchant_id, currency)
        .await?;
    let leg = |account: &str, direction, amount: i64| {
        Amount::parse(amount).ok().map(|amount| Leg {
            account_id: account.to_owned(),
            direction,
            amount,
            currency,
        })
    };
    use contract::ledger::Direction::{Credit, Debit};
    let legs: Vec<Leg> = match (body.kind, split) {
        (PaymentPostingKind::Payment, Some((fee, net))) => [
            leg(&accounts.clearing, Debit, amount.get()),
            leg(&accounts.merchant_balance, Credit, net),
            leg(&accounts.fee_revenue, Credit, fee),
        ]
        .into_iter()
        .flatten()
        .collect(),
        (PaymentPostingKind::Payment, None) => return Err(InputError::Fee.into()),
        (PaymentPostingKind::Refund, _) => [
            leg(&accounts.merchant_balance, Debit, amount.get()),
            leg(&accounts.clearing, Credit, amount.get()),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    let journal = Journal::new(legs)?;
    let kind = body.kind.as_str();
    let metadata: Metadata = [
        ("kind".to_owned(), kind.to_owned()),
        ("merchant_id".to_owned(), body.merchant_id.clone()),
    ]
    .into();
    let description = format!("{kind} {}", reference.as_str());
    let mut request = json!({
        "merchant_id": body.merchant_id,
        "kind": kind,
        "amount": amount.get(),
        "currency": currency.code(),
    });
    // Part of the fingerprint: the same reference posted again with another
    // fee is a conflict, not a replay.
    if let Some((fee, _)) = split {
        request["fee"] = json!(fee);
    }
    Ok(NewTransaction {
        poster: PAYMENTS_POSTER.to_owned(),
        request,
        reference,
        description: Description::parse(Some(&description))?,
        metadata,
        reverses: None,
        journal,
    })
}

/// A payment's (fee, net), checked: both present, neither negative, adding up
/// to the amount. A refund carries neither.
fn fee_split(
    kind: PaymentPostingKind,
    amount: Amount,
    fee: Option<i64>,
    net: Option<i64>,
) -> Result<Option<(i64, i64)>, InputError> {
    match (kind, fee, net) {
        (PaymentPostingKind::Refund, None, None) => Ok(None),
        (PaymentPostingKind::Payment, Some(fee), Some(net))
            if fee >= 0 && net >= 0 && fee <= amount.get() && fee.checked_add(net) == Some(amount.get()) =>
        {
            Ok(Some((fee, net)))
        }
        _ => Err(InputError::Fee),
    }
}

/// Debits and credits over every entry, per currency: equal, always. For
/// operators only: it sums every user's books.
#[tracing::instrument(skip_all)]
pub async fn trial_balance(
    State(state): State<AppState>,
    _ops: ServiceCaller<FromOps>,
) -> Result<Json<Vec<TrialBalanceLine>>, LedgerError> {
    let rows = store::accounts::trial_balance(&state.db).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(currency, debits, credits)| TrialBalanceLine {
                currency,
                debits,
                credits,
            })
            .collect(),
    ))
}

/// Payments looks up what it posted under a payment's or a refund's id.
#[tracing::instrument(skip_all, fields(reference = %reference))]
pub async fn transaction_by_reference(
    State(state): State<AppState>,
    _payments: ServiceCaller<FromPayments>,
    Path(reference): Path<String>,
) -> Result<Json<Transaction>, LedgerError> {
    let stored = posting::load_by_reference(&state.db, PAYMENTS_POSTER, &reference)
        .await?
        .ok_or(LedgerError::TransactionNotFound)?;
    Ok(Json(stored.transaction))
}
