use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::events::EventType;
use contract::internal::PublishedEvent;
use contract::list::PageParams;
use contract::money::Currency;
use contract::payments::{
    ConfirmPaymentRequest, CreatePaymentRequest, CreateRefundRequest, ListPaymentsParams, Payment,
    PaymentFilter, PaymentStatus, Refund, RefundStatus,
};
use contract::{ErrorBody, List};
use platform::error::{Json, Query};
use platform::internal_token::UserCaller;
use serde::Deserialize;
use sqlx::PgConnection;

use super::idempotency::{Answer, IdempotentPost, KeyClaim, answered};
use crate::domain::{
    Action, Amount, CustomerEmail, Description, FeeSchedule, Metadata, TestPaymentMethod, allowed, transition,
};
use crate::failpoints;
use crate::store::{self, NewEvent};
use crate::{AppState, PaymentsError};

pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve))
        .routes(routes!(confirm))
        .routes(routes!(cancel))
        .routes(routes!(refund, list_refunds))
}

/// Runs a POST in its transaction under its idempotency key; once it has
/// committed, hands its event to the publisher and wakes the posting worker.
macro_rules! run_post {
    ($state:expr, $post:expr, |$tx:ident| $body:expr) => {{
        let mut $tx = match $post.begin(&$state.db).await? {
            KeyClaim::Run(tx) => tx,
            KeyClaim::Replay(stored) => return Ok(stored.into_response()),
        };
        let (outcome, event) = match $body.await {
            Ok(Changed { answer, event }) => (Ok(answer), Some(event)),
            Err(e) => (Err(e), None),
        };
        let response = $post.finish_stored($tx, outcome).await?;
        if let Some(event) = event {
            $state.events.committed(event);
        }
        $state.wake.postings.notify_one();
        Ok(response)
    }};
}

/// What a POST that changed something answers (already stored under its
/// key, with the change), and the event it appended.
struct Changed {
    answer: Answer,
    event: PublishedEvent,
}

