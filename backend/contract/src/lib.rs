//! The wire contract: every type that crosses a process boundary between the
//! gateway, the services and the `micro` client. Server-only code never lives
//! here, so that the client depends on nothing but this crate; what only the
//! servers need sits behind features the client does not enable: `openapi`
//! (the `utoipa` derives that describe the public API) and `internal` (what
//! the services say to each other).

pub mod auth;
pub mod error;
pub mod events;
pub mod ids;
#[cfg(feature = "internal")]
pub mod internal;
pub mod ledger;
pub mod list;
pub mod money;
pub mod payments;
pub mod webhook;

pub use error::{ErrorBody, ErrorDetail, ErrorKind};
pub use list::List;
