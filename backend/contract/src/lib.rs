//! The wire contract: every type that crosses a process boundary between the
//! gateway, the services and the `micro` client. Server-only code never lives
//! here, so that the client depends on nothing but this crate.

pub mod auth;
pub mod error;
pub mod events;
pub mod ids;
pub mod ledger;
pub mod list;
pub mod money;
pub mod payments;
pub mod webhook;

pub use error::{ErrorBody, ErrorDetail, ErrorKind};
pub use list::List;
