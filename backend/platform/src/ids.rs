/// A new object id: the type prefix and a UUIDv7 in hex, so that ids sort by
/// creation time and cursor pagination can order by id alone.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let first = super::new_id(contract::ids::PAYMENT);
        let second = super::new_id(contract::ids::PAYMENT);
        assert!(contract::ids::has_prefix(&first, contract::ids::PAYMENT));
        assert!(first < second);
    }
}
