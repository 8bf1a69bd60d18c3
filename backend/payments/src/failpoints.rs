//! Points at which a test build of micro-payments dies on the spot, as under
//! `kill -9`: no rollback, no flush, no answer. The fault-injection suite
//! arms one at a time to show that what a request or a worker writes is
//! there entirely or not at all, and that a retry under the same
//! `Idempotency-Key` gets the answer that was committed.
//!
//! Compiled in only with the `failpoints` feature, and armed only by the
//! `FAILPOINTS` environment variable (`FAILPOINTS=confirm-settled=return`);
//! without the feature every point is an empty function.

/// A confirm holds its payment's row lock and has written nothing.
pub const CONFIRM_LOCKED: &str = "confirm-locked";
/// A confirm has written the payment, its event and its posting, not its answer.
pub const CONFIRM_SETTLED: &str = "confirm-settled";
/// A confirm has written everything, its answer included, and not committed.
pub const CONFIRM_ANSWER_STORED: &str = "confirm-answer-stored";
/// A confirm has committed and not yet answered.
pub const CONFIRM_COMMITTED: &str = "confirm-committed";
/// The publisher has published a batch to Redis and not marked it published.
pub const EVENTS_PUBLISHED: &str = "events-published";
/// The posting worker has the ledger's answers and has not recorded them.
pub const POSTINGS_POSTED: &str = "postings-posted";

pub const ALL: [&str; 6] = [
    CONFIRM_LOCKED,
    CONFIRM_SETTLED,
    CONFIRM_ANSWER_STORED,
    CONFIRM_COMMITTED,
    EVENTS_PUBLISHED,
    POSTINGS_POSTED,
];

/// Arms the points `FAILPOINTS` names, for as long as the guard lives.
#[cfg(feature = "failpoints")]
pub fn arm_from_env() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

#[cfg(feature = "failpoints")]
pub fn die_at(point: &'static str) {
    fail::fail_point!(point, |_| {
        eprintln!("micro-payments: failpoint {point}: dying on the spot");
        std::process::abort()
    });
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn die_at(_point: &'static str) {}
