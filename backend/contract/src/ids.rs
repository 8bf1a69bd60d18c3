//! Object ids are a type prefix and a time-ordered suffix, so that sorting ids
//! sorts objects by creation and a glance at an id tells what it names.

pub const USER: &str = "usr";
pub const API_KEY: &str = "key";
pub const PAYMENT: &str = "pay";
pub const REFUND: &str = "re";
pub const EVENT: &str = "evt";
pub const ACCOUNT: &str = "acct";
pub const TRANSACTION: &str = "txn";

/// True when `id` is `<prefix>_` followed by 1..=64 ASCII alphanumerics.
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|suffix| {
            !suffix.is_empty() && suffix.len() <= 64 && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_exactly() {
        assert!(has_prefix("pay_0192abc", PAYMENT));
        assert!(!has_prefix("pay_", PAYMENT));
        assert!(!has_prefix("payx_1", PAYMENT));
        assert!(!has_prefix("re_1", PAYMENT));
        assert!(!has_prefix("pay_1;drop", PAYMENT));
    }
}
