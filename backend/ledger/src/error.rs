use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::ErrorKind;
use contract::ledger::codes;
use platform::error::{ApiError, InvalidLimit, database_error};

use crate::domain::InputError;

/// Everything the ledger can answer with other than success, mapped to HTTP here only.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("no such account: {0}")]
    AccountNotFound(String),
    #[error(
        "account {0} belongs to the payments chart and moves only with payments and refunds; \
         post between accounts you created"
    )]
    AccountNotPostable(String),
    #[error("no such transaction")]
    TransactionNotFound,
    #[error("the reference {0:?} was already used for a different posting")]
    ReferenceReused(String),
    #[error("transaction {original} was already reversed by {reversal}")]
    AlreadyReversed { original: String, reversal: String },
    #[error("transaction {0} was not posted by you; only your own postings can be reversed")]
    NotReversible(String),
    #[error("transaction {0} is itself a reversal; post a new transaction instead")]
    ReversalOfReversal(String),
    #[error("the posting would take account {0} below zero, and it must not go negative")]
    InsufficientFunds(String),
    #[error("no such entry in this account: {0}")]
    InvalidCursor(String),
    #[error(transparent)]
    Limit(#[from] InvalidLimit),
    #[error("the ledger is too busy to take this posting; retry it with the same reference")]
    Contention(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl LedgerError {
    pub(crate) fn to_api_error(&self) -> ApiError {
        let message = self.to_string();
        match self {
            Self::Input(e) => ApiError::invalid_input(e),
            Self::Limit(e) => ApiError::invalid_input(e),
            Self::AccountNotFound(_) => {
                let mut error = ApiError::not_found("account");
                error.body.error.message = message;
                error
            }
            Self::AccountNotPostable(_) => ApiError::invalid(codes::ACCOUNT_NOT_POSTABLE, message),
            Self::TransactionNotFound => ApiError::not_found("transaction"),
            Self::ReferenceReused(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::IdempotencyError,
                codes::REFERENCE_REUSED,
                message,
            ),
            Self::AlreadyReversed { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorKind::InvalidRequestError,
                codes::ALREADY_REVERSED,
                message,
            ),
            Self::NotReversible(_) => ApiError::invalid(codes::NOT_REVERSIBLE, message),
            Self::ReversalOfReversal(_) => ApiError::invalid(codes::REVERSAL_NOT_REVERSIBLE, message),
            Self::InsufficientFunds(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::InvalidRequestError,
                codes::INSUFFICIENT_FUNDS,
                message,
            ),
            Self::InvalidCursor(_) => {
                ApiError::invalid_param(codes::INVALID_CURSOR, "starting_after", message)
            }
            Self::Contention(e) => {
                tracing::warn!(error = %e, "gave up a posting after repeated conflicts");
                ApiError::unavailable(codes::LEDGER_BUSY, message)
            }
            Self::Database(e) => database_error("ledger database", e),
        }
    }
}

impl IntoResponse for LedgerError {
    fn into_response(self) -> Response {
        self.to_api_error().into_response()
    }
}