#[utoipa::path(
    post,
    path = "/v1/payments",
    operation_id = "create_payment",
    tag = "payments",
    request_body = CreatePaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry (at most 255 characters).")),
    responses(
        (status = 201, description = "The payment, waiting for confirmation.", body = Payment),
        (status = 400, description = "A parameter is not valid.", body = ErrorBody),
        (status = 409, description = "A request with this key is still running.", body = ErrorBody),
        (status = 422, description = "The key was used for another request.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %post.owner_id))]
pub async fn create(State(state): State<AppState>, post: IdempotentPost) -> Result<Response, PaymentsError> {
    run_post!(state, post, |tx| create_in(&mut tx, &post))
}

async fn create_in(conn: &mut PgConnection, post: &IdempotentPost) -> Result<Changed, PaymentsError> {
    let request: CreatePaymentRequest = post.json()?;
    let amount = Amount::parse(request.amount)?;
    let currency = Currency::parse(&request.currency)?;
    let description = request
        .description
        .as_deref()
        .map(Description::parse)
        .transpose()?
        .flatten();
    let metadata = Metadata::parse(request.metadata.unwrap_or_default())?;
    let customer_email = request
        .customer_email
        .as_deref()
        .map(CustomerEmail::parse)
        .transpose()?;
    let at = store::now();
    let payment = Payment {
        id: platform::ids::new_id(contract::ids::PAYMENT),
        object: contract::payments::PAYMENT_OBJECT.into(),
        amount: amount.get(),
        amount_refunded: 0,
        currency: currency.code().into(),
        status: PaymentStatus::RequiresConfirmation,
        description: description.map(Description::into_inner),
        metadata: metadata.into_inner(),
        customer_email: customer_email.map(CustomerEmail::into_inner),
        payment_method: None,
        failure_code: None,
        failure_message: None,
        ledger_transaction_id: None,
        fee: None,
        created_at: at,
    };
    let event = NewEvent {
        owner_id: &post.owner_id,
        kind: EventType::PaymentCreated,
        object_id: &payment.id,
        object: serde_json::to_value(&payment)?,
        at,
    };
    let answer = post.answer(StatusCode::CREATED, &payment)?;
    let event = answered(store::create_payment(conn, &payment, event, post.stored(&answer)).await)?;
    tracing::info!(payment_id = %payment.id, amount = payment.amount, currency = %payment.currency, "created payment");
    Ok(Changed { answer, event })
}

#[utoipa::path(
    post,
    path = "/v1/payments/{id}/confirm",
    operation_id = "confirm_payment",
    tag = "payments",
    request_body = ConfirmPaymentRequest,
    params(
        ("id" = String, Path, description = "The payment id, pay_..."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry."),
    ),
    responses(
        (status = 200, description = "The payment, succeeded or failed with a failure_code.", body = Payment),
        (status = 400, description = "Unknown payment method, or the payment cannot be confirmed (payment_not_confirmable).", body = ErrorBody),
        (status = 404, description = "No such payment.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %post.owner_id, payment_id = %id))]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: IdempotentPost,
) -> Result<Response, PaymentsError> {
    run_post!(state, post, |tx| confirm_in(&mut tx, &post, &id, &state.fees))
}

async fn confirm_in(
    conn: &mut PgConnection,
    post: &IdempotentPost,
    id: &str,
    fees: &FeeSchedule,
) -> Result<Changed, PaymentsError> {
    let request: ConfirmPaymentRequest = post.json()?;
    let method = TestPaymentMethod::parse(&request.payment_method)?;
    let mut payment = store::lock_payment(conn, &post.owner_id, id)
        .await?
        .ok_or(PaymentsError::PaymentNotFound)?;
    if !allowed(Action::Confirm, payment.status) {
        return Err(PaymentsError::NotConfirmable {
            status: payment.status,
        });
    }
    failpoints::die_at(failpoints::CONFIRM_LOCKED);
    // A test method answers at once, so the payment passes through
    // processing to its outcome inside this transaction: no other request
    // ever sees it processing, and no crash can leave it there.
    payment.status = PaymentStatus::Processing;
    payment.payment_method = Some(method.name().into());
    let (status, event) = match method.failure() {
        None => {
            // Decided here, once, and stored: the ledger posting carries it
            // and nothing ever recomputes it.
            let amount = Amount::parse(payment.amount)?;
            let currency = Currency::parse(&payment.currency)?;
            payment.fee = Some(fees.fee(amount, currency));
            (PaymentStatus::Succeeded, EventType::PaymentSucceeded)
        }
        Some(code) => {
            payment.failure_code = Some(code);
            payment.failure_message = Some(code.message().into());
            (PaymentStatus::Failed, EventType::PaymentFailed)
        }
    };
    debug_assert!(transition(payment.status, status));
    payment.status = status;
    let event = NewEvent {
        owner_id: &post.owner_id,
        kind: event,
        object_id: &payment.id,
        object: serde_json::to_value(&payment)?,
        at: store::now(),
    };
    let answer = post.answer(StatusCode::OK, &payment)?;
    let event = answered(store::settle_payment(conn, &payment, event, post.stored(&answer)).await)?;
    failpoints::die_at(failpoints::CONFIRM_SETTLED);
    tracing::info!(status = %payment.status, method = method.name(), "confirmed payment");
    Ok(Changed { answer, event })
}

/// Cancel takes no parameters; anything sent is refused rather than ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

#[utoipa::path(
    post,
    path = "/v1/payments/{id}/cancel",
    operation_id = "cancel_payment",
    tag = "payments",
    params(
        ("id" = String, Path, description = "The payment id, pay_..."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry."),
    ),
    responses(
        (status = 200, description = "The canceled payment.", body = Payment),
        (status = 400, description = "The payment is past cancellation (payment_not_cancelable).", body = ErrorBody),
        (status = 404, description = "No such payment.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %post.owner_id, payment_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: IdempotentPost,
) -> Result<Response, PaymentsError> {
    run_post!(state, post, |tx| cancel_in(&mut tx, &post, &id))
}

async fn cancel_in(
    conn: &mut PgConnection,
    post: &IdempotentPost,
    id: &str,
) -> Result<Changed, PaymentsError> {
    let NoParameters {} = post.json()?;
    let mut payment = store::lock_payment(conn, &post.owner_id, id)
        .await?
        .ok_or(PaymentsError::PaymentNotFound)?;
    if !allowed(Action::Cancel, payment.status) {
        return Err(PaymentsError::NotCancelable {
            status: payment.status,
        });
    }
    payment.status = PaymentStatus::Canceled;
    let event = NewEvent {
        owner_id: &post.owner_id,
        kind: EventType::PaymentCanceled,
        object_id: &payment.id,
        object: serde_json::to_value(&payment)?,
        at: store::now(),
    };
    let answer = post.answer(StatusCode::OK, &payment)?;
    let event = answered(store::settle_payment(conn, &payment, event, post.stored(&answer)).await)?;
    tracing::info!("canceled payment");
    Ok(Changed { answer, event })
}

#[utoipa::path(
    post,
    path = "/v1/payments/{id}/refunds",
    operation_id = "create_refund",
    tag = "payments",
    request_body = CreateRefundRequest,
    params(
        ("id" = String, Path, description = "The payment id, pay_..."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry."),
    ),
    responses(
        (status = 201, description = "The refund; without an amount, the rest of the payment.", body = Refund),
        (status = 400, description = "The payment has not succeeded (payment_not_refundable), or the amount exceeds what is left (refund_exceeds_payment).", body = ErrorBody),
        (status = 404, description = "No such payment.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %post.owner_id, payment_id = %id))]
pub async fn refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: IdempotentPost,
) -> Result<Response, PaymentsError> {
    run_post!(state, post, |tx| refund_in(&mut tx, &post, &id))
}

async fn refund_in(
    conn: &mut PgConnection,
    post: &IdempotentPost,
    id: &str,
) -> Result<Changed, PaymentsError> {
    let request: CreateRefundRequest = post.json()?;
    let requested = request.amount.map(Amount::parse).transpose()?;
    let mut payment = store::lock_payment(conn, &post.owner_id, id)
        .await?
        .ok_or(PaymentsError::PaymentNotFound)?;
    if !allowed(Action::Refund, payment.status) {
        return Err(PaymentsError::NotRefundable {
            status: payment.status,
        });
    }
    let remaining = payment.amount - payment.amount_refunded;
    if remaining == 0 {
        return Err(PaymentsError::FullyRefunded);
    }
    let amount = requested.map_or(remaining, Amount::get);
    if amount > remaining {
        return Err(PaymentsError::RefundExceedsPayment {
            requested: amount,
            remaining,
        });
    }
    let at = store::now();
    let refund = Refund {
        id: platform::ids::new_id(contract::ids::REFUND),
        object: contract::payments::REFUND_OBJECT.into(),
        payment: payment.id.clone(),
        amount,
        currency: payment.currency.clone(),
        status: RefundStatus::Succeeded,
        ledger_transaction_id: None,
        created_at: at,
    };
    payment.amount_refunded += amount;
    let event = NewEvent {
        owner_id: &post.owner_id,
        kind: EventType::PaymentRefunded,
        object_id: &payment.id,
        object: serde_json::to_value(&payment)?,
        at,
    };
    let answer = post.answer(StatusCode::CREATED, &refund)?;
    let stored = post.stored(&answer);
    let event = answered(store::refund_payment(conn, &refund, payment.amount_refunded, event, stored).await)?;
    tracing::info!(refund_id = %refund.id, amount, "refunded payment");
    Ok(Changed { answer, event })
}

#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    operation_id = "retrieve_payment",
    tag = "payments",
    params(("id" = String, Path, description = "The payment id, pay_...")),
    responses(
        (status = 200, body = Payment),
        (status = 404, description = "No such payment.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %caller.user_id, payment_id = %id))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
) -> Result<Json<Payment>, PaymentsError> {
    store::get_payment(&state.db, &caller.user_id, &id)
        .await?
        .map(Json)
        .ok_or(PaymentsError::PaymentNotFound)
}

#[utoipa::path(
    get,
    path = "/v1/payments",
    operation_id = "list_payments",
    tag = "payments",
    params(PageParams, PaymentFilter),
    responses(
        (status = 200, description = "Newest first.", body = List<Payment>),
        (status = 400, description = "A bad limit or status.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %caller.user_id))]
pub async fn list(
    State(state): State<AppState>,
    caller: UserCaller,
    Query(params): Query<ListPaymentsParams>,
) -> Result<Json<List<Payment>>, PaymentsError> {
    let limit = platform::error::page_limit(params.page.limit)?;
    let status = params
        .filter
        .status
        .as_deref()
        .map(|s| PaymentStatus::parse(s).ok_or_else(|| PaymentsError::InvalidStatus(s.to_owned())))
        .transpose()?;
    let rows = store::list_payments(
        &state.db,
        &caller.user_id,
        status,
        params.page.starting_after.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(List::from_overfetched(rows, limit as usize)))
}

#[utoipa::path(
    get,
    path = "/v1/payments/{id}/refunds",
    operation_id = "list_refunds",
    tag = "payments",
    params(("id" = String, Path, description = "The payment id, pay_..."), PageParams),
    responses(
        (status = 200, description = "The payment's refunds, newest first.", body = List<Refund>),
        (status = 404, description = "No such payment.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(owner_id = %caller.user_id, payment_id = %id))]
pub async fn list_refunds(
    State(state): State<AppState>,
    caller: UserCaller,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Refund>>, PaymentsError> {
    let limit = platform::error::page_limit(page.limit)?;
    if store::get_payment(&state.db, &caller.user_id, &id)
        .await?
        .is_none()
    {
        return Err(PaymentsError::PaymentNotFound);
    }
    let rows = store::list_refunds(
        &state.db,
        &caller.user_id,
        &id,
        page.starting_after.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(List::from_overfetched(rows, limit as usize)))
}
