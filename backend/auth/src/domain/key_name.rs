use contract::auth::codes;
use platform::error::InvalidInput;

const MAX_KEY_NAME_CHARS: usize = 100;

/// What a developer calls an API key, trimmed, so that a list of keys can
/// be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a key name must have 1 to {MAX_KEY_NAME_CHARS} characters")]
pub struct KeyNameError;

impl InvalidInput for KeyNameError {
    fn code(&self) -> &'static str {
        codes::INVALID_NAME
    }

    fn param(&self) -> &'static str {
        "name"
    }
}

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, KeyNameError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(KeyNameError);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds_the_name() {
        assert_eq!(KeyName::parse("  ci  ").expect("valid").as_str(), "ci");
        assert_eq!(
            KeyName::parse(&"é".repeat(100)).map(|n| n.as_str().chars().count()),
            Ok(100)
        );
        for bad in ["", "   ", &"x".repeat(101)] {
            assert_eq!(KeyName::parse(bad), Err(KeyNameError), "{bad:?}");
        }
    }
}
