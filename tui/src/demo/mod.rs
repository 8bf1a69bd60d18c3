//! The parts of `micro demo` that are not printing: a local receiver that
//! verifies what `micro listen` forwards ([`receiver`]), and the account of
//! what was expected against what arrived ([`tally`]).

pub mod receiver;
pub mod tally;
