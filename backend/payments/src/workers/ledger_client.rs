//! Payments' side of the ledger's `POST /internal/payment-postings`.

use std::time::Duration;

use contract::internal::PaymentPosting;
use contract::ledger::Transaction;
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
}

impl PostingCallError {
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
            Self::Unreachable(_) | Self::BadAnswer(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LedgerClient {
    http: reqwest::Client,
    url: String,
    tokens: InternalTokens,
}

impl LedgerClient {
    pub fn new(config: &crate::PaymentsSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: format!(
                "{}{}",
                config.ledger_url.trim_end_matches('/'),
                contract::internal::paths::PAYMENT_POSTINGS
            ),
            tokens: InternalTokens::new(&config.internal_token_secret),
        }
    }

    /// Posts once; the ledger answers the same transaction for a reference it
    /// already recorded, so retrying after any failure cannot post twice.
    pub async fn post(&self, posting: &PaymentPosting) -> Result<String, PostingCallError> {
        let token = self.tokens.mint(&Caller::Service(Service::Payments));
        let response = self
            .http
            .post(&self.url)
            .header(HEADER, token)
            .json(posting)
            .send()
            .await
            .map_err(PostingCallError::Unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let body: String = response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect();
            return Err(PostingCallError::Refused { status, body });
        }
        let posted: Transaction = response.json().await.map_err(PostingCallError::BadAnswer)?;
        Ok(posted.id)
    }
}
