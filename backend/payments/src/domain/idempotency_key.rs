use contract::payments::MAX_IDEMPOTENCY_KEY_LENGTH;

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("the Idempotency-Key header is empty")]
    Empty,
    #[error(
        "the Idempotency-Key header has {0} characters; at most {MAX_IDEMPOTENCY_KEY_LENGTH} are allowed"
    )]
    TooLong(usize),
    #[error("the Idempotency-Key header may only hold visible ASCII characters")]
    NotAscii,
}

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, IdempotencyKeyError> {
        if raw.len() > MAX_IDEMPOTENCY_KEY_LENGTH {
            return Err(IdempotencyKeyError::TooLong(raw.len()));
        }
        let text = std::str::from_utf8(raw).map_err(|_| IdempotencyKeyError::NotAscii)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(IdempotencyKeyError::NotAscii);
        }
        Ok(Self(text.to_owned()))
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
    fn bounds() {
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"   ").is_err());
        assert!(IdempotencyKey::parse("\u{e9}".as_bytes()).is_err());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&[b'k'; 256]),
            Err(IdempotencyKeyError::TooLong(256))
        );
    }

    proptest! {
        #[test]
        fn a_parsed_key_parses_to_itself(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(key) = IdempotencyKey::parse(&raw) {
                prop_assert!(!key.as_str().is_empty() && key.as_str().len() <= MAX_IDEMPOTENCY_KEY_LENGTH);
                prop_assert_eq!(IdempotencyKey::parse(key.as_str().as_bytes()), Ok(key.clone()));
            }
        }
    }
}
