use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use contract::payments::{PaymentStatus, codes};
use platform::error::{ApiError, InvalidLimit, database_error, internal_error};

use crate::domain::{
    AmountError, DescriptionError, EmailError, IdempotencyKeyError, MetadataError, UnknownPaymentMethod,
};

/// Everything payments can answer with other than success, mapped to HTTP here only.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error(transparent)]
    Currency(#[from] contract::money::UnknownCurrency),
    #[error(transparent)]
    Description(#[from] DescriptionError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    PaymentMethod(#[from] UnknownPaymentMethod),
    #[error("{0:?} is not a payment status")]
    InvalidStatus(String),
    #[error("{0:?} is not an event type")]
    InvalidEventType(String),
    #[error(transparent)]
    Limit(#[from] InvalidLimit),
    #[error("starting_after names no object of yours")]
    InvalidCursor,
    /// The body was not the JSON the route takes; rendered as the shared extractors do.
    #[error("{}", .0.body.error.message)]
    Body(ApiError),
    #[error("a payment in status {status} cannot be confirmed; only one that requires confirmation can")]
    NotConfirmable { status: PaymentStatus },
    #[error("a payment in status {status} cannot be canceled; only one that requires confirmation can")]
    NotCancelable { status: PaymentStatus },
    #[error("a payment in status {status} cannot be refunded; only a succeeded one can")]
    NotRefundable { status: PaymentStatus },
    #[error("a refund of {requested} exceeds the {remaining} left to refund on this payment")]
    RefundExceedsPayment { requested: i64, remaining: i64 },
    #[error("the payment is already refunded in full")]
    FullyRefunded,
    #[error("no such payment")]
    PaymentNotFound,
    #[error("no such event")]
    EventNotFound,
    #[error(transparent)]
    IdempotencyKey(#[from] IdempotencyKeyError),
    #[error("a request with this Idempotency-Key is still in progress; retry when it has finished")]
    IdempotencyKeyInUse,
    #[error(
        "this Idempotency-Key was already used for another request ({method} {path}); use a new key for a new request"
    )]
    IdempotencyKeyReused { method: String, path: String },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("cannot serialise a response")]
    Serialise(#[from] serde_json::Error),
}

impl PaymentsError {
    /// Whether the answer comes from executing the request (and so is kept as
    /// the answer to every retry with the same key), rather than from the
    /// request's shape being refused before anything ran, as Stripe does.
    pub fn is_outcome(&self) -> bool {
        matches!(
            self,
            Self::NotConfirmable { .. }
                | Self::NotCancelable { .. }
                | Self::NotRefundable { .. }
                | Self::RefundExceedsPayment { .. }
                | Self::FullyRefunded
                | Self::PaymentNotFound
                | Self::EventNotFound
        )
    }

    pub fn to_api_error(&self) -> ApiError {
        let message = self.to_string();
        let idempotency =
            |status, code: &str| ApiError::new(status, ErrorKind::IdempotencyError, code, &message);
        match self {
            Self::Amount(e) => ApiError::invalid_input(e),
            Self::Currency(e) => ApiError::invalid_input(e),
            Self::Description(e) => ApiError::invalid_input(e),
            Self::Metadata(e) => ApiError::invalid_input(e),
            Self::Email(e) => ApiError::invalid_input(e),
            Self::PaymentMethod(e) => ApiError::invalid_input(e),
            Self::Limit(e) => ApiError::invalid_input(e),
            Self::InvalidStatus(_) => ApiError::invalid_param(codes::INVALID_STATUS, "status", message),
            Self::InvalidEventType(_) => ApiError::invalid_param(codes::INVALID_TYPE, "type", message),
            Self::InvalidCursor => ApiError::invalid_param(codes::INVALID_CURSOR, "starting_after", message),
            Self::Body(error) => error.clone(),
            Self::NotConfirmable { .. } => ApiError::invalid(codes::PAYMENT_NOT_CONFIRMABLE, message),
            Self::NotCancelable { .. } => ApiError::invalid(codes::PAYMENT_NOT_CANCELABLE, message),
            Self::NotRefundable { .. } => ApiError::invalid(codes::PAYMENT_NOT_REFUNDABLE, message),
            Self::RefundExceedsPayment { .. } | Self::FullyRefunded => {
                ApiError::invalid_param(codes::REFUND_EXCEEDS_PAYMENT, "amount", message)
            }
            Self::PaymentNotFound => ApiError::not_found("payment"),
            Self::EventNotFound => ApiError::not_found("event"),
            Self::IdempotencyKey(_) => {
                let mut error = idempotency(StatusCode::BAD_REQUEST, codes::IDEMPOTENCY_KEY_INVALID);
                error.body = error.body.with_param("Idempotency-Key");
                error
            }
            Self::IdempotencyKeyInUse => idempotency(StatusCode::CONFLICT, codes::IDEMPOTENCY_KEY_IN_USE),
            Self::IdempotencyKeyReused { .. } => {
                idempotency(StatusCode::UNPROCESSABLE_ENTITY, codes::IDEMPOTENCY_KEY_REUSED)
            }
            Self::Database(e) => database_error("payments database", e),
            Self::Serialise(e) => internal_error("serialising a response", e),
        }
    }
}

impl IntoResponse for PaymentsError {
    fn into_response(self) -> Response {
        self.to_api_error().into_response()
    }
}
