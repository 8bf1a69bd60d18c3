//! Filled in with the ledger service.
