//! The ledger through its HTTP routes, on a fresh database per test, with the
//! internal token the gateway (or payments) would attach; and the rules the
//! database enforces, tried directly in SQL.

mod accounts;
mod callers;
mod concurrency;
mod database_rules;
mod helpers;
mod payments;
mod properties;
mod soak;
mod transactions;
