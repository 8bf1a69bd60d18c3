//! Exit codes, documented in the README and stable for scripts:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also `listen` stopped with Ctrl-C) |
//! | 1 | usage: a bad flag or argument |
//! | 2 | not logged in, or the stored key or session was refused |
//! | 3 | the API refused the request (4xx/5xx with an error body) |
//! | 4 | the gateway cannot be reached, or `listen` gave up reconnecting |
//! | 5 | no usable credential store (keyring) |
//! | 6 | anything else (local I/O, a malformed answer) |
//! | 7 | `demo`: an expected event did not arrive, arrived unverified or twice, or the ledger did not move as expected |
//! | 8 | the console could not start a local platform: `micro-stack` not found, or it did not become ready |

use client::ClientError;

pub const OK: u8 = 0;
pub const USAGE: u8 = 1;
pub const NOT_LOGGED_IN: u8 = 2;
pub const API: u8 = 3;
pub const NETWORK: u8 = 4;
pub const KEYRING: u8 = 5;
pub const OTHER: u8 = 6;
pub const INCOMPLETE: u8 = 7;
pub const NO_STACK: u8 = 8;

/// The one error type of the command line, each variant with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotLoggedIn(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Keyring(#[from] crate::credentials::StoreError),
    #[error("{0}")]
    Other(String),
    /// The local platform the console offered to start did not start.
    #[error("{0}")]
    NoStack(String),
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => USAGE,
            Self::NotLoggedIn(_) => NOT_LOGGED_IN,
            Self::Client(e) if e.is_unauthorized() => NOT_LOGGED_IN,
            Self::Client(ClientError::Network(_)) | Self::Network(_) => NETWORK,
            Self::Client(ClientError::Decode { .. }) => OTHER,
            Self::Client(_) => API,
            Self::Keyring(_) => KEYRING,
            Self::Other(_) => OTHER,
            Self::NoStack(_) => NO_STACK,
        }
    }

    /// What to print on stderr: the error, and what to do about it.
    pub fn message(&self) -> String {
        match self {
            Self::Client(e) if e.is_unauthorized() => format!(
                "{e}\nThe API key or session was refused (revoked or expired): run `micro login` again, or pass a valid key with --api-key."
            ),
            Self::Client(ClientError::Network(_)) => {
                format!("{self}\nIs the gateway running? Pick another with --gateway or MICRO_GATEWAY.")
            }
            _ => self.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;
