//! Inputs parsed into types before any logic runs, and the ledger's pure
//! arithmetic: balanced journals.

mod inputs;
mod journal;

pub use inputs::{AccountName, Amount, Description, InputError, MAX_AMOUNT, Reference, parse_metadata};
pub use journal::{Journal, Leg};
