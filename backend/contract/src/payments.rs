//! Payments and refunds as they travel on the wire, the test payment methods
//! that decide a confirmation's outcome, and the codes a failure carries.

use std::collections::BTreeMap;

use crate::list::PageParams;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The object name of a payment, as `object` carries it.
pub const PAYMENT_OBJECT: &str = "payment";
/// The object name of a refund.
pub const REFUND_OBJECT: &str = "refund";
/// The header that makes a POST safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set on an answer replayed from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// Metadata limits, as Stripe has them: a small bag of strings.
pub const MAX_METADATA_KEYS: usize = 50;
pub const MAX_METADATA_KEY_LENGTH: usize = 40;
pub const MAX_METADATA_VALUE_LENGTH: usize = 500;
pub const MAX_DESCRIPTION_LENGTH: usize = 1000;
/// The largest amount accepted in minor units; it keeps fee arithmetic far from overflow.
pub const MAX_AMOUNT: i64 = 999_999_999_999;

/// Where a payment is in its life:
/// `requires_confirmation -> processing -> succeeded | failed`, or `-> canceled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    RequiresConfirmation,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        Self::RequiresConfirmation,
        Self::Processing,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequiresConfirmation => "requires_confirmation",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a confirmation failed, as `failure_code` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
    ProcessingError,
}

impl FailureCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ExpiredCard => "expired_card",
            Self::ProcessingError => "processing_error",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::CardDeclined,
            Self::InsufficientFunds,
            Self::ExpiredCard,
            Self::ProcessingError,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// What a person is told.
    pub fn message(&self) -> &'static str {
        match self {
            Self::CardDeclined => "Your card was declined.",
            Self::InsufficientFunds => "Your card has insufficient funds.",
            Self::ExpiredCard => "Your card has expired.",
            Self::ProcessingError => "An error occurred while processing your card. Try again.",
        }
    }
}

/// The test payment methods and the outcome each one forces.
pub const TEST_PAYMENT_METHODS: &[(&str, Option<FailureCode>)] = &[
    ("pm_card_visa", None),
    ("pm_card_mastercard", None),
    ("pm_card_amex", None),
    ("pm_card_chargeDeclined", Some(FailureCode::CardDeclined)),
    ("pm_card_insufficientFunds", Some(FailureCode::InsufficientFunds)),
    (
        "pm_card_chargeDeclinedExpiredCard",
        Some(FailureCode::ExpiredCard),
    ),
    (
        "pm_card_chargeDeclinedProcessingError",
        Some(FailureCode::ProcessingError),
    ),
];

/// `{id: "pay_...", object: "payment", amount, amount_refunded, currency, status, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Payment {
    pub id: String,
    /// Always `payment`.
    pub object: String,
    /// In the currency's minor unit (cents for usd, yen for jpy).
    pub amount: i64,
    pub amount_refunded: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    pub status: PaymentStatus,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub customer_email: Option<String>,
    /// The test payment method the payment was confirmed with.
    pub payment_method: Option<String>,
    pub failure_code: Option<FailureCode>,
    pub failure_message: Option<String>,
    /// Set once the ledger has recorded the successful payment.
    pub ledger_transaction_id: Option<String>,
    /// The platform's fee in the currency's minor unit, decided once when the
    /// payment succeeds and never recomputed; null before that.
    #[serde(default)]
    pub fee: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/payments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    /// A positive integer in the currency's minor unit.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 999_999_999_999_i64))]
    pub amount: i64,
    /// A supported ISO 4217 code, lower case.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(aud|bhd|cad|chf|dkk|eur|gbp|jpy|krw|kwd|nok|sek|usd)$")
    )]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub description: Option<String>,
    /// Up to 50 string keys (40 characters) with string values (500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub customer_email: Option<String>,
}

/// `POST /v1/payments/{id}/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfirmPaymentRequest {
    /// One of the test payment methods, e.g. `pm_card_visa`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^(pm_card_visa|pm_card_mastercard|pm_card_amex|pm_card_chargeDeclined|pm_card_insufficientFunds|pm_card_chargeDeclinedExpiredCard|pm_card_chargeDeclinedProcessingError)$"
        )
    )]
    pub payment_method: String,
}

/// `POST /v1/payments/{id}/refunds`; without an amount the rest of the payment is refunded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// At most what is left to refund, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 999_999_999_999_i64))]
    pub amount: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Succeeded,
}

/// `{id: "re_...", object: "refund", payment, amount, currency, status, created_at}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refund {
    pub id: String,
    /// Always `refund`.
    pub object: String,
    /// The id of the refunded payment.
    pub payment: String,
    pub amount: i64,
    pub currency: String,
    pub status: RefundStatus,
    /// Set once the ledger has recorded the refund.
    pub ledger_transaction_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/payments` query: a page and an optional status filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPaymentsParams {
    #[serde(flatten)]
    pub page: PageParams,
    #[serde(flatten)]
    pub filter: PaymentFilter,
}

/// Which payments a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PaymentFilter {
    /// Only payments in this status.
    #[cfg_attr(feature = "openapi", param(value_type = Option<PaymentStatus>))]
    pub status: Option<String>,
}

/// `GET /v1/events` query: a page and an optional type filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEventsParams {
    #[serde(flatten)]
    pub page: PageParams,
    #[serde(flatten)]
    pub filter: EventFilter,
}

/// Which events a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct EventFilter {
    /// Only events of this type, e.g. `payment.succeeded`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", param(rename = "type", value_type = Option<crate::events::EventType>))]
    pub kind: Option<String>,
}

/// Error codes the payments service answers with, beside the shared ones.
pub mod codes {
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    pub const INVALID_CURRENCY: &str = "invalid_currency";
    pub const INVALID_DESCRIPTION: &str = "invalid_description";
    pub const INVALID_METADATA: &str = "invalid_metadata";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const INVALID_STATUS: &str = "invalid_status";
    pub const INVALID_TYPE: &str = "invalid_type";
    pub const INVALID_LIMIT: &str = "invalid_limit";
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    pub const UNKNOWN_PAYMENT_METHOD: &str = "payment_method_unknown";
    /// Confirming a payment that no longer requires confirmation.
    pub const PAYMENT_NOT_CONFIRMABLE: &str = "payment_not_confirmable";
    /// Canceling a payment that is processing or already settled.
    pub const PAYMENT_NOT_CANCELABLE: &str = "payment_not_cancelable";
    /// Refunding a payment that has not succeeded.
    pub const PAYMENT_NOT_REFUNDABLE: &str = "payment_not_refundable";
    /// A refund larger than what is left of the payment.
    pub const REFUND_EXCEEDS_PAYMENT: &str = "refund_exceeds_payment";
    pub const IDEMPOTENCY_KEY_INVALID: &str = "idempotency_key_invalid";
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "idempotency_key_in_use";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_round_trip_through_their_names() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).expect("serialises");
            assert_eq!(json, status.as_str());
        }
        for (_, failure) in TEST_PAYMENT_METHODS {
            if let Some(code) = failure {
                assert_eq!(FailureCode::parse(code.as_str()), Some(*code));
                assert_eq!(serde_json::to_value(code).expect("serialises"), code.as_str());
            }
        }
    }

    #[test]
    fn requests_refuse_unknown_fields() {
        let parsed: Result<CreatePaymentRequest, _> =
            serde_json::from_str(r#"{"amount": 100, "currency": "usd", "amout": 1}"#);
        assert!(parsed.is_err());
    }
}
