//! Payments through its HTTP routes, on a fresh database and a private Redis
//! namespace, with the internal token the gateway would attach. Tests that
//! need the ledger start the real one in-process on its own database.

mod callers;
mod events;
mod helpers;
mod idempotency;
mod outbox;
mod payments;
mod postings;
mod transitions;
