//! Where the API key and the refresh token are kept: the Secret Service when
//! a session bus offers one, else the kernel keyring (keyutils), else a 0600
//! file, only when the user opts in with `--insecure-storage`.
//! `MICRO_KEYRING=secret-service|keyutils|file` forces one. Every call to a
//! store is bounded by [`TIMEOUT`]: a locked or hung keyring must not hang
//! the command line.

mod file;
#[cfg(target_os = "linux")]
mod keyutils;
mod secret_service;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The service name every stored login is filed under.
pub const SERVICE: &str = "micro";
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// What `micro login` keeps: one secret per `<profile>@<gateway>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    pub email: String,
    pub user_id: String,
    pub api_key: String,
    pub api_key_id: String,
    pub api_key_prefix: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredLogin")
            .field("email", &self.email)
            .field("api_key_prefix", &self.api_key_prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Keyutils,
    File,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::File => "file",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::SecretService, Self::Keyutils, Self::File]
            .into_iter()
            .find(|b| b.name() == name)
    }

    /// For people: which store this is.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::SecretService => "Secret Service (desktop keyring)",
            Self::Keyutils => "kernel keyring (keyutils, user keyring)",
            Self::File => "plain file (--insecure-storage)",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no credential store is available: no Secret Service on the session bus and no kernel keyring ({reasons}).\n\
         Pass --insecure-storage to keep the key in a 0600 file instead, or --api-key / MICRO_API_KEY on every call."
    )]
    NoneAvailable { reasons: String },
    #[error("MICRO_KEYRING={0:?} is not one of secret-service, keyutils, file")]
    UnknownBackend(String),
    #[error("the file store holds secrets unencrypted: pass --insecure-storage to use it")]
    FileNotAllowed,
    #[error("the {backend} store did not answer within {seconds} s", seconds = TIMEOUT.as_secs())]
    Timeout { backend: &'static str },
    #[error("the {backend} store failed: {message}")]
    Failed { backend: &'static str, message: String },
}

impl StoreError {
    fn failed(backend: Backend, message: impl std::fmt::Display) -> Self {
        Self::Failed {
            backend: backend.name(),
            message: message.to_string(),
        }
    }
}

/// A chosen store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    file: PathBuf,
}

/// How stores are picked: forced by `MICRO_KEYRING`, the file allowed or not.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub forced: Option<Backend>,
    pub insecure_storage: bool,
    /// The directory of the file store.
    pub dir: PathBuf,
}

impl StoreOptions {
    pub fn from_env(insecure_storage: bool, dir: PathBuf) -> Result<Self, StoreError> {
        let forced = match std::env::var("MICRO_KEYRING") {
            Ok(name) if !name.is_empty() => {
                Some(Backend::parse(&name).ok_or(StoreError::UnknownBackend(name))?)
            }
            _ => None,
        };
        Ok(Self {
            forced,
            insecure_storage,
            dir,
        })
    }

    fn candidates(&self) -> Vec<Backend> {
        match self.forced {
            Some(backend) => vec![backend],
            None => {
                let mut all = vec![Backend::SecretService];
                if cfg!(target_os = "linux") {
                    all.push(Backend::Keyutils);
                }
                all.push(Backend::File);
                all
            }
        }
    }
}

async fn bounded<T>(
    backend: Backend,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| StoreError::Timeout {
            backend: backend.name(),
        })?
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The first store that works, for saving a new login.
    pub async fn for_saving(options: &StoreOptions) -> Result<Self, StoreError> {
        let mut reasons = Vec::new();
        for backend in options.candidates() {
            if backend == Backend::File && !options.insecure_storage {
                if options.forced == Some(Backend::File) {
                    return Err(StoreError::FileNotAllowed);
                }
                continue;
            }
            let store = Self {
                backend,
                file: options.dir.join("credentials.json"),
            };
            match store.probe().await {
                Ok(()) => return Ok(store),
                Err(e) => reasons.push(format!("{}: {e}", backend.name())),
            }
        }
        if options.forced.is_some() {
            return Err(StoreError::NoneAvailable {
                reasons: reasons.join("; "),
            });
        }
        Err(StoreError::NoneAvailable {
            reasons: reasons.join("; "),
        })
    }

    /// The store that holds `account`'s login, looking in every usable one.
    /// The file is read without the opt-in flag: it exists only because the
    /// user once opted in, and each use is announced.
    pub async fn find(
        options: &StoreOptions,
        account: &str,
    ) -> Result<Option<(Self, StoredLogin)>, StoreError> {
        let mut last_error = None;
        for backend in options.candidates() {
            let store = Self {
                backend,
                file: options.dir.join("credentials.json"),
            };
            match store.get(account).await {
                Ok(Some(login)) => return Ok(Some((store, login))),
                Ok(None) => {}
                // An unavailable store simply holds nothing; a forced one must answer.
                Err(e) if options.forced.is_some() => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        let _ = last_error;
        Ok(None)
    }

    async fn probe(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::SecretService => bounded(self.backend, secret_service::probe()).await,
            #[cfg(target_os = "linux")]
            Backend::Keyutils => bounded(self.backend, blocking(keyutils::probe)).await,
            #[cfg(not(target_os = "linux"))]
            Backend::Keyutils => Err(StoreError::failed(self.backend, "only on Linux")),
            Backend::File => Ok(()),
        }
    }

    pub async fn get(&self, account: &str) -> Result<Option<StoredLogin>, StoreError> {
        let raw = match self.backend {
            Backend::SecretService => bounded(self.backend, secret_service::get(account.to_owned())).await?,
            #[cfg(target_os = "linux")]
            Backend::Keyutils => {
                let account = account.to_owned();
                bounded(self.backend, blocking(move || keyutils::get(&account))).await?
            }
            #[cfg(not(target_os = "linux"))]
            Backend::Keyutils => return Err(StoreError::failed(self.backend, "only on Linux")),
            Backend::File => file::get(&self.file, account)?,
        };
        match raw {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StoreError::failed(self.backend, format!("the stored login is unreadable: {e}"))
            }),
        }
    }

    pub async fn set(&self, account: &str, login: &StoredLogin) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(login).map_err(|e| StoreError::failed(self.backend, e))?;
        match self.backend {
            Backend::SecretService => {
                bounded(self.backend, secret_service::set(account.to_owned(), bytes)).await
            }
            #[cfg(target_os = "linux")]
            Backend::Keyutils => {
                let account = account.to_owned();
                bounded(self.backend, blocking(move || keyutils::set(&account, &bytes))).await
            }
            #[cfg(not(target_os = "linux"))]
            Backend::Keyutils => Err(StoreError::failed(self.backend, "only on Linux")),
            Backend::File => file::set(&self.file, account, &bytes),
        }
    }

    pub async fn delete(&self, account: &str) -> Result<(), StoreError> {
        match self.backend {
            Backend::SecretService => bounded(self.backend, secret_service::delete(account.to_owned())).await,
            #[cfg(target_os = "linux")]
            Backend::Keyutils => {
                let account = account.to_owned();
                bounded(self.backend, blocking(move || keyutils::delete(&account))).await
            }
            #[cfg(not(target_os = "linux"))]
            Backend::Keyutils => Err(StoreError::failed(self.backend, "only on Linux")),
            Backend::File => file::delete(&self.file, account),
        }
    }
}

#[cfg(target_os = "linux")]
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::failed(Backend::Keyutils, e))?
}
