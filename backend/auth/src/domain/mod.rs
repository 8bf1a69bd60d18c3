//! Inputs parsed into types before any logic runs.

mod email;
mod password;
pub mod secrets;

pub use email::{Email, EmailError};
pub use password::{MAX_PASSWORD_BYTES, Password, PasswordError};
