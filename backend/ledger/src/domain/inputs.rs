use contract::ledger::{Metadata, codes};
use contract::money::UnknownCurrency;

/// The largest amount one entry may carry: far above any real payment, and
/// low enough that balances cannot overflow a 64-bit integer in practice.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
const MAX_REFERENCE_CHARS: usize = 255;
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1000;
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// A request that cannot be accepted as sent; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("amount must be a whole number of minor units from 1 to {MAX_AMOUNT}, not {0}")]
    Amount(i64),
    #[error("reference must have 1 to {MAX_REFERENCE_CHARS} characters and no control characters")]
    Reference,
    #[error("name must have 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error("description may have at most {MAX_DESCRIPTION_CHARS} characters")]
    Description,
    #[error("metadata: {0}")]
    Metadata(String),
    #[error(transparent)]
    Currency(#[from] UnknownCurrency),
    #[error("merchant_id must be a user id (usr_...)")]
    MerchantId,
    #[error(
        "a payment posting carries fee and net with amount = net + fee and 0 <= fee <= amount; a refund carries neither"
    )]
    Fee,
    #[error("only asset and liability accounts can be kept from going negative")]
    GuardNotAllowed,
    #[error("a transaction needs 2 to {max} entries, not {count}", max = super::journal::MAX_LEGS)]
    EntryCount { count: usize },
    #[error(
        "a batch carries at most {max} postings, not {count}",
        max = contract::internal::MAX_PAYMENT_POSTINGS_PER_BATCH
    )]
    BatchSize { count: usize },
    #[error("debits ({debits}) and credits ({credits}) differ in {currency}")]
    Unbalanced {
        currency: String,
        debits: i64,
        credits: i64,
    },
}

impl platform::error::InvalidInput for InputError {
    fn code(&self) -> &'static str {
        match self {
            Self::Amount(_) => codes::INVALID_AMOUNT,
            Self::Reference => codes::INVALID_REFERENCE,
            Self::Name => codes::INVALID_NAME,
            Self::Description => codes::INVALID_DESCRIPTION,
            Self::Metadata(_) => codes::INVALID_METADATA,
            Self::Currency(_) => codes::INVALID_CURRENCY,
            Self::MerchantId => codes::INVALID_MERCHANT_ID,
            Self::Fee => codes::INVALID_FEE,
            Self::GuardNotAllowed => codes::INVALID_OVERDRAFT_GUARD,
            Self::EntryCount { .. } => codes::INVALID_ENTRIES,
            Self::Unbalanced { .. } => codes::TRANSACTION_UNBALANCED,
            Self::BatchSize { .. } => codes::INVALID_BATCH,
        }
    }

    fn param(&self) -> &'static str {
        match self {
            Self::Amount(_) => "amount",
            Self::Reference => "reference",
            Self::Name => "name",
            Self::Description => "description",
            Self::Metadata(_) => "metadata",
            Self::Currency(_) => "currency",
            Self::MerchantId => "merchant_id",
            Self::Fee => "fee",
            Self::GuardNotAllowed => "must_not_go_negative",
            Self::EntryCount { .. } | Self::Unbalanced { .. } => "entries",
            Self::BatchSize { .. } => "postings",
        }
    }
}

/// A positive amount of minor units, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(value: i64) -> Result<Self, InputError> {
        if (1..=MAX_AMOUNT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InputError::Amount(value))
        }
    }

    pub fn get(&self) -> i64 {
        self.0
    }
}

/// An idempotency reference, kept exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    pub fn parse(value: &str) -> Result<Self, InputError> {
        let chars = value.chars().count();
        if chars == 0 || chars > MAX_REFERENCE_CHARS || value.chars().any(char::is_control) {
            return Err(InputError::Reference);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account's name, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(value: &str) -> Result<Self, InputError> {
        let name = value.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(InputError::Name);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional free-text description; an empty one is no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(Option<String>);

impl Description {
    pub fn parse(value: Option<&str>) -> Result<Self, InputError> {
        match value {
            None | Some("") => Ok(Self(None)),
            Some(text) if text.chars().count() <= MAX_DESCRIPTION_CHARS => Ok(Self(Some(text.to_owned()))),
            Some(_) => Err(InputError::Description),
        }
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// Stripe's limits: up to 50 keys of up to 40 characters, values of up to 500.
pub fn parse_metadata(metadata: Metadata) -> Result<Metadata, InputError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(InputError::Metadata(format!("at most {MAX_METADATA_KEYS} keys")));
    }
    for (key, value) in &metadata {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_METADATA_KEY_CHARS {
            return Err(InputError::Metadata(format!(
                "keys must have 1 to {MAX_METADATA_KEY_CHARS} characters"
            )));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(InputError::Metadata(format!(
                "the value of {key:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(-1).is_err());
        assert!(Amount::parse(MAX_AMOUNT + 1).is_err());
        assert_eq!(Amount::parse(1).map(|a| a.get()), Ok(1));
    }

    #[test]
    fn references_refuse_empty_long_and_control_characters() {
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("a\nb").is_err());
        assert!(Reference::parse(&"x".repeat(256)).is_err());
        assert_eq!(
            Reference::parse(" pay_1 ").map(|r| r.as_str().to_owned()),
            Ok(" pay_1 ".into())
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            AccountName::parse("  cash ").map(|n| n.as_str().to_owned()),
            Ok("cash".into())
        );
        assert!(AccountName::parse("   ").is_err());
        assert!(AccountName::parse(&"n".repeat(101)).is_err());
    }

    #[test]
    fn metadata_has_limits() {
        let mut metadata = Metadata::new();
        metadata.insert("order".into(), "42".into());
        assert!(parse_metadata(metadata.clone()).is_ok());
        metadata.insert("k".repeat(41), "v".into());
        assert!(parse_metadata(metadata).is_err());
        let many: Metadata = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(parse_metadata(many).is_err());
    }

    proptest! {
        #[test]
        fn an_amount_is_accepted_exactly_in_range(value in any::<i64>()) {
            prop_assert_eq!(Amount::parse(value).is_ok(), (1..=MAX_AMOUNT).contains(&value));
        }
    }
}
