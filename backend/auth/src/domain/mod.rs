//! Inputs parsed into types before any logic runs.

mod email;
mod key_name;
mod password;
pub mod secrets;

pub use email::{Email, EmailError};
pub use key_name::{KeyName, KeyNameError};
pub use password::{MAX_PASSWORD_BYTES, Password, PasswordError};
