use contract::payments::{FailureCode, TEST_PAYMENT_METHODS};

/// One of the test payment methods; its name decides the confirmation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPaymentMethod {
    name: &'static str,
    outcome: Option<FailureCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no such test payment method: {0:?}; try pm_card_visa or pm_card_chargeDeclined")]
pub struct UnknownPaymentMethod(pub String);

impl platform::error::InvalidInput for UnknownPaymentMethod {
    fn code(&self) -> &'static str {
        contract::payments::codes::UNKNOWN_PAYMENT_METHOD
    }

    fn param(&self) -> &'static str {
        "payment_method"
    }
}

impl TestPaymentMethod {
    pub fn parse(raw: &str) -> Result<Self, UnknownPaymentMethod> {
        TEST_PAYMENT_METHODS
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(name, outcome)| Self {
                name,
                outcome: *outcome,
            })
            .ok_or_else(|| UnknownPaymentMethod(raw.chars().take(100).collect()))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `None` when the charge goes through, else why it is declined.
    pub fn failure(&self) -> Option<FailureCode> {
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_methods_decide_the_outcome() {
        assert_eq!(
            TestPaymentMethod::parse("pm_card_visa").map(|m| m.failure()),
            Ok(None)
        );
        assert_eq!(
            TestPaymentMethod::parse("pm_card_chargeDeclined").map(|m| m.failure()),
            Ok(Some(FailureCode::CardDeclined))
        );
        assert_eq!(
            TestPaymentMethod::parse("pm_card_insufficientFunds").map(|m| m.failure()),
            Ok(Some(FailureCode::InsufficientFunds))
        );
        assert!(TestPaymentMethod::parse("pm_card_VISA").is_err());
        assert!(TestPaymentMethod::parse("").is_err());
    }
}
