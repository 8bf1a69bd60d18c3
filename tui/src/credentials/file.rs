//! The opt-in fallback: a JSON map of account to login in a file only its
//! owner can read. Every use is announced on stderr by the caller.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::{Backend, StoreError};

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::failed(Backend::File, e)
}

type Entries = BTreeMap<String, serde_json::Value>;

fn read(path: &Path) -> Result<Entries, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| failed(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entries::new()),
        Err(e) => Err(failed(format!("{}: {e}", path.display()))),
    }
}

fn write(path: &Path, entries: &Entries) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let bytes = serde_json::to_vec_pretty(entries).map_err(failed)?;
    let temporary = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

pub fn get(path: &Path, account: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let entries = read(path)?;
    entries
        .get(account)
        .map(|value| serde_json::to_vec(value).map_err(failed))
        .transpose()
}

pub fn set(path: &Path, account: &str, secret: &[u8]) -> Result<(), StoreError> {
    let mut entries = read(path)?;
    let value: serde_json::Value = serde_json::from_slice(secret).map_err(failed)?;
    entries.insert(account.to_owned(), value);
    write(path, &entries)
}

pub fn delete(path: &Path, account: &str) -> Result<(), StoreError> {
    let mut entries = read(path)?;
    if entries.remove(account).is_some() {
        write(path, &entries)?;
    }
    Ok(())
}
