//! Inputs parsed into types before any logic runs, and the ledger's pure
//! arithmetic: fees and balanced journals.

mod fee;
mod inputs;
mod journal;

pub use fee::{FeeSchedule, FeeScheduleError, round_half_even_div};
pub use inputs::{AccountName, Amount, Description, InputError, MAX_AMOUNT, Reference, parse_metadata};
pub use journal::{Journal, Leg};
