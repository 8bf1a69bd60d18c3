//! What the gateway keeps outside its own memory: the rate-limit budgets,
//! in Redis, which every replica shares.

pub(crate) mod rate_limit;
