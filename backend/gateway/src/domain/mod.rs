//! Requests parsed into types before any logic runs: a path the gateway
//! will forward is first made canonical.

pub(crate) mod canonical;
