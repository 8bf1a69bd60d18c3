/// A customer's email address, trimmed and lower-cased, with a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEmail(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("customer_email must be an email address of at most 254 characters")]
pub struct EmailError;

impl platform::error::InvalidInput for EmailError {
    fn code(&self) -> &'static str {
        contract::payments::codes::INVALID_EMAIL
    }

    fn param(&self) -> &'static str {
        "customer_email"
    }
}

impl CustomerEmail {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError);
        }
        let (local, domain) = email.split_once('@').ok_or(EmailError)?;
        let domain_ok =
            domain.contains('.') && !domain.contains('@') && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(EmailError);
        }
        Ok(Self(email))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(
            CustomerEmail::parse(" Ada@Example.com ").map(CustomerEmail::into_inner),
            Ok("ada@example.com".to_owned())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.com",
            "ada@x",
            "a b@x.com",
            "a@b@x.com",
            "ada@x..com",
        ] {
            assert!(CustomerEmail::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(raw in "\\PC{0,80}") {
            if let Ok(email) = CustomerEmail::parse(&raw) {
                prop_assert_eq!(CustomerEmail::parse(&email.clone().into_inner()), Ok(email));
            }
        }
    }
}
