//! Fault injection for the platform run as separate processes: each fault
//! is injected under a load of payments while one `micro listen` per owner
//! forwards events, and afterwards every event, posting and answer is
//! checked. See docs/reliability.md, "Fault injection".

pub mod check;
pub mod cluster;
pub mod db;
pub mod faults;
pub mod limits;
pub mod listeners;
pub mod load;
pub mod receiver;
pub mod relay;
pub mod report;
pub mod run;

pub use faults::{Fault, Settings};
pub use run::{Options, run};
