//! Plain settings in `config.toml` in the platform's config directory
//! (`~/.config/micro` on Linux; `MICRO_CONFIG_DIR` moves it). Secrets never
//! go here: they live in the credential store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The gateway used when neither `--gateway` nor `MICRO_GATEWAY` is given.
    pub gateway: Option<String>,
    pub profile: Option<String>,
    pub forward: ForwardDefaults,
}

/// Defaults for `micro listen`, each overridden by its flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForwardDefaults {
    pub to: Option<String>,
    pub headers: Vec<String>,
    pub timeout_seconds: Option<u64>,
    pub retries: Option<u32>,
    pub events: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find a home directory for the configuration; set MICRO_CONFIG_DIR")]
    NoDirectory,
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where configuration and local state live.
pub fn config_dir() -> Result<PathBuf, ConfigError> {
    if let Some(dir) = std::env::var_os("MICRO_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "micro")
        .map(|dirs| dirs.config_dir().to_path_buf())
        .ok_or(ConfigError::NoDirectory)
}

impl Settings {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    /// The settings in `dir`, or the defaults when there is no file yet.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = Self::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = Self::path(dir);
        let io = |source| ConfigError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(io)
    }
}

/// The gateway and profile a command talks to, resolved once:
/// flag, then environment (clap reads `MICRO_GATEWAY`), then the file, then the default.
#[derive(Debug, Clone)]
pub struct Target {
    pub gateway: String,
    pub profile: String,
}

impl Target {
    pub fn resolve(gateway: Option<String>, profile: Option<String>, settings: &Settings) -> Self {
        let gateway = gateway
            .or_else(|| settings.gateway.clone())
            .unwrap_or_else(|| DEFAULT_GATEWAY.to_owned());
        Self {
            gateway: gateway.trim_end_matches('/').to_owned(),
            profile: profile
                .or_else(|| settings.profile.clone())
                .unwrap_or_else(|| DEFAULT_PROFILE.to_owned()),
        }
    }

    /// The credential store's account name: `<profile>@<gateway>`.
    pub fn account(&self) -> String {
        format!("{}@{}", self.profile, self.gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Settings::load(dir.path()).expect("defaults"), Settings::default());
        let settings = Settings {
            gateway: Some("https://gw.example.com".into()),
            profile: None,
            forward: ForwardDefaults {
                to: Some("http://localhost:4242/webhook".into()),
                ..Default::default()
            },
        };
        settings.save(dir.path()).expect("saves");
        let loaded = Settings::load(dir.path()).expect("loads");
        assert_eq!(loaded, settings);
        let target = Target::resolve(None, None, &loaded);
        assert_eq!(target.account(), "default@https://gw.example.com");
        let target = Target::resolve(Some("http://127.0.0.1:1/".into()), Some("ci".into()), &loaded);
        assert_eq!(target.account(), "ci@http://127.0.0.1:1");
    }
}
