use std::collections::BTreeMap;

use contract::payments::{
    MAX_DESCRIPTION_LENGTH, MAX_METADATA_KEY_LENGTH, MAX_METADATA_KEYS, MAX_METADATA_VALUE_LENGTH,
};

/// String keys and values a merchant attaches to a payment, within Stripe's limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetadataError(String);

impl platform::error::InvalidInput for MetadataError {
    fn code(&self) -> &'static str {
        contract::payments::codes::INVALID_METADATA
    }

    fn param(&self) -> &'static str {
        "metadata"
    }
}

impl Metadata {
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Self, MetadataError> {
        if raw.len() > MAX_METADATA_KEYS {
            return Err(MetadataError(format!(
                "metadata has {} keys; at most {MAX_METADATA_KEYS} are allowed",
                raw.len()
            )));
        }
        for (key, value) in &raw {
            if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_LENGTH {
                return Err(MetadataError(format!(
                    "metadata keys must have 1 to {MAX_METADATA_KEY_LENGTH} characters"
                )));
            }
            if value.chars().count() > MAX_METADATA_VALUE_LENGTH {
                return Err(MetadataError(format!(
                    "the metadata value of {key:?} is longer than {MAX_METADATA_VALUE_LENGTH} characters"
                )));
            }
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// A payment's description: at most 1000 characters, and absent rather than blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("description has at most {MAX_DESCRIPTION_LENGTH} characters")]
pub struct DescriptionError;

impl platform::error::InvalidInput for DescriptionError {
    fn code(&self) -> &'static str {
        contract::payments::codes::INVALID_DESCRIPTION
    }

    fn param(&self) -> &'static str {
        "description"
    }
}

impl Description {
    pub fn parse(raw: &str) -> Result<Option<Self>, DescriptionError> {
        let text = raw.trim();
        if text.chars().count() > MAX_DESCRIPTION_LENGTH {
            return Err(DescriptionError);
        }
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn limits() {
        assert!(Metadata::parse(map(&[("order", "42")])).is_ok());
        assert!(Metadata::parse(map(&[("", "x")])).is_err());
        assert!(Metadata::parse(map(&[(&"k".repeat(41), "x")])).is_err());
        assert!(Metadata::parse(map(&[("k", &"v".repeat(501))])).is_err());
        let many: BTreeMap<String, String> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(Metadata::parse(many).is_err());
        assert_eq!(Description::parse("  "), Ok(None));
        assert!(Description::parse(&"d".repeat(1001)).is_err());
    }

    proptest! {
        #[test]
        fn accepted_metadata_is_within_limits(
            raw in proptest::collection::btree_map("\\PC{0,45}", "\\PC{0,510}", 0..55)
        ) {
            if let Ok(metadata) = Metadata::parse(raw.clone()) {
                let inner = metadata.into_inner();
                prop_assert_eq!(&inner, &raw);
                prop_assert!(inner.len() <= MAX_METADATA_KEYS);
                prop_assert!(inner.iter().all(|(k, v)| !k.is_empty()
                    && k.chars().count() <= MAX_METADATA_KEY_LENGTH
                    && v.chars().count() <= MAX_METADATA_VALUE_LENGTH));
            }
        }
    }
}
