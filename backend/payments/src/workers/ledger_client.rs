//! Payments' side of the ledger's `POST /internal/payment-postings/batch`.

use std::time::Duration;

use contract::internal::{
    PaymentPosting, PaymentPostingBatch, PaymentPostingBatchOutcome, PaymentPostingOutcome,
};
use platform::internal_token::{Caller, HEADER, InternalTokens, Service};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PostingCallError {
    #[error("the ledger is unreachable")]
    Unreachable(#[source] reqwest::Error),
    #[error("the ledger refused the posting with {status}: {body}")]
    Refused {
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("the ledger's answer is not a transaction")]
    BadAnswer(#[source] reqwest::Error),
    #[error("the batch call failed: {0}")]
    BatchFailed(String),
    #[error("the ledger answered {answered} outcomes for a batch of {sent} postings")]
    Mismatched { sent: usize, answered: usize },
}

impl PostingCallError {
    /// One posting's share of a batch call that failed whole: a refusal of
    /// the whole body stays a refusal of each posting, anything else is retried.
    pub fn share(&self) -> Self {
        match self {
            Self::Refused { status, body } => Self::Refused {
                status: *status,
                body: body.clone(),
            },
            other => Self::BatchFailed(platform::error::error_chain(other)),
        }
    }

    /// The ledger understood the posting and will not take it as sent: a
    /// 4xx other than a timeout or a rate limit. Retrying the same body
    /// cannot help, so such a posting is dead-lettered after a few tries.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Refused { status, .. } => {
                status.is_client_error()
                    && *status != reqwest::StatusCode::REQUEST_TIMEOUT
                    && *status != reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unreachable(_) | Self::BadAnswer(_) | Self::BatchFailed(_) | Self::Mismatched { .. } => {
                false
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct LedgerClient {
    http: reqwest::Client,
    batch_url: String,
    tokens: InternalTokens,
}

impl LedgerClient {
    pub fn new(config: &crate::PaymentsSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let base = config.ledger_url.trim_end_matches('/');
        Self {
            http,
            batch_url: format!("{base}{}", contract::internal::paths::PAYMENT_POSTING_BATCHES),
            tokens: InternalTokens::new(&config.internal_token_secret),
        }
    }

    /// Posts many at once, in as few ledger commits as it takes; one
    /// outcome per posting, in order. The ledger records a reference once
    /// and answers the same transaction again, so any of them may be sent
    /// again whatever happened to the call.
    pub async fn post_batch(
        &self,
        postings: Vec<PaymentPosting>,
    ) -> Result<Vec<PaymentPostingOutcome>, PostingCallError> {
        let sent = postings.len();
        let token = self.tokens.mint(&Caller::Service(Service::Payments));
        let response = self
            .http
            .post(&self.batch_url)
            .header(HEADER, token)
            .json(&PaymentPostingBatch { postings })
            .send()
            .await
            .map_err(PostingCallError::Unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(refused(status, response).await);
        }
        let answer: PaymentPostingBatchOutcome =
            response.json().await.map_err(PostingCallError::BadAnswer)?;
        if answer.outcomes.len() != sent {
            return Err(PostingCallError::Mismatched {
                sent,
                answered: answer.outcomes.len(),
            });
        }
        Ok(answer.outcomes)
    }
}

async fn refused(status: reqwest::StatusCode, response: reqwest::Response) -> PostingCallError {
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    PostingCallError::Refused { status, body }
}

/// One posting's outcome in a batch, as the single call would have ended.
pub fn outcome_result(outcome: PaymentPostingOutcome) -> Result<String, PostingCallError> {
    let status =
        reqwest::StatusCode::from_u16(outcome.status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    match outcome.transaction_id {
        Some(id) if status.is_success() => Ok(id),
        _ => Err(PostingCallError::Refused {
            status,
            body: outcome
                .error
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_default(),
        }),
    }
}
