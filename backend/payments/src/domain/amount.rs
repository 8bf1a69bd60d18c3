use contract::payments::MAX_AMOUNT;

/// A positive amount in a currency's minor unit, small enough that fee
/// arithmetic cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("amount must be a whole number of minor units from 1 to {MAX_AMOUNT}, not {0}")]
pub struct AmountError(pub i64);

impl platform::error::InvalidInput for AmountError {
    fn code(&self) -> &'static str {
        contract::payments::codes::INVALID_AMOUNT
    }

    fn param(&self) -> &'static str {
        "amount"
    }
}

impl Amount {
    pub fn parse(value: i64) -> Result<Self, AmountError> {
        if (1..=MAX_AMOUNT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(AmountError(value))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bounds() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(-1).is_err());
        assert_eq!(Amount::parse(1).map(Amount::get), Ok(1));
        assert_eq!(Amount::parse(MAX_AMOUNT).map(Amount::get), Ok(MAX_AMOUNT));
        assert!(Amount::parse(MAX_AMOUNT + 1).is_err());
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_positive_range(value in any::<i64>()) {
            let parsed = Amount::parse(value);
            prop_assert_eq!(parsed.is_ok(), value > 0 && value <= MAX_AMOUNT);
            if let Ok(amount) = parsed {
                prop_assert_eq!(amount.get(), value);
            }
        }
    }
}
