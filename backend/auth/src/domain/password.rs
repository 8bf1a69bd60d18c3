/// bcrypt reads at most 72 bytes; longer passwords would be silently
/// truncated, so they are refused instead.
pub const MAX_PASSWORD_BYTES: usize = 72;
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A password that meets the policy. Never logged: no `Debug` of its content.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    Short,
    #[error("a password can be at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)")]
    Long,
    #[error("a password cannot be only spaces or one repeated character")]
    Simple,
}

impl platform::error::InvalidInput for PasswordError {
    fn code(&self) -> &'static str {
        match self {
            Self::Long => contract::auth::codes::PASSWORD_TOO_LONG,
            Self::Short | Self::Simple => contract::auth::codes::PASSWORD_TOO_WEAK,
        }
    }

    fn param(&self) -> &'static str {
        "password"
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Self, PasswordError> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::Long);
        }
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::Short);
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if raw.trim().is_empty() || chars.all(|c| Some(c) == first) {
            return Err(PasswordError::Simple);
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_the_policy() {
        assert_eq!(Password::parse("short".into()).err(), Some(PasswordError::Short));
        assert_eq!(Password::parse("a".repeat(73)).err(), Some(PasswordError::Long));
        // The limit is in bytes: 23 three-byte characters and 3 letters are 72.
        assert!(Password::parse(format!("{}abc", "€".repeat(23))).is_ok());
        assert_eq!(
            Password::parse(format!("{}abcd", "€".repeat(23))).err(),
            Some(PasswordError::Long)
        );
        assert_eq!(
            Password::parse("aaaaaaaaaaaa".into()).err(),
            Some(PasswordError::Simple)
        );
        assert!(Password::parse("correct horse battery".into()).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let password = Password::parse("correct horse battery".into()).expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
