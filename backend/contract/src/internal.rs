//! What only the services say to each other: the bodies of the `/internal`
//! routes and the messages on Redis. The public client never needs these, so
//! they stay behind the `internal` feature.

use serde::{Deserialize, Serialize};

use crate::auth::REDACTED;
use crate::error::ErrorDetail;
use crate::events::Event;

/// The `/internal` routes, named once for the service that answers and the
/// one that calls.
pub mod paths {
    /// Auth answers the gateway: whose key is this?
    pub const VERIFY_API_KEY: &str = "/internal/api-keys/verify";
    /// Payments answers the gateway: an owner's events after a sequence number.
    pub const EVENTS_SINCE: &str = "/internal/events/since";
    /// The ledger answers payments: post a payment or a refund once.
    pub const PAYMENT_POSTINGS: &str = "/internal/payment-postings";
    /// The ledger answers payments: many postings, each once, in few commits.
    pub const PAYMENT_POSTING_BATCHES: &str = "/internal/payment-postings/batch";
    /// The ledger answers operators: sums per currency.
    pub const TRIAL_BALANCE: &str = "/internal/trial-balance";
    /// The ledger's route; [`transaction_by_reference`] fills it in.
    pub const TRANSACTION_BY_REFERENCE: &str = "/internal/transactions/by-reference/{reference}";

    /// The path of the transaction posted under `reference` (`pay_...`,
    /// `re_...`, which need no escaping).
    pub fn transaction_by_reference(reference: &str) -> String {
        TRANSACTION_BY_REFERENCE.replace("{reference}", reference)
    }
}

/// Gateway -> auth: is this API key good, and whose is it?
#[derive(Clone, Serialize, Deserialize)]
pub struct VerifyApiKeyRequest {
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedApiKey {
    pub key_id: String,
    pub user_id: String,
}

/// Published on Redis when a key is revoked, so that every cache drops it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub key_id: String,
    pub user_id: String,
}

impl std::fmt::Debug for VerifyApiKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyApiKeyRequest")
            .field("key", &REDACTED)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentPostingKind {
    Payment,
    Refund,
}

impl PaymentPostingKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Refund => "refund",
        }
    }
}

/// Payments -> ledger: post a succeeded payment or a refund, once per reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPosting {
    /// `pay_...` for a payment, `re_...` for a refund.
    pub reference: String,
    pub merchant_id: String,
    pub kind: PaymentPostingKind,
    pub amount: i64,
    pub currency: String,
    /// A payment's fee as payments stamped it when the payment succeeded;
    /// the ledger checks `amount = net + fee` rather than computing it.
    /// Absent on a refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// What the merchant is credited for a payment; absent on a refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<i64>,
}

/// The most postings one [`PaymentPostingBatch`] may carry.
pub const MAX_PAYMENT_POSTINGS_PER_BATCH: usize = 500;

/// Payments -> ledger: post each of these once, as the single route would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPostingBatch {
    pub postings: Vec<PaymentPosting>,
}

/// The ledger's answer to a [`PaymentPostingBatch`]: one outcome per
/// posting, in the batch's order. A refused posting does not keep the others
/// of its batch from being posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPostingBatchOutcome {
    pub outcomes: Vec<PaymentPostingOutcome>,
}

/// What the single route would have answered for one posting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPostingOutcome {
    pub reference: String,
    /// 201 posted now, 200 posted before under this reference, 4xx refused,
    /// 5xx not posted this time (retry it).
    pub status: u16,
    /// The transaction, on a 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Why not, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Sums over every entry of one currency; debits always equal credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialBalanceLine {
    pub currency: String,
    pub debits: i64,
    pub credits: i64,
}

/// What payments publishes on the Redis events channel, one per event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedEvent {
    pub owner_id: String,
    pub event: Event,
    /// True when a user asked for the event to be sent again.
    #[serde(default)]
    pub resend: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_path_is_under_internal() {
        for path in [
            paths::VERIFY_API_KEY,
            paths::EVENTS_SINCE,
            paths::PAYMENT_POSTINGS,
            paths::PAYMENT_POSTING_BATCHES,
            paths::TRIAL_BALANCE,
            paths::TRANSACTION_BY_REFERENCE,
        ] {
            assert!(path.starts_with("/internal/"), "{path}");
        }
        assert_eq!(
            paths::transaction_by_reference("pay_1"),
            "/internal/transactions/by-reference/pay_1"
        );
    }

    #[test]
    fn debug_never_prints_the_key_being_verified() {
        let secret = "s3cr3t-value-that-must-not-print";
        let printed = format!(
            "{:?}",
            VerifyApiKeyRequest {
                key: format!("{}{secret}", crate::auth::API_KEY_PREFIX),
            }
        );
        assert!(!printed.contains(secret), "{printed}");
        assert!(printed.contains(REDACTED), "{printed}");
    }

    #[test]
    fn posting_kinds_are_snake_case_on_the_wire() {
        let json = serde_json::to_string(&PaymentPostingKind::Refund).expect("json");
        assert_eq!(json, "\"refund\"");
        assert_eq!(PaymentPostingKind::Payment.as_str(), "payment");
    }
}
