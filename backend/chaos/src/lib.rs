//! Fault injection for the platform run as separate processes: each fault
//! is injected under a load of payments while one `micro listen` per owner
//! forwards events, and afterwards every event, posting and answer is
//! checked. See docs/reliability.md, "Fault injection".

pub mod check;
pub mod receiver;
pub mod relay;
