/// An email address, trimmed and lower-cased, with a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct EmailError(&'static str);

impl platform::error::InvalidInput for EmailError {
    fn code(&self) -> &'static str {
        contract::auth::codes::INVALID_EMAIL
    }

    fn param(&self) -> &'static str {
        "email"
    }
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError("an email address is required"));
        }
        if email.len() > 254 {
            return Err(EmailError("an email address has at most 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError("an email address needs an @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(EmailError("the part before the @ must have 1 to 64 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) || domain.contains('@') {
            return Err(EmailError("an email address has no spaces and one @"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError("the domain of the email address is not valid"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").expect("valid").as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@-x.com",
            "ada@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(raw in "[a-zA-Z0-9._+ -]{0,20}@[a-zA-Z0-9-]{1,10}\\.[a-zA-Z]{2,5}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
            }
        }

        #[test]
        fn never_panics(raw in "\\PC{0,300}") {
            let _ = Email::parse(&raw);
        }
    }
}
