//! The invocation every command starts from: which gateway and
//! profile, which API key (`--api-key`/`MICRO_API_KEY`, else the stored
//! login), and a fresh session token from the stored refresh token when a
//! command needs one, without asking.

use std::path::PathBuf;

use client::Client;

use crate::config::{Settings, Target};
use crate::credentials::{Backend, Store, StoreOptions, StoredLogin};
use crate::exit::{CliError, CliResult};

/// What every command knows before it talks to anyone: the target, its
/// settings and the credentials the command line or environment gave.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub target: Target,
    pub settings: Settings,
    pub config_dir: PathBuf,
    pub api_key: Option<String>,
    pub insecure_storage: bool,
}

impl Invocation {
    pub fn client(&self) -> CliResult<Client> {
        Ok(Client::new(&self.target.gateway)?)
    }

    pub fn store_options(&self) -> CliResult<StoreOptions> {
        Ok(StoreOptions::from_env(
            self.insecure_storage,
            self.config_dir.clone(),
        )?)
    }

    pub fn not_logged_in(&self) -> CliError {
        CliError::NotLoggedIn(format!(
            "not logged in to {} (profile {}): run `micro login`, or pass --api-key / MICRO_API_KEY",
            self.target.gateway, self.target.profile
        ))
    }
}

/// Where the API key in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `--api-key` or `MICRO_API_KEY`.
    Given,
    Stored(Backend),
}

pub struct Session {
    pub client: Client,
    pub context: Invocation,
    pub api_key: String,
    pub source: KeySource,
    login: Option<(Store, StoredLogin)>,
}

/// Says so on stderr each time the plain-file store is used.
pub fn announce(store: &Store, dir: &std::path::Path) {
    if store.backend() == Backend::File {
        eprintln!(
            "micro: warning: credentials are kept unencrypted in {} (--insecure-storage)",
            dir.join("credentials.json").display()
        );
    }
}

impl Session {
    /// The session for `context`; `NotLoggedIn` when there is no key at all.
    pub async fn open(context: &Invocation) -> CliResult<Self> {
        let client = context.client()?;
        let login = match Store::find(&context.store_options()?, &context.target.account()).await {
            Ok(found) => found,
            // A given key works without any store.
            Err(_) if context.api_key.is_some() => None,
            Err(e) => return Err(e.into()),
        };
        if let Some((store, _)) = &login {
            announce(store, &context.config_dir);
        }
        let (api_key, source) = match (&context.api_key, &login) {
            (Some(key), _) => (key.clone(), KeySource::Given),
            (None, Some((store, stored))) => (stored.api_key.clone(), KeySource::Stored(store.backend())),
            (None, None) => return Err(context.not_logged_in()),
        };
        Ok(Self {
            client,
            context: context.clone(),
            api_key,
            source,
            login,
        })
    }

    pub fn stored(&self) -> Option<&StoredLogin> {
        self.login.as_ref().map(|(_, login)| login)
    }

    pub fn store(&self) -> Option<&Store> {
        self.login.as_ref().map(|(store, _)| store)
    }

    /// A fresh access token from the stored refresh token, which rotates:
    /// the new one is stored at once.
    pub async fn access_token(&mut self) -> CliResult<String> {
        let account = self.context.target.account();
        let Some((store, login)) = &mut self.login else {
            return Err(CliError::NotLoggedIn(
                "this command needs a login session, not only an API key: run `micro login`".into(),
            ));
        };
        let pair = match self.client.refresh(&login.refresh_token).await {
            Ok(pair) => pair.into_value(),
            Err(e) if e.status() == Some(401) || e.status() == Some(400) => {
                return Err(CliError::NotLoggedIn(format!(
                    "the stored session has expired or was revoked ({e}): run `micro login` again"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        login.refresh_token = pair.refresh_token;
        store.set(&account, login).await?;
        Ok(pair.access_token)
    }
}
